"""MT-Bench's questions: `turns`, the user's turns as strings."""

from __future__ import annotations

from trlprep.inspector.dialects.columns import extra_columns
from trlprep.inspector.dialects.core import Dialect, Field, Shape, register
from trlprep.inspector.dialects.messages import user_message


class MTBench(Dialect):
    """Prompt-only: a later turn follows the model's answer to the one before, so only the first prompts; the
    turns are kept."""

    name = "mt_bench"
    description = "MT-Bench style `turns` (user questions in order): the first as the prompt, the others kept"
    priority = 1600
    example = {"turns": ["Write a haiku.", "Now make it rhyme."], "category": "writing"}

    def detect(self, row: dict) -> Shape | None:
        turns = row.get("turns")
        if isinstance(turns, list) and turns and all(isinstance(turn, str) for turn in turns):
            return Shape("mt_bench", "prompt_only", "conversational", False, (Field("turns", "text_list"),))
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        return {"prompt": [user_message(row["turns"][0])], "turns": row["turns"], **extra_columns(row, shape)}


register(MTBench())
