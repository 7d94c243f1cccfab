"""Conversations whose message content is a list of typed parts (`{"type": "text", "text": ...}`, reasoning and
tool-call parts), in a conversation column, perhaps beside a KTO label."""

from __future__ import annotations

from trlprep.inspector.dialects.conversations import ConversationDialect
from trlprep.inspector.dialects.core import register


def has_typed_content(messages: list) -> bool:
    """True when message content is a list of typed parts such as {"type": "text", "text": ...}.

    >>> has_typed_content([{"role": "user", "content": [{"type": "text", "value": "hi"}]}])
    True
    >>> has_typed_content([{"role": "user", "content": "hi"}])
    False
    """
    return any(isinstance(m, dict) and isinstance(m.get("content"), list) for m in messages)


class TypedContent(ConversationDialect):
    """Text parts joined into the content, reasoning parts moved to `reasoning_content`, tool-call parts to
    `tool_calls` (`dialects.messages.split_parts`). A conversation-column dialect, after the turn flags."""

    name = "typed_content"
    description = ("messages whose content is a list of typed parts: text joined into strings, reasoning into "
                   "`reasoning_content`, tool calls into `tool_calls`")
    priority = 1930
    example = {"messages": [{"role": "user", "content": [{"type": "text", "text": "2+2?"}]},
                            {"role": "assistant", "content": [{"type": "reasoning", "value": "2+2 is 4"},
                                                              {"type": "text", "value": "4"}]}]}

    def fits(self, row: dict, column: str, label: str | None) -> bool:
        return isinstance(row[column], list) and has_typed_content(row[column])


register(TypedContent())
