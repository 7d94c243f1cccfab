"""Options and values are checked before any work (issue 32): a value no command can use is one line on stderr and
exit 2, through the command line and the Python API alike, before a row is read or a model loaded; and a row is
refused for what is wrong with it, not for something else."""

import json
import math
import re

import click
import pytest
from click.testing import CliRunner

from tests.bad_input import refused
from tests.conftest import REPO
from tests.tiny_model import build_tiny_model
from trlprep.converters import convert
from trlprep.converters.cli import main as convert_main
from trlprep.errors import UsageError
from trlprep.inspector import SourceError, inspect_dataset
from trlprep.inspector.cli import Checked
from trlprep.inspector.cli import main as inspect_main
from trlprep.train.api import train
from trlprep.train.cli import main as train_main

CHATS = REPO / "examples" / "sharegpt_chat.jsonl"  # 12 rows; converts for sft
BROKEN = REPO / "examples" / "broken_chat.jsonl"  # fails: 6 of 7 rows break error rules
EXPAND = REPO / "tests" / "data" / "expand"


# --- 1. --select and --ignore ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("select", "closest"), [("TP999", r"TP\d\d\d"), ("duplicate_row", "duplicate-row")])
def test_select_naming_no_rule_names_the_closest(select, closest):
    line = refused(inspect_main, "--dataset", BROKEN, "--select", select)
    assert re.fullmatch(f"error: --select {select}: no rule has this id, id prefix or name; the closest is {closest}",
                        line)
    with pytest.raises(UsageError, match=f"the closest is {closest}"):
        inspect_dataset(BROKEN, select=(select,))


def test_select_takes_rules_separated_by_commas():
    """`--select TP401,TP999` was one pattern, refused with TP401 as the closest rule."""
    line = refused(inspect_main, "--dataset", BROKEN, "--select", "TP106,TP999")
    assert re.fullmatch(r"error: --select TP999: no rule has this id, id prefix or name; the closest is TP\d\d\d", line)
    listed = CliRunner().invoke(inspect_main, ["--dataset", str(BROKEN), "--select", "TP106,TP001", "--format", "json"])
    assert {f["rule"] for f in json.loads(listed.stdout)["findings"]} == {"TP106", "TP001"}


def test_select_and_ignore_of_the_same_rules_check_nothing_and_are_refused():
    line = refused(inspect_main, "--dataset", BROKEN, "--select", "TP1", "--ignore", "TP1")
    assert line == "error: --select TP1 with --ignore TP1: every rule selected is ignored, so nothing would be checked"
    with pytest.raises(UsageError, match="every rule selected is ignored"):
        inspect_dataset(BROKEN, select=("TP106",), ignore=("TP1",))
    narrowed = CliRunner().invoke(inspect_main, ["--dataset", str(BROKEN), "--select", "TP1", "--ignore", "TP101"])
    assert narrowed.exit_code == 1  # some of the rules selected are left: TP106 still fails the data


def test_an_empty_selector_is_refused():
    assert refused(inspect_main, "--dataset", BROKEN, "--select", "") == (
        "error: --select: an empty rule; give an id (TP301), an id prefix (TP3) or a name")


# --- 2. Numbers: finite, in range, one reader each -----------------------------------------------------------

@pytest.mark.parametrize("value", ["nan", "inf", "-1", "2"])
@pytest.mark.parametrize(("command", "args"), [(inspect_main, ["--near-duplicates"]),
                                               (convert_main, ["--to", "sft", "--dry-run", "--dedup", "near"])])
def test_near_threshold_nan_no_longer_turns_near_duplicates_off(command, args, value):
    line = refused(command, "--dataset", CHATS, *args, "--near-threshold", value)
    assert line == (f"error: Invalid value for '--near-threshold': expected a number from 0.5 to 1.0, "
                    f"got {float(value) if value in ('nan', 'inf') else int(value)}")


@pytest.mark.parametrize("value", [math.nan, math.inf, -1, 2])
def test_near_threshold_out_of_range_in_the_python_api(value, tmp_path):
    with pytest.raises(UsageError, match="near_threshold: expected a number from 0.5 to 1.0"):
        inspect_dataset(CHATS, near_duplicates=True, near_threshold=value)
    with pytest.raises(UsageError, match="near_threshold: expected a number from 0.5 to 1.0"):
        convert(CHATS, to="sft", dedup="near", near_threshold=value, output=tmp_path / "out.jsonl")
    assert list(tmp_path.iterdir()) == []


