"""The worst files users have: each gives its exit code and a message naming the file, the row and the problem.

Exit code 2: the input cannot be read at all. Exit code 1: it reads, but rows fail validation. Never a traceback.
"""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from trlprep.converters.cli import main as convert_main
from trlprep.inspector.cli import main as inspect_main

CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
GOOD = json.dumps(CHAT)


def lines(*rows) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode() + b"\n"


def parquet_bytes() -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist([CHAT] * 3), sink)
    return sink.getvalue().to_pybytes()


def nested(depth: int) -> str:
    return '{"messages": ' + "[" * depth + "]" * depth + "}"


# name, file name, content (bytes, or a callable making the path), exit code, text the output must hold
CASES = [
    ("truncated-line", "d.jsonl", lines(GOOD, GOOD, '{"messages": [{"role": "user", "cont'), 1, "TP001"),
    ("invalid-json-mid-file", "d.jsonl", lines(GOOD, "{'single': 'quotes'}", GOOD), 1, "row 2: invalid JSON"),
    ("every-line-garbage", "d.jsonl", b"\n".join([b"not json at all"] * 25), 2, "not JSON lines (line 1"),
    ("invalid-utf8", "d.jsonl", lines(GOOD).replace(b"Hello", b"Hel\xff\xfelo") + lines(GOOD), 2,
     "line 1 is not UTF-8 (invalid start byte at column 87)"),
    ("lone-surrogate", "d.jsonl", lines(GOOD, '{"text": "\\ud800"}', GOOD), 1, "TP001"),
    ("bom", "d.jsonl", b"\xef\xbb\xbf" + lines(GOOD, GOOD), 0, "dialect trl"),
    ("crlf", "d.jsonl", lines(GOOD, GOOD).replace(b"\n", b"\r\n"), 0, "dialect trl"),
    ("empty-file", "d.jsonl", b"", 2, "empty file (no rows)"),
    ("whitespace-only", "d.jsonl", b"  \n\n\t \n", 2, "empty file (no rows)"),
    ("empty-array", "d.json", b"[]", 2, "no rows"),
    ("top-level-scalar", "d.json", b"42", 2, "top-level JSON value is int"),
    ("top-level-string", "d.json", b'"just a string"', 2, "top-level JSON value is str"),
    ("array-of-strings", "d.json", b'["a", "b", "c"]', 1, "the row is string"),
    ("null-rows", "d.jsonl", lines(GOOD, "null", GOOD), 1, "TP002"),
    ("nan", "d.jsonl", lines(GOOD, '{"text": NaN}', GOOD), 1, "TP001"),
    ("infinity", "d.jsonl", lines(GOOD, '{"prompt": "a", "completion": "b", "score": Infinity}', GOOD), 1, "TP001"),
    ("nested-null-message", "d.jsonl", lines(GOOD, {"messages": [None, CHAT["messages"][1]]}), 1, "TP103"),
    ("null-content", "d.jsonl", lines(GOOD, {"messages": [{"role": "user", "content": None},
                                                          CHAT["messages"][1]]}), 1, "TP105"),
    ("null-role", "d.jsonl", lines(GOOD, {"messages": [{"role": None, "content": "x"}, CHAT["messages"][1]]}), 1,
     "TP106"),
    ("type-changes-between-rows", "d.jsonl", lines(*[{"prompt": [CHAT["messages"][0]],
                                                      "completion": [CHAT["messages"][1]]}] * 3,
                                                   {"prompt": "Hi", "completion": "Hello"}), 1, "TP108"),
    ("messages-is-a-string", "d.jsonl", lines(GOOD, GOOD, {"messages": "Hi Hello"}), 1, "TP102"),
    ("content-is-a-number", "d.jsonl", lines(GOOD, {"messages": [{"role": "user", "content": 7},
                                                                 CHAT["messages"][1]]}), 1, "TP102"),
    ("huge-row-30mb", "d.jsonl", lines(GOOD, {"messages": [{"role": "user", "content": "x" * 30_000_000},
                                                           CHAT["messages"][1]]}), 0, "2 rows checked"),
    ("nesting-beyond-limits", "d.jsonl", lines(GOOD, nested(5000)), 1, "TP001"),
    ("nesting-within-limits", "d.jsonl", lines(GOOD, nested(200)), 1, "TP103"),
    ("duplicate-keys", "d.jsonl", lines(GOOD, '{"text": "a", "text": "b"}'), 1, "TP003"),
    ("binary-under-jsonl-name", "d.jsonl", bytes(range(256)) * 10, 2, "binary content, not JSON"),
    ("corrupt-gz", "d.jsonl.gz", gzip.compress(lines(GOOD) * 200)[:60], 2, "corrupt gzip data"),
    ("gz-not-gzip", "d.jsonl.gz", b"plain text pretending", 2, "corrupt gzip data"),
    ("truncated-parquet", "d.parquet", lambda: parquet_bytes()[:200], 2, "d.parquet: not a readable parquet file"),
    ("text-named-parquet", "d.parquet", b"prompt,completion\na,b\n", 2, "not a readable parquet file"),
    ("corrupt-arrow", "d.arrow", b"ARROW1\x00\x00garbage", 2, "not a readable arrow file"),
    ("csv-quoted-newlines", "d.csv", b'prompt,completion\n"a\nb","c"\n"d","e\nf"\n', 0, "standard prompt-completion"),
    ("csv-invalid-utf8", "d.csv", b"prompt,completion\n\xff\xfe,b\n", 2, "line 2 is not UTF-8"),
    ("json-array-trailing-comma", "d.json", b'[{"text": "a"},\n{"text": "b"},\n]', 2,
     "invalid JSON at line 2: trailing comma"),
    ("json-array-truncated", "d.json", b'[{"text": "a"},\n{"text": "b"', 2, "invalid JSON at line 2"),
    ("kto-label-string", "d.jsonl", lines({"prompt": "q", "completion": "a", "label": True},
                                          {"prompt": "q", "completion": "b", "label": "true"}), 1, "TP110"),
    ("kto-label-number", "d.jsonl", lines({"prompt": "q", "completion": "a", "label": True},
                                          {"prompt": "q", "completion": "b", "label": 0}), 1, "TP110"),
    ("empty-objects", "d.jsonl", lines({}, {}, {}), 1, "no known dataset shape"),
    ("integer-beyond-64-bits", "d.jsonl", lines(GOOD, GOOD[:-1] + ', "id": 123456789012345678901234567890}'), 0,
     "2 rows checked"),
    ("unknown-extension-binary", "d.weird", b"\x00\x01\x02\x03" * 100, 2, "cannot tell the format"),
    ("stepwise-mismatch", "d.jsonl", lines({"prompt": "p", "completions": ["a"], "labels": [True, False]}), 1,
     "TP109"),
]


