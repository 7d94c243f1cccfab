"""Properties over generated datasets of every type and dialect (hypothesis)."""

import json
import random
import tempfile
from pathlib import Path

import jsonschema
import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trlprep.converters import DataRefused, convert
from trlprep.inspector import inspect_dataset
from trlprep.inspector.checks import check_fields
from trlprep.inspector.dialects import classify_row, without_ids
from tests.differential import check_dataset
from trlprep.inspector.methods import METHODS
from trlprep.inspector.rules import unproven_rules
from trlprep.inspector.schemas import type_schemas
from tests.test_schemas import BAD_VALUES, SCHEMA_RULES

TEXT = st.from_regex(r"[a-z]{1,8}( [a-z]{1,8}){0,3}", fullmatch=True)


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def chat(min_turns=1):
    return st.lists(st.tuples(TEXT, TEXT), min_size=min_turns, max_size=3).map(
        lambda pairs: [m for q, a in pairs for m in (user(q), assistant(a))])


GENERATORS = {
    "lm-standard": st.builds(lambda t: {"text": t}, TEXT),
    "lm-conversational": st.builds(lambda m: {"messages": m}, chat()),
    "prompt-only-standard": st.builds(lambda t: {"prompt": t}, TEXT),
    "prompt-only-conversational": st.builds(lambda t: {"prompt": [user(t)]}, TEXT),
    "prompt-completion-standard": st.builds(lambda p, c: {"prompt": p, "completion": c}, TEXT, TEXT),
    "prompt-completion-conversational": st.builds(lambda p, c: {"prompt": [user(p)], "completion": [assistant(c)]},
                                                  TEXT, TEXT),
    "preference-standard": st.builds(lambda p, c, r: {"prompt": p, "chosen": c, "rejected": r}, TEXT, TEXT, TEXT),
    "preference-conversational": st.builds(
        lambda p, c, r: {"prompt": [user(p)], "chosen": [assistant(c)], "rejected": [assistant(r)]}, TEXT, TEXT, TEXT),
    "preference-implicit": st.builds(
        lambda p, c, r: {"chosen": [user(p), assistant(c)], "rejected": [user(p), assistant(r)]}, TEXT, TEXT, TEXT),
    "unpaired-standard": st.builds(lambda p, c, l: {"prompt": p, "completion": c, "label": l}, TEXT, TEXT,
                                   st.booleans()),
    "unpaired-conversational": st.builds(
        lambda p, c, l: {"prompt": [user(p)], "completion": [assistant(c)], "label": l}, TEXT, TEXT, st.booleans()),
    "alpaca": st.builds(lambda i, x, o: {"instruction": i, "input": x, "output": o}, TEXT, st.sampled_from(["", "x"]),
                        TEXT),
    "sharegpt": st.builds(lambda m: {"conversations": [{"from": "human" if x["role"] == "user" else "gpt",
                                                        "value": x["content"]} for x in m]}, chat()),
    "question-answer": st.builds(lambda q, n: {"question": q, "answer": f"so it is {n}\n#### {n}"}, TEXT,
                                 st.integers(0, 99)),
    "paired-responses": st.builds(lambda q, j, k: {"question": q, "response_j": j, "response_k": k}, TEXT, TEXT, TEXT),
    "message-pair": st.builds(lambda p, c, r: {"messages": [user(p)], "chosen": assistant(c),
                                               "rejected": assistant(r)}, TEXT, TEXT, TEXT),
    "rated": st.builds(lambda p, a, b, s: {"prompt": p, "responses": [a, b], "scores": [s, s + 1]}, TEXT, TEXT, TEXT,
                       st.integers(0, 5)),
    "messages-label": st.builds(lambda m, l: {"messages": m, "label": l}, chat(), st.booleans()),
    "transcript": st.builds(lambda q, a: {"text": f"\n\nHuman: {q}\n\nAssistant: {a}"}, TEXT, TEXT),
    "openai-preference": st.builds(lambda p, c, r: {"input": {"messages": [user(p)]},
                                                    "preferred_output": [assistant(c)],
                                                    "non_preferred_output": [assistant(r)]}, TEXT, TEXT, TEXT),
    "ultrafeedback": st.builds(lambda p, c, r, s: {"prompt": p, "chosen": [user(p), assistant(c)],
                                                   "rejected": [user(p), assistant(r)], "score_chosen": 8.0,
                                                   "score_rejected": s}, TEXT, TEXT, TEXT, st.sampled_from([3.0, 8.0])),
    "user-turns": st.builds(lambda p: {"messages": [user(p)], "id": 1}, TEXT),
    "turn-pairs": st.builds(lambda q, a: {"conversation": [{"human": q, "assistant": a}]}, TEXT, TEXT),
    "context-answer": st.builds(lambda p, a, good: {"context": [user(p)], "answer": assistant(a),
                                                    "is_desirable": good}, TEXT, TEXT, st.booleans()),
    "turn-flags": st.builds(lambda m, w: {"messages": [{**x, "loss_weight": w if x["role"] == "assistant" else 0}
                                                    for x in m]}, chat(), st.sampled_from([0, 1, 1.0, 0.5])),
    "multiple-choice": st.builds(lambda q, a, b, i: {"question": q, "choices": str([a, b]), "answer": i}, TEXT, TEXT,
                                 TEXT, st.sampled_from([0, 1, "A", "1", 2])),
    "graded-answers": st.builds(lambda q, a, w: {"Question": q, "Best Answer": a, "Incorrect Answers": f"{w}; no"},
                                TEXT, TEXT, TEXT),
    "bfcl": st.builds(lambda p: {"id": "x", "question": [[user(p)]],
                                 "function": [{"name": "f", "parameters": {"type": "dict", "properties": {}}}]}, TEXT),
}
PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def read_jsonl(path):
    with open(path) as handle:
        return [json.loads(line) for line in handle]


