"""Completions rated or ranked (UltraFeedback's `completions`, each a text with its score; or a list of strings
beside a parallel list of scores, ratings or ranks), under a prompt."""

from __future__ import annotations

from trlprep.inspector.dialects.columns import PROMPT_COLUMNS, extra_columns, first_present
from trlprep.inspector.dialects.core import Dialect, Field, Shape, register
from trlprep.inspector.dialects.messages import assistant_message, user_message

COMPLETION_COLUMNS = ("completions", "responses", "candidates", "outputs")
# Keys of a completion object: its text, and its score or rank.
SCORE_KEYS = ("overall_score", "score", "rating", "reward", "fine-grained_score")
RANK_KEYS = ("rank", "ranking")
TEXT_KEYS = ("response", "text", "completion", "content", "output")


def scored_item(item: dict) -> tuple[str, float] | None:
    """(text, score) of a rated completion, higher is better; ranks are negated so that holds too.

    >>> scored_item({"response": "Paris", "overall_score": 9})
    ('Paris', 9.0)
    >>> scored_item({"text": "Lyon", "rank": 2})
    ('Lyon', -2.0)
    """
    text = next((item[k] for k in TEXT_KEYS if isinstance(item.get(k), str)), None)
    if text is None:
        return None
    for keys, sign in ((SCORE_KEYS, 1.0), (RANK_KEYS, -1.0)):
        for key in keys:
            value = item.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return text, sign * float(value)
    return None


# Lists beside the completion strings: scores, ratings and rewards (higher is better), then ranks (lower is).
SCORE_COLUMNS = ("scores", "ratings", "rewards", "rankings", "ranks")


def parallel_scores(row: dict) -> list[float] | None:
    """Scores beside a list of completion strings, higher is better (ranks are negated).

    >>> parallel_scores({"responses": ["a", "b"], "ranks": [1, 2]}), parallel_scores({"scores": ["high"]})
    ([-1.0, -2.0], None)
    """
    for keys, sign in ((SCORE_COLUMNS[:3], 1.0), (SCORE_COLUMNS[3:], -1.0)):
        for key in keys:
            value = row.get(key)
            if isinstance(value, list) and value and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
            ):
                return [sign * float(v) for v in value]
    return None


def rated_pair(row: dict, shape: Shape) -> tuple[str, str, float] | None:
    """(best, worst, margin) of a rated-completions row; None when all scores tie."""
    items = row[shape.fields[1].name]
    if all(isinstance(item, dict) for item in items):
        scored = [s for s in map(scored_item, items) if s is not None]
    else:
        scored = list(zip(items, parallel_scores(row) or []))
    if len(scored) < 2:
        return None
    best = max(scored, key=lambda s: s[1])
    worst = min(scored, key=lambda s: s[1])
    if best[1] == worst[1]:
        return None
    return best[0], worst[0], best[1] - worst[1]


def rated_columns(row: dict) -> tuple[str, str] | None:
    """(prompt column, completions column) for rated or ranked completions.

    >>> rated_columns({"prompt": "2+2?", "completions": ["4", "5"], "scores": [9, 1]})
    ('prompt', 'completions')
    >>> rated_columns({"prompt": "2+2?", "completions": ["4", "5"]}) is None
    True
    """
    prompt = first_present(row, PROMPT_COLUMNS)
    if prompt is None:
        return None
    for name in COMPLETION_COLUMNS:
        value = row.get(name)
        if not isinstance(value, list) or len(value) < 2:
            continue
        if all(isinstance(item, dict) for item in value) and scored_item(value[0]) is not None:
            return prompt, name
        if all(isinstance(item, str) for item in value) and parallel_scores(row) is not None:
            return prompt, name
    return None


class RatedCompletions(Dialect):
    """Preference: the best-scored completion against the worst, their score difference as `margin` (no pair
    when all scores tie); the scores leave the row."""

    name = "rated_completions"
    description = "rated completions as preference pairs (best vs worst, score gap as `margin`)"
    priority = 1300
    example = {"prompt": "2+2?", "completions": [{"response": "4", "overall_score": 9},
                                                 {"response": "5", "overall_score": 2}]}

    def detect(self, row: dict) -> Shape | None:
        rated = rated_columns(row)
        if rated:
            return Shape("rated_completions", "preference", "conversational", False, (
                Field(rated[0], "text"), Field(rated[1], "scored_list")))
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        pair = rated_pair(row, shape)
        best, worst, margin = pair if pair else (None, None, 0.0)
        extras = extra_columns(row, shape)
        return {"prompt": [user_message(row[shape.columns[0]])], "chosen": [assistant_message(best)],
                "rejected": [assistant_message(worst)], "margin": margin,
                **{k: v for k, v in extras.items() if k not in SCORE_COLUMNS}}


register(RatedCompletions())
