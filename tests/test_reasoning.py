"""Reasoning traces: the rules (TP801-TP806) name exactly the planted rows, on every scan path, and `convert
--reasoning` moves traces between `reasoning_content` and `<think>`, or drops them, counting the rows it changed."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import trlprep.inspector.scan
from trlprep.converters import convert
from trlprep.converters.cli import main as convert_main
from trlprep.errors import UsageError
from trlprep.inspector import inspect_dataset
from trlprep.inspector.cli import main as inspect_main
from tests.conftest import REPO, SCAN_PATHS, write_for_scan_path

DATA = REPO / "tests" / "data" / "reasoning"
# The rows each file plants, by rule (tests/data/reasoning/README.md).
PLANTED = {"planted.jsonl": {"TP801": [5], "TP802": [6], "TP803": [7], "TP804": [8], "TP806": [10]},
           "planted_pairs.jsonl": {"TP805": [2, 3]}}


def _flagged(report: dict) -> dict[str, list[int]]:
    return {finding["rule"]: finding["rows"] for finding in report["findings"]}


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines()]


def _user(text: str) -> dict:
    return {"role": "user", "content": text}


def _answer(content: str, **fields) -> dict:
    return {"role": "assistant", "content": content, **fields}


@pytest.mark.parametrize("name", PLANTED)
def test_the_rules_name_exactly_the_planted_rows(name):
    assert _flagged(inspect_dataset(DATA / name).to_dict()) == PLANTED[name]


@pytest.mark.parametrize("name", PLANTED)
def test_the_command_reports_the_same_rows(name):
    result = CliRunner().invoke(inspect_main, ["--dataset", str(DATA / name), "--format", "json"])
    assert result.exit_code == (1 if name == "planted.jsonl" else 0), result.output  # TP801 is an error
    assert _flagged(json.loads(result.output)) == PLANTED[name]


@pytest.mark.parametrize("kind", SCAN_PATHS)
def test_every_scan_path_finds_the_planted_rows(kind, tmp_path, monkeypatch):
    path = write_for_scan_path(kind, _rows("planted.jsonl"), tmp_path)
    if kind == "parallel":  # split between processes
        monkeypatch.setattr(trlprep.inspector.scan, "PARALLEL_FROM_BYTES", 0)
    report = inspect_dataset(path, workers=2)
    assert _flagged(report.to_dict()) == PLANTED["planted.jsonl"]


@pytest.mark.parametrize("kind", SCAN_PATHS)
def test_a_mix_is_counted_across_fast_rows_and_chunks(kind, tmp_path, monkeypatch):
    # 3,000 clean rows, which the fast paths take whole, and traces in rows 1,000 and 2,500: the two are the
    # smaller group, wherever the chunks of a parallel scan cut.
    rows = [{"messages": [_user(f"Say {i}."), _answer(f"{i}")]} for i in range(1, 3001)]
    for number in (1000, 2500):
        rows[number - 1]["messages"][1]["content"] = f"<think>It is {number}.</think>{number}"
    path = write_for_scan_path(kind, rows, tmp_path)
    if kind == "parallel":
        monkeypatch.setattr(trlprep.inspector.scan, "PARALLEL_FROM_BYTES", 0)
    report = inspect_dataset(path, workers=2).to_dict()
    finding = next(f for f in report["findings"] if f["rule"] == "TP806")
    assert (finding["count"], finding["rows"]) == (2, [1000, 2500])
    assert finding["examples"][0]["detail"] == "holds a trace: 2 rows hold a reasoning trace, 2998 hold none"


def test_rows_all_with_traces_or_all_without_are_no_mix(tmp_path):
    rows = _rows("planted.jsonl")
    traced = [row for number, row in enumerate(rows, 1) if number != 10]
    path = tmp_path / "traced.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in traced))
    assert "TP806" not in _flagged(inspect_dataset(path).to_dict())


def test_the_mix_is_not_counted_when_ignored():
    report = inspect_dataset(DATA / "planted.jsonl", ignore=("TP806",)).to_dict()
    assert "TP806" not in _flagged(report)


def _convert(*args: str):
    return CliRunner().invoke(convert_main, [str(a) for a in args])


def _written(path) -> list[dict]:
    return [json.loads(line)["messages"] for line in path.read_text().splitlines()]


# What each form writes of the clean planted rows 1-4 (the `<think>`, `reasoning_content`, `<|begin_of_thought|>`
# and `<reasoning>` traces), and how many of the 10 rows kept it changes (row 5, unclosed, is rejected: TP801).
FORMS = {
    "field": ([("4", "2 and 2 make 4."), ("6", "3 and 3 make 6."), ("8", "4 and 4 make 8."), ("10", "5 and 5 make 10.")],
              6),
    "inline": ([("<think>\n2 and 2 make 4.\n</think>\n\n4", None), ("<think>\n3 and 3 make 6.\n</think>\n\n6", None),
                ("<think>\n4 and 4 make 8.\n</think>\n\n8", None), ("<think>\n5 and 5 make 10.\n</think>\n\n10", None)],
               4),
    "drop": ([("4", None), ("6", None), ("8", None), ("10", None)], 7),
}


@pytest.mark.parametrize("form", FORMS)
def test_convert_writes_the_traces_in_the_form_asked_and_counts_the_rows(form, tmp_path):
    output = tmp_path / "out.jsonl"
    result = _convert("--dataset", DATA / "planted.jsonl", "--to", "sft", "--style", "messages", "--output", output,
                      "--reasoning", form, "--format", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    written, changed = FORMS[form]
    assert [(m[1]["content"], m[1].get("reasoning_content")) for m in _written(output)[:4]] == written
    (repair, count), = summary["repaired"].items()
    assert (repair.endswith(f"(--reasoning {form})"), count) == (True, changed)
    assert (summary["rows_kept"], summary["rejected_by_rule"]) == (10, {"TP801": 1})
    assert repair.removesuffix(f" (--reasoning {form})") in summary["plan"]


def test_traces_that_cannot_move_without_losing_text_stay_as_they_came(tmp_path):
    output = tmp_path / "out.jsonl"
    assert _convert("--dataset", DATA / "planted.jsonl", "--to", "sft", "--style", "messages", "--output", output,
                    "--reasoning", "drop").exit_code == 0
    by_question = {m[0]["content"]: m[-1]["content"] for m in _written(output)}
    assert by_question["What is 8+8?"] == "The answer: <think>8 and 8 make 16.</think>16"  # misplaced (TP803)
    assert by_question["What is 9+9?"] == "<think>\n9 and 9 make 18.\n</think>\n\n"  # no answer (TP804)


@pytest.mark.parametrize("form", FORMS)
def test_converting_twice_changes_nothing_more(form, tmp_path):
    once, twice = tmp_path / "once.jsonl", tmp_path / "twice.jsonl"
    for source, output in ((DATA / "planted.jsonl", once), (once, twice)):
        result = _convert("--dataset", source, "--to", "sft", "--style", "messages", "--output", output,
                          "--reasoning", form, "--format", "json")
        assert result.exit_code == 0, result.output
    assert json.loads(result.output)["repaired"] == {}
    assert twice.read_text() == once.read_text()


def test_without_reasoning_the_traces_stay_as_they_came(tmp_path):
    output = tmp_path / "out.jsonl"
    result = _convert("--dataset", DATA / "planted.jsonl", "--to", "sft", "--style", "messages", "--output", output,
                      "--format", "json")
    assert json.loads(result.output)["repaired"] == {}
    kept = [row["messages"] for number, row in enumerate(_rows("planted.jsonl"), 1) if number != 5]
    assert _written(output) == kept


def test_the_prompt_side_of_pairs_loses_its_traces_with_drop(tmp_path):
    output = tmp_path / "out.jsonl"
    assert _convert("--dataset", DATA / "planted_pairs.jsonl", "--to", "dpo", "--output", output,
                    "--reasoning", "drop").exit_code == 0
    assert "TP805" not in _flagged(inspect_dataset(output).to_dict())


def test_an_unknown_form_is_a_usage_error(tmp_path):
    result = _convert("--dataset", DATA / "planted.jsonl", "--to", "sft", "--dry-run", "--reasoning", "hidden")
    assert result.exit_code == 2
    assert "'hidden' is not one of 'field', 'inline', 'drop'" in result.output
    with pytest.raises(UsageError, match="--reasoning 'hidden': choose field, inline or drop"):
        convert(DATA / "planted.jsonl", to="sft", dry_run=True, reasoning="hidden")