@PROPERTY
@given(kind=st.sampled_from(sorted(GENERATORS)), method=st.sampled_from(METHODS), data=st.data())
def test_convert_gives_ready_data_a_balanced_ledger_and_is_idempotent(kind, method, data):
    rows = data.draw(st.lists(GENERATORS[kind], min_size=1, max_size=6))
    status = inspect_dataset(rows, method=method).methods[method]["status"]
    with tempfile.TemporaryDirectory() as folder:
        once, twice = Path(folder) / "once.jsonl", Path(folder) / "twice.jsonl"
        if status == "incompatible":
            with pytest.raises(DataRefused):
                convert(rows, to=method, output=once)
            return
        try:
            result = convert(rows, to=method, output=once)
        except DataRefused as refused:
            # Allowed only when the rows that survive cannot serve the method: none at all, or one KTO class.
            assert "every row was rejected" in str(refused) or "every label has one value" in str(refused)
            return
        assert result.rows_in == len(rows) == result.rows_kept + result.rows_rejected
        assert (len(read_jsonl(result.rejects)) if result.rejects else 0) == result.rows_rejected
        assert inspect_dataset(once, method=method).methods[method]["status"] == "ready"
        again = convert(once, to=method, output=twice)
        assert again.rows_rejected == 0
        assert read_jsonl(once) == read_jsonl(twice)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(GENERATORS)), data=st.data())
def test_inspect_and_convert_agree_on_generated_datasets(kind, data):
    """The differential check (tests/differential.py) on generated datasets of every dialect, valid rows mixed
    with broken ones (any of the fast-path corpus's rows): what `inspect` says each method keeps is what
    `convert` keeps."""
    rows = data.draw(st.lists(st.one_of(GENERATORS[kind], GENERATORS[kind], ROWS), min_size=1, max_size=8))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        assert check_dataset(path) == []


TRL_KINDS = {name: gen for name, gen in GENERATORS.items()
             if name.startswith(("lm-", "prompt-", "preference-", "unpaired-"))}


