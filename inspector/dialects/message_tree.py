"""OpenAssistant's conversation trees, read by `inspector.trees` into one row a prompt: the thread before it
(`prompt`, messages) and the replies it got (`replies`, each `{"text", "rank"}`, 0 best)."""

from __future__ import annotations

from trlprep.inspector.dialects.columns import extra_columns
from trlprep.inspector.dialects.core import Dialect, Field, Shape, register
from trlprep.inspector.dialects.messages import assistant_message
from trlprep.inspector.trees import best_and_worst


class MessageTree(Dialect):
    """Preference: the best-ranked reply against the worst-ranked one (None when no two ranks differ)."""

    name = "message_tree"
    description = ("OpenAssistant conversation trees (one message a row, or one nested tree a row): each prompt "
                   "with the thread before it; "
                   "its best-ranked reply (the first when none is ranked) as chosen, its worst-ranked as "
                   "rejected; deleted and review-failed messages left out with what is below them")
    priority = 100
    example = {"prompt": [{"role": "user", "content": "Hi?"}],
               "replies": [{"text": "Hello!", "rank": 0}, {"text": "Go away.", "rank": 1}]}

    def detect(self, row: dict) -> Shape | None:
        if isinstance(row.get("prompt"), list) and isinstance(row.get("replies"), list):
            return Shape("message_tree", "preference", "conversational", False, (
                Field("prompt", "thread"), Field("replies", "ranked_replies"),
                Field("thread_problem", "thread_problem", False), Field("replies_left_out", "left_out", False)))
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        best, worst = best_and_worst(row["replies"])
        return {"prompt": row["prompt"], "chosen": [assistant_message(best)],
                "rejected": None if worst is None else [assistant_message(worst)],
                **extra_columns(row, shape)}


register(MessageTree())
