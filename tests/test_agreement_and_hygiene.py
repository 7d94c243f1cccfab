"""`inspect` and `convert` read one decision per row: the rows each method rejects, and by which rule, are the same
in `inspect --format json` and in the rejects file of `convert --to`. And the text a chat template would train
literally: template markup (TP207), placeholders (TP215), a conversation flattened into a user turn (TP217).

The data is in `tests/data/agreement/` (its README names each file's source and licence, and the rows each rule
must find).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from trlprep.converters import convert
from trlprep.converters.cli import main as convert_main
from trlprep.inspector import inspect_dataset
from trlprep.inspector.cli import main as inspect_main
from trlprep.inspector.methods import METHODS
from tests.differential import Unread, check_dataset

DATA = Path(__file__).parent / "data" / "agreement"
REASON_TOOL_USE = DATA / "reason_tool_use_demo_slice.jsonl"


def _inspect_json(path: Path) -> dict:
    result = CliRunner().invoke(inspect_main, ["--dataset", str(path), "--format", "json", "--max-rows", "1000"])
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.output)


def _rejects(output: Path) -> dict[int, str]:
    """Row -> rule, from the rejects file `convert` wrote beside `output`."""
    rejects = output.with_name(output.stem + ".rejects.jsonl")
    lines = rejects.read_text(encoding="utf-8").splitlines() if rejects.exists() else []
    return {record["row"]: record["rule"] for record in map(json.loads, lines)}


def test_inspect_and_convert_reject_the_same_rows_by_the_same_rules_for_every_method(tmp_path):
    """LLaMA-Factory's reasoning and tool-use demo: `inspect` once kept 11 of its 50 rows for SFT and `convert` 9
    (here 2 and 1 of the slice), the reading having left `tool_call` parts unread."""
    report = _inspect_json(REASON_TOOL_USE)
    for method in METHODS:
        verdict = report["methods"][method]
        if verdict["status"] == "incompatible":
            continue
        output = tmp_path / f"{method}.jsonl"
        result = CliRunner().invoke(convert_main, ["--dataset", str(REASON_TOOL_USE), "--to", method,
                                                   "--output", str(output), "--format", "json"])
        assert result.exit_code == 0, (method, result.output)
        ledger = json.loads(result.output)
        said = {row: rule for rule, rows in verdict["rejected_rows"].items() for row in rows}
        assert _rejects(output) == said, method
        assert (ledger["rows_kept"], ledger["rows_rejected"], ledger["rejected_by_rule"]) == (
            verdict["rows_kept"], verdict["rows_rejected"], verdict["rejected_by_rule"]), method
    assert report["methods"]["sft"]["rejected_rows"] == {"TP604": [1, 5]}  # `"type": "dict"` parameters


def test_the_differential_harness_agrees_on_the_slice():
    assert check_dataset(REASON_TOOL_USE) == []


def test_tool_call_parts_are_read_as_tool_calls(tmp_path):
    output = tmp_path / "sft.jsonl"
    convert(REASON_TOOL_USE, to="sft", output=output)
    row = json.loads(output.read_text(encoding="utf-8").splitlines()[0])  # the slice's row 2
    call = row["messages"][2]
    assert call["tool_calls"] == [{"type": "function", "function": {"name": "get_movie_details",
                                                                    "arguments": {"title": "Inception"}}}]
    assert call["content"] == "" and call["reasoning_content"].startswith("Alright, the user wants information")
    assert row["messages"][3]["role"] == "tool"


def test_a_typed_part_no_template_reads_is_rejected_by_inspect_and_convert_alike(write_jsonl, tmp_path):
    """A typed part the reading leaves as it is (`code`) is TP102 for both, where `convert` alone once rejected the
    row for converting to another shape than the others (TC103)."""
    def row(*parts):
        return {"messages": [{"role": "user", "content": [{"type": "text", "value": "Print 1."}]},
                             {"role": "assistant", "content": list(parts)}]}

    path = write_jsonl([row({"type": "text", "value": "print(1)"}), row({"type": "code", "value": "print(1)"})])
    verdict = inspect_dataset(path).methods["sft"]
    result = convert(path, to="sft", output=tmp_path / "sft.jsonl")
    assert verdict["rejected_rows"] == {"TP102": [2]}
    assert _rejects(tmp_path / "sft.jsonl") == {2: "TP102"} and result.rows_kept == 1


def test_the_harness_reports_data_neither_command_reads(tmp_path):
    (tmp_path / "a.csv").write_text("question,answer\nWhy?,Because.\n")
    (tmp_path / "b.jsonl").write_text('{"question": "Why?", "answer": "Because."}\n')
    with pytest.raises(Unread, match="mixes file formats"):
        check_dataset(tmp_path)


def test_the_harness_reads_text_in_the_encoding_the_refusal_proposes(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("question,answer\nCaf\xe9?,Oui\n".encode("latin-1"))
    assert check_dataset(path) == []  # read as cp1252, as `inspect` proposes: both commands agree on it


def _found(path: Path, *rules: str) -> dict[str, list[int]]:
    report = inspect_dataset(path)
    return {f.rule: f.rows for f in report.findings if f.rule in rules}


def test_placeholders_and_typed_special_tokens_in_built_rows():
    assert _found(DATA / "placeholders_alpaca.jsonl", "TP207", "TP215", "TP213") == {
        "TP215": [2, 3, 4, 5], "TP207": [6, 7]}


def test_placeholders_and_special_tokens_in_real_rows():
    """Alpaca's `<No Input>` (tatsu-lab); the KTO demo's answer that goes on after a `</s>` (LLaMA-Factory)."""
    alpaca = inspect_dataset(DATA / "alpaca_5000_rows_23_27.json")
    (placeholder,) = [f for f in alpaca.findings if f.rule == "TP215"]
    assert (placeholder.rows, placeholder.examples[0]["detail"]) == ([3], "prompt[0].content (as read) contains "
                                                                        "'<No Input>'")
    assert _found(DATA / "kto_en_demo_row_140.json", "TP207") == {"TP207": [1]}


def test_a_conversation_flattened_into_a_user_turn_is_named_with_its_turn():
    report = inspect_dataset(DATA / "flattened_chat.jsonl")
    (flattened,) = [f for f in report.findings if f.rule == "TP217"]
    assert flattened.rows == [2, 3, 4, 5, 6]  # not rows 7-10: "my assistant said", Q:/A:, <think> mid-line, Model:
    assert flattened.examples[0]["detail"] == ("messages[0]: a user turn holding a whole conversation ('User:' and "
                                               "'Assistant:' lines)")
    assert _found(DATA / "flattened_chat.jsonl", "TP207") == {"TP207": [3, 4, 11, 12]}


def test_a_flattened_conversation_in_real_data_is_named():
    """LLaMA-Factory's row 31: "Historical dialog data" of `Inquirer:` and `Response assistant:` lines."""
    report = inspect_dataset(REASON_TOOL_USE)
    (flattened,) = [f for f in report.findings if f.rule == "TP217"]
    assert (flattened.rows, flattened.examples[0]["detail"]) == (
        [5], "messages[1]: a user turn holding a whole conversation ('Inquirer:' and 'Response assistant:' lines)")


def test_the_new_rules_are_warnings_that_reject_no_row(tmp_path):
    result = convert(DATA / "flattened_chat.jsonl", to="sft", output=tmp_path / "sft.jsonl")
    assert (result.rows_kept, result.rows_rejected) == (12, 0)
    assert CliRunner().invoke(inspect_main, ["--explain", "TP217"]).output.startswith(
        "TP217 conversation-in-user-turn (warning, trl stage)")


def test_the_parquet_path_finds_placeholders_and_flattened_turns(tmp_path):
    # Fused into the column kernels' text test: a Parquet file large enough for them still names its rows.
    import pyarrow as pa
    import pyarrow.parquet as pq

    chats = [[{"role": "user", "content": f"Question {n}?"}, {"role": "assistant", "content": f"Answer {n}."}]
             for n in range(3000)]
    chats[10][1]["content"] = "Done. ###eos_token###"
    chats[20][0]["content"] = "User: hi\nAssistant: hello\nUser: and then?"
    pq.write_table(pa.table({"messages": chats}), tmp_path / "chats.parquet")
    report = inspect_dataset(tmp_path / "chats.parquet")
    assert {f.rule: f.rows for f in report.findings} == {"TP215": [11], "TP217": [21]}
