"""Config files as a user meets them: `[tool.trlprep]` in pyproject.toml or a trlprep.toml, found from the data's
folder upward, the command line over them, gates, refusals of a bad file, and `--show-settings`."""

import json

import pytest
from click.testing import CliRunner

import trlprep.inspector.scan
from tests.conftest import SCAN_PATHS, in_fresh_python, write_for_scan_path
from trlprep.converters.cli import main as convert_main
from trlprep.inspector.cli import main as inspect_main
from trlprep.inspector.methods import METHODS
from trlprep.inspector.files_cli import main as inspect_files_main
from trlprep.inspector.settings import resolve_settings
from trlprep.train.cli import main as train_main

CHATS = [{"messages": [{"role": "user", "content": f"What is {i} + {i}?"},
                       {"role": "assistant", "content": f"{i} + {i} is {2 * i}."}]} for i in range(8)]
EMPTY_ANSWER = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""}]}
# Ten rows: TP401 duplicate-row (a warning) on row 9, TP201 empty-content (an error) on row 10, which SFT rejects.
ROWS = CHATS + [CHATS[0], EMPTY_ANSWER]
METHOD_NAMES = ", ".join(METHODS)


def run(main, *args):
    return CliRunner().invoke(main, [str(a) for a in args])


def write_rows(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def findings(result) -> dict[str, str]:
    assert result.stdout, result.stderr
    return {f["rule"]: f["severity"] for f in json.loads(result.stdout)["findings"]}


def test_the_pyproject_table_is_found_upward_from_a_data_file_in_a_subfolder(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\n\n[tool.trlprep]\nignore = ["empty-content"]\n')
    # A pyproject.toml without the table, nearer the data, is passed over, as ruff passes one without [tool.ruff].
    (tmp_path / "data" / "pyproject.toml").parent.mkdir()
    (tmp_path / "data" / "pyproject.toml").write_text('[project]\nname = "data"\n')
    data = write_rows(tmp_path / "data" / "train" / "chats.jsonl", ROWS)

    configured = run(inspect_main, "-d", data, "--format", "json")
    assert (configured.exit_code, findings(configured)) == (0, {"TP401": "warning"})
    isolated = run(inspect_main, "-d", data, "--format", "json", "--isolated")
    assert (isolated.exit_code, findings(isolated)) == (1, {"TP201": "error", "TP401": "warning"})


def test_a_trlprep_toml_holds_the_keys_at_its_top_level_and_comes_first_in_its_folder(tmp_path):
    (tmp_path / "trlprep.toml").write_text('[severity]\nTP201 = "warning"\n')
    (tmp_path / "pyproject.toml").write_text('[tool.trlprep]\nselect = ["TP3"]\n')
    data = write_rows(tmp_path / "chats.jsonl", ROWS)

    result = run(inspect_main, "-d", data, "--format", "json")
    assert (result.exit_code, findings(result)) == (0, {"TP201": "warning", "TP401": "warning"})


@pytest.mark.parametrize("rule, level, exit_code, expected", [
    ("TP201", "warning", 0, {"TP201": "warning", "TP401": "warning"}),  # the error demoted: the data passes
    ("duplicate-row", "error", 1, {"TP401": "error"}),  # a warning, by its name, promoted: the data fails
])
def test_a_rule_s_severity_changes_the_verdict_and_the_exit_code(tmp_path, rule, level, exit_code, expected):
    (tmp_path / "trlprep.toml").write_text(f'[severity]\n"{rule}" = "{level}"\n')
    rows = ROWS if rule == "TP201" else ROWS[:-1]
    data = write_rows(tmp_path / "chats.jsonl", rows)

    result = run(inspect_main, "-d", data, "--format", "json")
    assert (result.exit_code, findings(result)) == (exit_code, expected)
    report = json.loads(result.stdout)
    assert (report["valid"], report["rows_with_errors"]) == (exit_code == 0, exit_code)  # the promoted rule's row
    assert run(inspect_main, "-d", data, "--isolated").exit_code == 1 - exit_code


def test_the_command_line_wins_over_the_config_file(tmp_path):
    (tmp_path / "trlprep.toml").write_text('select = ["TP401"]\nnear-threshold = 0.9\n')
    data = write_rows(tmp_path / "chats.jsonl", ROWS)

    from_file = run(inspect_main, "-d", data, "--format", "json")
    assert (from_file.exit_code, findings(from_file)) == (0, {"TP401": "warning"})
    from_command_line = run(inspect_main, "-d", data, "--format", "json", "--select", "TP201")
    assert (from_command_line.exit_code, findings(from_command_line)) == (1, {"TP201": "error"})

    shown = json.loads(run(inspect_main, "-d", data, "--select", "TP201", "--show-settings", "--format",
                           "json").stdout)["settings"]
    assert shown["select"] == {"value": ["TP201"], "origin": "command line"}
    assert shown["near-threshold"] == {"value": 0.9, "origin": str(tmp_path / "trlprep.toml")}


@pytest.mark.parametrize("limit, exit_code", [("5%", 1), ("10%", 0)])
def test_a_gate_fails_the_inspection_naming_its_limit_the_value_and_the_file(tmp_path, limit, exit_code):
    # TP201 is a warning here, so the gate alone decides: SFT rejects 1 of the 10 rows.
    config = tmp_path / "trlprep.toml"
    config.write_text(f'[severity]\nTP201 = "warning"\n\n[gates.sft]\nmax-rejected = "{limit}"\n')
    data = write_rows(tmp_path / "chats.jsonl", ROWS)

    result = run(inspect_main, "-d", data, "--method", "sft")
    assert result.exit_code == exit_code
    failed = (f"error: gates.sft.max-rejected failed: 10.0% (1 of 10 rows rejected for sft); limit at most 5% "
              f"({config})\n")
    assert result.stderr == (failed if exit_code else "")
    gates = json.loads(run(inspect_main, "-d", data, "--method", "sft", "--format", "json").stdout)["gates"]
    assert [(g["gate"], g["measured"], g["passed"]) for g in gates] == [("gates.sft.max-rejected", 0.1,
                                                                          not exit_code)]
    # A gate is for its method: inspecting for DPO, or with no method, checks none.
    assert run(inspect_main, "-d", data).exit_code == 0


def test_the_over_length_gate_measures_tokens_at_the_config_s_max_length(tmp_path, tiny_model):
    config = tmp_path / "trlprep.toml"
    config.write_text('max-length = 12\n\n[gates.sft]\nmax-over-length = "5%"\n')
    data = write_rows(tmp_path / "chats.jsonl", CHATS)

    result = run(inspect_main, "-d", data, "--method", "sft", "--model", tiny_model, "--format", "json")
    tokens = json.loads(result.stdout)["tokens"]
    assert tokens["max_length"] == 12 and 0 < tokens["over_max_length"] <= tokens["rows"] == 8
    share = tokens["over_max_length"] / 8
    assert result.exit_code == 1
    assert result.stderr == (f"error: gates.sft.max-over-length failed: {share:.1%} ({tokens['over_max_length']} "
                             f"of 8 rows over max_length=12); limit at most 5% ({config})\n")
    # Without --model there are no tokens to count: the gate says it was not checked, and fails nothing.
    unmeasured = run(inspect_main, "-d", data, "--method", "sft")
    assert unmeasured.exit_code == 0
    assert unmeasured.stderr == "warning: gates.sft.max-over-length not checked: it is measured with --model\n"


@pytest.mark.parametrize("name, text, message", [
    ("trlprep.toml", "near-treshold = 0.9\n",
     "near-treshold: unknown key; did you mean near-threshold? (keys: select, ignore, severity, max-rows, "
     "near-threshold, max-length, max-dropped, gates)"),
    ("trlprep.toml", 'max-rows = "five"\n', 'max-rows: expected a whole number of at least 1, got "five"'),
    ("pyproject.toml", '[tool.trlprep]\nselect = ["TP2011"]\n',
     'tool.trlprep.select: no rule has the id, id prefix or name "TP2011" (nearest: TP211)'),
    ("trlprep.toml", '[severity]\nTP201 = "fatal"\n', 'severity.TP201: expected "error" or "warning", got "fatal"'),
    ("trlprep.toml", '[gates.sfft]\nmax-rejected = "5%"\n',
     "gates.sfft: unknown method; did you mean sft? (methods: " + METHOD_NAMES + ")"),
    ("trlprep.toml", '[gates.sft]\nmax-over-length = 5\n',
     'gates.sft.max-over-length: expected a share of rows such as "5%" or 0.05 (0 to 1), got 5'),
    ("trlprep.toml", 'select = ["TP2"\nignore = []\n',
     "not valid TOML: Unclosed array (at line 2, column 1)"),
    ("trlprep.toml", '[severity]\nTP401 = "error"\nduplicate-row = "warning"\n',
     "severity: severity for TP401 set twice (TP401, duplicate-row)"),
    ("trlprep.toml", '[severity]\nTP4 = "error"\n',
     'severity.TP4: no rule has the id or name "TP4" (a severity is set for one rule, by its id such as TP401 or '
     "its name such as duplicate-row, not an id prefix; nearest: TP804)"),
    ("trlprep.toml", '[gates.SFT]\nmin-rows = 3\n',
     "gates.SFT: unknown method; did you mean sft? (methods: " + METHOD_NAMES + ")"),
    ("trlprep.toml", '[gates.sft]\nmax-rejected = "1e400%"\n',
     'gates.sft.max-rejected: expected a share of rows such as "5%" or 0.05 (0 to 1), got "1e400%"'),
    ("trlprep.toml", 'select = [""]\n',
     'select: an empty rule; give an id ("TP301"), an id prefix ("TP3") or a name'),
    ("pyproject.toml", "[tool]\ntrlprep = 3\n", "tool.trlprep must be a table, got 3"),
])
def test_a_bad_config_file_is_refused_in_one_line_naming_the_file_and_the_key(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    data = write_rows(tmp_path / "chats.jsonl", CHATS)
    for main, extra in ((inspect_main, ()), (convert_main, ("--to", "sft", "--dry-run"))):
        result = run(main, "-d", data, *extra)
        assert (result.exit_code, result.stderr) == (2, f"error: {tmp_path / name}: {message}\n")


def test_show_settings_says_where_each_value_came_from_without_reading_the_data(tmp_path):
    config = tmp_path / "pyproject.toml"
    config.write_text('[tool.trlprep]\nmax-rows = 2\nmax-dropped = "10%"\n\n[tool.trlprep.severity]\nTP401 = "error"'
                      '\n\n[tool.trlprep.gates.sft]\nmax-over-length = "5%"\n')
    data = tmp_path / "broken.parquet"
    data.write_bytes(b"not a Parquet file")  # read, it is refused (exit 2): --show-settings never reads it
    assert run(inspect_main, "-d", data).exit_code == 2

    shown = run(inspect_main, "-d", data, "--near-threshold", "0.95", "--show-settings")
    assert shown.exit_code == 0
    assert shown.stdout == (
        f"inspect: settings from {config}\n"
        f"  select                    = []       # default\n"
        f"  ignore                    = []       # default\n"
        f"  severity.TP401            = \"error\"  # {config}\n"
        f"  max-rows                  = 2        # {config}\n"
        f"  near-threshold            = 0.95     # command line\n"
        f"  max-length                = (unset)  # default\n"
        f"  gates.sft.max-over-length = \"5%\"     # {config}\n")

    as_json = run(train_main, "-d", data, "--max-length", "512", "--show-settings", "--format", "json")
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout) == {"command": "train", "config_file": str(config), "settings": {
        "max-length": {"value": 512, "origin": "command line"},
        "max-dropped": {"value": 0.1, "origin": str(config)}}}
    converting = json.loads(run(convert_main, "-d", data, "--to", "sft", "--show-settings", "--format",
                                "json").stdout)
    assert converting["settings"] == {"near-threshold": {"value": 0.8, "origin": "default"}}


def test_settings_names_the_file_to_use_and_isolated_reads_none(tmp_path):
    (tmp_path / "trlprep.toml").write_text("max-rows = 2\n")
    other = tmp_path / "strict.toml"
    other.write_text("max-rows = 3\n")
    data = write_rows(tmp_path / "chats.jsonl", CHATS)

    def max_rows(*args):
        return json.loads(run(inspect_main, "-d", data, "--show-settings", "--format", "json", *args).stdout)[
            "settings"]["max-rows"]

    assert max_rows() == {"value": 2, "origin": str(tmp_path / "trlprep.toml")}
    assert max_rows("--settings", other) == {"value": 3, "origin": str(other)}
    assert max_rows("--isolated") == {"value": 5, "origin": "default"}
    both = run(inspect_main, "-d", data, "--settings", other, "--isolated")
    assert (both.exit_code, both.stderr) == (2, "error: --settings and --isolated: give one (a config file to use, "
                                                "or none at all)\n")
    missing = run(inspect_main, "-d", data, "--settings", tmp_path / "nope.toml")
    assert (missing.exit_code, missing.stderr) == (2, f"error: {tmp_path / 'nope.toml'}: no such config file\n")


def test_resolve_settings_is_a_function_of_the_command_line_and_where_the_data_is(tmp_path):
    """A Hub id has no folder: its config file is searched from the current folder upward."""
    (tmp_path / "trlprep.toml").write_text('[gates.dpo]\nmin-rows = 1000\n')
    (tmp_path / "sub").mkdir()
    settings = resolve_settings("inspect", "trl-lib/ultrafeedback_binarized", {"max_rows": 3}, cwd=tmp_path / "sub")
    assert settings.config_file == str(tmp_path / "trlprep.toml")
    assert (settings["max-rows"], settings.origin("max-rows")) == (3, "command line")
    assert [(g.name, g.limit, g.origin) for g in settings.gates] == [
        ("gates.dpo.min-rows", 1000, str(tmp_path / "trlprep.toml"))]
    assert resolve_settings("inspect", "trl-lib/ultrafeedback_binarized", cwd=tmp_path / "sub",
                            isolated=True).config_file is None


def test_inspect_with_a_config_file_still_imports_no_torch(tmp_path):
    (tmp_path / "trlprep.toml").write_text('[severity]\nTP401 = "error"\n[gates.sft]\nmax-rejected = "50%"\n')
    data = write_rows(tmp_path / "chats.jsonl", ROWS[:-1])
    code = ("import sys; from trlprep.inspector.cli import main; sys.argv = ['inspect', '-d', sys.argv[1], "
            "'--method', 'sft']\ntry:\n    main()\nexcept SystemExit as exit:\n    print('exit', exit.code)")
    done, loaded = in_fresh_python(code, str(data))
    assert loaded == []
    assert done.stdout.rstrip().endswith("exit 1")  # TP401, made an error by the config


def test_the_configuration_page_shows_what_the_commands_print_and_every_key(monkeypatch):
    """docs/configuration.md: its `--show-settings` output is the command's, run from the checkout as printed, and
    its tables are the catalog's."""
    from tests.conftest import REPO
    from trlprep.inspector.settings import markdown_tables

    page = (REPO / "docs" / "configuration.md").read_text()
    monkeypatch.chdir(REPO)
    command = page.split("<!-- show-settings -->")[0].rsplit("```\nuv run inspect ", 1)[1].split("\n")[0]
    printed = page.split("<!-- show-settings -->\n```\n")[1].split("```")[0]
    result = run(inspect_main, *command.split())
    assert (result.exit_code, result.stdout) == (0, printed)
    as_json = page.split("```\nuv run train ", 1)[1].split("\n")[0]
    document = json.loads(page.split(as_json, 1)[1].split("```json\n", 1)[1].split("```")[0])
    assert json.loads(run(train_main, *as_json.split()).stdout) == document
    assert all(table in page for table in markdown_tables())
    assert (REPO / "examples" / "sft-gates.toml").read_text() in page


def test_train_takes_max_length_and_max_dropped_from_the_config_file(tmp_path, tiny_model):
    """Three of ten pairs have a prompt that fills max-length alone, so DPO would drop them (30%)."""
    pairs = [{"prompt": ("a very long question " * (60 if i < 3 else 1)) + f"number {i}?", "chosen": f"Yes {i}.",
              "rejected": f"No {i}."} for i in range(10)]
    data = write_rows(tmp_path / "data" / "pairs.jsonl", pairs)
    (tmp_path / "trlprep.toml").write_text('max-length = 64\nmax-dropped = "50%"\n')
    arguments = ["--method", "dpo", "--model", tiny_model, "-d", data, "--output-dir", tmp_path / "run", "--dry-run"]

    allowed = run(train_main, *arguments)
    assert allowed.exit_code == 0, allowed.output
    assert "DPOTrainer at max_length=64" in allowed.stdout
    refused = run(train_main, *arguments, "--max-dropped", "0.05")
    assert refused.exit_code == 1
    assert "DPOTrainer would drop 3 of 10 rows at max_length=64" in refused.stderr
    assert "more than --max-dropped 5%" in refused.stderr


# Rows that break rules, to count as a config's severities say: TP201 (an error) on rows 3 and 7, TP401 (a
# warning) on rows 7, 9 and 10 (row 7 repeats row 3): distinct rows in each case below.
COUNTED = CHATS[:2] + [EMPTY_ANSWER] + CHATS[2:5] + [EMPTY_ANSWER] + CHATS[5:6] + [CHATS[0], CHATS[1]]


@pytest.mark.parametrize("severity, rows", [
    ("", 2),  # the catalog's: the two rows with an empty answer
    ('duplicate-row = "error"', 4),  # and the repeats: 4 rows, though no rule flags more than 3
    ('TP201 = "warning"\nTP401 = "error"', 3),  # the repeats alone
    ('TP201 = "warning"', 0),
])
@pytest.mark.parametrize("kind", [*SCAN_PATHS, "sharded"])
def test_the_rows_breaking_error_rules_are_counted_with_the_config_s_severities(tmp_path, monkeypatch, severity,
                                                                                  rows, kind):
    (tmp_path / "trlprep.toml").write_text(f"[severity]\n{severity}\n")
    data = write_for_scan_path("jsonl" if kind == "sharded" else kind, COUNTED, tmp_path)
    extra = ("--executor", "local", "--work-dir", tmp_path / "work") if kind == "sharded" else ()
    if kind == "parallel":
        monkeypatch.setattr(trlprep.inspector.scan, "PARALLEL_FROM_BYTES", 0)
    result = run(inspect_main, "-d", data, "--format", "json", *extra)
    assert json.loads(result.stdout)["rows_with_errors"] == rows
    assert result.exit_code == (1 if rows else 0)


@pytest.mark.parametrize("example, severity, text", [
    ("broken_chat.jsonl", 'invalid-json = "warning"', "5 row(s) break error rules"),
    ("sharegpt_chat.jsonl", 'duplicate-row = "error"\nTP205 = "error"', "2 row(s) break error rules"),
])
def test_the_text_report_says_how_many_rows_break_the_configured_error_rules(tmp_path, example, severity, text):
    (tmp_path / "s.toml").write_text(f"[severity]\n{severity}\n")
    result = run(inspect_main, "-d", f"examples/{example}", "--settings", tmp_path / "s.toml")
    assert result.stdout.splitlines()[2].startswith(text)


def test_inspect_files_reads_each_file_s_config_as_inspect_does(tmp_path):
    promoted = tmp_path / "promoted"
    (promoted / "trlprep.toml").parent.mkdir()
    (promoted / "trlprep.toml").write_text('[severity]\nduplicate-row = "error"\n')
    repeated = write_rows(promoted / "chats.jsonl", CHATS + [CHATS[0]])
    plain = write_rows(tmp_path / "plain" / "chats.jsonl", CHATS + [CHATS[0]])

    assert run(inspect_main, "-d", repeated).exit_code == 1
    assert run(inspect_files_main, repeated).exit_code == 1
    assert run(inspect_files_main, plain).exit_code == 0
    assert run(inspect_files_main, "--isolated", repeated).exit_code == 0
    assert run(inspect_files_main, "--settings", promoted / "trlprep.toml", plain).exit_code == 1
    settings = run(inspect_files_main, "--show-settings", repeated)
    assert "severity.TP401 = \"error\"" in settings.stdout.replace("  ", " ")

    (promoted / "trlprep.toml").write_text('max-rows = "five"\n')
    refused = run(inspect_files_main, repeated, plain)
    assert refused.exit_code == 2  # the bad config, and the other file still checked
    assert refused.stderr == (f"error: {promoted / 'trlprep.toml'}: max-rows: expected a whole number of at least 1,"
                              f" got \"five\"\n")


def test_a_gate_for_a_method_the_data_cannot_be_used_for_is_not_passed(tmp_path):
    (tmp_path / "trlprep.toml").write_text('[gates.dpo]\nmax-rejected = "5%"\n')
    data = write_rows(tmp_path / "chats.jsonl", CHATS)

    result = run(inspect_main, "-d", data, "--method", "dpo", "--format", "json")
    (gate,) = json.loads(result.stdout)["gates"]
    assert (gate["passed"], gate["measured"]) == (None, None)
    assert gate["line"] == ("gates.dpo.max-rejected not checked: the data cannot be used for dpo (DPO needs "
                            "chosen/rejected pairs; this is language modeling data)")
    assert result.exit_code == 1  # the method's verdict fails it


def test_an_empty_rule_on_the_command_line_is_refused():
    result = run(inspect_main, "-d", "examples/sharegpt_chat.jsonl", "--select", "")
    assert (result.exit_code, result.stderr) == (
        2, "error: --select: an empty rule; give an id (TP301), an id prefix (TP3) or a name\n")


def test_a_config_file_with_a_byte_order_mark_is_read(tmp_path):
    (tmp_path / "trlprep.toml").write_bytes('\ufeffmax-dropped = "-0%"\n'.encode())
    data = write_rows(tmp_path / "chats.jsonl", CHATS)
    result = run(train_main, "-d", data, "--method", "sft", "--show-settings")
    assert result.exit_code == 0, result.stderr
    assert 'max-dropped = "0%" ' in result.stdout
