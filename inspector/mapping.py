"""Mapping columns and roles onto a known shape: the `--map old=new` and `--roles old=new` options that `inspect`
and `convert` share, and, for data of no known shape, the mapping `inspect` proposes after checking it."""

from __future__ import annotations

import shlex
from typing import Any, Callable, Iterator

from trlprep.inspector.dialects import classify_row
from trlprep.errors import UsageError

# Column names people use for what a known shape reads, by the name it reads (checked in this order).
SYNONYMS = {
    "question": ("question", "query", "input", "problem", "prompt", "instruction", "q"),
    "answer": ("answer", "best answer", "output", "response", "solution", "target", "reply", "completion", "a"),
    "chosen": ("chosen", "preferred", "better", "winner", "positive", "good"),
    "rejected": ("rejected", "dispreferred", "worse", "loser", "negative", "bad"),
    "text": ("text", "content", "body", "document", "passage"),
    "messages": ("messages", "conversation", "conversations", "dialog", "chat"),
}
# What each known shape reads, the first that the columns can be mapped onto is proposed.
TARGETS = (("question", "answer"), ("chosen", "rejected"), ("messages",), ("text",))
SUGGESTION_ROWS = 50


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
                value = {renames.get(k, k): v for k, v in value.items()}
            if isinstance(value, dict) and roles:
                value = rename_roles(value, roles)
            yield number, value

    return renamed


def suggest_map(rows: list[Any]) -> dict[str, str] | None:
    """A `--map` under which the first rows of a dataset of no known shape all get one, or None.

    >>> suggest_map([{"Question": "2+2?", "Best Answer": "4", "Category": "math"}])
    {'Question': 'question', 'Best Answer': 'answer'}
    >>> suggest_map([{"x": 1}]) is None
    True
    """
    rows = [row for row in rows[:SUGGESTION_ROWS] if isinstance(row, dict)]
    if not rows:
        return None
    columns = list(rows[0])
    for target in TARGETS:
        mapping = {}
        for wanted in target:
            found = next((column for name in SYNONYMS[wanted] for column in columns
                          if column.strip().lower() == name and column not in mapping), None)
            if found is None:
                break
            mapping[found] = wanted
        else:
            renamed = [{mapping.get(k, k): v for k, v in row.items()} for row in rows]
            if all(classify_row(row) is not None for row in renamed):
                return {old: new for old, new in mapping.items() if old != new}
    return None


def mapping_arguments(renames: dict[str, str], roles: dict[str, str]) -> str:
    """The command-line options that give this mapping.

    >>> mapping_arguments({"Best Answer": "answer"}, {"bot": "assistant"})
    "--map 'Best Answer=answer' --roles bot=assistant"
    """
    return " ".join([f"--map {shlex.quote(f'{old}={new}')}" for old, new in renames.items()]
                    + [f"--roles {shlex.quote(f'{old}={new}')}" for old, new in roles.items()])
