"""Alpaca: `instruction`, an optional `input` and `output`; LLaMA-Factory adds `system` and `history` (earlier
exchanges, each an [instruction, answer] pair). An `output` may be a list of sampled answers: the first is read,
the others are counted as left out (TP216), so that an instruction is trained once whatever its samples; a list of
exactly two is refused (TP102), since LLaMA-Factory's old ranking format writes [chosen, rejected] so."""

from __future__ import annotations

from trlprep.inspector.dialects.core import Dialect, Field, Shape, register
from trlprep.inspector.dialects.prompts import instruction_row


class Alpaca(Dialect):
    """Conversational prompt-completion: system, history and the instruction with its input prompt the output.
    After the conversation-column dialects, since LLaMA-Factory's rows may hold messages too."""

    name = "alpaca"
    description = ("alpaca instruction/input/output (system and history kept) as conversational "
                   "prompt-completion")
    priority = 2000
    example = {"instruction": "Add the numbers.", "input": "2 and 2", "output": "4", "system": "Be brief."}

    def detect(self, row: dict) -> Shape | None:
        if "instruction" in row and "output" in row:
            fields = [Field("instruction", "text"), Field("input", "optional_text", False), Field("output", "answers")]
            fields += [Field(n, k, False) for n, k in (("system", "optional_text"), ("history", "history"))
                       if n in row]
            return Shape("alpaca", "prompt_completion", "conversational", False, tuple(fields))
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        return instruction_row(row, shape, "output")


register(Alpaca())
