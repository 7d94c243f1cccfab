"""The parts every dialect shares: the shape a row is read as, the `Dialect` object, and the registry that asks
the dialects in priority order.

A *shape* names the dialect a row is written in (TRL's own columns, alpaca, ShareGPT, ...), the TRL type it
stands for, its format (standard strings or conversational message lists) and the fields it is read from.
Every function here is total: it never raises on a malformed row, it only declines to classify it.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from trlprep.inspector.toolcalls import canonical_tool_calls
from trlprep.inspector.trees import is_message_tree, is_tree_message
from trlprep.inspector.vision import holds_images, read_images, typed_turns


@dataclass(frozen=True)
class Field:
    """One column a shape reads. kinds: text, optional_text, prompt, messages, message, label, images, system (a
    string or text blocks), calls (a list of `{name, arguments}`, or its JSON),
    text_list, bool_list, history, scored_list, tools, openai_input (an object holding `messages` and perhaps
    `tools`), prompted_messages (messages that open with the row's prompt turn), turn_pairs (one
    `{"human", "assistant"}` object per exchange), message_turns (a list of turns, each a list of messages),
    answers (a text, or a list of sampled answers whose first is read), instance (one instance of a task: an object
    with `input` and `output`)."""

    name: str
    kind: str
    required: bool = True


@dataclass(frozen=True)
class Shape:
    dialect: str
    type: str
    format: str
    implicit_prompt: bool
    fields: tuple[Field, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def reads_images(self) -> bool:
        """Whether rows of the shape hold images (`inspector.vision`): read into TRL's vision shape."""
        return any(f.kind == "images" for f in self.fields)


@functools.cache
def with_images(shape: Shape) -> Shape:
    """The shape of an image row read as `shape` once its images are placed: an `images` column besides, optional
    so that rows with and without images share one shape (`shape_key`)."""
    return Shape(shape.dialect, shape.type, shape.format, shape.implicit_prompt,
                 shape.fields + (Field("images", "images", False),))


def shape_key(shape: Shape) -> tuple:
    """Shapes that differ only in optional columns are the same shape."""
    return shape.dialect, shape.type, shape.format, shape.implicit_prompt, tuple(
        f.name for f in shape.fields if f.required)


class Dialect:
    """One way datasets write rows: told from a row's values (`detect`) and read as its TRL type (`read`).

    Subclasses set:
    - `name`, the `Shape.dialect` of the shapes `detect` returns. A dialect whose shapes sit at several places in
      the priority order (TRL's own columns, ShareGPT's pairs and conversations) registers one object per place;
      objects of one name read alike (they share `read`).
    - `priority`: where `detect` is asked, lower first; the first shape found is the row's
      (the order is stated in `inspector.dialects`).
    - `description`: what reading it does, as verdicts and conversion plans say it.
    - `roles`: roles the dialect writes besides the chat roles, mapped when it is read (no `--roles` needed).
    - `example`: a row of the dialect, which it detects and reads (the tests do both).
    - `style`: how it writes messages, as the field checks read them: "role" (role/content), "from" (ShareGPT's
      from/value), or "either" (each column in the style its own messages are written in).
    """

    name: str = ""
    description: str = ""
    priority: int = 0
    roles: dict[str, str] = {}
    example: dict = {}
    style: str = "role"

    def detect(self, row: dict) -> Shape | None:
        """The row's shape when the row is written in this dialect (at this place in the order), else None."""
        raise NotImplementedError

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        """The row, of a shape `detect` returned, as its TRL type; `roles` maps further role names."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, priority={self.priority})"


# The registry: the dialects in priority order, the one that reads each dialect's shapes, and the roles each maps.
_DIALECTS: list[Dialect] = []
_READERS: dict[str, Dialect] = {}
# Roles a dialect is known to write besides the chat roles, mapped when it is read (no `--roles` needed).
DIALECT_ROLES: dict[str, dict[str, str]] = {}
# What reading each dialect does (`inspector.methods.DIALECTS`, in verdicts and conversion plans).
DIALECT_DESCRIPTIONS: dict[str, str] = {}
# How each dialect writes messages (`Dialect.style`), where it is not role/content.
DIALECT_STYLES: dict[str, str] = {}


def dialects() -> tuple[Dialect, ...]:
    """The registered dialects, in the order `classify_row` asks them."""
    return tuple(_DIALECTS)


def register(dialect: Dialect) -> Dialect:
    """Add a dialect at its priority; a dialect's module registers its objects when it is imported."""
    taken = next((d for d in _DIALECTS if d.priority == dialect.priority), None)
    if taken is not None:
        raise ValueError(f"priority {dialect.priority} is {taken.name}'s already: the order would be a guess")
    reader = _READERS.get(dialect.name)
    if reader is not None and type(reader).read is not type(dialect).read:
        raise ValueError(f"dialect {dialect.name} is read by {type(reader).__name__} already")
    _DIALECTS.append(dialect)
    _DIALECTS.sort(key=lambda d: d.priority)
    if reader is None:
        _name(dialect)
    return dialect


