"""Every refusal, with `--format json`, is a JSON document on stdout: its kind, reason, rule and exit code, beside
the ledger of what was done before it when there is one, so a program never has to read stderr."""

import json

import jsonschema
import pytest
from click.testing import CliRunner

from tests.conftest import REPO
from trlprep.converters.cli import main as convert_main
from trlprep.inspector.cli import main as inspect_main
from trlprep.train.cli import main as train_main

REFUSAL_SCHEMA = json.loads((REPO / "schemas" / "refusal.schema.json").read_text())
PROMPTS = [{"prompt": f"What is {n} + {n}?"} for n in range(4)]
# Every answer is empty: each row is rejected for SFT by one rule.
UNANSWERED = [{"messages": [{"role": "user", "content": f"Question {n}?"}, {"role": "assistant", "content": ""}]}
              for n in range(4)]


def refused(command, *args) -> tuple[dict, object]:
    """The JSON document a refused command printed, checked against the schema and its exit code."""
    result = CliRunner().invoke(command, [str(a) for a in args] + ["--format", "json"])
    document = json.loads(result.stdout)
    jsonschema.validate(document, REFUSAL_SCHEMA)
    assert result.exit_code == document["refusal"]["exit_code"]
    assert result.stderr.strip().endswith(document["refusal"]["reason"])  # the line stderr gets, after click's usage
    return document, result


def test_an_unreadable_dataset(tmp_path):
    document, _ = refused(inspect_main, "--dataset", tmp_path / "missing.jsonl")
    assert document["refusal"] == {"kind": "unreadable_input", "rule": None, "exit_code": 2,
                                   "reason": f"{tmp_path / 'missing.jsonl'}: no such file or folder"}


def test_a_file_that_is_not_what_its_name_says(tmp_path):
    path = tmp_path / "data.parquet"
    path.write_text("not parquet\n")
    document, _ = refused(convert_main, "--dataset", path, "--to", "sft", "--output", tmp_path / "out.jsonl")
    assert document["refusal"]["kind"] == "unreadable_input"
    assert str(path) in document["refusal"]["reason"]


def test_no_known_shape_names_its_rule(write_jsonl, tmp_path):
    path = write_jsonl([{"x": 1}, {"x": 2}])
    document, _ = refused(convert_main, "--dataset", path, "--to", "sft", "--output", tmp_path / "out.jsonl")
    assert document["refusal"]["kind"] == "data_refused"
    assert document["refusal"]["rule"] == "TP404"
    assert document["refusal"]["exit_code"] == 1
    assert not (tmp_path / "out.jsonl").exists()


def test_cannot_convert_to_a_method(write_jsonl, tmp_path):
    path = write_jsonl(PROMPTS)
    document, _ = refused(convert_main, "--dataset", path, "--to", "dpo", "--output", tmp_path / "out.jsonl")
    assert document["refusal"]["reason"].endswith(
        "cannot convert to dpo: DPO needs chosen/rejected pairs; this is prompt-only data")
    assert document["refusal"]["rule"] is None


def test_every_row_rejected_keeps_its_ledger(write_jsonl, tmp_path):
    path = write_jsonl(UNANSWERED)
    document, _ = refused(convert_main, "--dataset", path, "--to", "sft", "--output", tmp_path / "out.jsonl")
    assert (document["rows_in"], document["rows_kept"], document["rows_rejected"]) == (4, 0, 4)
    rule = next(iter(document["rejected_by_rule"]))
    assert document["rejected_by_rule"] == {rule: 4}
    assert document["refusal"]["rule"] == rule  # the one rule that rejected every row
    assert (tmp_path / "out.rejects.jsonl").exists() and not (tmp_path / "out.jsonl").exists()


def test_an_output_that_exists(write_jsonl, tmp_path):
    output = tmp_path / "out.jsonl"
    output.write_text("mine\n")
    document, _ = refused(convert_main, "--dataset", write_jsonl(PROMPTS), "--to", "grpo", "--output", output)
    assert document["refusal"]["kind"] == "output"
    assert output.read_text() == "mine\n"


@pytest.mark.parametrize("args,kind,code", [
    (("--method", "dpo", "--model", "any/model"), "data_refused", 1),
    (("--method", "dpo"), "usage", 2),
])
def test_train_refuses_before_any_model(write_jsonl, args, kind, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # train's default output folder, runs/<method>, is under the working directory
    document, _ = refused(train_main, "--dataset", write_jsonl(PROMPTS), *args)
    assert (document["refusal"]["kind"], document["refusal"]["exit_code"]) == (kind, code)


def test_text_output_keeps_stdout_for_the_ledger_only(write_jsonl, tmp_path):
    result = CliRunner().invoke(convert_main, ["--dataset", str(write_jsonl(UNANSWERED)), "--to", "sft",
                                               "--output", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 1
    assert "rows in 4 = kept 0 + rejected 4" in result.stdout and "refusal" not in result.stdout


@pytest.mark.parametrize("command,args", [
    (inspect_main, ("--method", "nosuch")),
    (inspect_main, ("--limit", "-1")),
    (inspect_main, ("--bogus",)),
    (convert_main, ("--to", "nosuch", "--output", "out.jsonl")),
])
def test_a_usage_error_click_finds_is_a_refusal_too(write_jsonl, command, args):
    document, _ = refused(command, "--dataset", write_jsonl(PROMPTS), *args)
    assert (document["refusal"]["kind"], document["refusal"]["exit_code"]) == ("usage", 2)


def test_a_missing_dataset_option_is_a_refusal(tmp_path):
    document, _ = refused(inspect_main)
    assert document["refusal"]["reason"] == "Missing option '--dataset' / '-d'."


def test_an_output_inside_the_dataset_folder_is_refused(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "part.jsonl").write_text("".join(json.dumps(row) + "\n" for row in PROMPTS))
    for output in (folder / "out.jsonl", folder / "converted"):
        document, _ = refused(convert_main, "--dataset", folder, "--to", "grpo", "--output", output)
        assert document["refusal"]["kind"] == "output" and "inside the dataset folder" in document["refusal"]["reason"]
    assert sorted(path.name for path in folder.iterdir()) == ["part.jsonl"]


def test_a_rule_selection_that_names_no_rule_is_refused(write_jsonl):
    # A typo would select nothing, and the report would say "no errors".
    document, _ = refused(inspect_main, "--dataset", write_jsonl(PROMPTS), "--select", "TP999")
    assert document["refusal"]["kind"] == "usage" and "--select TP999" in document["refusal"]["reason"]


def test_train_names_the_one_rule_that_rejected_every_row(write_jsonl, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # train's default output folder, runs/<method>, is under the working directory
    path = write_jsonl([{"text": f"Notes {n}.", "label": {"stars": n}} for n in range(3)])
    document, _ = refused(train_main, "--dataset", path, "--method", "sft", "--model", "any/model")
    assert document["refusal"]["rule"] == "TP112"
