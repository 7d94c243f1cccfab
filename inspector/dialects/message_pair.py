"""Preference pairs whose `chosen` and `rejected` are single `role`/`content` messages, after a conversation
column (the prompt) or alone (the prompt implicit)."""

from __future__ import annotations

from trlprep.inspector.dialects.core import Dialect, Shape, register
from trlprep.inspector.dialects.pairs import message_pair_shape, read_message_pair, single_message_pair


class MessagePair(Dialect):
    """Preference: each side one message, after the conversation when there is one."""

    name = "message_pair"
    description = "chosen/rejected single messages after a shared conversation"
    priority = 610
    example = {"messages": [{"role": "user", "content": "2+2?"}],
               "chosen": {"role": "assistant", "content": "4"}, "rejected": {"role": "assistant", "content": "5"}}

    def detect(self, row: dict) -> Shape | None:
        pair = single_message_pair(row)
        if pair is not None and pair[0] != "from":
            return message_pair_shape("message_pair", pair[1])
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        return read_message_pair(row, shape, roles)


register(MessagePair())
