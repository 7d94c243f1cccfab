"""One decision per row: what `inspect` says for a method is what `convert --to` does, on every scan path."""

import gzip
import os
import json

import pytest
from click.testing import CliRunner

import trlprep.converters.conversion
import trlprep.inspector.scan
from trlprep.converters import convert
from trlprep.converters.cli import main as convert_main
from trlprep.inspector import inspect_dataset
from trlprep.inspector.rules import WARNING, Example, Rule, registered, unproven
from trlprep.train.cli import main as train_main
from tests.conftest import REPO, SCAN_PATHS, with_shared, write_for_scan_path
from tests.differential import Unread, check_dataset


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
    to_grpo = trlprep.converters.conversion.to_grpo

    def failing(row, data_type, dialect):  # stands for a bug of ours on one row
        if row["prompt"][0]["content"] == "boom":
            raise TypeError("sequence item 0: expected str instance, list found")
        return to_grpo(row, data_type, dialect)

    monkeypatch.setattr(trlprep.converters.conversion, "to_grpo", failing)
    result = convert(path, to="grpo", output=tmp_path / "out.jsonl")
    assert (result.rows_kept, result.rejected_by_rule) == (1, {"TC104": 1})
    (reject,) = [json.loads(line) for line in open(result.rejects)]
    assert reject["row"] == 2 and "TypeError" in reject["reason"]


PINEAPPLE = Rule("TP999", "mentions-pineapple", WARNING, "an answer mentions pineapple", "leave fruit out", "trl",
                 why="a test rule", types=frozenset({"language_modeling"}),
                 check=lambda row, shape: [f"turn {i + 1}" for i, m in enumerate(row["messages"])
                                           if "pineapple" in str(m.get("content", ""))],
                 example=Example((), ()),
                 proof=unproven("a test rule that nothing proves: its shape takes the full checks, row by row"))


def _chats(count: int, pineapple_at: tuple[int, ...]) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"Name a fruit, {i}."},
                          {"role": "assistant", "content": "pineapple" if i in pineapple_at else "apple"}],
             "id": i} for i in range(1, count + 1)]


@pytest.mark.parametrize("kind", SCAN_PATHS)
def test_a_rule_added_to_the_catalog_reaches_every_scan_path(kind, tmp_path, monkeypatch):
    rows = _chats(3000, pineapple_at=(7, 1500, 2999))  # past the head rows, and otherwise clean: fast-path rows
    path = write_for_scan_path(kind, rows, tmp_path)
    if kind == "parallel":
        monkeypatch.setattr(trlprep.inspector.scan, "PARALLEL_FROM_BYTES", 0)
    assert not inspect_dataset(path, workers=2).findings
    with registered(PINEAPPLE):  # registered before the workers fork, as a plug-in would be at import
        report = inspect_dataset(path, workers=2)
    (finding,) = report.findings
    assert (finding.rule, finding.count, finding.rows) == ("TP999", 3, [7, 1500, 2999])


EXAMPLES = sorted((REPO / "examples").glob("*.jsonl"))
AGENTS = sorted((REPO / "tests" / "data" / "agents").glob("*.jsonl"))  # tool calls in five dialects
REAL = with_shared("")  # the slices of ../shared/data, and its full files where it is beside the checkout


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.mark.parametrize("path", EXAMPLES + AGENTS + REAL, ids=lambda p: os.path.relpath(p, REPO))
def test_inspect_and_convert_agree_on_real_data(path, tokenizer):
    try:
        problems = check_dataset(path, tokenizer)
    except Unread as unread:  # both refuse it alike (a format neither reads)
        pytest.skip(f"neither command reads it: {unread}")
    assert problems == []


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dpo_en_demo.json", "kto_en_demo.json", "gsm8k_test.jsonl"])
def test_every_trainer_keeps_every_row_convert_writes(name, tokenizer, tiny_model, shared_data):
    """The trainers' own preparation (tokenizing, prompt extraction, KTO's pairing) on real data: one step of
    `train` per method on what `convert` wrote keeps every row."""
    assert check_dataset(shared_data / name, tokenizer, str(tiny_model)) == []


@pytest.mark.parametrize("rule_id", ["TP001", "TP106", "TP110", "TP108", "TP301", "TP302", "TP303", "TP304",
                                     "TP404", "TC101", "TC102"])
def test_inspect_and_convert_agree_on_the_catalogs_bad_rows(rule_id, tmp_path, tokenizer):
    from trlprep.inspector.rules import RULES

    rows = list(RULES[rule_id].example.rows) * 2  # each row twice: duplicates too
    path = tmp_path / f"{rule_id}.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    assert check_dataset(path, tokenizer) == []


