"""Detection from values: every shared real dataset (its slice in tests/data/shared) and every dialect, with the
verdict per method."""

import pytest

from trlprep.inspector import SourceError, inspect_dataset
from trlprep.inspector.dialects import classify_row, to_trl
from trlprep.inspector.methods import BASE_METHODS

R, C, I = "ready", "convertible", "incompatible"

# file, rows, dialect, type, format, verdicts for sft dpo grpo reward kto
SHARED = [
    ("alpaca_en_demo.json", 41, "alpaca", "prompt_completion", "conversational", (C, I, C, I, I)),
    ("dpo_en_demo.json", 38, "sharegpt", "preference", "conversational", (C, C, C, C, C)),
    ("kto_en_demo.json", 37, "messages_label", "unpaired_preference", "conversational", (C, I, C, I, C)),
    ("glaive_toolcall_en_demo.json", 44, "sharegpt", "language_modeling", "conversational", (C, I, C, I, I)),
    ("c4_demo.jsonl", 35, "trl", "language_modeling", "standard", (R, I, I, I, I)),
    ("v1_sft_demo.jsonl", 32, "turn_flags", "language_modeling", "conversational", (C, I, C, I, I)),
    ("gsm8k_test.jsonl", 30, "question_answer", "prompt_completion", "conversational", (C, I, C, I, I)),
]


KNOWN_ERRORS = {"glaive_toolcall_en_demo.json": ["TP602"]}


@pytest.mark.parametrize("name,rows,dialect,data_type,fmt,verdicts", SHARED, ids=[s[0] for s in SHARED])
def test_shared_dataset_is_detected(shared_data, name, rows, dialect, data_type, fmt, verdicts):
    report = inspect_dataset(shared_data / name)
    assert (report.rows, report.rows_checked) == (rows, rows)
    assert (report.dialect, report.type, report.format) == (dialect, data_type, fmt)
    assert tuple(report.methods[method]["status"] for method in BASE_METHODS) == verdicts
    for method, v in report.methods.items():
        if v["status"] == C:
            assert v["command"].startswith(f"uv run convert --dataset {shared_data / name} --to {method} ")
        else:
            assert v["command"] is None
    # The errors real data has: glaive's row 41 (260 of the source) passes a list where its tool schema declares a number.
    assert [f.rule for f in report.findings if f.severity == "error"] == KNOWN_ERRORS.get(name, [])


def test_shared_findings_are_real(shared_data):
    kto = inspect_dataset(shared_data / "kto_en_demo.json")
    assert "labels: 21 true (desirable), 16 false (undesirable)" in kto.notes
    markup = [f for f in kto.findings if f.rule == "TP207"]
    assert markup and markup[0].rows == [32, 35]  # row 32's (the source's 140) answer goes on after a `</s>` typed as text
    gsm8k = inspect_dataset(shared_data / "gsm8k_test.jsonl")
    assert any(note.startswith("30 answers end with a final-answer marker") for note in gsm8k.notes)
    glaive = inspect_dataset(shared_data / "glaive_toolcall_en_demo.json")
    assert "tools" in glaive.extra_columns
    alpaca = inspect_dataset(shared_data / "alpaca_en_demo.json")
    assert {f.rule: f.rows for f in alpaca.findings} == {"TP215": [38, 40], "TP401": [33, 36, 37]}
    assert [f.count for f in alpaca.findings] == [2, 3]  # the `< noinput >` placeholders, then the repeats


U = {"role": "user", "content": "Name a colour."}
A = {"role": "assistant", "content": "Blue."}
B = {"role": "assistant", "content": "Seven."}

# row, dialect, type, format, implicit prompt
DIALECTS = [
    ({"text": "Plain text."}, "trl", "language_modeling", "standard", False),
    ({"messages": [U, A]}, "trl", "language_modeling", "conversational", False),
    ({"prompt": "Name a colour."}, "trl", "prompt_only", "standard", False),
    ({"prompt": [U]}, "trl", "prompt_only", "conversational", False),
    ({"prompt": "Q", "completion": "A"}, "trl", "prompt_completion", "standard", False),
    ({"prompt": [U], "completion": [A]}, "trl", "prompt_completion", "conversational", False),
    ({"prompt": "Q", "chosen": "A", "rejected": "B"}, "trl", "preference", "standard", False),
    ({"chosen": [U, A], "rejected": [U, B]}, "trl", "preference", "conversational", True),
    ({"prompt": [U], "completion": [A], "label": True}, "trl", "unpaired_preference", "conversational", False),
    ({"prompt": "Q", "completions": ["s1", "s2"], "labels": [True, False]}, "trl", "stepwise_supervision",
     "standard", False),
    ({"instruction": "Add", "input": "2, 2", "output": "4", "system": "Be brief.", "history": [["hi", "hello"]]},
     "alpaca", "prompt_completion", "conversational", False),
    ({"instruction": "Add 2 and 2", "response": "4"}, "instruction_response", "prompt_completion",
     "conversational", False),
    ({"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}, "sharegpt",
     "language_modeling", "conversational", False),
    ({"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}], "kto_tag": False},
     "sharegpt", "unpaired_preference", "conversational", False),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}, A]}, "typed_content",
     "language_modeling", "conversational", False),
    ({"dialog": [U, A]}, "messages_column", "language_modeling", "conversational", False),
    ({"messages": [U, A], "label": True}, "messages_label", "unpaired_preference", "conversational", False),
    ({"text": "\n\nHuman: Hi\n\nAssistant: Hello"}, "transcript", "language_modeling", "conversational", False),
    ({"chosen": "\n\nHuman: Hi\n\nAssistant: Hello", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away"},
     "transcript", "preference", "conversational", True),
    ({"question": "1+1?", "answer": "2\n#### 2"}, "question_answer", "prompt_completion", "conversational", False),
    ({"question": "Sort a list", "response_j": "sorted(x)", "response_k": "x.sort"}, "paired_responses",
     "preference", "conversational", False),
    ({"conversations": [{"from": "human", "value": "Hi"}], "chosen": {"from": "gpt", "value": "Hello"},
      "rejected": {"from": "gpt", "value": "Go away"}}, "sharegpt", "preference", "conversational", False),
    ({"messages": [U], "chosen": A, "rejected": B}, "message_pair", "preference", "conversational", False),
    ({"chosen_messages": [U, A], "rejected_messages": [U, B]}, "paired_conversations", "preference",
     "conversational", True),
    ({"instruction": "Name a colour.", "completions": [{"response": "Blue.", "overall_score": 9},
                                                       {"response": "Seven.", "overall_score": 2}]},
     "rated_completions", "preference", "conversational", False),
    ({"prompt": "Name a colour.", "responses": ["Blue.", "Seven."], "rankings": [1, 2]}, "rated_completions",
     "preference", "conversational", False),
]


