"""Rows whose messages sit in one conversation column (`messages`, `conversations`, ... or any column holding a
message list), perhaps beside a KTO label and tools: the dialects told apart among them share how the column is
found and how the row is read."""

from __future__ import annotations

import functools
from typing import Any

from trlprep.inspector.dialects.columns import LABEL_COLUMNS, extra_columns, find_conversation_column, first_present
from trlprep.inspector.dialects.core import Dialect, Field, Shape
from trlprep.inspector.dialects.messages import to_messages


def conversation_columns(row: dict) -> tuple[str, str | None] | None:
    """(conversation column, label column or None) of a row held in a conversation column; None for other rows.

    >>> conversation_columns({"conversations": [{"from": "human", "value": "Hi"}], "kto_tag": True})
    ('conversations', 'kto_tag')
    >>> conversation_columns({"text": "Hi"}) is None
    True
    """
    column = find_conversation_column(row)
    if column is None:
        return None
    return column, first_present(row, LABEL_COLUMNS)


def conversation_shape(row: dict, dialect: str, column: str, label: str | None, kind: str | None = None) -> Shape:
    """The shape of a conversation-column row: language modeling, or unpaired preference with a label, unless
    `kind` says otherwise; `tools` is read too when the row has them.

    >>> conversation_shape({"chat": []}, "messages_column", "chat", None)
    Shape(dialect='messages_column', type='language_modeling', format='conversational', implicit_prompt=False, fields=(Field(name='chat', kind='messages', required=True),))
    """
    return _conversation_shape(dialect, column, label, "tools" in row, kind)


@functools.cache  # rows ask for a handful of shapes, millions of times
def _conversation_shape(dialect: str, column: str, label: str | None, tools: bool, kind: str | None) -> Shape:
    fields = [Field(column, "messages")]
    if label:
        fields.append(Field(label, "label"))
    if tools:
        fields.append(Field("tools", "tools", False))
    kind = kind or ("unpaired_preference" if label else "language_modeling")
    return Shape(dialect, kind, "conversational", False, tuple(fields))


@functools.cache
def with_system(shape: Shape) -> Shape:
    """The shape of a conversation row with a `system` column beside its messages (ShareGPT's in LLaMA-Factory,
    Anthropic's top-level one): read into the first message, since TRL reads no such column and would drop it."""
    return Shape(shape.dialect, shape.type, shape.format, shape.implicit_prompt,
                 shape.fields + (Field("system", "system", False),))


def blocks_text(value: Any) -> str:
    """A `system` column or a tool result as text: a string, or its text blocks joined (Anthropic's form).

    >>> blocks_text([{"type": "text", "text": "Be "}, {"type": "text", "text": "brief."}]), blocks_text(None)
    ('Be brief.', '')
    """
    if isinstance(value, list):
        return "".join(b.get("text", "") for b in value if isinstance(b, dict) and b.get("type") == "text")
    return value if isinstance(value, str) else ""


def read_conversation(row: dict, shape: Shape, roles: dict[str, str] | None, extras: dict | None = None) -> dict:
    """A conversation-column row as its TRL type: the messages, the prompt (a prompt set), or the prompt and the
    last message as completion beside the label; `extras` are the kept columns when the dialect has read them.

    >>> shape = conversation_shape({}, "messages_label", "dialog", "label")
    >>> read_conversation({"dialog": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}],
    ...                    "label": False}, shape, None)
    {'prompt': [{'role': 'user', 'content': 'Hi'}], 'completion': [{'role': 'assistant', 'content': 'Yo'}], 'label': False}

    A `system` column the shape reads (`with_system`) becomes the first message.
    """
    names = shape.columns
    extras = extra_columns(row, shape) if extras is None else extras
    messages = to_messages(row[names[0]], roles)
    system = blocks_text(row.get("system")) if "system" in names else ""
    if system:
        messages = [{"role": "system", "content": system}] + messages
    if shape.type == "unpaired_preference":
        return {"prompt": messages[:-1], "completion": messages[-1:], "label": row[names[1]], **extras}
    if shape.type == "prompt_only":
        return {"prompt": messages, **extras}
    return {"messages": messages, **extras}


class ConversationDialect(Dialect):
    """A dialect of rows held in one conversation column (`conversation_columns`), read by `read_conversation`:
    `fits(row, column, label)` says which of those rows it takes, `kind` their type when not language modeling or,
    with a label, unpaired preference."""

    kind: str | None = None

    def fits(self, row: dict, column: str, label: str | None) -> bool:
        raise NotImplementedError

    def detect(self, row: dict) -> Shape | None:
        found = conversation_columns(row)
        if found is not None and self.fits(row, *found):
            return conversation_shape(row, self.name, *found, kind=self.kind)
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        return read_conversation(row, shape, roles)
