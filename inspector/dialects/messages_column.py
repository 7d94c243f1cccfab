"""Plain conversations in a column other than TRL's `messages` (`conversations`, `dialog`, `chat`, ... or any
column holding a message list)."""

from __future__ import annotations

from trlprep.inspector.dialects.conversations import conversation_columns, conversation_shape, read_conversation
from trlprep.inspector.dialects.core import Dialect, Shape, register


class MessagesColumn(Dialect):
    """Language modeling, read as TRL's `messages`. Last of the conversation-column dialects, with TRL's own
    `messages`: any conversation left is one of the two."""

    name = "messages_column"
    description = "role/content messages under another column name, renamed to `messages`"
    priority = 1960
    example = {"dialog": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}

    def detect(self, row: dict) -> Shape | None:
        found = conversation_columns(row)
        if found is not None and found[0] != "messages":
            return conversation_shape(row, "messages_column", *found)
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        return read_conversation(row, shape, roles)


register(MessagesColumn())
