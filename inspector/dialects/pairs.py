"""Preference rows written as `chosen` and `rejected`: whichever dialect writes them, a row with both columns is
read as a preference pair (the dialects of the 600s in the priority order). Here: the pair whose sides are single
messages (ShareGPT's and others'), perhaps after a conversation column."""

from __future__ import annotations

from trlprep.inspector.dialects.columns import extra_columns, find_conversation_column
from trlprep.inspector.dialects.core import Field, Shape
from trlprep.inspector.dialects.messages import message_style, single_message_style, to_chat_message, to_messages


def has_pair(row: dict) -> bool:
    """Whether the row has both `chosen` and `rejected`.

    >>> has_pair({"chosen": "A", "rejected": "B"}), has_pair({"chosen": "A"})
    (True, False)
    """
    return "chosen" in row and "rejected" in row


def single_message_pair(row: dict) -> tuple[str, str | None] | None:
    """(message style, conversation column or None) of a pair whose sides are single messages, the style that of
    the conversation before them when there is one; None for other rows.

    >>> single_message_pair({"conversations": [{"from": "human", "value": "Hi"}],
    ...                      "chosen": {"from": "gpt", "value": "Hello"}, "rejected": {"from": "gpt", "value": "Go"}})
    ('from', 'conversations')
    >>> single_message_pair({"chosen": {"role": "assistant", "content": "A"}, "rejected": "B"})
    ('role', None)
    >>> single_message_pair({"chosen": "A", "rejected": "B"}) is None
    True
    """
    if not has_pair(row):
        return None
    style = single_message_style(row["chosen"]) or single_message_style(row["rejected"])
    if not style:
        return None
    conversation = find_conversation_column(row, exclude=("chosen", "rejected"))
    if conversation:
        style = message_style(row[conversation]) or style
    return style, conversation


def message_pair_shape(dialect: str, conversation: str | None) -> Shape:
    """The shape of a single-message pair, its prompt implicit unless a conversation column comes before it."""
    fields = (Field("chosen", "message"), Field("rejected", "message"))
    if conversation:
        fields = (Field(conversation, "messages"),) + fields
    return Shape(dialect, "preference", "conversational", conversation is None, fields)


def read_message_pair(row: dict, shape: Shape, roles: dict[str, str] | None) -> dict:
    """A single-message pair as preference: each side one message, after the conversation when there is one.

    >>> row = {"chosen": {"role": "assistant", "content": "A"}, "rejected": {"role": "assistant", "content": "B"}}
    >>> read_message_pair(row, message_pair_shape("message_pair", None), None)
    {'chosen': [{'role': 'assistant', 'content': 'A'}], 'rejected': [{'role': 'assistant', 'content': 'B'}]}
    """
    out = {"chosen": [to_chat_message(row["chosen"], roles)], "rejected": [to_chat_message(row["rejected"], roles)]}
    if not shape.implicit_prompt:
        out = {"prompt": to_messages(row[shape.columns[0]], roles), **out}
    return {**out, **extra_columns(row, shape)}
