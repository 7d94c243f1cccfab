"""Stack Exchange preference pairs (StackLLaMA's): a question, and two answers `response_j` (the better) and
`response_k`."""

from __future__ import annotations

from trlprep.inspector.dialects.columns import PROMPT_COLUMNS, extra_columns, first_present
from trlprep.inspector.dialects.core import Dialect, Field, Shape, register
from trlprep.inspector.dialects.messages import assistant_message, user_message


class PairedResponses(Dialect):
    """Preference: the question as the user's turn, `response_j` chosen over `response_k`."""

    name = "paired_responses"
    description = "response_j (preferred) / response_k as chosen/rejected"
    priority = 800
    example = {"question": "How do I sort a list?", "response_j": "Use sorted().", "response_k": "You can't."}

    def detect(self, row: dict) -> Shape | None:
        if "response_j" in row and "response_k" in row:
            prompt = first_present(row, PROMPT_COLUMNS) or "question"
            return Shape("paired_responses", "preference", "conversational", False, (
                Field(prompt, "text"), Field("response_j", "text"), Field("response_k", "text")))
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        return {"prompt": [user_message(row[shape.columns[0]])], "chosen": [assistant_message(row["response_j"])],
                "rejected": [assistant_message(row["response_k"])], **extra_columns(row, shape)}


register(PairedResponses())
