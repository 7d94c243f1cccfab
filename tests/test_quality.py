"""Quality checks no peer makes before training: tool calls against their tools."""

import json

from converters import convert
from inspector import inspect_dataset
from tests.differential import check_dataset

ADD = {"type": "function", "function": {"name": "add", "description": "Add two integers.", "parameters": {
    "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}}}


def _call(name, arguments, call_id=None):
    return {"role": "assistant", "tool_calls": [{"type": "function", **({"id": call_id} if call_id else {}),
                                                  "function": {"name": name, "arguments": arguments}}]}


def _row(*messages, tools=(ADD,)):
    return {"messages": [{"role": "user", "content": "2+3?"}, *messages], "tools": list(tools)}


RESULT = {"role": "tool", "name": "add", "content": "5"}
ANSWER = {"role": "assistant", "content": "5."}


def test_tool_calls_are_checked_against_the_declared_schemas(write_jsonl, tmp_path):
    rows = [
        _row(_call("add", {"a": 2, "b": 3}), RESULT, ANSWER),                      # 1 clean
        _row(_call("add", '{"a": 2, "b": 3}', "c1"), {**RESULT, "tool_call_id": "c1"}, ANSWER),  # 2 clean, OpenAI
        _row(_call("add", {"a": 2, "b": 3})),                                      # 3 ends in the call: the target
        _row(_call("multiply", {"a": 2, "b": 3}), RESULT, ANSWER),                 # 4 undeclared
        _row(_call("add", {"a": 2}), RESULT, ANSWER),                              # 5 missing required
        _row(_call("add", {"a": "2", "b": 3}), RESULT, ANSWER),                    # 6 wrong type
        _row(_call("add", {"a": 2, "b": 3, "c": 4}), RESULT, ANSWER),              # 7 unknown argument
        _row(_call("add", "{a: 2"), RESULT, ANSWER),                               # 8 not JSON
        _row(_call("add", {"a": 2, "b": 3}), ANSWER),                              # 9 unanswered
        _row(_call("add", '{"a": 2, "b": 3}', "c1"), {**RESULT, "tool_call_id": "c9"}, ANSWER),  # 10 wrong id
        _row(_call("add", {"a": 2, "b": 3}), RESULT, ANSWER, tools=[{"name": "add", "parameters": {
            "type": "object", "properties": {"a": {"type": "integre"}}}}]),        # 11 invalid schema
    ]
    path = write_jsonl(rows)
    report = inspect_dataset(path)
    found = {f.rule: [e["detail"] for e in f.examples] for f in report.findings}
    assert {f.rule: f.rows for f in report.findings} == {
        "TP601": [4], "TP602": [5, 6, 7, 8], "TP603": [9, 10], "TP604": [11],
        "TP203": [9]}  # the answer right after the call: two assistant turns
    assert found["TP601"] == ["messages[1] calls 'multiply', which `tools` does not declare (add)"]
    assert found["TP602"] == ["messages[1] add: arguments: 'b' is a required property",
                              "messages[1] add: arguments.a: '2' is not of type 'integer'",
                              "messages[1] add: argument(s) c not in its schema",
                              "messages[1] add: arguments are not JSON ('{a: 2')"]
    assert found["TP603"] == ["messages[1] calls 'add', answered by no tool message before turn 3",
                              "messages[2] answers call id 'c9', which no pending call has (c1)"]
    assert found["TP604"] == ["tools[0] (add): parameters are not a valid JSON Schema"]
    result = convert(path, to="sft", output=tmp_path / "sft.jsonl")
    assert result.rejected_by_rule == {"TP601": 1, "TP602": 4, "TP604": 1}  # TP603 warns, the row stays
    assert check_dataset(path) == []


def test_real_tool_calling_data(shared_data):
    """Glaive's function-calling demo (LLaMA-Factory, Apache-2.0): one call passes a list where the schema
    declares a number (row 260, read: `calories_per_item: [150, 350, 800]` against `"type": "number"`); nothing
    else fires. Microsoft's Zava retail demo (OpenAI format, call ids, string arguments): nothing fires."""
    glaive = inspect_dataset(shared_data / "glaive_toolcall_en_demo.json")
    tool_findings = {f.rule: f.rows for f in glaive.findings if f.rule.startswith("TP6")}
    assert tool_findings == {"TP602": [260]}
    assert glaive.findings[0].examples[0]["detail"] == (
        "messages[3] track_calories: arguments.calories_per_item: [150, 350, 800] is not of type 'number'")
    zava = inspect_dataset(shared_data / "more" / "openai_chat_tools_zava_retail_valid.jsonl")
    assert not [f for f in zava.findings if f.rule.startswith("TP6")]
    calls = sum(len(m.get("tool_calls") or []) for line in open(
        shared_data / "more" / "openai_chat_tools_zava_retail_valid.jsonl") for m in json.loads(line)["messages"])
    assert calls > 21  # the checks had calls to look at


def test_training_rows_that_leak_an_evaluation_set_are_found_and_dropped(shared_data, write_jsonl, tmp_path):
    """GSM8K's test split (MIT) as the evaluation set; a training file with three of its questions (two verbatim,
    one reworded in the middle) among alpaca rows that have nothing of it."""
    gsm8k = shared_data / "gsm8k_test.jsonl"
    questions = [json.loads(line)["question"] for line in open(gsm8k)][:3]
    words = questions[2].split()
    reworded = " ".join(words[:12] + ["(reworded)"] + words[13:])
    alpaca = json.loads((shared_data / "alpaca_en_demo.json").read_text())[:40]
    rows = [{"messages": [{"role": "user", "content": row["instruction"]},
                          {"role": "assistant", "content": row["output"]}]} for row in alpaca]
    for at, question in ((5, questions[0]), (17, questions[1]), (30, reworded)):
        rows[at - 1] = {"messages": [{"role": "user", "content": question},
                                     {"role": "assistant", "content": "The answer is 42."}]}
    path = write_jsonl(rows)
    report = inspect_dataset(path, against=(str(gsm8k),))
    (leak,) = [f for f in report.findings if f.rule == "TP405"]
    assert leak.rows == [5, 17, 30]
    assert leak.examples[0]["detail"].startswith("shares ") and leak.examples[0]["detail"].endswith(f"{gsm8k}:1")
    assert report.methods["sft"]["rows_kept"] == 40  # reported; dropping is convert's option
    kept = convert(path, to="sft", output=tmp_path / "sft.jsonl", against=(str(gsm8k),), drop_contaminated=True)
    assert (kept.rows_kept, kept.rejected_by_rule) == (37, {"TP405": 3})
    rejects = [json.loads(line) for line in open(kept.rejects)]
    assert [r["row"] for r in rejects] == [5, 17, 30]
    assert inspect_dataset(kept.output, against=(str(gsm8k),)).findings == []
    clean = inspect_dataset(shared_data / "alpaca_en_demo.json", against=(str(gsm8k),))
    assert not [f for f in clean.findings if f.rule == "TP405"]  # no false positive on 1000 alpaca rows
