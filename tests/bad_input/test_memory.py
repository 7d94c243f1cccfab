"""Memory and the quiet wrong answers of reading JSON (issue 32): no file is read whole to tell its layout, a line
over the limit is one bad row (TP001) and the rest reads, one JSON value too long to decode whole is read a value
at a time with the same rows, and a first row reads as the same row would mid-file.

The limits are lowered here (`MAX_LINE_BYTES`, `WHOLE_JSON_BYTES`) so that kilobytes stand for gigabytes;
`bench/memory.py` measures the memory at the issue's sizes.
"""

import gzip
import json

import pytest
from click.testing import CliRunner

from trlprep.converters.cli import main as convert_main
from trlprep.inspector import sources
from trlprep.inspector.cli import main as inspect_main

CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
GOOD = json.dumps(CHAT)
LIMIT = 4096


def lines(*rows: str) -> bytes:
    return "\n".join(rows).encode() + b"\n"


def inspect(path) -> tuple[int, dict | str]:
    """`inspect --format json`: the exit code and the report (or, when refused, the one-line error)."""
    result = CliRunner().invoke(inspect_main, ["--dataset", str(path), "--format", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        return 2, result.stderr.strip()
    return result.exit_code, json.loads(result.stdout)


def convert(path, out) -> dict:
    result = CliRunner().invoke(convert_main, ["-d", str(path), "--to", "sft", "-o", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def finding(report: dict, rule: str) -> dict | None:
    return next((f for f in report["findings"] if f["rule"] == rule), None)


@pytest.fixture
def line_limit(monkeypatch):
    monkeypatch.setattr(sources, "MAX_LINE_BYTES", LIMIT)
    return LIMIT


@pytest.fixture
def streamed(monkeypatch):
    """JSON values longer than 256 bytes are read a value at a time."""
    monkeypatch.setattr(sources, "WHOLE_JSON_BYTES", 256)


def long_row(size: int) -> str:
    """A valid chat row of exactly `size` bytes."""
    row = json.dumps({"messages": [{"role": "user", "content": ""}, CHAT["messages"][1]]})
    return row.replace('"content": ""', '"content": "' + "x" * (size - len(row)) + '"', 1)


# 1. A gzip that expands to gigabytes of text that is not JSON: read a line at a time, never whole.

def test_gzip_bomb_that_is_not_json_is_one_long_line(tmp_path, line_limit):
    path = tmp_path / "bomb.jsonl.gz"
    path.write_bytes(gzip.compress(b"A" * (50 * LIMIT) + b"\n" + lines(GOOD, GOOD)))
    code, report = inspect(path)
    assert code == 1 and report["rows_checked"] == 3
    assert finding(report, "TP001")["examples"][0]["detail"] == (
        f"the line is {50 * LIMIT:,} bytes, over the {LIMIT:,}-byte limit on a row")
    # Alone, it is a file no line of which reads: refused, as one undecodable line would be.
    path.write_bytes(gzip.compress(b"A" * (50 * LIMIT)))
    assert inspect(path) == (2, f"error: {path}: not JSON lines (line 1: the line is {50 * LIMIT:,} bytes, over "
                                f"the {LIMIT:,}-byte limit on a row)")


# 2. One line over the limit: one bad row, skipped without holding it, and the rest of the file read.

def test_a_line_over_the_limit_is_one_bad_row_and_the_rest_reads(tmp_path, line_limit):
    path = tmp_path / "d.jsonl"
    path.write_bytes(lines(GOOD, long_row(LIMIT + 1), GOOD, long_row(LIMIT)))
    code, report = inspect(path)
    assert code == 1 and report["rows_checked"] == 4
    assert finding(report, "TP001")["rows"] == [2]
    assert f"the line is {LIMIT + 1:,} bytes, over the {LIMIT:,}-byte limit" in finding(report, "TP001")["examples"][0]["detail"]
    summary = convert(path, tmp_path / "out.jsonl")
    assert (summary["rows_in"], summary["rows_kept"], summary["rows_rejected"]) == (4, 3, 1)
    assert sum(1 for _ in open(summary["rejects"])) == 1


# 3. A broken first line of JSON lines is row 1, not a sign of one JSON value pretty-printed over the file.

def test_a_broken_first_line_of_json_lines_is_row_1(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(lines('{"messages": [{"role": "user", "cont', *[GOOD] * 30))
    code, report = inspect(path)
    assert code == 1 and report["rows_checked"] == 31
    assert finding(report, "TP001")["rows"] == [1]


# 4. One JSON value too long to decode whole is read a value at a time: the same rows, notes and findings.

def _layouts() -> dict[str, bytes]:
    rows = [{"prompt": f"p{i}", "completion": "c"} for i in range(40)] + [{"prompt": "p0", "completion": "c"}]
    return {
        "array.json": json.dumps(rows).encode(),
        "pretty-array.json": json.dumps(rows, indent=2).encode(),
        "keyed.json": json.dumps({f"k/{i}": {"problem": f"{i}+1?", "solution": "s"} for i in range(40)}
                                 | {"k/stray": 5}, indent=2).encode(),
        "wrapped.json": json.dumps({"data": rows}, indent=2).encode(),
        "objects.json": "\n".join(json.dumps(row, indent=2) for row in rows).encode(),
    }


@pytest.mark.parametrize("name", list(_layouts()))
def test_a_long_json_value_is_read_a_value_at_a_time_with_the_same_rows(tmp_path, monkeypatch, name):
    path = tmp_path / name
    path.write_bytes(_layouts()[name])
    whole = inspect(path)
    monkeypatch.setattr(sources, "WHOLE_JSON_BYTES", 256)
    streamed = inspect(path)
    assert streamed[0] == whole[0] and streamed[1]["rows_checked"] == whole[1]["rows_checked"] >= 41
    for key in ("findings", "notes", "dialect", "columns"):
        assert streamed[1][key] == whole[1][key], key


def test_an_invalid_element_of_a_streamed_array_is_refused_at_its_line(tmp_path, monkeypatch):
    path = tmp_path / "d.json"
    text = json.dumps([{"prompt": f"p{i}", "completion": "c"} for i in range(40)], indent=2)
    path.write_text(text.replace('"p30",', '"p30" oops,'))
    whole = inspect(path)
    monkeypatch.setattr(sources, "WHOLE_JSON_BYTES", 256)
    assert inspect(path) == whole
    assert whole[1].startswith(f"error: {path}: invalid JSON at line 123: unexpected character")


def test_a_streamed_value_over_the_line_limit_is_refused(tmp_path, streamed, line_limit):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([json.loads(GOOD), json.loads(long_row(2 * LIMIT))]))
    code, error = inspect(path)
    assert code == 2 and error.startswith(f"error: {path}: a JSON value at line 1 is over the 4,096-byte limit on a row")


# 5. Quiet wrong answers: the first row reads as it would mid-file; blank lines are no empty file; a list under
#    one key is the same rows on one line and pretty-printed; a keyed object's stray value names its key.

@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_nan_in_the_first_row_is_invalid_json_as_mid_file(tmp_path, value):
    path = tmp_path / "d.jsonl"
    path.write_bytes(lines(f'{{"prompt": "a", "completion": "b", "score": {value}}}',
                           '{"prompt": "c", "completion": "d", "score": 1}'))
    code, report = inspect(path)
    assert code == 1 and finding(report, "TP001")["rows"] == [1]
    summary = convert(path, tmp_path / "out.jsonl")
    assert summary["rows_rejected"] == 1
    assert "null" not in (tmp_path / "out.jsonl").read_text()


def test_blank_lines_before_the_rows_are_no_empty_file(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\n" * 70_000 + lines(GOOD, GOOD))
    code, report = inspect(path)
    assert code == 0 and report["rows_checked"] == 2


@pytest.mark.parametrize("indent", [None, 2], ids=["one-line", "pretty-printed"])
def test_a_list_under_one_key_is_its_rows_on_one_line_as_pretty_printed(tmp_path, indent):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"data": [{"prompt": f"p{i}", "completion": "c"} for i in range(5)]}, indent=indent))
    code, report = inspect(path)
    assert code == 0 and report["rows_checked"] == 5
    assert report["notes"] == [f"{path}: one JSON object whose only key `data` holds a list of 5 rows, read as 5 rows"]


def test_a_stray_value_among_keyed_records_names_its_key(tmp_path):
    path = tmp_path / "d.json"
    records = {f"test/{i}.json": {"problem": f"{i}+1?", "solution": "s"} for i in range(3)}
    path.write_text(json.dumps(records | {"test/bad.json": 5}))
    code, report = inspect(path)
    assert code == 1 and report["rows_checked"] == 4
    assert finding(report, "TP001")["examples"][0]["detail"] == (
        "the value of key 'test/bad.json' is number, not a record (an object of fields)")


# 6. Nesting past the decoder's limit, or a lone surrogate, in the first row: as mid-file, a bad row (TP001) when
#    the rest of the file reads; one line naming the file when it is the file's only row.

@pytest.mark.parametrize("row", ['{"messages": ' + "[" * 2000 + "]" * 2000 + "}", '{"text": "\\ud800"}'],
                         ids=["nesting-2000", "lone-surrogate"])
def test_an_undecodable_first_row(tmp_path, row):
    path = tmp_path / "d.jsonl"
    path.write_bytes(lines(row, GOOD))
    code, report = inspect(path)
    assert code == 1 and finding(report, "TP001")["rows"] == [1]
    path.write_bytes(lines(row))
    code, error = inspect(path)
    assert code == 2 and error.startswith(f"error: {path}: not JSON lines (line 1: ")


def test_json_read_a_value_at_a_time_decodes_as_read_whole(monkeypatch):
    """Random arrays, objects and objects one after another (strings holding brackets, commas, quotes and
    multi-byte characters), read through buffers and batches as small as a byte: the values orjson reads whole."""
    import io
    import random

    import orjson

    from trlprep.inspector import jsonstream
    from trlprep.inspector.jsonstream import JsonReader, array_items, object_keys, values

    def value(depth: int):
        roll = random.random()
        if depth > 3 or roll < 0.3:
            return random.choice([1, -2.5, None, True, "a,b]}", 'x"y', "}, {", "é", "日本語", "😀", "\\"])
        if roll < 0.65:
            return [value(depth + 1) for _ in range(random.randint(0, 3))]
        return {random.choice(["k", "l", "é"]): value(depth + 1) for _ in range(random.randint(0, 3))}

    def reader(text: bytes) -> JsonReader:
        return JsonReader("f", io.BytesIO(text), limit=1 << 20)

    random.seed(32)
    for _ in range(500):
        for name, size in (("READ_BYTES", [1, 7, 1 << 20]), ("BATCH_BYTES", [16, 200, 1 << 20]),
                           ("MIN_WINDOW", [1, 5, 4096])):
            monkeypatch.setattr(jsonstream, name, random.choice(size))
        rows = [value(0) for _ in range(random.randint(0, 20))]
        indent, ascii_only = random.choice([None, 1]), random.random() < 0.5
        text = json.dumps(rows, indent=indent, ensure_ascii=ascii_only).encode()
        assert list(array_items(reader(text))) == orjson.loads(text)
        keyed = {str(i): row for i, row in enumerate(rows)}
        text = json.dumps(keyed, indent=indent, ensure_ascii=ascii_only).encode()
        keys = reader(text)
        assert {key: keys.value() for key in object_keys(keys)} == keyed
        text = b"\n".join(json.dumps(row, indent=1, ensure_ascii=False).encode() for row in rows)
        assert [row for _, row in values(reader(text))] == rows


# A Parquet bomb (found by the adversarial review): a few kilobytes of zstd holding one cell of a gigabyte, read
# whole, then said to hold "no errors".

def test_a_parquet_row_group_of_rows_past_the_bound_is_refused_unread(tmp_path, line_limit):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "bomb.parquet"
    pq.write_table(pa.table({"prompt": ["Hi"], "completion": ["a" * (LIMIT * 4)]}), path, compression="zstd")
    assert path.stat().st_size < LIMIT
    code, line = inspect(path)
    assert code == 2 and line.startswith(f"error: {path}: row group 0 holds ") and line.endswith(
        f"bytes in 1 row(s) once decompressed, past the bound of {LIMIT:,} bytes on one row")
    pq.write_table(pa.table({"prompt": ["Hi"] * 8, "completion": ["a" * (LIMIT // 2)] * 8}), path)
    assert inspect(path)[0] == 0  # rows under the bound, however many
