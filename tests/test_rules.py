"""Every rule of the catalog, triggered by a crafted row at a known line of a real JSONL file."""

import re

import pytest

import json

from click.testing import CliRunner

from trlprep.converters import convert
from trlprep.inspector import inspect_dataset
from trlprep.inspector.cli import main as inspect_main
from trlprep.inspector.rules import RULES, select_rules

USER = {"role": "user", "content": "What is 2+2?"}
ASSISTANT = {"role": "assistant", "content": "4"}
CHAT = {"messages": [USER, ASSISTANT]}
PAIR = {"prompt": "2+2?", "chosen": "4", "rejected": "5"}


def msgs(*messages):
    return {"messages": list(messages)}


# rule -> (rows as written to the file, line numbers the rule must report), from the catalog's own examples
CASES = {rule.id: (list(rule.example.rows), list(rule.example.flagged)) for rule in RULES.values() if rule.example}


def test_every_rule_has_an_example_and_docs():
    # TP5xx rules need a model's tokenizer (tests/test_tokens.py triggers each); TC103/TC104 guard against our
    # own bugs (tests/test_engine.py provokes them); TP405, TP406 and TP214 run with --against, --near-duplicates
    # and --cut-off (tests/test_quality.py).
    untested = {rule for rule in RULES if rule.startswith("TP5")} | {"TC103", "TC104", "TP405", "TP406", "TP214"}
    assert set(CASES) == set(RULES) - untested
    assert all(rule.why and rule.fix and rule.summary for rule in RULES.values())


def test_rule_ids_are_stable_and_unique():
    assert all(re.fullmatch(r"T[PC]\d{3}", rule_id) for rule_id in RULES)
    assert len({rule.name for rule in RULES.values()}) == len(RULES)


FINDINGS = sorted(rule for rule in CASES if RULES[rule].stage != "method")
METHOD_RULES = sorted(rule for rule in CASES if RULES[rule].stage == "method")


@pytest.mark.parametrize("rule_id", FINDINGS)
def test_rule_is_triggered_at_the_right_line(rule_id, write_jsonl):
    rows, lines = CASES[rule_id]
    report = inspect_dataset(write_jsonl(rows))
    found = {f.rule: f for f in report.findings}
    assert rule_id in found, f"{rule_id} not reported; got {sorted(found)}"
    finding = found[rule_id]
    assert finding.severity == RULES[rule_id].severity
    assert finding.rows == lines
    if lines:
        assert finding.count == len(lines)
        assert finding.examples[0]["row"] == lines[0]


@pytest.mark.parametrize("rule_id", METHOD_RULES)
def test_method_rule_rejects_its_rows_for_its_methods_only(rule_id, write_jsonl, tmp_path):
    rows, lines = CASES[rule_id]
    path = write_jsonl(rows)
    report = inspect_dataset(path)
    for method in RULES[rule_id].methods:
        assert report.methods[method]["rejected_by_rule"] == {rule_id: len(lines)}
        result = convert(path, to=method, output=tmp_path / f"{method}.jsonl")
        rejects = [json.loads(line) for line in open(result.rejects)]
        assert [(r["row"], r["rule"]) for r in rejects] == [(line, rule_id) for line in lines]
    assert not any(f.rule == rule_id for f in report.findings)


def test_explain_prints_the_rules_manual():
    result = CliRunner().invoke(inspect_main, ["--explain", "TP302"])
    assert result.exit_code == 0
    assert result.output.startswith("TP302 empty-preference-side (error")
    assert "Why it matters:" in result.output and "Assistant: " in result.output and "Fix: drop the pair" in result.output
    assert CliRunner().invoke(inspect_main, ["--explain", "TP999"]).exit_code == 2


def test_clean_data_has_no_findings(write_jsonl):
    report = inspect_dataset(write_jsonl([CHAT, msgs(USER, {"role": "assistant", "content": "four"})]))
    assert report.findings == []
    assert report.valid and report.exit_code == 0


def test_unknown_role_names_the_mapping(write_jsonl):
    report = inspect_dataset(write_jsonl(CASES["TP106"][0]))
    (finding,) = [f for f in report.findings if f.rule == "TP106"]
    assert "--roles bot=assistant" in finding.examples[0]["detail"]


def test_label_imbalance_suggests_a_weight(write_jsonl):
    report = inspect_dataset(write_jsonl(CASES["TP403"][0]))
    (finding,) = [f for f in report.findings if f.rule == "TP403"]
    assert "undesirable_weight=5.00" in finding.message


def test_counts_are_exact_beyond_the_kept_examples(write_jsonl):
    rows = [CHAT] + [msgs(USER, USER, {"role": "assistant", "content": str(i)}) for i in range(30)]
    report = inspect_dataset(write_jsonl(rows), max_rows=3)
    (finding,) = [f for f in report.findings if f.rule == "TP203"]
    assert finding.count == 30
    assert finding.rows == [2, 3, 4]


def test_mixed_shape_count_is_exact_beyond_the_kept_examples(write_jsonl):
    rows = [CHAT] * 20 + [{"instruction": f"say {i}", "output": str(i)} for i in range(9)]
    report = inspect_dataset(write_jsonl(rows), max_rows=2)
    (finding,) = [f for f in report.findings if f.rule == "TP404"]
    assert (finding.count, finding.rows) == (9, [21, 22])
    assert report.rows_with_errors == 9


def test_select_and_ignore(write_jsonl):
    path = write_jsonl(CASES["TP401"][0] + [msgs(USER, USER, ASSISTANT)])
    assert {f.rule for f in inspect_dataset(path).findings} == {"TP401", "TP203"}
    assert {f.rule for f in inspect_dataset(path, ignore=("duplicate-row",)).findings} == {"TP203"}
    assert {f.rule for f in inspect_dataset(path, select=("TP4",)).findings} == {"TP401"}
    assert select_rules(select=("TP2",), ignore=("TP203",)) == {r for r in RULES if r.startswith("TP2")} - {"TP203"}


def test_warnings_alone_keep_exit_code_zero(write_jsonl):
    report = inspect_dataset(write_jsonl(CASES["TP203"][0]))
    assert not any(f.severity == "error" for f in report.findings)
    assert report.exit_code == 0


def test_errors_give_exit_code_one(write_jsonl):
    report = inspect_dataset(write_jsonl(CASES["TP301"][0]))
    assert report.exit_code == 1
    assert report.rows_with_errors == 1


def test_a_repeat_is_the_same_values_whatever_the_key_order_or_spacing(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}], "id": 1}\n'
                    '{"id":1,"messages":[{"content":"2+2?","role":"user"},{"role":"assistant","content":"4"}]}\n'
                    '{"id": 2, "messages": [{"role": "user", "content": "3+3?"}, {"role": "assistant", "content": "6"}]}\n')
    (finding,) = inspect_dataset(path).findings
    assert (finding.rule, finding.rows) == ("TP401", [2])
