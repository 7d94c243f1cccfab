"""The `inspect` command: exit codes, output formats, parity with the Python API, start-up cost."""

import json
import subprocess
import sys

import jsonschema
import pytest
from click.testing import CliRunner

from trlprep.inspector import inspect_dataset
from trlprep.inspector.cli import main
from tests.conftest import REPO, in_fresh_python, write_for_scan_path

REPORT_SCHEMA = json.loads((REPO / "schemas" / "report.schema.json").read_text())
CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _without_timing(report: dict) -> dict:
    return {**report, "stats": {}}


def test_json_output_matches_the_api_and_the_schema(shared_data):
    path = shared_data / "dpo_en_demo.json"
    result = run("--dataset", path, "--format", "json")
    assert result.exit_code == 0
    printed = json.loads(result.output)
    jsonschema.validate(printed, REPORT_SCHEMA)
    assert _without_timing(printed) == _without_timing(inspect_dataset(path).to_dict())


def test_every_report_validates_against_the_schema(write_jsonl):
    from tests.test_rules import CASES

    for rows, _ in CASES.values():
        jsonschema.validate(inspect_dataset(write_jsonl(rows)).to_dict(), REPORT_SCHEMA)


def test_text_report_names_verdicts_and_findings(shared_data):
    result = run("-d", shared_data / "alpaca_en_demo.json")
    assert result.exit_code == 0
    assert "dialect alpaca" in result.output
    assert "uv run convert --dataset" in result.output
    assert "TP401 duplicate-row" in result.output


def test_markdown_is_compact(shared_data):
    result = run("-d", shared_data / "kto_en_demo.json", "--format", "markdown", "--method", "kto")
    assert result.exit_code == 0
    assert "| kto | convertible |" in result.output
    assert len(result.output.splitlines()) < 20


@pytest.mark.parametrize("method,code", [("sft", 0), ("dpo", 1)])
def test_method_sets_the_exit_code(shared_data, method, code):
    assert run("-d", shared_data / "c4_demo.jsonl", "--method", method).exit_code == code


