"""Multiple-choice questions: a question, its options (`choices` or `options`: a list, ARC's `{"text", "label"}`,
or MMLU's Python list written in a CSV cell) and the answer (an index, a letter or the option's text)."""

from __future__ import annotations

import ast
import functools
from typing import Any

from trlprep.inspector.dialects.columns import QUESTION_COLUMNS, extra_columns, first_present
from trlprep.inspector.dialects.core import Dialect, Field, Shape, register
from trlprep.inspector.dialects.messages import assistant_message, user_message

CHOICE_COLUMNS = ("choices", "options")
CHOICE_ANSWER_COLUMNS = ("answer", "answerKey", "label", "target")


@functools.lru_cache(maxsize=256)
def _literal(text: str) -> Any:
    """A Python literal written as text, or None: literals only, a cell is never executed. Cached, because a
    row's options are read when it is classified, checked and converted."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return tuple(value) if isinstance(value, list) else value  # immutable, since the cache shares it


def choice_texts(value: Any) -> list[str] | None:
    """The options of a multiple-choice question: a list of strings, ARC's `{"text": [...], "label": [...]}`, or
    either written as text (a CSV cell holds MMLU's `['a', 'b']` Python list); None for anything else.

    >>> choice_texts("['h <= log2(N)', 'h > c log2(N)']")
    ['h <= log2(N)', 'h > c log2(N)']
    >>> choice_texts({"text": ["dry", "wet"], "label": ["A", "B"]}), choice_texts("a; b")
    (['dry', 'wet'], None)
    """
    if isinstance(value, str) and value[:1] in "[{":
        value = _literal(value)
    if isinstance(value, dict):
        value = value.get("text")
    if isinstance(value, (list, tuple)) and len(value) >= 2 and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def choice_letter(index: int) -> str:
    """The letter an option is shown with.

    >>> choice_letter(0), choice_letter(2)
    ('A', 'C')
    """
    return chr(ord("A") + index)


def choice_index(answer: Any, choices: list[str]) -> int | None:
    """Which option the answer names: an index (0-based, as MMLU writes it, also as text), a letter (`C`, ARC's
    `answerKey`) or the option's own text; None when it names none, or two different ones (a CSV's `"2"` among
    the options `1 2 3 4` is option C by index and option B by text: guessing would train a wrong answer).

    >>> choice_index(2, ["a", "b", "c"]), choice_index("2", ["a", "b", "c"]), choice_index("B", ["a", "b"])
    (2, 2, 1)
    >>> choice_index("b", ["a", "b"]), choice_index(4, ["a", "b"]), choice_index(True, ["a", "b"])
    (1, None, None)
    >>> choice_index("2", ["1", "2", "3", "4"]), choice_index(2, ["1", "2", "3", "4"])
    (None, 2)
    """
    if isinstance(answer, bool):
        return None
    if not isinstance(answer, str):
        return answer if isinstance(answer, int) and 0 <= answer < len(choices) else None
    answer = answer.strip()
    readings = set()
    if answer in choices:
        readings.add(choices.index(answer))
    if len(answer) == 1 and "A" <= answer <= choice_letter(len(choices) - 1):
        readings.add(ord(answer) - ord("A"))
    if answer.isdigit() and int(answer) < len(choices):
        readings.add(int(answer))
    return readings.pop() if len(readings) == 1 else None


def multiple_choice_prompt(question: str, choices: list[str]) -> str:
    """The question with its options lettered, the way MMLU-style evaluations show them.

    >>> multiple_choice_prompt("2+2?", ["3", "4"])
    '2+2?\\n\\nA. 3\\nB. 4'
    """
    return question + "\n\n" + "\n".join(f"{choice_letter(i)}. {choice}" for i, choice in enumerate(choices))


class MultipleChoice(Dialect):
    """Conversational prompt-completion: the question with its options lettered prompts the answer's letter
    and text; the letter is kept as `answer` for GRPO's reward functions."""

    name = "multiple_choice"
    description = ("multiple-choice questions (`choices` a list, or MMLU's list written in a CSV cell; `answer` "
                   "an index, a letter or the option) as a prompt with lettered options and the letter and text "
                   "of the right one as the completion; the letter kept in `answer` for rewards")
    priority = 2300
    example = {"question": "2+2?", "choices": ["3", "4", "5"], "answer": 1}

    def detect(self, row: dict) -> Shape | None:
        question = first_present(row, QUESTION_COLUMNS)
        choices, answer = first_present(row, CHOICE_COLUMNS), first_present(row, CHOICE_ANSWER_COLUMNS)
        if question and choices and answer and choice_texts(row[choices]) is not None:
            return Shape("multiple_choice", "prompt_completion", "conversational", False, (
                Field(question, "text"), Field(choices, "choices"), Field(answer, "choice_answer")))
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        question, choices, answer = shape.columns
        options = choice_texts(row[choices])
        index = choice_index(row[answer], options)
        return {"prompt": [user_message(multiple_choice_prompt(row[question], options))],
                "completion": [assistant_message(f"{choice_letter(index)}. {options[index]}")],
                "answer": choice_letter(index), **extra_columns(row, shape)}


register(MultipleChoice())