def unregister(dialect: Dialect) -> None:
    """Take a registered dialect out; its name stays read while another object of that name is registered."""
    _DIALECTS.remove(dialect)
    if _READERS.get(dialect.name) is dialect:
        del _READERS[dialect.name], DIALECT_DESCRIPTIONS[dialect.name]
        DIALECT_ROLES.pop(dialect.name, None)
        DIALECT_STYLES.pop(dialect.name, None)
        namesake = next((d for d in _DIALECTS if d.name == dialect.name), None)
        if namesake is not None:
            _name(namesake)


def _name(dialect: Dialect) -> None:
    """Make `dialect` the one its name is read by, described by and maps the roles of."""
    _READERS[dialect.name] = dialect
    DIALECT_DESCRIPTIONS[dialect.name] = dialect.description
    if dialect.roles:
        DIALECT_ROLES[dialect.name] = dialect.roles
    if dialect.style != "role":
        DIALECT_STYLES[dialect.name] = dialect.style


@contextmanager
def registered(dialect: Dialect) -> Iterator[Dialect]:
    """A dialect added at its priority for the duration of the block (for plug-ins and tests)."""
    register(dialect)
    try:
        yield dialect
    finally:
        unregister(dialect)


def classify_row(row: Any) -> Shape | None:
    """The shape of one row: the first that a registered dialect, asked in priority order, finds; None when it
    fits no known shape.

    >>> classify_row({"chosen": "A", "rejected": "B"}).implicit_prompt
    True
    >>> s = classify_row({"question": "1+1?", "answer": "2\\n#### 2"})
    >>> s.dialect, s.type
    ('question_answer', 'prompt_completion')
    """
    if not isinstance(row, dict) or unread_format(row):
        return None
    images = holds_images(row)
    if images:
        row = read_images(row).row
    for dialect in _DIALECTS:
        shape = dialect.detect(row)
        if shape is not None:
            return with_images(shape) if images else shape
    return None


def to_trl(row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
    """The row in the TRL type its shape stands for; columns the shape does not read are kept.

    Expects a row that passed the shape's field checks.

    >>> shape = classify_row({"instruction": "Add", "input": "2 and 2", "output": "4"})
    >>> to_trl({"instruction": "Add", "input": "2 and 2", "output": "4"}, shape)
    {'prompt': [{'role': 'user', 'content': 'Add\\n2 and 2'}], 'completion': [{'role': 'assistant', 'content': '4'}]}
    >>> shape = classify_row({"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]})
    >>> to_trl({"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]}, shape)
    {'messages': [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Yo'}]}
    """
    return read_trl(row, shape, roles)[0]


def read_trl(row: dict, shape: Shape, roles: dict[str, str] | None = None) -> tuple[dict, tuple[str, ...]]:
    """`to_trl`, and what putting the row's tool calls in the one form trlprep writes changed
    (`inspector.toolcalls`): what TRL would have read otherwise, when the row is in TRL's own columns."""
    if shape.reads_images:
        row = read_images(row).row
    read = _READERS[shape.dialect].read(row, shape, roles)
    return canonical_tool_calls(typed_turns(read) if shape.reads_images else read)


def unread_format(row: dict) -> str | None:
    """What a row is when it is a known format that no TRL type holds row by row, so that no row of it is read as
    something else (an OpenAssistant message's `text` is not a document); None for other rows.

    >>> unread_format({"message_id": "b", "parent_id": "a", "role": "assistant", "text": "Hi"})[:39]
    'an OpenAssistant conversation-tree mess'
    """
    if is_tree_message(row) or is_message_tree(row):
        kind = ("message (one message a row, linked by parent id)" if is_tree_message(row)
                else "written whole (one nested tree a row)")
        return (f"an OpenAssistant conversation-tree {kind} among rows of another kind: trees are read into prompts "
                "with their replies when a file's first row is one")
    steps = row.get("reasoning_steps")
    if isinstance(steps, list) and steps and isinstance(steps[0], dict) and "mc_value" in steps[0]:
        return ("MATH-APS Monte-Carlo values of solution prefixes (a search tree, not one labelled trajectory a row): "
                "TRL's stepwise supervision needs each row's steps labelled in order, and trlprep does not yet rebuild "
                "the trajectories and choose the threshold that makes a value a label")
    return None
