"""Shapes whose one line holds several training rows, or one row several answers: OpenAssistant's nested trees,
Self-Instruct and Super-NaturalInstructions tasks, alpaca outputs that list samples.

What a user sees is asserted: `inspect`'s verdicts, findings and `where`, `convert`'s rows, ledger and rejects
file, and `inspect` and `convert` agreeing row for row (`tests.differential`). Data: `tests/data/expand/` (its
README names each file's source and licence).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from trlprep.converters import convert
from trlprep.inspector import inspect_dataset
from trlprep.inspector.cli import main as inspect_main
from trlprep.inspector.dialects import classify_row
from tests.differential import check_dataset

DATA = Path(__file__).parent / "data" / "expand"
TREES = DATA / "oasst1_en_validation.trees.jsonl"
SEED_TASKS = DATA / "seed_tasks_slice.jsonl"
TASKS = DATA / "self_instruct_tasks.jsonl"
SNI = DATA / "task085_unnatural_addsub_arithmetic.json"
SNI_REFERENCES = DATA / "sni_references_task.json"
SAMPLES = DATA / "alpaca_sampled_outputs.jsonl"


def _read(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def _findings(report) -> dict:
    return {f.rule: (f.count, f.rows, [where.rsplit(":", 1)[1] for where in f.where]) for f in report.findings}


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def _assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


# --- OpenAssistant's nested trees ---------------------------------------------------------------------------------

def _flattened(node: dict, parent, tree_id: str) -> list[dict]:
    """The flat export of a nested tree, written here on its own (not by trlprep's code): each message with its
    parent's id, before its replies."""
    message = {k: v for k, v in node.items() if k != "replies"}
    rows = [{**message, "parent_id": parent, "message_tree_id": tree_id}]
    for reply in node.get("replies") or []:
        rows += _flattened(reply, node["message_id"], tree_id)
    return rows


def _by_prompt(rows: list[dict]) -> dict:
    return {row["message_id"]: (row["prompt"], row.get("completion") or (row["chosen"], row["rejected"]))
            for row in rows}


def test_nested_trees_are_read_by_the_flat_rule_row_for_row(tmp_path):
    """3 trees (a line each) hold 12 prompts: the same rows, findings and conversions as their flat export."""
    trees = _read(TREES)
    flat = tmp_path / "flat.jsonl"
    flat.write_text("".join(json.dumps(m) + "\n" for t in trees for m in _flattened(t["prompt"], None,
                                                                                   t["message_tree_id"])))
    nested, flat_report = inspect_dataset(TREES), inspect_dataset(flat)
    assert (nested.dialect, nested.type, nested.rows, nested.row_numbering) == (
        "message_tree", "preference", 12, "row")
    assert {f.rule: f.count for f in nested.findings} == {f.rule: f.count for f in flat_report.findings} == {
        "TP113": 3, "TP209": 5, "TP302": 5}
    for method in ("sft", "dpo", "kto", "grpo"):
        assert (nested.methods[method]["rows_kept"], nested.methods[method]["rejected_by_rule"]) == (
            flat_report.methods[method]["rows_kept"], flat_report.methods[method]["rejected_by_rule"])
    for method in ("sft", "dpo"):
        rows = _read(convert(TREES, to=method, output=tmp_path / f"nested.{method}.jsonl").output)
        assert _by_prompt(rows) == _by_prompt(_read(convert(flat, to=method, output=tmp_path / f"flat.{method}.jsonl").output))
    # a deleted message's subtree is out: no row trains a reply below one
    deleted = {m["text"] for t in trees for m in _flattened(t["prompt"], None, "") if m["deleted"]}
    sft = _read(tmp_path / "nested.sft.jsonl")
    assert not any(turn["content"] in deleted for row in sft for turn in row["prompt"] + row["completion"])


def test_nested_tree_rows_are_numbered_in_order_and_name_their_line(tmp_path):
    report = inspect_dataset(TREES)
    assert _findings(report)["TP113"] == (3, [4, 5, 6], ["1", "1", "1"])  # three prompts of the first tree
    result = convert(TREES, to="dpo", output=tmp_path / "dpo.jsonl")
    assert (result.rows_in, result.rows_kept, result.rows_rejected) == (12, 7, 5)
    assert result.rejected_by_rule == report.methods["dpo"]["rejected_by_rule"] == {"TP302": 5}
    rejects = _read(result.rejects)
    assert [(r["row"], r["where"]) for r in rejects] == [(4, f"{TREES}:1"), (5, f"{TREES}:1"), (6, f"{TREES}:1"),
                                                          (10, f"{TREES}:2"), (11, f"{TREES}:2")]
    trees = _read(TREES)
    for reject in rejects:  # each rejected prompt is a message of the tree on the line its `where` names
        line = int(reject["where"].rsplit(":", 1)[1])
        assert reject["content"]["message_tree_id"] == trees[line - 1]["message_tree_id"]
    pair = _read(result.output)[0]
    assert pair["chosen"] != pair["rejected"] and pair["prompt"][0]["role"] == "user"


def test_a_deleted_or_review_failed_nested_reply_is_left_out_with_its_subtree(write_jsonl, tmp_path):
    def node(i, role, text, rank=None, replies=(), **more):
        return {"message_id": i, "role": role, "text": text, "rank": rank, "replies": list(replies), **more}

    tree = {"message_tree_id": "q", "tree_state": "ready_for_export", "prompt": node("q", "prompter", "2+2?", replies=[
        node("a", "assistant", "4", 0),
        node("b", "assistant", "5", 1),
        node("c", "assistant", "22", 2, deleted=True, replies=[node("q2", "prompter", "Really?", replies=[
            node("a2", "assistant", "Yes.", 0)])]),
        node("d", "assistant", "four", 3, review_result=False)])}
    path = write_jsonl([tree])
    report = inspect_dataset(path)
    assert report.rows == 2  # the prompt, and the one below the deleted reply
    assert _findings(report) == {"TP113": (1, [2], ["1"]), "TP209": (1, [1], ["1"])}
    assert report.findings[1].examples[0]["detail"] == "2 repl(ies) deleted or failed review, left out"
    (pair,) = _read(convert(path, to="dpo", output=tmp_path / "dpo.jsonl").output)
    assert (pair["prompt"], pair["chosen"], pair["rejected"]) == (_user("2+2?"), _assistant("4"), _assistant("5"))


def test_a_nested_tree_is_no_prompt_only_row_among_rows_of_another_kind():
    tree = {"message_tree_id": "q", "tree_state": "ready_for_export",
            "prompt": {"message_id": "q", "role": "prompter", "text": "Hi?", "replies": []}}
    assert classify_row(tree) is None  # it was read as TRL's prompt-only, its `prompt` an object


def test_inspect_prints_the_rows_a_file_of_trees_holds():
    result = CliRunner().invoke(inspect_main, ["--dataset", str(TREES)])
    assert result.exit_code == 1  # TP113 and TP302 are errors in some rows
    assert result.output.splitlines()[1].startswith("12 rows checked; conversational preference; dialect message_tree")


# --- Self-Instruct and Super-NaturalInstructions tasks ------------------------------------------------------------

def test_self_instruct_seed_tasks_are_one_row_an_instance(tmp_path):
    report = inspect_dataset(SEED_TASKS)
    assert (report.dialect, report.type, report.rows, report.findings) == (
        "task_instances", "prompt_completion", 3, [])
    assert report.methods["sft"]["status"] == "convertible" and report.methods["dpo"]["status"] == "incompatible"
    rows = _read(convert(SEED_TASKS, to="sft", output=tmp_path / "sft.jsonl").output)
    tasks = _read(SEED_TASKS)
    assert rows[0]["prompt"] == _user(tasks[0]["instruction"])  # an empty input adds nothing
    assert rows[1]["prompt"] == _user("What is the relation between the given pairs?\nNight : Day :: Right : Left")
    assert rows[1]["completion"] == _assistant("The relation between the given pairs is that they are opposites.")
    assert {k: rows[1][k] for k in ("id", "name", "is_classification")} == {
        "id": "seed_task_1", "name": "antonym_relation", "is_classification": False}
    assert "instance" not in rows[1] and "instruction" not in rows[1]


def test_every_instance_is_a_row_and_every_task_is_accounted_for(tmp_path):
    """4 tasks hold 7 rows: 3 instances, 1, 2 (one of them blank), and a task without instances, rejected."""
    report = inspect_dataset(TASKS)
    assert (report.rows, report.row_numbering) == (7, "row")
    assert _findings(report) == {"TP101": (1, [7], ["4"]), "TP201": (1, [6], ["3"])}
    assert report.findings[0].examples[0]["detail"] == "instance is missing"
    result = convert(TASKS, to="sft", output=tmp_path / "sft.jsonl")
    assert (result.rows_in, result.rows_kept, result.rows_rejected) == (7, 5, 2)
    assert result.rejected_by_rule == report.methods["sft"]["rejected_by_rule"] == {"TP101": 1, "TP201": 1}
    rejects = _read(result.rejects)
    assert [(r["row"], r["where"], r["rule"]) for r in rejects] == [(6, f"{TASKS}:3", "TP201"),
                                                                    (7, f"{TASKS}:4", "TP101")]
    assert rejects[0]["content"]["instance"] == {"input": "drawer", "output": "  "}
    rows = _read(result.output)
    assert [(r["id"], r["completion"][0]["content"]) for r in rows] == [
        ("task_a", "positive"), ("task_a", "negative"), ("task_a", "positive"), ("task_b", "Paris."),
        ("task_c", "desserts")]
    assert rows[1]["prompt"] == _user("Classify the sentiment of the review as positive or negative.\n"
                                      "It broke after a week.")
    grpo = _read(convert(TASKS, to="grpo", output=tmp_path / "grpo.jsonl").output)
    assert [r["reference"] for r in grpo] == [r["completion"][0]["content"] for r in rows]


def test_a_repeated_instance_is_a_duplicate_of_its_own_row(write_jsonl, tmp_path):
    """Rows of one line are numbered apart, so a repeat inside a task is found and dropped alone."""
    task = {"instruction": "Add.", "instances": [{"input": "1 2", "output": "3"}, {"input": "1 2", "output": "3"},
                                                 {"input": "2 2", "output": "4"}]}
    path = write_jsonl([task])
    assert _findings(inspect_dataset(path))["TP401"] == (1, [2], ["1"])
    result = convert(path, to="sft", output=tmp_path / "sft.jsonl", dedup=True)
    assert (result.rows_in, result.rows_kept, result.rejected_by_rule) == (3, 2, {"TP401": 1})


def test_a_super_naturalinstructions_task_file_is_one_row_an_instance(tmp_path):
    report = inspect_dataset(SNI)
    assert (report.dialect, report.rows, report.findings) == ("task_instances", 5, [])
    rows = _read(convert(SNI, to="sft", output=tmp_path / "sft.jsonl").output)
    task = json.loads(SNI.read_text())
    assert rows[0]["prompt"] == _user(task["Definition"][0] + "\n" + task["Instances"][0]["input"])
    assert rows[0]["completion"] == _assistant("28486")
    assert [r["id"] for r in rows] == [i["id"] for i in task["Instances"]]  # each instance's own id
    assert rows[0]["Categories"] == ["Mathematics"] and "Instances" not in rows[0] and "Definition" not in rows[0]


def test_reference_outputs_give_their_first_and_are_counted(tmp_path):
    report = inspect_dataset(SNI_REFERENCES)
    assert _findings(report) == {"TP216": (1, [1], ["1"]), "TP201": (1, [3], ["1"])}
    assert report.findings[1].examples[0]["detail"] == (
        "Instance.output holds 2 answers: the first is read, 1 left out")
    result = convert(SNI_REFERENCES, to="sft", output=tmp_path / "sft.jsonl")
    assert (result.rows_in, result.rows_kept, result.rejected_by_rule) == (3, 2, {"TP201": 1})
    assert [r["completion"] for r in _read(result.output)] == [_assistant("Yes"), _assistant("No")]


def test_tk_instruct_rows_of_one_instance_are_read_as_they_are(write_jsonl, tmp_path):
    """The per-instance rows Tk-Instruct's loader yields (`Instance`, singular) need no expanding."""
    rows = [{"Definition": ["Add the numbers."], "Instance": {"id": "t-1", "input": "1 2", "output": ["3"]}},
            {"Definition": ["Add the numbers."], "Instance": {"id": "t-2", "input": "2 2", "output": ["4"]}}]
    path = write_jsonl(rows)
    report = inspect_dataset(path)
    assert (report.dialect, report.rows, report.row_numbering, report.findings) == ("task_instances", 2, "line", [])
    (first, _) = _read(convert(path, to="sft", output=tmp_path / "sft.jsonl").output)
    assert (first["prompt"], first["completion"], first["id"]) == (_user("Add the numbers.\n1 2"), _assistant("3"),
                                                                   "t-1")


# --- alpaca outputs that list samples -----------------------------------------------------------------------------

def test_an_output_list_of_samples_gives_its_first_and_two_are_refused(tmp_path):
    report = inspect_dataset(SAMPLES)
    assert report.dialect == "alpaca"
    assert _findings(report) == {"TP102": (1, [4], ["4"]), "TP216": (1, [1], ["1"])}
    details = {f.rule: f.examples[0]["detail"] for f in report.findings}
    assert details["TP216"] == "output holds 3 answers: the first is read, 2 left out"
    assert details["TP102"].startswith("output is a list of 2 strings, expected one: several answers are samples "
                                       "or a ranking ([chosen, rejected] in LLaMA-Factory's old format)")
    assert report.methods["sft"]["rejected_by_rule"] == {"TP102": 1}
    result = convert(SAMPLES, to="sft", output=tmp_path / "sft.jsonl")
    assert (result.rows_in, result.rows_kept, result.rejected_by_rule) == (4, 3, {"TP102": 1})
    assert [r["completion"] for r in _read(result.output)] == [_assistant("Red."), _assistant("Bonjour."),
                                                               _assistant("Glad.")]


def test_inspect_names_the_samples_left_out():
    result = CliRunner().invoke(inspect_main, ["--dataset", str(SAMPLES)])
    assert "TP216 answers-left-out" in result.output and "row 1: output holds 3 answers" in result.output


# --- inspect and convert agree -----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(p for p in DATA.iterdir() if p.suffix in (".json", ".jsonl")),
                         ids=lambda p: p.name)
def test_inspect_and_convert_agree_on_every_method(path):
    assert check_dataset(path) == []


def test_inspect_and_convert_agree_on_the_folder_as_one_dataset():
    assert check_dataset(DATA) == []


def test_an_instance_id_never_replaces_its_task_id(tmp_path):
    # Found by an adversarial trial: task t8's rows came out as `inst-8`.
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps({"id": "t8", "instruction": "Add.", "instances": [
        {"id": "inst-8", "input": "1 2", "output": "3"}]}) + "\n")
    convert(path, to="sft", output=tmp_path / "sft.jsonl")
    row = json.loads((tmp_path / "sft.jsonl").read_text())
    assert (row["id"], row["instance_id"]) == ("t8", "inst-8")
