"""Which columns of a row hold what: the names datasets give prompts, answers and conversations, the columns that
only name a row, and the columns a shape does not read (kept beside its TRL type)."""

from __future__ import annotations

from typing import Any

from trlprep.inspector.dialects.core import Field, Shape
from trlprep.inspector.dialects.messages import message_style

CONVERSATION_COLUMNS = ("messages", "conversations", "conversation", "dialog", "dialogue", "chat", "turns")
LABEL_COLUMNS = ("label", "kto_tag")
PROMPT_COLUMNS = ("prompt", "instruction", "question", "query", "problem")
QUESTION_COLUMNS = ("question", "problem", "Question", "Problem")
# A worked solution is the completion; a short final `answer` beside it stays for GRPO's reward functions.
ANSWER_COLUMNS = ("solution", "chain", "answer", "Solution", "Answer", "Best Answer", "best_answer", "result")


def is_id_column(name: str) -> bool:
    """Whether a column names the row rather than holds its content: rows that differ only there repeat.

    >>> [is_id_column(n) for n in ("id", "prompt_id", "uuid", "idea", "text")]
    [True, True, True, False, False]
    """
    lower = name.lower()
    return lower in ("id", "_id", "uuid", "guid", "idx") or lower.endswith(("_id", "_uuid", "_idx"))


def without_ids(row: dict) -> dict:
    """The row's content: its columns but the id-like ones, by which repeats are told.

    >>> without_ids({"prompt_id": "p1", "text": "hi"})
    {'text': 'hi'}
    """
    return {key: value for key, value in row.items() if not (isinstance(key, str) and is_id_column(key))}


def first_present(row: dict, names: tuple[str, ...]) -> str | None:
    """The first of `names` that is a column of the row.

    >>> first_present({"query": "q", "question": "r"}, ("question", "query")), first_present({}, ("a",))
    ('question', None)
    """
    return next((name for name in names if name in row), None)


def find_conversation_column(row: dict, exclude: tuple[str, ...] = ()) -> str | None:
    """The column holding a list of messages: a usual name first, then any column whose value is one.

    >>> find_conversation_column({"id": 3, "dialog": [{"role": "user", "content": "hi"}]})
    'dialog'
    """
    for name in CONVERSATION_COLUMNS:
        if name in row and name not in exclude and isinstance(row[name], list):
            return name
    for name, value in row.items():
        if name not in exclude and message_style(value):
            return name
    return None


def format_of(*values: Any) -> str | None:
    """`conversational` if any value is a message list, `standard` if any is a string, else None.

    >>> format_of("Hi", [{"role": "user", "content": "Hi"}]), format_of("Hi"), format_of(3)
    ('conversational', 'standard', None)
    """
    kinds = set()
    for value in values:
        if isinstance(value, list) and (message_style(value) or not value):
            kinds.add("conversational")
        elif isinstance(value, str):
            kinds.add("standard")
    if "conversational" in kinds:
        return "conversational"
    return "standard" if kinds else None


def prompt_field(fmt: str) -> Field:
    """TRL's `prompt` column, a string in the standard format and messages in the conversational one."""
    return Field("prompt", "prompt" if fmt == "standard" else "messages")


def side_kind(fmt: str) -> str:
    """What a completion or a preference side holds in a format: messages or text."""
    return "messages" if fmt == "conversational" else "text"


def extra_columns(row: dict, shape: Shape) -> dict:
    """Columns the shape does not read; TRL passes them to GRPO reward functions and they are kept.

    >>> extra_columns({"text": "a", "source": "web"}, Shape("trl", "language_modeling", "standard", False,
    ...                                                     (Field("text", "text"),)))
    {'source': 'web'}
    """
    used = {f.name for f in shape.fields if f.kind not in ("tools", "images")}
    return {key: value for key, value in row.items() if key not in used}