@PROPERTY
@given(kind=st.sampled_from(sorted(TRL_KINDS)), data=st.data())
def test_validator_and_schemas_agree_on_generated_rows(kind, data):
    row = data.draw(TRL_KINDS[kind])
    shape = classify_row(row)
    field = data.draw(st.sampled_from(sorted(row)))
    mutated = {**row, field: data.draw(st.sampled_from(BAD_VALUES))}
    schema = type_schemas()[f"{shape.type}.{shape.format}"]
    for candidate in (row, mutated):
        rules = {rule for rule, _ in check_fields(candidate, shape)} & SCHEMA_RULES
        assert jsonschema.Draft202012Validator(schema).is_valid(candidate) == (not rules), (candidate, rules)


# What the hygiene rules look for (TP210-TP213), and texts near it that they must pass.
HYGIENE = ["CafÃ© au lait", "itâ€™s", "a\x00b", "x\x1b[0m", "lost \ufffd", "It&#39;s", "a<br>b", "AT&T", "naïve café",
           "line\nbreak\tand tab", "中文，标点", "`&amp;` in code", "\x85next"]
CONTENT = st.one_of(TEXT, st.sampled_from(["", "  ", "<|im_start|>hi", "[INST] hi", "a < b", "Human: hi", 5, None]
                                          + HYGIENE))
ROLE = st.sampled_from(["user", "assistant", "system", "tool", "bot", "human", "gpt", None])
MESSAGE = st.one_of(
    st.builds(lambda r, c: {"role": r, "content": c}, ROLE, CONTENT),
    st.builds(lambda r, c: {"from": r, "value": c}, ROLE, CONTENT),
    st.builds(lambda r, c: {"role": r, "content": c, "tool_calls": []}, ROLE, CONTENT),
    st.just("not a message"))
def _mutate(messages, index, message):
    return messages[:index] + [message] + messages[index + 1:] if index < len(messages) else messages


def _as_sharegpt(messages):
    return [{"from": {"user": "human", "assistant": "gpt"}.get(m["role"], m["role"]), "value": m["content"]}
            if isinstance(m, dict) and "role" in m and len(m) == 2 else m for m in messages]


def _retext(messages, index, text):
    return [{**m, "content": text} if i == index % len(messages) else m for i, m in enumerate(messages)]


# Mostly clean conversations with at most one message replaced, so that clean and nearly clean rows both come up;
# and clean ones with one text that only the hygiene rules (TP210-TP213) may flag.
NEAR_CLEAN = st.builds(_mutate, chat(), st.integers(0, 8), MESSAGE)
UNHYGIENIC = st.builds(_retext, chat(), st.integers(0, 8), st.sampled_from(HYGIENE))
MESSAGES = st.one_of(st.lists(MESSAGE, max_size=5), NEAR_CLEAN, NEAR_CLEAN.map(_as_sharegpt), UNHYGIENIC,
                     UNHYGIENIC.map(_as_sharegpt),
                     st.builds(lambda t: [user(t)], TEXT), st.builds(lambda t: [assistant(t)], TEXT))
ANY_FIELD = st.one_of(CONTENT, MESSAGES)
ROWS = st.one_of(
    st.builds(lambda m: {"messages": m}, MESSAGES),
    st.builds(lambda m, t: {"conversations": m, "tools": t}, MESSAGES, st.sampled_from(["[]", [], 3])),
    st.builds(lambda m: {"conversations": m}, MESSAGES),
    st.builds(lambda t: {"text": t}, CONTENT),
    st.builds(lambda p, c: {"prompt": p, "completion": c}, ANY_FIELD, ANY_FIELD),
    st.builds(lambda p, c, r: {"prompt": p, "chosen": c, "rejected": r}, ANY_FIELD, ANY_FIELD, ANY_FIELD),
    st.builds(lambda p, c, r: {"chosen": p + c, "rejected": p + r}, MESSAGES, MESSAGES, MESSAGES),
)


FAST_EXAMPLES = [
    {"messages": [user("q"), assistant("a")]},
    {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},
    {"text": "plain"},
    {"prompt": "q", "completion": "a"},
    {"prompt": [user("q")], "completion": [assistant("a")]},
    {"prompt": "q", "chosen": "a", "rejected": "b"},
    {"prompt": [user("q")], "chosen": [assistant("a")], "rejected": [assistant("b")]},
    {"chosen": [user("q"), assistant("a")], "rejected": [user("q"), assistant("b")]},
]


