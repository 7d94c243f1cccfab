"""KTO rows written as one conversation and a label (`label` or `kto_tag`): the last message is the completion
the label judges."""

from __future__ import annotations

from trlprep.inspector.dialects.conversations import conversation_columns, conversation_shape, read_conversation
from trlprep.inspector.dialects.core import Dialect, Shape, register


class MessagesLabel(Dialect):
    """Unpaired preference: the messages before the last as prompt, the last as completion. A
    conversation-column dialect, after typed content."""

    name = "messages_label"
    description = "messages plus a boolean label: the last turn is the completion, the rest the prompt"
    priority = 1940
    example = {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
               "label": True}

    def detect(self, row: dict) -> Shape | None:
        found = conversation_columns(row)
        if found is not None and found[1]:
            return conversation_shape(row, "messages_label", *found)
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        return read_conversation(row, shape, roles)


register(MessagesLabel())
