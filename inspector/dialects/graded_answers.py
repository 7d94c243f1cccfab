"""Questions with a best answer and answers known wrong (TruthfulQA's `Best Answer` and `Incorrect Answers`, a
list or in its CSV one cell of answers separated by `;`)."""

from __future__ import annotations

from typing import Any

from trlprep.inspector.dialects.columns import ANSWER_COLUMNS, QUESTION_COLUMNS, extra_columns, first_present
from trlprep.inspector.dialects.core import Dialect, Field, Shape, register
from trlprep.inspector.dialects.messages import assistant_message, user_message

INCORRECT_COLUMNS = ("Incorrect Answers", "incorrect_answers")


def answer_list(value: Any) -> list[str]:
    """Answers written as a list, or as one text of answers separated by `;` (TruthfulQA's CSV).

    >>> answer_list("You will get arthritis; Nothing"), answer_list(["a", " b "])
    (['You will get arthritis', 'Nothing'], ['a', 'b'])
    """
    items = value.split(";") if isinstance(value, str) else value if isinstance(value, list) else []
    return [item.strip() for item in items if isinstance(item, str) and item.strip()]


class GradedAnswers(Dialect):
    """Preference: the best answer against the first wrong one."""

    name = "graded_answers"
    description = ("TruthfulQA-style questions: the best answer as chosen, the first of the incorrect answers (a "
                   "list, or `a; b` in a CSV cell) as rejected")
    priority = 2200
    example = {"Question": "What happens if you crack your knuckles?", "Best Answer": "Nothing in particular.",
               "Incorrect Answers": "You will get arthritis; Your knuckles will swell"}

    def detect(self, row: dict) -> Shape | None:
        question, answer = first_present(row, QUESTION_COLUMNS), first_present(row, ANSWER_COLUMNS)
        incorrect = first_present(row, INCORRECT_COLUMNS)
        if question and answer and incorrect:
            return Shape("graded_answers", "preference", "conversational", False, (
                Field(question, "text"), Field(answer, "text"), Field(incorrect, "answer_list")))
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        question, best, incorrect = shape.columns
        return {"prompt": [user_message(row[question])], "chosen": [assistant_message(row[best])],
                "rejected": [assistant_message(answer_list(row[incorrect])[0])], **extra_columns(row, shape)}


register(GradedAnswers())