@settings(max_examples=3000, deadline=None)
@given(row=ROWS)
def test_fast_acceptance_never_accepts_what_the_full_checks_flag(row):
    """The scan's fast path may skip the full checks only for rows those checks would pass unchanged; a row
    reads the same from a JSON line, from a block of lines and as a decoded value, with one content hash."""
    from trlprep.inspector.checks import check_row
    from trlprep.inspector.fast import FastPath
    from trlprep.inspector.dialects import shape_key

    line = orjson.dumps(row)
    for example in FAST_EXAMPLES:
        shape = classify_row(example)
        fast = FastPath.for_row(shape, example)
        assert fast is not None, [f"{r.id} {r.name}" for r in unproven_rules(shape.type, example)]
        accepted = fast.value(row)
        assert fast.line(line) == accepted == FastPath.for_row(shape, example).line(line)  # scans agree
        in_block = fast.block(line + b"\n" + line, 2)  # None: some line is not of the structure at all
        if in_block is None:
            assert accepted is None
        else:  # of the structure, clean or not: the content hash the row scan gives the row either way
            assert in_block.clean == [accepted is not None] * 2
            assert in_block.hashes == [fast.content_hash(row)] * 2
        if accepted is not None:
            assert check_row(row, shape)[0] == [], f"the fast path accepts what these rules flag: {row}"
            assert shape_key(classify_row(row)) == shape_key(shape), row
            assert accepted == fast.content_hash(row) == fast.line(orjson.dumps(row, option=orjson.OPT_INDENT_2))


@settings(max_examples=2000, deadline=None)
@given(row=ROWS)
def test_typed_rows_skip_only_checks_that_cannot_fire(row):
    """A row that decodes into a fast path's typed structure but fails its value tests skips the checks the
    structure proves, and those its texts' proofs prove when they hold (`TypedChecks`): its decision is the one
    every check gives, findings and rejections alike. A JSON line and a decoded row get the same verdict."""
    from trlprep.inspector.decision import Engine, TypedChecks
    from trlprep.inspector.fast import FastPath, Typed
    from trlprep.inspector.methods import METHODS

    line = orjson.dumps(row)
    for example in FAST_EXAMPLES:
        shape = classify_row(example)
        fast = FastPath.for_row(shape, example)
        verdict = fast.judge(row)
        in_block = fast.block(line, 1)
        assert (verdict is None) == (in_block is None), row
        if verdict is None:
            continue
        assert verdict == Typed(*(column[0] for column in in_block)), row
        engine = Engine(shape)
        full, typed = engine.decide(row), engine.decide(row, typed=TypedChecks.of(shape, example, verdict.texts_clean))
        assert (typed.issues, typed.error, typed.left) == (full.issues, full.error, full.left), (row, verdict)
        assert [engine.rejection(typed, m) for m in METHODS] == [engine.rejection(full, m) for m in METHODS], row


COLUMN_TEXT = st.one_of(TEXT, st.sampled_from(["", "  ", "\u3000", " x", "<|im_start|>hi", "[INST] hi", "a < b",
                                               "Human: hi", "é", None] + HYGIENE))
COLUMN_ROLE = st.sampled_from(["user", "assistant", "system", "tool", "human", "gpt", None])
COLUMN_MESSAGES = st.one_of(
    st.none(),
    st.lists(st.one_of(st.builds(lambda r, c: {"role": r, "content": c}, COLUMN_ROLE, COLUMN_TEXT), st.none()),
             max_size=5),
    chat().map(lambda messages: messages[:-1] if len(messages) > 2 else messages))
