"""Questions and answers (GSM8K's `question` and `answer`, a worked solution ending in `#### <final answer>`;
`problem` and `solution`, ...)."""

from __future__ import annotations

import re
from typing import Any

from trlprep.inspector.dialects.columns import ANSWER_COLUMNS, QUESTION_COLUMNS, extra_columns, first_present
from trlprep.inspector.dialects.core import Dialect, Field, Shape, register
from trlprep.inspector.dialects.messages import assistant_message, user_message
from trlprep.inspector.dialects.prompts import instruction_query

# The passage a reading-comprehension question is asked about (SQuAD's `context`): the prompt, before the question.
PASSAGE_COLUMNS = ("context", "passage")
# A short final answer beside a worked solution or chain of reasoning, under another name than `answer`.
FINAL_ANSWER_COLUMNS = ("result", "final_answer")
FINAL_ANSWER = re.compile(r"####\s*(.+?)\s*$")


def final_answer(text: Any) -> str | None:
    """The final answer after a GSM8K-style `####` marker, or None.

    >>> final_answer("She makes 9 * 2 = $18 a day.\\n#### 18")
    '18'
    >>> final_answer("no marker") is None
    True
    """
    if not isinstance(text, str):
        return None
    match = FINAL_ANSWER.search(text)
    return match.group(1) if match else None


class QuestionAnswer(Dialect):
    """Conversational prompt-completion: the question (after its passage, when it has one) as the user's turn, the
    answer as the assistant's; a short final answer beside a worked one is kept as `answer`, the name GRPO's reward
    functions read.

    >>> from trlprep.inspector.dialects import classify_row, to_trl
    >>> row = {"context": "Paris is in France.", "question": "Where is Paris?", "answer": "France"}
    >>> to_trl(row, classify_row(row))["prompt"]
    [{'role': 'user', 'content': 'Paris is in France.\\nWhere is Paris?'}]
    """

    name = "question_answer"
    description = ("question/answer (or problem/solution, question/chain, a short `answer` or `result` beside it "
                   "kept for rewards as `answer`; a `context` or `passage` beside the question goes before it in "
                   "the prompt) as conversational prompt-completion")
    priority = 2400
    example = {"question": "Tom has 2 apples and buys 2. How many?", "answer": "2 + 2 = 4\n#### 4"}

    def detect(self, row: dict) -> Shape | None:
        question, answer = first_present(row, QUESTION_COLUMNS), first_present(row, ANSWER_COLUMNS)
        if question and answer:
            passage = [Field(name, "optional_text", False) for name in PASSAGE_COLUMNS if name in row][:1]
            return Shape("question_answer", "prompt_completion", "conversational", False, (
                Field(question, "text"), Field(answer, "text"), *passage))
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        extras = extra_columns(row, shape)
        short = first_present(extras, FINAL_ANSWER_COLUMNS)
        if short and "answer" not in extras:  # what GRPO reward functions compare with, under the name they read
            extras["answer"] = extras.pop(short)
        question, answer, *passage = shape.columns
        prompt = instruction_query(*(row.get(name) for name in passage), row[question])
        return {"prompt": [user_message(prompt)], "completion": [assistant_message(row[answer])], **extras}


register(QuestionAnswer())
