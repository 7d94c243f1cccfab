"""A rule is one registered entry: its check runs on every scan path, and its proof keeps the fast paths on.

The fast paths (typed JSON decoding, `inspector.fast`; Arrow column kernels, `inspector.columnar`) skip a row's
checks only for rules whose entries say how they are proven. These tests fail naming the rule (and the row) when
a rule takes a fast shape off its fast path, or when a rule's proof passes what its check flags.
"""

from __future__ import annotations

import json

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trlprep.inspector.decision
import trlprep.inspector.scan
from trlprep.converters import convert
from trlprep.inspector import inspect_dataset
from trlprep.inspector.checks import check_row
from trlprep.inspector.arrow import true_mask
from trlprep.inspector.columnar import ColumnPlan
from trlprep.inspector.dialects import classify_row
from trlprep.inspector.fast import FUSED_TEXT_PROOFS, FastPath, clean_text
from trlprep.inspector.rules import (RULES, ROW_STAGES, WARNING, Example, Rule, by_text, register, registered,
                             unproven_rules)
from trlprep.inspector.rules.hygiene import control_escapes
from tests.conftest import REPO, SCAN_PATHS, write_for_scan_path


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


# A clean row of each shape the fast paths take: the JSON-lines path takes all of them, the Arrow path those it has
# kernels for.
FAST_SHAPES = {
    "messages": {"messages": [user("q"), assistant("a")], "id": 1},
    "conversations": {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},
    "text": {"text": "plain"},
    "prompt_completion": {"prompt": "q", "completion": "a"},
    "prompt_completion_chat": {"prompt": [user("q")], "completion": [assistant("a")]},
    "preference": {"prompt": "q", "chosen": "a", "rejected": "b"},
    "preference_chat": {"prompt": [user("q")], "chosen": [assistant("a")], "rejected": [assistant("b")]},
    "implicit_preference_chat": {"chosen": [user("q"), assistant("a")], "rejected": [user("q"), assistant("b")]},
}
COLUMN_SHAPES = ("messages", "conversations", "text", "prompt_completion", "preference")


def _why_not_fast(example: dict) -> str:
    shape = classify_row(example)
    return ", ".join(f"{rule.id} {rule.name} ({rule.proof.how}: {rule.proof.reason})"
                     for rule in unproven_rules(shape.type, example))


@pytest.mark.parametrize("name", FAST_SHAPES)
def test_no_rule_takes_a_fast_shape_off_its_fast_path(name):
    example = FAST_SHAPES[name]
    assert _why_not_fast(example) == "", f"these rules take {name} rows off the fast paths"
    assert FastPath.for_row(classify_row(example), example) is not None
    if name in COLUMN_SHAPES:
        schema = pa.Table.from_pylist([example]).schema
        assert ColumnPlan.for_schema(classify_row(example), example, schema) is not None


def test_a_rule_that_looks_at_rows_must_say_how_it_is_proven():
    rule = Rule("TP990", "unsaid", WARNING, "s", "f", "trl", check=lambda row, shape: ())
    with pytest.raises(ValueError, match="TP990 .unsaid. looks at rows: say how the fast paths prove it"):
        register(rule)
    assert "TP990" not in RULES


def test_every_row_rule_has_a_proof_and_each_is_said():
    for rule in RULES.values():
        if rule.stage in ROW_STAGES:
            assert rule.proof is not None and rule.proof.reason, rule.id
            if rule.proof.how == "text":
                assert rule.proof.text is not None and rule.proof.arrow is not None, rule.id


def _fast_paths_for(row: dict) -> list[tuple[str, FastPath]]:
    """The fast paths built from each clean example of the row's shape."""
    shape = classify_row(row)
    if shape is None:
        return []
    from trlprep.inspector.dialects import shape_key

    return [(name, FastPath.for_row(shape, example)) for name, example in FAST_SHAPES.items()
            if shape_key(classify_row(example)) == shape_key(shape)]


@pytest.mark.parametrize("rule_id", [r.id for r in RULES.values() if r.example and r.stage in ROW_STAGES])
def test_no_fast_path_accepts_a_rows_its_rule_flags(rule_id):
    """Each rule's own example: the rows it flags are refused by every fast path of their shape."""
    rule = RULES[rule_id]
    for number in rule.example.flagged:
        row = rule.example.rows[number - 1]
        if not isinstance(row, dict):
            continue
        for name, fast in _fast_paths_for(row):
            if fast is None:
                continue
            assert fast.value(row) is None, f"{rule.id} {rule.name}: the {name} fast path accepts row {row}"
            assert fast.line(orjson.dumps(row)) is None, f"{rule.id} {rule.name}: the {name} JSON-lines path " \
                                                         f"accepts row {row}"


TEXTS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "\t\n", "4", "4 ", " 4", "a < b", "[INST] hi", "AT&amp;T", "CafÃ©", "itâ€™s",
                     "\x1b[1m4", "\x0crac{1}{2}", "lost \ufffd", "naïve café", "<br>", "<|im_end|>", "\u3000"]))


def _text_rules():
    return [rule for rule in RULES.values() if rule.proof is not None and rule.proof.how == "text"]


@settings(max_examples=400, deadline=None)
@given(text=TEXTS)
def test_a_text_proof_never_passes_what_its_rules_check_flags(text):
    """Where a rule's text proof passes a text, the rule's check finds nothing in a row holding it, and the proof's
    Arrow kernel says what its Python predicate says."""
    row = {"messages": [user("What is 2+2?"), assistant(text)]}
    flagged = {rule for rule, _ in check_row(row, classify_row(row))[0]}
    column = pa.array([text], pa.string())
    for rule in _text_rules():
        proven = rule.proof.text(text)
        if proven:
            assert rule.id not in flagged, f"{rule.id} {rule.name}: its proof passes the row {row}, its check flags it"
        assert bool(rule.proof.arrow(column)[0]) == proven, f"{rule.id} {rule.name}: Arrow and Python disagree " \
                                                            f"on {text!r}"


