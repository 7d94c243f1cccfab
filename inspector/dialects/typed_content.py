"""Conversations whose message content is a list of typed parts (`{"type": "text", "text": ...}`, reasoning
parts), in a conversation column, perhaps beside a KTO label."""

from __future__ import annotations

from trlprep.inspector.dialects.conversations import conversation_columns, conversation_shape, read_conversation
from trlprep.inspector.dialects.core import Dialect, Shape, register


def has_typed_content(messages: list) -> bool:
    """True when message content is a list of typed parts such as {"type": "text", "text": ...}.

    >>> has_typed_content([{"role": "user", "content": [{"type": "text", "value": "hi"}]}])
    True
    >>> has_typed_content([{"role": "user", "content": "hi"}])
    False
    """
    return any(isinstance(m, dict) and isinstance(m.get("content"), list) for m in messages)


class TypedContent(Dialect):
    """Text parts joined into the content, reasoning parts moved to `reasoning_content`. A conversation-column
    dialect, after the turn flags."""

    name = "typed_content"
    description = "messages whose content is a list of typed text parts, joined into strings"
    priority = 1930
    example = {"messages": [{"role": "user", "content": [{"type": "text", "text": "2+2?"}]},
                            {"role": "assistant", "content": [{"type": "reasoning", "value": "2+2 is 4"},
                                                              {"type": "text", "value": "4"}]}]}

    def detect(self, row: dict) -> Shape | None:
        found = conversation_columns(row)
        if found is not None and isinstance(row[found[0]], list) and has_typed_content(row[found[0]]):
            return conversation_shape(row, "typed_content", *found)
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        return read_conversation(row, shape, roles)


register(TypedContent())