COLUMN_TABLES = {
    "messages": st.lists(st.builds(lambda m, i: {"messages": m, "id": i}, COLUMN_MESSAGES,
                                   st.one_of(st.integers(0, 3), st.none())), min_size=1, max_size=12),
    "conversations": st.lists(st.builds(lambda m: {"conversations": _as_sharegpt(m) if m else m}, COLUMN_MESSAGES),
                              min_size=1, max_size=12),
    "text": st.lists(st.builds(lambda t: {"text": t}, COLUMN_TEXT), min_size=1, max_size=12),
    "prompt_completion": st.lists(st.builds(lambda p, c: {"prompt": p, "completion": c}, COLUMN_TEXT, COLUMN_TEXT),
                                  min_size=1, max_size=12),
    "preference": st.lists(st.builds(lambda p, c, r: {"prompt": p, "chosen": c, "rejected": r},
                                     COLUMN_TEXT, COLUMN_TEXT, st.one_of(COLUMN_TEXT, st.just("a"))),
                           min_size=1, max_size=12),
}
COLUMN_EXAMPLES = {
    "messages": {"messages": [user("q"), assistant("a")], "id": 1},
    "conversations": FAST_EXAMPLES[1],
    "text": {"text": "plain"},
    "prompt_completion": {"prompt": "q", "completion": "a"},
    "preference": {"prompt": "q", "chosen": "a", "rejected": "b"},
}


# How a column of each plain type is written in each variant; `retyped` applies it through lists and structs.
TYPE_VARIANTS = ("plain", "large", "view", "dictionary")
_STRINGS = {"large": pa.large_string(), "view": pa.string_view(), "dictionary": pa.dictionary(pa.int32(), pa.string())}
_LISTS = {"large": pa.large_list, "view": pa.list_view}


def retyped(kind: pa.DataType, variant: str) -> pa.DataType:
    """`kind` (a plain type) in the type `variant` writes it as.

    >>> retyped(pa.list_(pa.struct([("role", pa.string())])), "large")
    LargeListType(large_list<item: struct<role: large_string>>)
    """
    if pa.types.is_string(kind):
        return _STRINGS.get(variant, kind)
    if pa.types.is_list(kind):
        return _LISTS.get(variant, pa.list_)(kind.value_field.with_type(retyped(kind.value_type, variant)))
    if pa.types.is_struct(kind):
        return pa.struct([field.with_type(retyped(field.type, variant)) for field in kind])
    if pa.types.is_integer(kind) and variant == "dictionary":
        return pa.dictionary(pa.int32(), kind)
    return kind


def typed_table(rows: list[dict], example: dict, variant: str) -> pa.Table:
    """`rows` as a table of `example`'s plain types (as `pa.Table.from_pylist` gives them) written in `variant`."""
    schema = pa.Table.from_pylist([example]).schema
    return pa.Table.from_pylist(rows, schema=pa.schema([f.with_type(retyped(f.type, variant)) for f in schema]))


# An array's own buffers (its validity first) and its children, by type; a type not here (string views) is left
# as it is by `nulls_over_values`.
_LAYOUTS = ((pa.types.is_string, 3, None), (pa.types.is_large_string, 3, None), (pa.types.is_integer, 2, None),
            (pa.types.is_list, 2, lambda array: [array.values]),
            (pa.types.is_large_list, 2, lambda array: [array.values]),
            (pa.types.is_list_view, 3, lambda array: [array.values]),
            (pa.types.is_struct, 1, lambda array: [array.field(i) for i in range(array.type.num_fields)]))


def nulls_over_values(array: pa.Array, rng: random.Random) -> pa.Array:
    """`array` with some more of its values null, at every level (a text, a list, a struct in it, a dictionary's
    index), each keeping the value under it as Arrow allows: a null list still spanning its items, a null struct
    its fields' values. A reader that looks under a null sees a row that is not there."""
    if pa.types.is_dictionary(array.type):
        return pa.DictionaryArray.from_arrays(nulls_over_values(array.indices, rng), array.dictionary, safe=False)
    layout = next(((own, children) for test, own, children in _LAYOUTS if test(array.type)), None)
    if layout is None or array.offset:
        return array
    own, children = layout
    share = rng.choice((0, 0, 0.2, 0.5))  # of the values made null: none at some levels, so that each is tested alone
    valid = np.array([rng.random() >= share for _ in range(len(array))], dtype=bool)
    if array.null_count:
        valid &= np.array(array.is_valid().to_pylist(), dtype=bool)
    return pa.Array.from_buffers(array.type, len(array),
                                 [pa.py_buffer(np.packbits(valid, bitorder="little"))] + array.buffers()[1:own],
                                 children=[nulls_over_values(child, rng) for child in children(array)]
                                 if children else None)



