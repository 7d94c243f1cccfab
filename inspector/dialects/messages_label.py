"""KTO rows written as one conversation and a label (`label` or `kto_tag`): the last message is the completion
the label judges."""

from __future__ import annotations

from trlprep.inspector.dialects.conversations import ConversationDialect
from trlprep.inspector.dialects.core import register


class MessagesLabel(ConversationDialect):
    """Unpaired preference: the messages before the last as prompt, the last as completion. A
    conversation-column dialect, after typed content."""

    name = "messages_label"
    description = "messages plus a boolean label: the last turn is the completion, the rest the prompt"
    priority = 1940
    example = {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
               "label": True}

    def fits(self, row: dict, column: str, label: str | None) -> bool:
        return bool(label)


register(MessagesLabel())