def _number_options(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p.type, (click.types.IntParamType, click.types.FloatParamType,
                                                             Checked))]


@pytest.mark.parametrize("command", [inspect_main, convert_main, train_main], ids=["inspect", "convert", "train"])
def test_every_number_option_is_read_by_its_declared_reader(command):
    """No int or float option is left to click's own types, which take NaN and the infinities."""
    numbers = _number_options(command)
    assert numbers and all(isinstance(p.type, Checked) for p in numbers), [
        p.name for p in numbers if not isinstance(p.type, Checked)]


NEEDS = {inspect_main: ["--dataset", CHATS, "--model", "m"], convert_main: ["--dataset", CHATS, "--to", "sft"],
         train_main: ["--dataset", CHATS, "--method", "sft", "--model", "m", "--dry-run"]}


@pytest.mark.parametrize(("command", "flag"), [(command, max(option.opts, key=len)) for command in NEEDS
                                               for option in _number_options(command)])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_no_number_option_takes_nan_or_infinity(command, flag, value):
    line = refused(command, *NEEDS[command], flag, value)
    assert line.startswith(f"error: Invalid value for '{flag}': expected ") and line.endswith(f"got {float(value)}")


def test_learning_rate_nan_is_refused_before_the_dry_run(tmp_path):
    """It once passed --dry-run and failed 35 s later in the trainer, exit 3."""
    assert refused(train_main, *NEEDS[train_main], "--learning-rate", "nan", "--output-dir", tmp_path / "run") == (
        "error: Invalid value for '--learning-rate': expected a number above 0, got nan")
    with pytest.raises(UsageError, match="learning_rate: expected a number above 0, got nan"):
        train(method="sft", model="m", dataset=CHATS, learning_rate=math.nan, output_dir=tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


# --- 3. Contradictory options --------------------------------------------------------------------------------

def test_system_with_drop_system_is_refused(tmp_path):
    assert refused(convert_main, "--dataset", CHATS, "--to", "sft", "--output", tmp_path / "o.jsonl",
                   "--system", "Be brief.", "--drop-system") == (
        "error: --system and --drop-system contradict each other: --system sets every conversation's system "
        "message, --drop-system removes them all; give one")
    with pytest.raises(UsageError, match="contradict each other"):
        convert(CHATS, to="sft", output=tmp_path / "o.jsonl", system="Be brief.", drop_system=True)
    assert list(tmp_path.iterdir()) == []


# --- 4. --test-size: a fraction between 0 and 1, or a whole row count --------------------------------------------

@pytest.mark.parametrize("value", ["1.5", "2.5", "-1", "0", "1.0", "nan", "inf", "0.0", "ten"])
def test_test_size_that_is_neither_a_fraction_nor_a_count_is_refused(value, tmp_path):
    line = refused(convert_main, "--dataset", CHATS, "--to", "sft", "--output", tmp_path / "o.jsonl",
                   "--test-size", value)
    assert line.startswith("error: Invalid value for '--test-size': expected a fraction between 0 and 1 (0.1) or "
                           "a whole row count (500), got ")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", [1.5, 2.5, -1, 1.0, math.nan, math.inf, True])
def test_test_size_in_the_python_api(value, tmp_path):
    with pytest.raises(UsageError, match=r"test_size: expected a fraction between 0 and 1 \(0.1\) or a whole row"):
        convert(CHATS, to="sft", output=tmp_path / "o.jsonl", test_size=value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("value", "test_rows"), [("0.25", 3), ("2", 2)])
def test_a_fraction_or_a_count_splits_as_written(value, test_rows, tmp_path):
    result = CliRunner().invoke(convert_main, ["--dataset", str(CHATS), "--to", "sft", "--output",
                                               str(tmp_path / "o.jsonl"), "--test-size", value])
    assert result.exit_code == 0, result.output
    counts = {split: len((tmp_path / f"o.{split}.jsonl").read_text().splitlines()) for split in ("train", "test")}
    assert counts == {"train": 12 - test_rows, "test": test_rows}


# --- 5. --set, a TRL config's values and a recipe's stages, before any model ------------------------------------

@pytest.mark.parametrize(("setting", "message"), [
    ("beta=banana", "error: --set: beta='banana': DPOConfig.beta takes a finite number"),
    ("beta=.nan", "error: --set: beta=nan: DPOConfig.beta takes a finite number"),
    ("max_length=2.5", "error: --set: max_length=2.5: DPOConfig.max_length takes a whole number or null"),
    ("beta=[0.1", "error: --set value '[0.1' is not valid YAML (while parsing a flow sequence)"),
    ("beta={a: 1", "error: --set value '{a: 1' is not valid YAML (while parsing a flow mapping)"),
])
def test_set_values_are_checked_against_the_trl_field_type(setting, message, tmp_path):
    assert refused(train_main, "--dataset", REPO / "examples" / "dpo_pairs.json", "--method", "dpo", "--model", "m",
                   "--dry-run", "--output-dir", tmp_path / "run", "--set", setting) == message
    assert list(tmp_path.iterdir()) == []


def test_a_trl_config_file_of_the_wrong_types_is_refused(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("learning_rate: fast\n")
    assert refused(train_main, *NEEDS[train_main], "--config", config, "--output-dir", tmp_path / "run") == (
        f"error: --config {config}: learning_rate='fast': SFTConfig.learning_rate takes a finite number")
    config.write_text("learning_rate: 1e-5\nlr_scheduler_type: cosine\n")  # YAML 1.1 reads 1e-5 as a string
    from trlprep.train.config import checked_settings

    assert checked_settings("sft", str(config), ())[0] == {"learning_rate": 1e-5, "lr_scheduler_type": "cosine"}


@pytest.mark.parametrize(("setting", "message"), [
    ("per_device_train_batch_size=0", "per_device_train_batch_size: expected a whole number of at least 1, got 0"),
    ("gradient_accumulation_steps=0", "gradient_accumulation_steps: expected a whole number of at least 1, got 0"),
    ("per_device_train_batch_size=-1", "per_device_train_batch_size: expected a whole number of at least 1, got -1"),
    ("learning_rate=-1", "learning_rate: expected a number above 0, got -1"),
    ("max_length=-5", "max_length: expected a whole number of at least 1, got -5"),
])
def test_set_values_out_of_range_are_refused_as_their_flags_are(setting, message, tmp_path):
    """A batch of 0 was an internal error (ZeroDivisionError, exit 3) even in --dry-run; a negative learning rate
    or batch passed --dry-run and failed in the trainer; max_length=-5 was exit 1. Each field is read by the reader
    of its flag, from --set and from a --config file alike."""
    assert refused(train_main, *NEEDS[train_main], "--output-dir", tmp_path / "run", "--set", setting) == (
        f"error: --set: {message}")
    config = tmp_path / "run.yaml"
    config.write_text(setting.replace("=", ": ") + "\n")
    assert refused(train_main, *NEEDS[train_main], "--output-dir", tmp_path / "run", "--config", config) == (
        f"error: --config {config}: {message}")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run.yaml"]


def test_a_trl_field_left_unset_or_at_trls_own_default_is_taken():
    from trlprep.train.config import checked_settings

    assert checked_settings("sft", None, ("max_length=null", "max_steps=-1"))[1] == {"max_length": None,
                                                                                      "max_steps": -1}


@pytest.mark.parametrize(("key", "value", "message"), [
    ("max_length", '"abc"', 'max_length: expected a whole number of at least 1, got "abc"'),
    ("max_dropped", "5", 'max_dropped: expected a share of rows such as "5%" or 0.05 (0 to 1), got 5'),
    ("max_dropped", '"5"', 'max_dropped: expected a share of rows such as "5%" or 0.05 (0 to 1), got 5'),
    ("test_size", "1.5", "test_size: expected a fraction between 0 and 1 (0.1) or a whole row count (500), got 1.5"),
    ("learning_rate", ".nan", "learning_rate: expected a number above 0, got nan"),
    ("set", "{beta: banana}", "--set: beta='banana': DPOConfig.beta takes a finite number"),
    ("set", "{per_device_train_batch_size: 0}", "--set: per_device_train_batch_size: expected a whole number of at "
                                                "least 1, got 0"),
])
def test_recipe_stage_values_are_refused_by_the_dry_run(key, value, message, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"model: m\noutput_dir: {tmp_path / 'runs'}\nstages:\n  - method: dpo\n"
                      f"    dataset: {REPO / 'examples' / 'dpo_pairs.json'}\n    {key}: {value}\n")
    assert refused(train_main, "--recipe", recipe, "--dry-run") == f"error: recipe stage 1 (dpo): {message}"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["recipe.yaml"]


def test_a_recipe_share_written_as_a_percentage_is_read_as_the_command_line_reads_it():
    from trlprep.options import checked
    from trlprep.train.options import RunOptions

    assert checked(RunOptions(max_dropped="5%", max_length="64", test_size="0.1")).max_dropped == 0.05


# --- 6. A hostile chat template ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("template", "overrun"), [
    ("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
     "writes more than 1,000,000 characters"),
    ("{{ 'x' * 10**10 }}", "repeats a string or list to 10,000,000,000 items (cap 1,000,000)"),
    ("{% for m in messages %}{{ m['content'] * 1000000000 }}{% endfor %}",
     "repeats a string or list to 16,000,000,000 items (cap 1,000,000)"),
    ("{{ 10 ** 1000000 }}", "computes a number of about 4,000,000 bits (cap 100,000)"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "runs longer than 5 s"),
], ids=["nested-loops", "constant-repeat", "content-repeat", "huge-power", "silent-loops"])
def test_a_hostile_chat_template_is_refused_in_one_line(template, overrun, tmp_path):
    model = build_tiny_model(tmp_path / "hostile", template=template)
    line = refused(inspect_main, "--dataset", CHATS, "--model", model)
    assert line == (f"error: --model {model}: its chat template {overrun}: refused before rendering any row (a "
                    f"template is capped at 5 s and 1,000,000 characters on probe conversations; "
                    f"docs/bad-input.md)")
    with pytest.raises(SourceError, match="its chat template"):
        convert(CHATS, to="sft", model=str(model), dry_run=True)


