"""Mapping columns and roles onto a known shape: the `--map old=new` and `--roles old=new` options that `inspect`
and `convert` share, and, for data of no known shape, the mapping `inspect` proposes after checking it."""

from __future__ import annotations

import itertools
import shlex
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from trlprep.inspector.dialects import classify_row, to_trl
from trlprep.inspector.rules.structure import TRL_COLUMNS, clashing_columns
from trlprep.errors import UsageError

# Column names people use for what a known shape reads, by the name it reads (checked in this order): `prompt`
# and `completion` are TRL's own, so a proposed mapping reads each row exactly as its two columns hold it.
SYNONYMS = {
    "prompt": ("prompt", "question", "query", "input", "problem", "instruction", "text", "source", "src",
               "context", "document", "article", "passage", "dialogue", "body", "q"),
    "completion": ("completion", "answer", "best answer", "output", "response", "solution", "target", "reply",
                   "summary", "highlights", "label", "tgt", "a"),
    "chosen": ("chosen", "preferred", "better", "winner", "positive", "good"),
    "rejected": ("rejected", "dispreferred", "worse", "loser", "negative", "bad"),
    "text": ("text", "content", "body", "document", "passage"),
    "messages": ("messages", "conversation", "conversations", "dialog", "chat"),
}
# What the other known shapes read, when the rows hold no prompt and answer: the first the columns map onto.
TARGETS = (("chosen", "rejected"), ("messages",), ("text",))
SUGGESTION_ROWS = 50


@dataclass(frozen=True)
class Proposal:
    """A renaming of a dataset's columns, checked on its first rows: every one of them then has a known shape,
    and reads its prompt (when `prompt` is named) and its answer exactly from the columns named."""

    renames: dict[str, str]
    prompt: str | None = None  # the column each row's prompt is then read from
    answer: str | None = None  # the column each row's completion (or chosen answer) is then read from
    rows: int = 0  # the first rows it was checked on

    @property
    def arguments(self) -> str:
        return mapping_arguments(self.renames, {})

    def meaning(self) -> str:
        """What the rows become, in words.

        >>> Proposal({"text": "prompt", "label": "completion"}, "text", "label", 20).meaning()
        '`text` read as the prompt and `label` as the completion (checked on the first 20 rows)'
        """
        read = ", ".join(f"`{old}` as `{new}`" for old, new in self.renames.items())
        if self.prompt is not None and self.answer is not None:
            read = f"`{self.prompt}` read as the prompt and `{self.answer}` as the completion"
        return f"{read} (checked on the first {self.rows} rows)"


def parse_pairs(pairs: tuple[str, ...] | dict | None, option: str, form: str = "old=new") -> dict[str, str]:
    """`("old=new", ...)` as a dict; a dict passes through. With `form="key=value"` (`train --set`) a value may be
    empty and keys are stripped.

    >>> parse_pairs(("bot=assistant", "human=user"), "--roles")
    {'bot': 'assistant', 'human': 'user'}
    >>> parse_pairs((" lr=",), "--set", form="key=value")
    {'lr': ''}
    """
    if isinstance(pairs, dict) or not pairs:
        return dict(pairs or {})
    out = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if form == "key=value":
            old = old.strip()
        if not sep or not old or (not new and form == "old=new"):
            raise UsageError(f"{option} {pair!r}: expected {form}")
        out[old] = new
    return out


def rename_roles(row: dict, roles: dict[str, str]) -> dict:
    """Roles renamed in every message list and message object of a row (both role/content and from/value).

    >>> rename_roles({"messages": [{"role": "bot", "content": "Hi"}]}, {"bot": "assistant"})
    {'messages': [{'role': 'assistant', 'content': 'Hi'}]}
    """
    def rename(message: Any) -> Any:
        if isinstance(message, dict):
            for key in ("role", "from"):
                if message.get(key) in roles:
                    return {**message, key: roles[message[key]]}
        return message

    out = {}
    for key, value in row.items():
        if isinstance(value, list):
            out[key] = [rename(m) for m in value]
        elif isinstance(value, dict):
            out[key] = rename(value)
        else:
            out[key] = value
    return out


def renamed_columns(row: dict, renames: dict[str, str]) -> dict:
    """A row with its columns renamed as `--map` renames them.

    >>> renamed_columns({"Q": "2+2?", "id": 1}, {"Q": "question"})
    {'question': '2+2?', 'id': 1}
    """
    return {renames.get(k, k): v for k, v in row.items()}


