"""The rows the catalog's examples are built from: each rule's `Example` shows a clean row and the row it flags,
`inspect --explain` prints them and the test suite runs every one."""

from __future__ import annotations

from typing import Any

from trlprep.inspector.rules.catalog import Example

USER = {"role": "user", "content": "What is 2+2?"}
ASSISTANT = {"role": "assistant", "content": "4"}
CHAT = {"messages": [USER, ASSISTANT]}
PAIR = {"prompt": "2+2?", "chosen": "4", "rejected": "5"}
TREE_QUESTION = ("q", None, "prompter", "What is 2+2?", None)
# An 8x8 red PNG, base64: an image examples can hold inline that every check reads.
TINY_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEklEQVR4nGP8z4AdMOEQH6QSAM1BAQ/oQeJvAAAAAElFTkSuQmCC"


def chat(*messages) -> dict:
    return {"messages": list(messages)}


def flagged(*rows, at: tuple[int, ...] | None = None) -> Example:
    """An example whose last row is the one flagged, unless `at` says otherwise."""
    return Example(tuple(rows), (len(rows),) if at is None else at)


def tree(*messages: tuple) -> tuple[dict, ...]:
    """OpenAssistant message rows: (id, parent id, role, text, rank, and any other keys)."""
    return tuple({"message_id": m[0], "parent_id": m[1], "role": m[2], "text": m[3], "rank": m[4],
                  **(m[5] if len(m) > 5 else {})} for m in messages)


def tool_row(name: str, arguments: Any) -> dict:
    """A conversation calling `name` with `arguments`, answered, where `tools` declares `add(a: integer)`."""
    return {"messages": [USER, {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": name, "arguments": arguments}}]},
        {"role": "tool", "name": name, "content": "2"}, {"role": "assistant", "content": "It is 2."}],
        "tools": [{"type": "function", "function": {"name": "add", "parameters": {
            "type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}}]}
