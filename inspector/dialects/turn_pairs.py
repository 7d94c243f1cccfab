"""Conversations written as one `{"human": ..., "assistant": ...}` object per exchange, in a conversation
column."""

from __future__ import annotations

from typing import Any

from trlprep.inspector.dialects.columns import CONVERSATION_COLUMNS, extra_columns
from trlprep.inspector.dialects.core import Dialect, Field, Shape, register
from trlprep.inspector.dialects.messages import assistant_message, user_message


def turn_pairs(value: Any) -> bool:
    """Whether a conversation is written as one `{"human": ..., "assistant": ...}` object per exchange.

    >>> turn_pairs([{"human": "Hi", "assistant": "Hello"}]), turn_pairs([{"role": "user", "content": "Hi"}])
    (True, False)
    """
    return isinstance(value, list) and bool(value) and all(
        isinstance(pair, dict) and "human" in pair and "assistant" in pair for pair in value)


class TurnPairs(Dialect):
    """Language modeling: each exchange a user and an assistant message."""

    name = "turn_pairs"
    description = "a conversation of {human, assistant} exchanges as messages"
    priority = 1700
    example = {"conversation": [{"human": "Hi", "assistant": "Hello"}, {"human": "2+2?", "assistant": "4"}]}

    def detect(self, row: dict) -> Shape | None:
        pairs = next((name for name in CONVERSATION_COLUMNS if name in row and turn_pairs(row[name])), None)
        if pairs:
            return Shape("turn_pairs", "language_modeling", "conversational", False, (Field(pairs, "turn_pairs"),))
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        messages = []
        for pair in row[shape.columns[0]]:
            messages += [user_message(pair["human"]), assistant_message(pair["assistant"])]
        return {"messages": messages, **extra_columns(row, shape)}


register(TurnPairs())
