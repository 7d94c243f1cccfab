"""The Berkeley Function-Calling Leaderboard's rows: `question` (a list of turns, each a list of messages) and
`function` (the function descriptions, their parameters in Python's type names)."""

from __future__ import annotations

from typing import Any

from trlprep.inspector.dialects.columns import extra_columns
from trlprep.inspector.dialects.core import Dialect, Field, Shape, register
from trlprep.inspector.dialects.messages import message_style, to_messages

# BFCL writes function parameters in Python's type names; JSON Schema (and chat templates) want its own.
BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array", "list": "array", "int": "integer",
              "str": "string", "bool": "boolean"}


def bfcl_tools(functions: list) -> list[dict]:
    """BFCL function descriptions as OpenAI tool schemas, Python type names made JSON Schema's ("any" dropped).

    >>> bfcl_tools([{"name": "f", "parameters": {"type": "dict", "properties": {"x": {"type": "float"}}}}])
    [{'type': 'function', 'function': {'name': 'f', 'parameters': {'type': 'object', 'properties': {'x': {'type': 'number'}}}}}]
    """
    def schema(value: Any) -> Any:
        if isinstance(value, dict):
            out = {key: schema(item) for key, item in value.items() if not (key == "type" and item == "any")}
            if isinstance(out.get("type"), str):
                out["type"] = BFCL_TYPES.get(out["type"], out["type"])
            return out
        return [schema(item) for item in value] if isinstance(value, list) else value

    return [{"type": "function", "function": schema(function)} for function in functions]


def message_turns(value: Any) -> bool:
    """A list of turns, each a list of messages (BFCL's `question`)."""
    return isinstance(value, list) and bool(value) and all(isinstance(turn, list) for turn in value) \
        and message_style(value[0]) == "role"


class BFCL(Dialect):
    """Prompt-only with tools: later turns answer what the model did with the first, so only the first prompts."""

    name = "bfcl"
    description = ("BFCL function-calling questions: the first turn's messages as the prompt, `function` as "
                   "OpenAI tool schemas (Python type names made JSON Schema's)")
    priority = 1500
    example = {"question": [[{"role": "user", "content": "Weather in Paris?"}]],
               "function": [{"name": "weather", "parameters": {"type": "dict", "properties": {
                   "city": {"type": "str"}}}}]}

    def detect(self, row: dict) -> Shape | None:
        if message_turns(row.get("question")) and isinstance(row.get("function"), list):
            return Shape("bfcl", "prompt_only", "conversational", False, (
                Field("question", "message_turns"), Field("function", "tools")))
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        extras = extra_columns(row, shape)
        return {"prompt": to_messages(row["question"][0], roles), "tools": bfcl_tools(row["function"]),
                **{k: v for k, v in extras.items() if k != "function"}}


register(BFCL())
