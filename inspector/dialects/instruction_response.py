"""Instruction tuning written as an `instruction` (or `query`, `question`) and a `response`, perhaps with an
`input` or `context` (Dolly's) and a `system` message."""

from __future__ import annotations

from trlprep.inspector.dialects.columns import first_present
from trlprep.inspector.dialects.core import Dialect, Field, Shape, register
from trlprep.inspector.dialects.prompts import instruction_row


class InstructionResponse(Dialect):
    """Conversational prompt-completion: the instruction with its input or context prompts the response."""

    name = "instruction_response"
    description = "instruction/response as conversational prompt-completion"
    priority = 2100
    example = {"instruction": "Who wrote Hamlet?", "context": "", "response": "Shakespeare."}

    def detect(self, row: dict) -> Shape | None:
        prompt = first_present(row, ("instruction", "query", "question"))
        if prompt and "response" in row:
            fields = [Field(prompt, "text"), Field("response", "text")]
            fields += [Field(n, "optional_text", False) for n in ("input", "context", "system") if n in row]
            return Shape("instruction_response", "prompt_completion", "conversational", False, tuple(fields))
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        return instruction_row(row, shape, "response")


register(InstructionResponse())
