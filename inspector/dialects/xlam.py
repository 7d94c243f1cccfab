"""Salesforce's xLAM / APIGen function-calling rows (xlam-function-calling-60k): `query` (the user's request),
`answers` (the calls that serve it) and `tools`, both JSON strings, the tools' parameters in a notation of their own:
`{"city": {"type": "str", "description": ..., "default": ...}}`."""

from __future__ import annotations

import re
from typing import Any

import orjson

from trlprep.inspector.dialects.columns import extra_columns
from trlprep.inspector.dialects.core import Dialect, Field, Shape, register
from trlprep.inspector.dialects.messages import assistant_message, user_message
from trlprep.inspector.toolcalls import named_call

# xLAM's type names (Python's, with typing's generics) and JSON Schema's; any other type (Any, Union[...],
# Callable, ...) is left unstated, the parameter's description kept.
XLAM_TYPES = {"str": "string", "string": "string", "int": "integer", "integer": "integer", "float": "number",
              "number": "number", "bool": "boolean", "boolean": "boolean", "list": "array", "tuple": "array",
              "set": "array", "array": "array", "dict": "object", "object": "object"}
PYTHON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "array": list, "object": dict}
GENERIC = re.compile(r"^(\w+)\s*(?:\[(.*)\])?$")


def parsed_list(value: Any) -> list | None:
    """A list, or a JSON string of one; None otherwise."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    return value if isinstance(value, list) else None


def xlam_calls(value: Any) -> list[dict] | None:
    """`answers` as `{name, arguments}` objects, or None when it is not a non-empty list of them.

    >>> xlam_calls('[{"name": "f", "arguments": {"x": 1}}]')
    [{'name': 'f', 'arguments': {'x': 1}}]
    """
    calls = parsed_list(value)
    if calls and all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in calls):
        return calls
    return None


def schema_type(notation: str) -> dict:
    """An xLAM type as a JSON Schema fragment: `List[int]` an array of integers, `Dict[str, Any]` an object, `Any`
    and other types nothing.

    >>> schema_type("List[int]"), schema_type("Dict[str, Any]"), schema_type("Union[int, str]")
    ({'type': 'array', 'items': {'type': 'integer'}}, {'type': 'object'}, {})
    """
    match = GENERIC.match(notation.strip())
    if match is None:
        return {}
    kind = XLAM_TYPES.get(match.group(1).lower())
    if kind is None:
        return {}
    out = {"type": kind}
    inner = match.group(2)
    if kind == "array" and inner and match.group(1).lower() == "list":
        items = schema_type(inner)
        if items:
            out["items"] = items
    return out


def xlam_parameters(parameters: Any) -> Any:
    """xLAM's parameters as a JSON Schema object. A parameter is required unless its type ends in ", optional" or
    it gives a default other than "" (which xLAM writes on required parameters too); the default is kept where it
    is of the parameter's type; a JSON Schema already is kept as it is.

    >>> xlam_parameters({"city": {"type": "str", "description": "A city"},
    ...                  "days": {"type": "int, optional", "default": ""}, "unit": {"type": "str", "default": "C"}})
    {'type': 'object', 'properties': {'city': {'type': 'string', 'description': 'A city'}, 'days': {'type': 'integer'}, 'unit': {'type': 'string', 'default': 'C'}}, 'required': ['city']}
    """
    if not isinstance(parameters, dict) or parameters.get("type") == "object" or not all(
            isinstance(spec, dict) for spec in parameters.values()):
        return parameters
    properties, required = {}, []
    for name, spec in parameters.items():
        notation = spec.get("type") if isinstance(spec.get("type"), str) else ""
        optional = notation.replace(" ", "").lower().endswith(",optional")
        prop = schema_type(notation.rsplit(",", 1)[0] if optional else notation)
        if isinstance(spec.get("description"), str):
            prop["description"] = spec["description"]
        default = spec.get("default")
        if "default" in spec and isinstance(default, PYTHON_TYPES.get(prop.get("type"), object)) and default != "":
            prop["default"] = default
        properties[name] = prop
        if not optional and spec.get("default", "") == "":
            required.append(name)
    return {"type": "object", "properties": properties, "required": required}


def xlam_tools(value: Any) -> Any:
    """xLAM's tools as function schemas with JSON Schema parameters."""
    tools = parsed_list(value)
    if tools is None:
        return value
    return [{"type": "function", "function": {**tool, "parameters": xlam_parameters(tool.get("parameters", {}))}}
            if isinstance(tool, dict) else tool for tool in tools]


class XLAM(Dialect):
    """Prompt and completion: the query as the user's turn, the answers as one assistant turn of calls. SFT learns
    the calls; GRPO prompts with the query and keeps the calls as the reference its rewards compare against."""

    name = "xlam"
    description = ("xLAM/APIGen function calling: `query` as the user turn, `answers` as the assistant's tool_calls, "
                   "`tools` as functions with their parameters in JSON Schema (str→string, int→integer, "
                   "float→number, bool→boolean, List[T]→array of T, Dict→object, other types unstated; required "
                   "unless \", optional\" or a non-empty default)")
    priority = 1510
    example = {"query": "Weather in Paris?", "answers": '[{"name": "get_weather", "arguments": {"city": "Paris"}}]',
               "tools": '[{"name": "get_weather", "description": "Current weather", "parameters": '
                        '{"city": {"type": "str", "description": "A city"}}}]'}

    def detect(self, row: dict) -> Shape | None:
        if isinstance(row.get("query"), str) and "answers" in row and "tools" in row:
            return Shape("xlam", "prompt_completion", "conversational", False, (
                Field("query", "text"), Field("answers", "calls"), Field("tools", "tools")))
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        calls = [named_call(c) for c in xlam_calls(row["answers"])]
        out = {"prompt": [user_message(row["query"])], "completion": [{**assistant_message(""), "tool_calls": calls}],
               **extra_columns(row, shape)}
        return {**out, "tools": xlam_tools(row["tools"])}  # the column's own `tools` is kept by extra_columns


register(XLAM())