def _make(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content() if callable(content) else content)
    return path


def test_the_corpus_is_large_enough():
    assert len(CASES) + len(PATH_CASES) >= 40


@pytest.mark.parametrize("case,name,content,code,message", CASES, ids=[c[0] for c in CASES])
def test_broken_file(tmp_path, case, name, content, code, message):
    path = _make(tmp_path, name, content)
    result = CliRunner().invoke(inspect_main, ["--dataset", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    if code == 2:
        assert result.output.startswith(f"error: {path}")
        assert len(result.output.strip().splitlines()) == 1


def _folder_no_data(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("nothing here")
    return tmp_path / "empty"


def _folder_mixed(tmp_path):
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "a.jsonl").write_text(GOOD)
    (tmp_path / "mixed" / "b.parquet").write_bytes(parquet_bytes())
    return tmp_path / "mixed"


PATH_CASES = [
    ("missing-path", lambda p: p / "nope.jsonl", "no such file or folder"),
    ("folder-without-data", _folder_no_data, "folder holds no data files"),
    ("folder-mixing-formats", _folder_mixed, "mixes file formats"),
    ("glob-matching-nothing", lambda p: p / "*.jsonl", "no files match"),
]


@pytest.mark.parametrize("case,setup,message", PATH_CASES, ids=[c[0] for c in PATH_CASES])
def test_unreadable_paths(tmp_path, case, setup, message):
    result = CliRunner().invoke(inspect_main, ["--dataset", str(setup(tmp_path))])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_hub_id_while_offline(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    result = CliRunner().invoke(inspect_main, ["--dataset", "someone/some-dataset"])
    assert result.exit_code == 2
    assert result.output.startswith("error: someone/some-dataset: cannot reach the Hugging Face Hub")


def test_debug_shows_the_traceback(tmp_path):
    result = CliRunner().invoke(inspect_main, ["--dataset", str(tmp_path / "nope.jsonl"), "--debug"])
    assert result.exit_code == 2 and "Traceback" in result.output


@pytest.mark.parametrize("case,name,content,code,message", [c for c in CASES if c[3] != 2 and "30mb" not in c[0]],
                         ids=[c[0] for c in CASES if c[3] != 2 and "30mb" not in c[0]])
def test_convert_accounts_for_every_row_of_a_broken_file(tmp_path, case, name, content, code, message):
    path = _make(tmp_path, name, content)
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(convert_main, ["-d", str(path), "--to", "sft", "-o", str(out), "--format", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        summary = json.loads(result.output)
        assert summary["rows_in"] == summary["rows_kept"] + summary["rows_rejected"]
        assert (sum(1 for _ in open(summary["rejects"])) if summary["rejects"] else 0) == summary["rows_rejected"]
    else:
        # Refused: one error line, and on stdout for machines the refusal, beside the ledger when rows were read
        # (every one rejected).
        assert result.exit_code == 1 and result.stderr.startswith("error: ")
        document = json.loads(result.stdout)
        assert document["refusal"]["exit_code"] == 1
        if "rows_in" in document:
            assert document["rows_in"] == document["rows_rejected"] and document["rows_out"] == 0
        assert not out.exists()