def test_error_findings_exit_one(write_jsonl):
    path = write_jsonl([CHAT, {"messages": []}])
    result = run("-d", path, "--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.output)["findings"][0]["rule"] == "TP111"


@pytest.mark.parametrize("args,message", [
    (["-d", "no/such/file.jsonl"], "error: no/such/file.jsonl: no such file or folder"),
    (["-d", "x.jsonl", "--method", "ppo"], "Invalid value for '--method'"),
    (["--format", "json"], "Missing option '--dataset'"),
])
def test_bad_usage_exits_two_with_one_line(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_unreadable_file_exits_two(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[{"text": "a"},')
    result = run("-d", path)
    assert result.exit_code == 2
    assert result.output.strip().startswith(f"error: {path}: invalid JSON at line 1")


def test_limit_and_select(shared_data):
    result = run("-d", shared_data / "gsm8k_test.jsonl", "--limit", "10", "--format", "json", "--select", "TP4")
    report = json.loads(result.output)
    assert report["rows_checked"] == 10 and report["sampled"] is True


def test_the_older_names_still_work_and_say_so():
    """`--sample` became `--limit` (convert's name for the same thing) and `--config` `--dataset-config` (in
    `train`, `--config` is the run's YAML): for one release the old names work, with a warning on stderr."""
    chats = REPO / "examples" / "sharegpt_chat.jsonl"
    result = run("-d", chats, "--sample", "5", "--format", "json")
    assert json.loads(result.stdout)["rows_checked"] == 5
    assert result.stderr == "warning: --sample is deprecated; use --limit\n"
    with pytest.warns(DeprecationWarning, match="sample= is deprecated; use limit="):
        assert inspect_dataset(chats, sample=5).rows_checked == 5


def test_console_script_is_cheap_and_quiet_when_piped(shared_data):
    """`inspect` on a local file imports neither datasets, torch nor trl, and draws no progress when piped."""
    code = ("import sys; from trlprep.inspector.cli import main; sys.argv = ['inspect', '-d', sys.argv[1]]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass")
    done, loaded = in_fresh_python(code, str(shared_data / "c4_demo.jsonl"))
    assert loaded == []
    assert done.stderr == ""


@pytest.mark.parametrize("kind", ["parquet", "arrow"])
def test_inspecting_parquet_or_arrow_imports_no_pandas(kind, tmp_path):
    """pyarrow.dataset imports pandas (1-3 s here): the Parquet and Arrow paths read without it, and without the
    heavy modules."""
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}
            for i in range(48)]
    rows += [{"messages": None}, {"messages": [{"role": "user", "content": None}]}]  # nulls, which Arrow fills
    path = write_for_scan_path(kind, rows, tmp_path)
    code = ("import sys; from trlprep.inspector import inspect_dataset\n"
            "print(inspect_dataset(sys.argv[1]).rows_checked, 'pandas' in sys.modules)")
    done, loaded = in_fresh_python(code, str(path))
    assert loaded == []
    assert done.stdout.split() == ["50", "False"]


def test_tables_fit_the_terminal_and_names_are_never_markup(shared_data, tmp_path):
    """`COLUMNS=60` drew 110 columns, and `c4[v2].jsonl` printed as `c4.jsonl` (read as rich markup)."""
    import os
    import shutil

    path = tmp_path / "c4[v2].jsonl"
    shutil.copyfile(shared_data / "c4_demo.jsonl", path)
    done = subprocess.run([sys.executable, "-c", "from trlprep.inspector.cli import main; main()", "-d", path.name],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "60"}, cwd=tmp_path)
    lines = done.stdout.splitlines()
    assert lines[0] == "c4[v2].jsonl"
    assert max(map(len, lines)) <= 60


def test_the_umbrella_command_runs_each_command(shared_data, tmp_path):
    from trlprep.train.commands import main as trlprep

    runner = CliRunner()
    assert runner.invoke(trlprep, ["inspect", "-d", "examples/broken_chat.jsonl"]).exit_code == 1
    converted = runner.invoke(trlprep, ["convert", "-d", str(shared_data / "c4_demo.jsonl"), "--to", "sft",
                                        "-o", str(tmp_path / "out.jsonl")])
    assert converted.exit_code == 0 and (tmp_path / "out.jsonl").exists()
    listed = runner.invoke(trlprep, ["--help"]).output
    assert all(name in listed for name in ("inspect", "convert", "train"))


@pytest.mark.parametrize("typo,meant", [("examples/sharegpt_chat.jsnl", "examples/sharegpt_chat.jsonl"),
                                        ("exampels/sharegpt_chat.jsonl", "examples/sharegpt_chat.jsonl")])
def test_a_mistyped_path_gets_the_path_it_likely_means(typo, meant):
    result = CliRunner().invoke(main, ["-d", typo])
    assert result.exit_code == 2
    assert result.output == f"error: {typo}: no such file or folder; did you mean {meant}?\n"


def test_the_hub_subset_option_has_one_name_in_every_command():
    from trlprep.converters.cli import main as convert_main
    from trlprep.train.cli import main as train_main

    for command in (main, convert_main, train_main):
        assert "--dataset-config" in CliRunner().invoke(command, ["--help"]).output
    refused = CliRunner().invoke(main, ["-d", "some-org/some-set", "--dataset-config", "en"])
    assert refused.exit_code == 2 and "cannot reach the Hugging Face Hub" in refused.output


def test_convert_summary_as_markdown(shared_data, tmp_path):
    from trlprep.converters.cli import main as convert_main

    result = CliRunner().invoke(convert_main, ["-d", "examples/broken_chat.jsonl", "--to", "sft", "-o",
                                               str(tmp_path / "out.jsonl"), "--format", "markdown"])
    assert result.exit_code == 0, result.output
    assert "| rows in | kept | rejected | written |\n| --- | --- | --- | --- |\n| 7 | 1 | 6 | 1 |" in result.output
    assert "| TP001 invalid-json | 1 |" in result.output


def test_against_without_drop_contaminated_is_bad_usage(shared_data, tmp_path):
    from trlprep.converters.cli import main as convert_main

    result = CliRunner().invoke(convert_main, ["-d", str(shared_data / "c4_demo.jsonl"), "--to", "sft", "-o",
                                               str(tmp_path / "out.jsonl"), "--against", "x.jsonl"])
    assert result.exit_code == 2 and "--against and --drop-contaminated go together" in result.output


def test_dedup_takes_exact_by_default_and_near_on_request(shared_data, tmp_path):
    from trlprep.converters.cli import main as convert_main

    alpaca = str(shared_data / "alpaca_en_demo.json")
    bare = CliRunner().invoke(convert_main, ["-d", alpaca, "--dedup", "--to", "sft", "--dry-run", "--format", "json"])
    assert bare.exit_code == 0 and json.loads(bare.output)["rejected_by_rule"] == {"TP401": 3}
    near = CliRunner().invoke(convert_main, ["-d", alpaca, "--to", "sft", "--dedup", "near", "--near-threshold",
                                             "0.9", "--dry-run", "--format", "json"])
    assert near.exit_code == 0 and json.loads(near.output)["rejected_by_rule"] == {"TP406": 3}
    wrong = CliRunner().invoke(convert_main, ["-d", alpaca, "--to", "sft", "--dedup", "fuzzy", "--dry-run"])
    assert wrong.exit_code == 2 and "'fuzzy' is not one of 'exact', 'near'" in wrong.output
    low = run("-d", alpaca, "--near-duplicates", "--near-threshold", "0.3")
    assert low.exit_code == 2 and "expected a number from 0.5 to 1.0, got 0.3" in low.output


def test_inspect_near_duplicates_in_every_format(shared_data):
    dpo = str(shared_data / "dpo_en_demo.json")
    report = json.loads(run("-d", dpo, "--near-duplicates", "--format", "json").output)
    jsonschema.validate(report, REPORT_SCHEMA)
    assert report["near_duplicates"]["clusters"] == 3
    assert [f["count"] for f in report["findings"] if f["rule"] == "TP406"] == [3]
    for output_format in ("text", "markdown"):
        shown = run("-d", dpo, "--near-duplicates", "--format", output_format).output
        assert "3 clusters, 3 rows repeat an earlier one" in shown and "TP406" in shown