@pytest.mark.parametrize("row,dialect,data_type,fmt,implicit", DIALECTS,
                         ids=[f"{d[1]}-{d[2]}-{i}" for i, d in enumerate(DIALECTS)])
def test_dialect_is_detected_from_values(row, dialect, data_type, fmt, implicit):
    shape = classify_row(row)
    assert (shape.dialect, shape.type, shape.format, shape.implicit_prompt) == (dialect, data_type, fmt, implicit)
    report = inspect_dataset([row, row | {"_id": 2}])
    assert report.valid, [(f.rule, f.examples) for f in report.findings if f.severity == "error"]


def test_values_not_names_decide_the_format():
    assert classify_row({"prompt": [U], "completion": [A]}).format == "conversational"
    assert classify_row({"prompt": "Q", "completion": "A"}).format == "standard"
    # A column named like the TRL one but holding a string is not a conversation.
    report = inspect_dataset([{"messages": [U, A]}] * 3 + [{"messages": "Name a colour. Blue."}])
    assert [(f.rule, f.rows) for f in report.findings if f.severity == "error"] == [("TP102", [4])]


def test_rows_that_disagree_are_counted():
    rows = [{"prompt": [U], "completion": [A]}] * 97 + [{"prompt": "Q", "completion": "A"}] * 3
    report = inspect_dataset(rows)
    assert report.format == "mixed"
    (finding,) = [f for f in report.findings if f.rule == "TP108"]
    assert finding.count == 3
    assert [s["rows"] for s in report.shapes] == [97, 3]
    assert report.methods["sft"]["status"] == "convertible"


def test_sharegpt_tool_calls_become_openai_tool_calls():
    row = {"conversations": [
        {"from": "human", "value": "Weather in Paris?"},
        {"from": "function_call", "value": '{"name": "weather", "arguments": {"city": "Paris"}}'},
        {"from": "observation", "value": '{"temp": 21}'},
        {"from": "gpt", "value": "21 degrees."}], "tools": '[{"name": "weather"}]'}
    trl_row = to_trl(row, classify_row(row))
    assert [m["role"] for m in trl_row["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert trl_row["messages"][1]["tool_calls"][0]["function"] == {"name": "weather", "arguments": {"city": "Paris"}}
    assert trl_row["tools"] == [{"type": "function", "function": {"name": "weather"}}]  # parsed, in TRL's form
    assert inspect_dataset([row]).valid


def test_rated_completions_pick_best_and_worst():
    row = {"prompt": "Name a colour.", "responses": ["Blue.", "Seven.", "Red."], "scores": [7, 1, 9]}
    trl_row = to_trl(row, classify_row(row))
    assert trl_row["chosen"] == [{"role": "assistant", "content": "Red."}]
    assert trl_row["rejected"] == [{"role": "assistant", "content": "Seven."}]
    assert trl_row["margin"] == 8.0


def test_empty_and_unknown_data():
    report = inspect_dataset([{"id": 1, "score": 3.5}])
    assert report.type == "unknown"
    assert all(v["status"] == "incompatible" for v in report.methods.values())
    assert report.exit_code == 1
    with pytest.raises(SourceError, match="no rows"):
        inspect_dataset([])


def test_method_narrows_the_verdicts(shared_data):
    report = inspect_dataset(shared_data / "c4_demo.jsonl", method="dpo")
    assert list(report.methods) == ["dpo"]
    assert report.exit_code == 1
    assert inspect_dataset(shared_data / "c4_demo.jsonl", method="sft").exit_code == 0


def test_sample_checks_only_the_first_rows(shared_data):
    report = inspect_dataset(shared_data / "gsm8k_test.jsonl", limit=10)
    assert report.rows_checked == 10 and report.sampled
    assert any("--limit" in note for note in report.notes)