def renaming(renames: dict[str, str], roles: dict[str, str]) -> Callable[[Iterator], Iterator] | None:
    """What rows go through with `--map` and `--roles` (None when neither is given).

    >>> rows = renaming({"Q": "question"}, {"bot": "assistant"})(iter([(1, {"Q": "2+2?"})]))
    >>> list(rows)
    [(1, {'question': '2+2?'})]
    """
    if not renames and not roles:
        return None

    def renamed(rows: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
        for number, value in rows:
            if isinstance(value, dict) and renames:
                value = renamed_columns(value, renames)
            if isinstance(value, dict) and roles:
                value = rename_roles(value, roles)
            yield number, value

    return renamed


def propose_map(rows: list[Any]) -> Proposal | None:
    """A renaming under which every one of a dataset's first rows gets a known shape, checked on them, or None.

    When the rows hold a prompt and an answer (the first column of each kind, by the names in SYNONYMS, that holds
    text in every row), they are mapped onto TRL's `prompt` and `completion`, any other column TRL would read set
    aside, and only if each renamed row then reads its prompt and completion exactly from them: never onto a
    reading that leaves the answer out. Else the columns may map onto a pair, a conversation or a document, when
    no answer is left unread and the rows are no chat messages.

    >>> propose_map([{"text": "Met Bob; ship Friday.", "label": "owner: bob"}]).arguments
    '--map text=prompt --map label=completion'
    >>> propose_map([{"input": "2+2?", "output": "4", "label": "bad"}]).arguments
    '--map input=prompt --map output=completion --map label=label_original'
    >>> propose_map([{"Question": "2+2?", "Best Answer": "4", "Category": "math"}]).arguments
    "--map Question=prompt --map 'Best Answer=completion'"
    >>> propose_map([{"role": "user", "content": "Hi"}]) is None
    True
    """
    rows = [row for row in rows[:SUGGESTION_ROWS] if isinstance(row, dict)]
    if not rows or any("role" in row or "from" in row for row in rows):  # one message a row: nothing to map
        return None
    columns = [column for column in rows[0] if all(column in row for row in rows)]
    texts = [column for column in columns if all(isinstance(row[column], str) and row[column].strip()
                                                  for row in rows)]
    prompt, answer = (next(iter(_named(texts, wanted)), None) for wanted in ("prompt", "completion"))
    if prompt is not None and answer is not None:
        return _prompt_and_completion(rows, columns, prompt, answer)
    for target in TARGETS:
        for mapping in _candidates(columns, target):
            renames = {old: new for old, new in mapping.items() if old != new}
            if not renames or any(new in columns and new not in renames for new in renames.values()):
                continue  # it would overwrite a column the rows keep
            if answer is not None and answer not in mapping:
                continue  # the answer would be left out of what is trained
            if all(classify_row(renamed_columns(row, renames)) is not None for row in rows):
                return Proposal(renames, rows=len(rows))
    return None


def _prompt_and_completion(rows: list[dict], columns: list[str], prompt: str, answer: str) -> Proposal | None:
    """`prompt` and `answer` mapped onto TRL's `prompt` and `completion`, the other columns TRL reads set aside,
    when every renamed row reads its prompt and completion exactly from them."""
    renames = {old: new for old, new in ((prompt, "prompt"), (answer, "completion")) if old != new}
    renames |= {column: f"{column}_original" for column in columns
                if column in TRL_COLUMNS and column not in (prompt, answer)}
    if any(new in columns and new not in renames for new in renames.values()):
        return None  # it would overwrite a column the rows keep
    if all(_reads_as(row, renamed_columns(row, renames), prompt, answer) for row in rows):
        return Proposal(renames, prompt, answer, len(rows))
    return None


def set_aside(rows: list[Any], columns: list[str]) -> Proposal | None:
    """`columns` renamed out of the way (`label` as `label_original`), checked on the first rows: each still has
    a known shape; None when there is nothing to rename, a new name is taken, or a row loses its shape.

    >>> set_aside([{"text": "A story.", "labels": [1, 0]}], ["labels"]).arguments
    '--map labels=labels_original'
    """
    rows = [row for row in rows[:SUGGESTION_ROWS] if isinstance(row, dict)]
    renames = {column: f"{column}_original" for column in columns}
    if not rows or not renames or any(new in row for row in rows for new in renames.values()):
        return None
    if all(classify_row(renamed_columns(row, renames)) is not None for row in rows):
        return Proposal(renames, rows=len(rows))
    return None


def _named(columns: list[str], wanted: str) -> list[str]:
    """The `columns` people name as `wanted` (SYNONYMS), in the synonyms' order."""
    return [column for name in SYNONYMS[wanted] for column in columns if column.strip().lower() == name]


def _candidates(columns: list[str], target: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """Mappings of `columns` onto the names `target` reads, each name's synonyms in their order."""
    for chosen in itertools.product(*(_named(columns, wanted) for wanted in target)):
        if len(set(chosen)) == len(chosen):
            yield dict(zip(chosen, target))


def _reads_as(row: dict, renamed: dict, prompt: str, answer: str) -> bool:
    """Whether `renamed` reads as prompt-completion data whose prompt and completion are `row`'s two columns (which
    `propose_map` took for holding text in every row)."""
    shape = classify_row(renamed)
    if shape is None or shape.type != "prompt_completion" or clashing_columns(renamed, shape):
        return False
    read = to_trl(renamed, shape)
    return (read.get("prompt"), read.get("completion")) == (row[prompt], row[answer])


def mapping_arguments(renames: dict[str, str], roles: dict[str, str]) -> str:
    """The command-line options that give this mapping.

    >>> mapping_arguments({"Best Answer": "answer"}, {"bot": "assistant"})
    "--map 'Best Answer=answer' --roles bot=assistant"
    """
    return " ".join([f"--map {shlex.quote(f'{old}={new}')}" for old, new in renames.items()]
                    + [f"--roles {shlex.quote(f'{old}={new}')}" for old, new in roles.items()])
