"""JSON Schemas (draft 2020-12) of TRL's dataset types, built here and published under `schemas/`.

They say what the structural rules say (TP101-TP111, TP201, TP302); turn order, duplicates and other
dataset-level checks are beyond JSON Schema. A test runs both over a generated corpus and compares verdicts.

    python -m trlprep.inspector.schemas schemas/      # rewrite the published files

>>> sorted(type_schemas())[:3]
['language_modeling.conversational', 'language_modeling.standard', 'message']
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from trlprep.inspector.dialects import CHAT_ROLES
from trlprep.files import write_atomically

BASE_URL = "https://github.com/trlprep/trlprep/schemas/"
NON_BLANK = {"type": "string", "pattern": "\\S"}
TYPED_PART = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"type": "string"}},
    "if": {"properties": {"type": {"const": "text"}}},
    "then": {"anyOf": [
        {"required": ["text"], "properties": {"text": NON_BLANK}},
        {"required": ["value"], "not": {"required": ["text"]}, "properties": {"value": NON_BLANK}},
    ]},
}
MESSAGE = {
    "type": "object",
    "description": "A chat message: a role and its content (a non-blank string or typed parts), "
                   "or an assistant message carrying tool_calls.",
    "required": ["role"],
    "properties": {
        "role": {"enum": sorted(CHAT_ROLES)},
        "content": {"anyOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": TYPED_PART},
                              {"type": "null"}]},
        "tool_calls": {"type": "array"},
    },
    "anyOf": [
        {"required": ["content"], "properties": {"content": {"anyOf": [
            NON_BLANK, {"type": "array", "minItems": 1, "items": TYPED_PART}]}}},
        {"required": ["tool_calls"], "properties": {"tool_calls": {"type": "array", "minItems": 1}}},
    ],
}
MESSAGES = {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/message"}}

# (type, format) -> (required fields, optional fields); "text", "messages", "label", ... name $defs.
LAYOUTS = {
    ("language_modeling", "standard"): ({"text": "text"}, {}),
    ("language_modeling", "conversational"): ({"messages": "messages"}, {}),
    ("prompt_only", "standard"): ({"prompt": "text"}, {}),
    ("prompt_only", "conversational"): ({"prompt": "messages"}, {}),
    ("prompt_completion", "standard"): ({"prompt": "text", "completion": "text"}, {}),
    ("prompt_completion", "conversational"): ({"prompt": "messages", "completion": "messages"}, {}),
    ("preference", "standard"): ({"chosen": "text", "rejected": "text"}, {"prompt": "text"}),
    ("preference", "conversational"): ({"chosen": "messages", "rejected": "messages"}, {"prompt": "messages"}),
    ("unpaired_preference", "standard"): ({"prompt": "text", "completion": "text", "label": "label"}, {}),
    ("unpaired_preference", "conversational"): (
        {"prompt": "messages", "completion": "messages", "label": "label"}, {}),
    ("stepwise_supervision", "standard"): (
        {"prompt": "text", "completions": "text_list", "labels": "bool_list"}, {}),
}
DEFS = {
    "text": NON_BLANK,
    "message": MESSAGE,
    "messages": MESSAGES,
    "label": {"type": "boolean"},
    "text_list": {"type": "array", "minItems": 1, "items": {"type": "string"}},
    "bool_list": {"type": "array", "items": {"type": "boolean"}},
}


def type_schema(data_type: str, fmt: str) -> dict:
    """The schema of one row of a TRL type in one format."""
    required, optional = LAYOUTS[(data_type, fmt)]
    fields = {**required, **optional}
    kinds = sorted(set(fields.values()) | ({"message"} if "messages" in fields.values() else set()))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE_URL}{data_type}.{fmt}.schema.json",
        "title": f"TRL {data_type.replace('_', ' ')} row, {fmt}",
        "description": "Other columns are allowed: TRL keeps them (GRPO hands them to reward functions)."
        + (" Without `prompt` the prompt is implicit: the shared start of chosen and rejected."
           if data_type == "preference" else ""),
        "type": "object",
        "required": list(required),
        "properties": {name: {"$ref": f"#/$defs/{kind}"} for name, kind in fields.items()},
        "$defs": {kind: DEFS[kind] for kind in kinds},
    }


def type_schemas() -> dict[str, dict]:
    """Every published schema by file stem."""
    schemas = {f"{t}.{f}": type_schema(t, f) for t, f in LAYOUTS}
    schemas["message"] = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                          "$id": f"{BASE_URL}message.schema.json", "title": "TRL chat message",
                          **{k: v for k, v in MESSAGE.items()}}
    return schemas


def write(folder: Path) -> list[Path]:
    written = []
    for stem, schema in type_schemas().items():
        written.append(write_atomically(folder / f"{stem}.schema.json",
                                        json.dumps(schema, indent=2, ensure_ascii=False) + "\n"))
    return written


if __name__ == "__main__":
    for written_path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "schemas")):
        print(written_path)
