"""The published JSON Schemas agree with the validator's structural rules, row by row."""

import copy
import json

import jsonschema
import pytest

from trlprep.inspector.checks import check_fields
from trlprep.inspector.dialects import classify_row
from trlprep.inspector.schemas import LAYOUTS, type_schemas
from tests.conftest import REPO

# The structural rules JSON Schema can express; turn order, duplicates and step counts are beyond it.
SCHEMA_RULES = {"TP101", "TP102", "TP103", "TP104", "TP105", "TP106", "TP107", "TP110", "TP111", "TP201", "TP302"}

U = {"role": "user", "content": "Name a colour."}
A = {"role": "assistant", "content": "Blue."}
GOOD = {
    ("language_modeling", "standard"): {"text": "Blue is a colour."},
    ("language_modeling", "conversational"): {"messages": [U, A]},
    ("prompt_only", "standard"): {"prompt": "Name a colour."},
    ("prompt_only", "conversational"): {"prompt": [U]},
    ("prompt_completion", "standard"): {"prompt": "Name a colour.", "completion": "Blue."},
    ("prompt_completion", "conversational"): {"prompt": [U], "completion": [A]},
    ("preference", "standard"): {"prompt": "Name a colour.", "chosen": "Blue.", "rejected": "Seven."},
    ("preference", "conversational"): {"prompt": [U], "chosen": [A], "rejected": [{**A, "content": "Seven."}]},
    ("unpaired_preference", "standard"): {"prompt": "Name a colour.", "completion": "Blue.", "label": True},
    ("unpaired_preference", "conversational"): {"prompt": [U], "completion": [A], "label": False},
    ("stepwise_supervision", "standard"): {"prompt": "Count", "completions": ["1", "2"], "labels": [True, True]},
}
BAD_VALUES = [None, 3, {"a": 1}, "", "   ", [], "text", [U], ["not a message"], [{"content": "no role"}],
              [{"role": "bot", "content": "x"}], [{"role": "user"}], [{"role": "user", "content": " "}],
              [{"role": "user", "content": 5}], [{"role": "assistant", "tool_calls": [{"type": "function"}]}],
              [{"role": "user", "content": [{"type": "text", "text": "typed"}]}],
              [{"role": "user", "content": [{"type": "text", "text": ""}]}], "true", 1, True, ["a"], [True]]


def corpus():
    for (data_type, fmt), good in GOOD.items():
        yield data_type, fmt, good
        for field in good:
            missing = {k: v for k, v in good.items() if k != field}
            yield data_type, fmt, missing
            for bad in BAD_VALUES:
                yield data_type, fmt, {**good, field: copy.deepcopy(bad)}
            if isinstance(good[field], list) and good[field] and isinstance(good[field][0], dict):
                yield data_type, fmt, {**good, field: good[field] + [{"role": "user", "content": ""}]}
    yield "preference", "standard", {"chosen": "Blue.", "rejected": "Seven."}  # implicit prompt


def test_published_files_are_current():
    for stem, schema in type_schemas().items():
        published = json.loads((REPO / "schemas" / f"{stem}.schema.json").read_text())
        assert published == schema, f"schemas/{stem}.schema.json is stale: run python -m trlprep.inspector.schemas"


def test_schemas_are_valid_draft_2020_12():
    for schema in type_schemas().values():
        jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("data_type,fmt", list(LAYOUTS), ids=[f"{t}.{f}" for t, f in LAYOUTS])
def test_validator_and_schema_agree(data_type, fmt):
    validator = jsonschema.Draft202012Validator(type_schemas()[f"{data_type}.{fmt}"])
    good_shape = classify_row(GOOD[(data_type, fmt)])
    checked = 0
    for row_type, row_fmt, row in corpus():
        if (row_type, row_fmt) != (data_type, fmt):
            continue
        shape = good_shape if "prompt" in row or data_type != "preference" else classify_row(row)
        rules = {rule for rule, _ in check_fields(row, shape)} & SCHEMA_RULES
        schema_valid = validator.is_valid(row)
        assert schema_valid == (not rules), f"{row}: schema says {schema_valid}, validator found {rules}"
        checked += 1
    assert checked >= 1 + len(GOOD[(data_type, fmt)]) * (1 + len(BAD_VALUES))
