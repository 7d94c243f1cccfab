"""Reasoning traces: the rules (TP801-TP806) name exactly the planted rows, on every scan path, and `convert
--reasoning` moves traces between `reasoning_content` and `<think>`, or drops them, counting the rows it changed."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import trlprep.inspector.scan

from trlprep.converters.cli import main as convert_main
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
