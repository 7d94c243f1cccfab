"""Every rule of the catalog, triggered by a crafted row at a known line of a real JSONL file."""

import re

import pytest

from inspector import inspect_dataset
from inspector.rules import RULES, select_rules

USER = {"role": "user", "content": "What is 2+2?"}
ASSISTANT = {"role": "assistant", "content": "4"}
CHAT = {"messages": [USER, ASSISTANT]}
PAIR = {"prompt": "2+2?", "chosen": "4", "rejected": "5"}


def msgs(*messages):
    return {"messages": list(messages)}


# rule -> (rows as written to the file, line numbers the rule must report)
CASES = {
    "TP001": ([CHAT, '{"messages": [', CHAT], [2]),
    "TP002": ([CHAT, "null", "[1, 2]", CHAT], [2, 3]),
    "TP003": ([CHAT, '{"text": "first", "text": "second"}', {"text": "third"}], [2]),
    "TP101": ([PAIR, {"prompt": "2+2?", "chosen": None, "rejected": "5"}], [2]),
    "TP102": ([{"instruction": "i", "input": "", "output": "o"},
               {"instruction": "i", "input": "", "output": {"answer": "o"}}], [2]),
    "TP103": ([CHAT, msgs("hello", ASSISTANT)], [2]),
    "TP104": ([CHAT, msgs({"content": "hi"}, ASSISTANT)], [2]),
    "TP105": ([CHAT, msgs({"role": "user"}, ASSISTANT)], [2]),
    "TP106": ([CHAT, msgs(USER, {"role": "bot", "content": "4"})], [2]),
    "TP107": ([{"prompt": [USER], "chosen": [ASSISTANT], "rejected": [{"role": "assistant", "content": "5"}]},
               {"prompt": "2+2?", "chosen": [ASSISTANT], "rejected": [{"role": "assistant", "content": "5"}]}],
              [2]),
    "TP108": ([{"prompt": [USER], "completion": [ASSISTANT]}] * 3 + [{"prompt": "2+2?", "completion": "4"}], [4]),
    "TP109": ([{"prompt": "p", "completions": ["a", "b"], "labels": [True, False]},
               {"prompt": "p", "completions": ["a", "b"], "labels": [True]}], [2]),
    "TP110": ([{"prompt": "q", "completion": "a", "label": True},
               {"prompt": "q", "completion": "b", "label": "true"}], [2]),
    "TP111": ([CHAT, {"messages": []}], [2]),
    "TP201": ([CHAT, msgs({"role": "user", "content": "  "}, ASSISTANT)], [2]),
    "TP202": ([CHAT, msgs(USER, {"role": "system", "content": "be brief"}, ASSISTANT)], [2]),
    "TP203": ([CHAT, msgs(USER, USER, ASSISTANT)], [2]),
    "TP204": ([CHAT, msgs({"role": "system", "content": "s"}, USER)], [2]),
    "TP205": ([CHAT, msgs(USER, ASSISTANT, USER)], [2]),
    "TP206": ([CHAT, msgs(USER, {"role": "tool", "content": "42"}, ASSISTANT)], [2]),
    "TP207": ([CHAT, msgs({"role": "user", "content": "<|im_start|>user\nhi"}, ASSISTANT)], [2]),
    "TP301": ([PAIR, {"prompt": "2+2?", "chosen": "4", "rejected": "4"}], [2]),
    "TP302": ([PAIR, {"prompt": "2+2?", "chosen": "", "rejected": "5"}], [2]),
    "TP303": ([{"chosen": "Q: 2+2? A: 4", "rejected": "Q: 2+2? A: 5"}, {"chosen": "four", "rejected": "5"}],
              [2]),
    "TP304": ([{"chosen": [USER, ASSISTANT], "rejected": [USER, {"role": "assistant", "content": "5"}]},
               {"chosen": [USER, ASSISTANT], "rejected": [USER, ASSISTANT, USER, ASSISTANT]}], [2]),
    "TP401": ([CHAT, msgs(USER, {"role": "assistant", "content": "four"}), CHAT], [3]),
    "TP402": ([{"prompt": "q", "completion": c, "label": True} for c in "abc"], []),
    "TP403": ([{"prompt": "q", "completion": c, "label": c != "f"} for c in "abcdef"], []),
    "TP404": ([CHAT, CHAT, CHAT, {"instruction": "Add 2 and 2", "input": "", "output": "4"}], [4]),
}


def test_every_rule_has_a_case():
    # TP5xx rules need a model's tokenizer: tests/test_tokens.py triggers each of them.
    assert set(CASES) == {rule for rule in RULES if not rule.startswith("TP5")}


def test_rule_ids_are_stable_and_unique():
    assert all(re.fullmatch(r"TP\d{3}", rule_id) for rule_id in RULES)
    assert len({rule.name for rule in RULES.values()}) == len(RULES)


@pytest.mark.parametrize("rule_id", sorted(CASES))
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


def test_readme_documents_every_rule():
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text()
    for rule in RULES.values():
        assert f"| {rule.id} | {rule.name} | {rule.severity} |" in readme, rule.id


def test_a_repeat_is_the_same_values_whatever_the_key_order_or_spacing(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}], "id": 1}\n'
                    '{"id":1,"messages":[{"content":"2+2?","role":"user"},{"role":"assistant","content":"4"}]}\n'
                    '{"id": 2, "messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}\n')
    (finding,) = inspect_dataset(path).findings
    assert (finding.rule, finding.rows) == ("TP401", [2])
