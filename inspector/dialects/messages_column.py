"""Plain conversations in a column other than TRL's `messages` (`conversations`, `dialog`, `chat`, ... or any
column holding a message list)."""

from __future__ import annotations

from trlprep.inspector.dialects.conversations import ConversationDialect
from trlprep.inspector.dialects.core import register


class MessagesColumn(ConversationDialect):
    """Language modeling, read as TRL's `messages`. Last of the conversation-column dialects, with TRL's own
    `messages`: any conversation left is one of the two."""

    name = "messages_column"
    description = "role/content messages under another column name, renamed to `messages`"
    priority = 1960
    example = {"dialog": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}

    def fits(self, row: dict, column: str, label: str | None) -> bool:
        return column != "messages"


register(MessagesColumn())