@settings(max_examples=400, deadline=None)
@given(text=TEXTS)
def test_the_fused_text_tests_are_the_proofs_they_fuse(text):
    """`clean_text` runs the built-in rules' text proofs in one pass (ASCII control characters found in the JSON
    bytes); it passes exactly the texts that every fused proof passes."""
    fused = clean_text(text) and not control_escapes(orjson.dumps(text))
    assert fused == all(proof.text(text) for proof in FUSED_TEXT_PROOFS), text


# A rule added the way a contributor would: one entry, its check and its text proof (the example).
TRAILING_SPACE = Rule(
    "TP990", "answer-ends-in-whitespace", WARNING, "an answer ends in white space",
    "strip the answer's trailing white space", "trl", why="the model learns to end its answers with a space",
    types=frozenset({"language_modeling", "prompt_completion"}),
    check=lambda row, shape: [
        f"{side}[{i}] ends in white space" for side in ("messages", "completion")
        for i, message in enumerate(row.get(side) or ())
        if isinstance(message, dict) and message.get("role") == "assistant"
        and isinstance(message.get("content"), str) and message["content"][-1:].isspace()],
    example=Example(({"messages": [user("q"), assistant("a")]}, {"messages": [user("q"), assistant("a ")]}), (2,)),
    proof=by_text("a text the fast paths accept does not end in white space",
                  lambda text: not text[-1:].isspace(),
                  lambda texts: ~true_mask(pc.match_substring_regex(texts, r"\s$"))))

PLANTED = (7, 1500, 2999)


def _chats(count: int) -> list[dict]:
    return [{"messages": [user(f"Name a fruit, {i}."), assistant("apple " if i in PLANTED else "apple")], "id": i}
            for i in range(1, count + 1)]


@pytest.fixture
def rows_checked_in_full(monkeypatch):
    """How many rows took the full checks (`Engine.decide`) in this process."""
    counted = []
    decide = trlprep.inspector.decision.Engine.decide

    def counting(self, value, *args, **kwargs):
        counted.append(1)
        return decide(self, value, *args, **kwargs)

    monkeypatch.setattr(trlprep.inspector.decision.Engine, "decide", counting)
    return counted


@pytest.mark.parametrize("kind", SCAN_PATHS)
def test_a_rule_added_as_one_entry_runs_on_every_path_and_keeps_the_fast_paths(kind, tmp_path, monkeypatch,
                                                                                rows_checked_in_full):
    path = write_for_scan_path(kind, _chats(3000), tmp_path)  # past the head rows, clean but for the planted answers
    if kind == "parallel":
        monkeypatch.setattr(trlprep.inspector.scan, "PARALLEL_FROM_BYTES", 0)
    assert not inspect_dataset(path, workers=2).findings
    with registered(TRAILING_SPACE):  # registered before the workers fork, as a plug-in would be at import
        rows_checked_in_full.clear()
        report = inspect_dataset(path, workers=2)
        (finding,) = report.findings
        assert (finding.rule, finding.count, finding.rows) == ("TP990", 3, list(PLANTED))
        assert finding.examples[0]["detail"] == "messages[1] ends in white space"
        # The head rows are classified in full to find the fast path's example; past them, only the planted rows.
        assert len(rows_checked_in_full) <= trlprep.inspector.scan.plan.DETECTION_ROWS + len(PLANTED), (
            f"{len(rows_checked_in_full)} rows took the full checks: the new rule took the fast path off")


def test_a_rule_added_as_one_entry_is_counted_by_convert_and_its_recheck(tmp_path):
    path = write_for_scan_path("jsonl", _chats(3000), tmp_path)
    with registered(TRAILING_SPACE):
        result = convert(path, to="sft", output=tmp_path / "out.jsonl")
    assert result.rows_kept == 3000  # a warning rejects no row
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [i + 1 for i, row in enumerate(written) if row["messages"][1]["content"].endswith(" ")] == list(PLANTED)


def test_a_tools_column_is_checked_in_full_past_the_head(tmp_path):
    """The typed decode holds a `tools` column's type, not what it declares (TP604 is unproven where a row has
    one): a broken declaration past the head rows is found, where the fast path once took it for clean."""
    rows = [{"conversations": [{"from": "human", "value": f"What is {i}+2?"}, {"from": "gpt", "value": "4"}], "tools": "[]", "id": i} for i in range(1100)]
    rows[1049]["tools"] = "not JSON"
    path = tmp_path / "tools.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    report = inspect_dataset(path)
    assert [(f.rule, f.rows) for f in report.findings] == [("TP604", [1050])]
    assert report.methods["sft"]["status"] == "convertible"


def test_the_docs_new_rule_is_found_as_printed(tmp_path):
    """The docs' "Adding a rule" entry, run as printed (its module's names in scope), finds its rows."""
    from trlprep.inspector.rules import examples

    page = (REPO / "docs" / "adding-a-rule.md").read_text(encoding="utf-8")
    code = page.split("# Adding a rule")[1].split("```python\n")[1].split("```")[0]
    scope = {**vars(examples), "Rule": Rule, "WARNING": WARNING, "by_text": by_text, "true_mask": true_mask,
             "pc": pc, "register": lambda rule: rule}
    exec(code, scope)
    path = write_for_scan_path("jsonl", _chats(3000), tmp_path)
    with registered(scope["ANSWER_ENDS_IN_WHITESPACE"]):
        (finding,) = inspect_dataset(path).findings
    assert (finding.rule, finding.rows) == ("TP218", list(PLANTED))