@settings(max_examples=600, deadline=None)
@given(data=st.data())
def test_column_tests_accept_exactly_the_rows_the_fast_path_accepts(data):
    """Parquet and Arrow batches are checked a column at a time, in whatever Arrow types they are written
    (large, views, dictionary-encoded, with nulls over values at any level); a row passes only if `FastPath`
    passes it as the batch reads back, equal clean rows get equal hashes and unequal ones unequal, and a row's
    hash is the one it gets as plain types."""
    from trlprep.inspector.arrow import plain_batch
    from trlprep.inspector.columnar import ColumnPlan
    from trlprep.inspector.fast import FastPath

    kind = data.draw(st.sampled_from(sorted(COLUMN_TABLES)))
    rows = data.draw(COLUMN_TABLES[kind])
    example = COLUMN_EXAMPLES[kind]
    table = typed_table(rows, example, data.draw(st.sampled_from(TYPE_VARIANTS)))
    columns = [column.combine_chunks() for column in table.columns]
    if data.draw(st.booleans()):
        rng = random.Random(data.draw(st.integers(0, 1 << 32)))  # uniform: a HypothesisRandom's draws favour 0
        columns = [nulls_over_values(column, rng) for column in columns]
    batch = pa.RecordBatch.from_arrays(columns, table.column_names)
    read_back = batch.to_pylist()
    shape = classify_row(example)
    clean, hashes = _column_tests(ColumnPlan, shape, example, plain_batch(batch))
    fast = FastPath.for_row(shape, example)
    assert clean.tolist() == [fast.value(row) is not None for row in read_back], read_back
    # Equal content, equal hash, id-like columns aside (rows that differ only in an id repeat); and the converse.
    accepted = {(orjson.dumps(without_ids(row), option=orjson.OPT_SORT_KEYS), int(row_hash))
                for row, row_hash, ok in zip(read_back, hashes, clean) if ok}
    assert len({content for content, _ in accepted}) == len(accepted) == len({h for _, h in accepted})
    as_plain = typed_table(read_back, example, "plain").to_batches()[0]
    assert hashes[clean].tolist() == _column_tests(ColumnPlan, shape, example, as_plain)[1][clean].tolist()


def _column_tests(plans, shape, example, batch):
    """The column kernels' clean mask and content hashes of a batch (of plain types)."""
    plan = plans.for_schema(shape, example, batch.schema)
    assert plan is not None, [f"{r.id} {r.name}" for r in unproven_rules(shape.type, example)]
    return plan.clean_rows(batch)


@settings(max_examples=1500, deadline=None)
@given(row=ROWS, extra=st.sampled_from([{}, {"id": 3}, {"source": "web"}]))
def test_fast_conversion_writes_what_the_full_conversion_writes(row, extra):
    """Clean JSON lines convert without Python rows; the line written is the full conversion's row."""
    from trlprep.converters.conversion import RowConverter
    from trlprep.converters.options import ConvertOptions
    from trlprep.converters.fast import fast_conversion
    from trlprep.converters.transforms import Reject
    from trlprep.inspector.fast import FastPath

    row = {**row, **extra}
    for example, to in ((FAST_EXAMPLES[0], "sft"), (FAST_EXAMPLES[1], "sft"), (FAST_EXAMPLES[-1], "dpo")):
        example = {**example, **extra}
        shape = classify_row(example)
        convert = fast_conversion(FastPath.for_row(shape, example), shape, to)
        assert convert is not None
        written = convert(orjson.dumps(row))
        if written is None:
            continue
        try:
            converter = RowConverter(ConvertOptions(to=to))
            converter.read(shape)
            full = converter.convert_row(row)
        except Reject as reject:
            raise AssertionError(f"the full path rejects what the fast one wrote: {reject}") from None
        assert [orjson.loads(written)] == full
