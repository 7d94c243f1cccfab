"""One decision per row: what `inspect` says for a method is what `convert --to` does, on every scan path."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import converters.api
import inspector.scan
from converters import convert
from converters.cli import main as convert_main
from inspector import inspect_dataset
from inspector.rules import WARNING, Example, Rule, registered
from train.cli import main as train_main
from tests.conftest import REPO, SHARED_DATA
from tests.differential import check_dataset, datasets_under


def _transcript(question: str, answer: str) -> str:
    return f"\n\nHuman: {question}\n\nAssistant: Let me think.\n\nHuman: Go on.\n\nAssistant: {answer}"


def hh_rows(count: int, empty_at: tuple[int, ...]) -> list[dict]:
    """hh-rlhf style pairs; at the given rows (1-based) `chosen` ends in an `Assistant:` with nothing after it."""
    rows = []
    for i in range(1, count + 1):
        question = f"What is {i} plus {i}?"
        chosen = _transcript(question, "" if i in empty_at else f"It is {2 * i}.")
        rows.append({"chosen": chosen, "rejected": _transcript(question, "I do not know.")})
    return rows


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_a_transcript_ending_in_an_empty_answer_is_flagged_and_rejected_not_an_abort(tmp_path):
    path = write_jsonl(tmp_path / "hh.jsonl", hh_rows(40, empty_at=(3, 17, 18, 40)))
    assert json.loads(path.read_text().splitlines()[2])["chosen"].endswith("Assistant: ")
    report = inspect_dataset(path)
    (finding,) = [f for f in report.findings if f.rule == "TP302"]
    assert (finding.count, finding.rows) == (4, [3, 17, 18, 40])
    for method in ("dpo", "kto", "sft", "reward"):
        verdict = report.methods[method]
        assert verdict["status"] == "convertible"
        assert (verdict["rows_kept"], verdict["rows_rejected"], verdict["rejected_by_rule"]) == (36, 4, {"TP302": 4})
    result = CliRunner().invoke(convert_main, ["--dataset", str(path), "--to", "dpo", "--output",
                                               str(tmp_path / "out.jsonl")])
    assert result.exit_code == 0, result.output
    assert "rows in 40 = kept 36 + rejected 4" in result.output
    rejects = [json.loads(line) for line in (tmp_path / "out.rejects.jsonl").read_text().splitlines()]
    assert [(r["row"], r["rule"]) for r in rejects] == [(3, "TP302"), (17, "TP302"), (18, "TP302"), (40, "TP302")]
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(written) == 36 and all(row["chosen"][-1]["content"] for row in written)


def test_train_refusal_is_exit_one_with_its_reason_before_any_model(tmp_path):
    path = write_jsonl(tmp_path / "hh.jsonl", [hh_rows(1, empty_at=(1,))[0]] * 3)
    result = CliRunner().invoke(train_main, ["--method", "dpo", "--model", str(tmp_path / "no-model"),
                                             "--dataset", str(path), "--output-dir", str(tmp_path / "run")])
    assert result.exit_code == 1, result.output
    assert "internal error" not in result.output and "no row is usable for dpo" in result.output


def test_when_every_row_is_rejected_convert_still_gives_the_ledger_and_the_rejects(tmp_path):
    path = write_jsonl(tmp_path / "kto.jsonl", [{"prompt": "q", "completion": "a", "label": False}] * 2)
    result = CliRunner().invoke(convert_main, ["--dataset", str(path), "--to", "sft", "--output",
                                               str(tmp_path / "out.jsonl")])
    assert result.exit_code == 1
    assert "rows in 2 = kept 0 + rejected 2" in result.output and "every row was rejected" in result.output
    assert len((tmp_path / "out.rejects.jsonl").read_text().splitlines()) == 2
    assert not (tmp_path / "out.jsonl").exists()


def test_reasoning_parts_are_kept_as_reasoning_content_and_grpo_takes_the_text(tmp_path):
    def turn(role, text, reasoning=None):
        parts = ([{"type": "reasoning", "value": reasoning}] if reasoning else []) + [{"type": "text", "value": text}]
        return {"role": role, "content": parts}

    rows = [{"messages": [turn("user", f"{i}+{i}?"), turn("assistant", str(2 * i), f"add {i} to itself")]}
            for i in range(5)]
    path = write_jsonl(tmp_path / "reasoning.jsonl", rows)
    assert inspect_dataset(path).methods["grpo"]["rows_kept"] == 5
    convert(path, to="grpo", output=tmp_path / "grpo.jsonl")
    grpo = [json.loads(line) for line in (tmp_path / "grpo.jsonl").read_text().splitlines()]
    assert grpo[1]["reference"] == "2" and grpo[1]["prompt"] == [{"role": "user", "content": "1+1?"}]
    convert(path, to="sft", output=tmp_path / "sft.jsonl")
    sft = json.loads((tmp_path / "sft.jsonl").read_text().splitlines()[1])
    assert sft["messages"][-1] == {"role": "assistant", "content": "2", "reasoning_content": "add 1 to itself"}


def test_a_conversion_that_fails_on_one_row_rejects_that_row_only(tmp_path, monkeypatch):
    rows = [{"question": "1+1?", "answer": "2"}, {"question": "boom", "answer": "3"}]
    path = write_jsonl(tmp_path / "qa.jsonl", rows)
    to_grpo = converters.api.to_grpo

    def failing(row, data_type, dialect):  # stands for a bug of ours on one row
        if row["prompt"][0]["content"] == "boom":
            raise TypeError("sequence item 0: expected str instance, list found")
        return to_grpo(row, data_type, dialect)

    monkeypatch.setattr(converters.api, "to_grpo", failing)
    result = convert(path, to="grpo", output=tmp_path / "out.jsonl")
    assert (result.rows_kept, result.rejected_by_rule) == (1, {"TC104": 1})
    (reject,) = [json.loads(line) for line in open(result.rejects)]
    assert reject["row"] == 2 and "TypeError" in reject["reason"]


PINEAPPLE = Rule("TP999", "mentions-pineapple", WARNING, "an answer mentions pineapple", "leave fruit out", "trl",
                 why="a test rule", types=frozenset({"language_modeling"}),
                 check=lambda row, shape: [f"turn {i + 1}" for i, m in enumerate(row["messages"])
                                           if "pineapple" in str(m.get("content", ""))],
                 example=Example((), ()))


def _chats(count: int, pineapple_at: tuple[int, ...]) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"Name a fruit, {i}."},
                          {"role": "assistant", "content": "pineapple" if i in pineapple_at else "apple"}],
             "id": i} for i in range(1, count + 1)]


def _write(kind: str, rows: list[dict], tmp_path):
    if kind in ("jsonl", "parallel"):
        return write_jsonl(tmp_path / "d.jsonl", rows)
    if kind == "gzip":
        path = tmp_path / "d.jsonl.gz"
        path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
        return path
    table = pa.Table.from_pylist(rows)
    if kind == "parquet":
        pq.write_table(table, tmp_path / "d.parquet")
        return tmp_path / "d.parquet"
    with pa.ipc.new_file(tmp_path / "d.arrow", table.schema) as writer:
        writer.write_table(table)
    return tmp_path / "d.arrow"


@pytest.mark.parametrize("kind", ["jsonl", "gzip", "parquet", "arrow", "parallel"])
def test_a_rule_added_to_the_catalog_reaches_every_scan_path(kind, tmp_path, monkeypatch):
    rows = _chats(3000, pineapple_at=(7, 1500, 2999))  # past the head rows, and otherwise clean: fast-path rows
    path = _write(kind, rows, tmp_path)
    if kind == "parallel":
        monkeypatch.setattr(inspector.scan, "PARALLEL_FROM_BYTES", 0)
    assert not inspect_dataset(path, workers=2).findings
    with registered(PINEAPPLE):  # registered before the workers fork, as a plug-in would be at import
        report = inspect_dataset(path, workers=2)
    (finding,) = report.findings
    assert (finding.rule, finding.count, finding.rows) == ("TP999", 3, [7, 1500, 2999])


EXAMPLES = sorted((REPO / "examples").glob("*.jsonl"))
SHARED = datasets_under([str(SHARED_DATA)]) if SHARED_DATA.is_dir() else []


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.mark.parametrize("path", EXAMPLES + SHARED, ids=lambda p: p.name)
def test_inspect_and_convert_agree_on_real_data(path, tokenizer):
    assert check_dataset(path, tokenizer) == []


@pytest.mark.parametrize("rule_id", ["TP001", "TP106", "TP110", "TP108", "TP301", "TP302", "TP303", "TP304",
                                     "TP404", "TC101", "TC102"])
def test_inspect_and_convert_agree_on_the_catalogs_bad_rows(rule_id, tmp_path, tokenizer):
    from inspector.rules import RULES

    rows = list(RULES[rule_id].example.rows) * 2  # each row twice: duplicates too
    path = tmp_path / f"{rule_id}.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    assert check_dataset(path, tokenizer) == []


def test_hh_transcripts_agree(tmp_path, tokenizer):
    assert check_dataset(write_jsonl(tmp_path / "hh.jsonl", hh_rows(30, empty_at=(2, 9))), tokenizer) == []
