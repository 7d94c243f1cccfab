"""OpenAI's preference fine-tuning format: `input` (the request: `messages` and perhaps `tools`),
`preferred_output` and `non_preferred_output` (message lists)."""

from __future__ import annotations

from trlprep.inspector.dialects.columns import extra_columns
from trlprep.inspector.dialects.core import Dialect, Field, Shape, register
from trlprep.inspector.dialects.messages import to_messages


class OpenAIPreference(Dialect):
    """Preference with an explicit prompt: the request's messages; its tools are kept as `tools`."""

    name = "openai_preference"
    description = ("OpenAI's preference format: `input.messages` as the prompt (its `tools` kept), "
                   "preferred_output/non_preferred_output as chosen/rejected")
    priority = 200
    example = {"input": {"messages": [{"role": "user", "content": "2+2?"}]},
               "preferred_output": [{"role": "assistant", "content": "4"}],
               "non_preferred_output": [{"role": "assistant", "content": "5"}]}

    def detect(self, row: dict) -> Shape | None:
        if "preferred_output" in row and "non_preferred_output" in row:
            return Shape("openai_preference", "preference", "conversational", False, (
                Field("input", "openai_input"), Field("preferred_output", "messages"),
                Field("non_preferred_output", "messages")))
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        request = row["input"]
        out = {"prompt": to_messages(request["messages"], roles),
               "chosen": to_messages(row["preferred_output"], roles),
               "rejected": to_messages(row["non_preferred_output"], roles)}
        if request.get("tools"):
            out["tools"] = request["tools"]
        return {**out, **extra_columns(row, shape)}


register(OpenAIPreference())