def test_a_template_that_fails_on_a_row_is_still_a_finding_not_a_refusal(tmp_path):
    """The sandbox's own refusal (a range over a billion numbers) fails each row's render at once: TP502."""
    model = build_tiny_model(tmp_path / "ranged", template="{% for i in range(10**9) %}x{% endfor %}")
    report = inspect_dataset(CHATS, model=str(model))
    assert [f.rows for f in report.findings if f.rule == "TP502"] == [list(range(1, 6))]


# --- 7. Reasons that name what is wrong ---------------------------------------------------------------------------

def test_an_sni_instance_without_input_is_refused_for_its_input(tmp_path):
    """Super-NaturalInstructions writes every instance's input (all 5 of the real slice, all 6,500 of the task);
    one without would train the Definition alone as the prompt of an answer to an input never shown."""
    task = json.loads((EXPAND / "task085_unnatural_addsub_arithmetic.json").read_text())
    del task["Instances"][1]["input"]
    path = tmp_path / "task.json"
    path.write_text(json.dumps(task))
    report = inspect_dataset(path)
    (finding,) = report.findings
    assert (finding.rule, finding.rows) == ("TP101", [2])
    assert finding.examples[0]["detail"].startswith("Instance.input is missing")
    result = convert(path, to="sft", output=tmp_path / "sft.jsonl")
    assert (result.rows_kept, result.rejected_by_rule) == (4, {"TP101": 1})


def test_an_oasst_reply_without_text_is_refused_for_its_text(tmp_path):
    trees = [json.loads(line) for line in (EXPAND / "oasst1_en_validation.trees.jsonl").read_text().splitlines()]
    tree = trees[2]
    reply = tree["prompt"]["replies"][0]
    del reply["text"]
    path = tmp_path / "tree.jsonl"
    path.write_text(json.dumps(tree) + "\n")
    details = [example["detail"] for finding in inspect_dataset(path).findings for example in finding.examples]
    assert f"replies[0] (reply {reply['message_id']}) has no text: the prompt's replies cannot be ranked without it" \
        in details
    assert not any("prompt is missing" in detail for detail in details)


def test_a_task_without_instances_lists_no_instances_column(tmp_path):
    tasks = EXPAND / "self_instruct_tasks.jsonl"  # its last task has no instances: rejected, never written
    assert "instances" not in inspect_dataset(tasks).extra_columns
    result = convert(tasks, to="sft", output=tmp_path / "sft.jsonl", overwrite=True)
    written = {key for line in (tmp_path / "sft.jsonl").read_text().splitlines() for key in json.loads(line)}
    assert "instances" not in written
    assert not any("instances" in line for line in result.render("text").splitlines() if "columns" in line)