def test_hh_transcripts_agree(tmp_path, tokenizer):
    assert check_dataset(write_jsonl(tmp_path / "hh.jsonl", hh_rows(30, empty_at=(2, 9))), tokenizer) == []


def _folder(tmp_path, files: dict[str, list[dict]]):
    folder = tmp_path / "parts"
    folder.mkdir()
    for name, rows in files.items():
        write_jsonl(folder / name, rows)
    return folder


SHAREGPT = [{"conversations": [{"from": "human", "value": f"Hi {i}"}, {"from": "gpt", "value": f"Hello {i}"}]}
            for i in range(6)]
MESSAGES = [{"messages": [{"role": "user", "content": f"Q{i}"}, {"role": "assistant", "content": f"A{i}"}]}
            for i in range(4)]


def test_each_file_of_a_folder_is_read_in_its_own_dialect_and_findings_name_file_and_line(tmp_path, tokenizer):
    broken = [dict(row) for row in MESSAGES]
    broken[2] = {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": " "}]}
    folder = _folder(tmp_path, {"a.jsonl": SHAREGPT, "b.jsonl": broken})
    report = inspect_dataset(folder)
    assert [(f["file"].rsplit("/", 1)[1], f["dialect"], f["rows"], f["read_as"]) for f in report.per_file] == [
        ("a.jsonl", "sharegpt", 6, None), ("b.jsonl", "trl", 4, None)]
    (finding,) = [f for f in report.findings if f.severity == "error"]
    assert finding.rows == [9] and finding.where == [f"{folder / 'b.jsonl'}:3"]
    assert report.methods["sft"]["rows_kept"] == 9
    result = convert(folder, to="sft", output=tmp_path / "out.jsonl")
    (reject,) = [json.loads(line) for line in open(result.rejects)]
    assert (reject["row"], reject["where"], reject["rule"]) == (9, f"{folder / 'b.jsonl'}:3", finding.rule)
    assert check_dataset(folder, tokenizer) == []


def test_a_file_of_another_kind_of_data_is_rejected_whole_and_listed(tmp_path, tokenizer):
    preference = [{"prompt": "Q", "chosen": "good", "rejected": "bad"}] * 2
    folder = _folder(tmp_path, {"a.jsonl": SHAREGPT, "b.jsonl": preference})
    report = inspect_dataset(folder)
    assert report.per_file[1]["read_as"]["dialect"] == "sharegpt"
    assert report.methods["sft"]["rejected_by_rule"] == {"TP404": 2}
    text = report.to_text(width=400)
    assert "b.jsonl: 2 row(s), trl standard preference" in text and "b.jsonl:1" in text
    plan = convert(folder, to="sft", dry_run=True).plan
    assert any(step.endswith("b.jsonl: trl standard preference (not the dataset's shape: its rows are rejected, "
                             "TP404)") for step in plan)
    assert check_dataset(folder, tokenizer) == []
    assert check_dataset(str(folder / "*.jsonl"), tokenizer) == []


def test_a_folder_of_many_gzip_shards_is_read_one_file_at_a_time(tmp_path):
    """200 shards under an open-file limit of 64: every file is detected from its first rows and read again
    later, never all open at once."""
    import subprocess
    import sys

    folder = tmp_path / "shards"
    folder.mkdir()
    for shard in range(200):
        lines = "".join(json.dumps(row) + "\n" for row in SHAREGPT[: 1 + shard % 6])
        (folder / f"part-{shard:05}.jsonl.gz").write_bytes(gzip.compress(lines.encode()))
    code = ("import resource, sys\nresource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))\n"
            "from trlprep.inspector import inspect_dataset\nfrom converters import convert\n"
            "report = inspect_dataset(sys.argv[1])\nresult = convert(sys.argv[1], to='sft', output=sys.argv[2])\n"
            "print(report.rows_checked, len(report.per_file), result.rows_kept, result.rows_rejected)")
    done = subprocess.run([sys.executable, "-c", code, str(folder), str(tmp_path / "out.jsonl")],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    rows = sum(1 + shard % 6 for shard in range(200))
    assert done.stdout.split() == [str(rows), "200", str(rows), "0"]


def test_a_rendered_text_beside_messages_is_flagged_and_every_method_agrees(tmp_path, tokenizer):
    """`inspect` let the `text` copy through while `convert --to grpo` refused its own output (TP112 there)."""
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}],
             "text": f"q{i} a{i}"} for i in range(5)]
    path = write_jsonl(tmp_path / "both.jsonl", rows)
    (finding,) = inspect_dataset(path).findings
    assert (finding.rule, finding.count, finding.examples[0]["detail"]) == ("TP112", 5, "column 'text' beside messages")
    assert check_dataset(path, tokenizer) == []
