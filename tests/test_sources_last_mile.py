"""Files read the way their layout means, not refused or read as something else: JSON lines whose lines are lists
of messages, one JSON object of records keyed by id, text in another encoding than UTF-8 (`--encoding`), and a
folder of shards given to `--executor`. Each case through the command line, as a user sees it, and the JSON report.
"""

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import in_fresh_python
from trlprep.inspector import inspect_dataset
from trlprep.converters.cli import main as convert_main
from trlprep.inspector.cli import main as inspect_main
from trlprep.train.cli import main as train_main

DATA = Path(__file__).parent / "data" / "sources"
MAC_ROMAN_CSV = DATA / "mmlu_redux_moral_scenarios_macroman_crlf_head.csv"  # line 54: "my sister\xd5s head"
CHATS = [[{"role": "user", "content": f"question {n}"}, {"role": "assistant", "content": f"answer {n}"}]
         for n in range(4)]


def inspect(*arguments: str):
    return CliRunner().invoke(inspect_main, [*map(str, arguments)])


def report_of(*arguments: str) -> dict:
    done = inspect(*arguments, "--format", "json")
    assert done.exit_code in (0, 1), done.output
    return json.loads(done.stdout)


def refusal(*arguments: str) -> str:
    """The one line a command prints for input it cannot read, exit code 2."""
    done = inspect(*arguments)
    assert done.exit_code == 2, done.output
    assert len(done.output.strip().splitlines()) == 1 and "Traceback" not in done.output
    return done.output.strip()


def converted_rows(tmp_path: Path, *arguments: str) -> list[dict]:
    output = tmp_path / "out.jsonl"
    done = CliRunner().invoke(convert_main, [*map(str, arguments), "--to", "sft", "--output", str(output)])
    assert done.exit_code == 0, done.output
    return [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]


# 1. JSON lines of message lists


def test_json_lines_of_message_lists_are_messages_rows_and_the_report_says_so(tmp_path):
    path = tmp_path / "chats.jsonl"
    lines = [json.dumps(chat) for chat in CHATS]
    lines[2] = '[{"role": "user", "content": "cut'
    path.write_text("\n".join(lines) + "\n")
    report = report_of("--dataset", path)
    assert (report["rows"], report["type"], report["format"], report["row_numbering"]) == (
        4, "language_modeling", "conversational", "line")
    assert report["notes"][0] == f'{path}: each line is a JSON list of messages, read as one row {{"messages": [...]}}'
    assert [(f["rule"], f["where"]) for f in report["findings"]] == [("TP001", [f"{path}:3"])]
    assert "each line is a JSON list of messages" in " ".join(inspect("--dataset", path).output.split())
    assert converted_rows(tmp_path, "--dataset", path) == [{"messages": CHATS[n]} for n in (0, 1, 3)]


def test_one_line_of_messages_is_a_row_in_a_jsonl_file_and_an_array_of_records_in_a_json_file(tmp_path):
    (tmp_path / "one.jsonl").write_text(json.dumps(CHATS[0]) + "\n")
    (tmp_path / "array.json").write_text(json.dumps([{"text": "a"}, {"text": "b"}]))
    (tmp_path / "pretty.json").write_text(json.dumps([{"text": "a"}, {"text": "b"}], indent=2))
    lines = report_of("--dataset", tmp_path / "one.jsonl")
    assert (lines["rows"], lines["type"]) == (1, "language_modeling") and lines["notes"][0].endswith(
        'read as one row {"messages": [...]}')
    for name in ("array.json", "pretty.json"):  # a JSON array of records keeps working as it did
        array = report_of("--dataset", tmp_path / name)
        assert (array["rows"], array["dialect"], array["row_numbering"], array["notes"]) == (2, "trl", "row", [])


# 2. One JSON object of records keyed by id or path


def math500_keyed(path: Path, indent: int | None = None, **extra) -> list[dict]:
    """MATH-500's first rows written as it is also stored: one object keyed by `unique_id`, each record with `extra`
    columns; returns the records."""
    records = [{**json.loads(line), **extra} for line in (DATA / "math500_test_head.jsonl").read_text().splitlines()]
    path.write_text(json.dumps({record["unique_id"]: record for record in records}, indent=indent))
    return records


@pytest.mark.parametrize("indent", [None, 2], ids=["one-line", "pretty-printed"])
def test_an_object_of_records_keyed_by_path_is_one_row_each_with_its_key(tmp_path, indent):
    path = tmp_path / "math500.json"
    records = math500_keyed(path, indent)
    report = report_of("--dataset", path)
    assert (report["rows"], report["dialect"], report["row_numbering"]) == (4, "question_answer", "row")
    assert report["notes"][0] == (f"{path}: one JSON object of 4 records keyed by id or path, read as 4 rows, each "
                                  f"key in a column `id`")
    assert len(report["columns"]) == 7 and inspect("--dataset", path).output.count("\n") < 100  # not 2,937
    rows = converted_rows(tmp_path, "--dataset", path)
    assert [row["id"] for row in rows] == [record["unique_id"] for record in records]


def test_the_key_column_takes_another_name_beside_a_records_own_id_and_rows_are_numbered_in_order(tmp_path):
    path = tmp_path / "math500.json"
    records = math500_keyed(path, indent=2, id=7)
    records[2]["solution"] = ""
    path.write_text(json.dumps({record["unique_id"]: record for record in records}))
    report = report_of("--dataset", path)
    assert report["notes"][0].endswith("each key in a column `_id` (the records have a column `id` of their own)")
    assert [(f["rule"], f["where"]) for f in report["findings"]] == [("TP201", [f"{path}:3"])]


def test_a_single_record_whose_values_are_objects_stays_one_row(tmp_path):
    pair = {"chosen": {"role": "assistant", "content": "4"}, "rejected": {"role": "assistant", "content": "5"}}
    raw = {"question": {"problem": "2+2?"}, "label": {"steps": [{"rating": 1}]}}
    for name, row in (("pair.json", pair), ("raw.json", raw)):
        (tmp_path / name).write_text(json.dumps(row))
        report = report_of("--dataset", tmp_path / name)
        assert report["rows"] == 1 and not any("records" in note for note in report["notes"])


# 3. Text that is not UTF-8, and --encoding


def test_a_mac_roman_csv_is_refused_at_its_line_with_the_encoding_it_reads_as():
    assert refusal("--dataset", MAC_ROMAN_CSV) == (
        f"error: {MAC_ROMAN_CSV}: line 54 is not UTF-8 (invalid continuation byte at column 206); it reads as "
        f'mac_roman (confidence 1.00: "sister’s"): uv run inspect --dataset {MAC_ROMAN_CSV} --encoding mac_roman')


def test_encoding_reads_the_mac_roman_csv_whole_in_inspect_convert_and_the_api(tmp_path):
    from trlprep.inspector import inspect_dataset

    report = report_of("--dataset", MAC_ROMAN_CSV, "--encoding", "mac_roman")
    assert (report["rows"], report["dialect"], report["findings"]) == (59, "multiple_choice", [])
    assert inspect_dataset(MAC_ROMAN_CSV, encoding="mac_roman").rows == 59
    text = json.dumps(converted_rows(tmp_path, "--dataset", MAC_ROMAN_CSV, "--encoding", "mac_roman"),
                      ensure_ascii=False)
    assert "I slapped my sister’s head" in text and "\ufffd" not in text and "Õ" not in text


def test_train_prepares_the_mac_roman_csv_with_its_encoding(tmp_path):
    from trlprep.train.api import prepare_data

    report, ledger, _, files = prepare_data("sft", str(MAC_ROMAN_CSV), output_dir=tmp_path, encoding="mac_roman")
    assert (report["rows"], ledger["rows_out"]) == (59, 59)
    assert "sister’s head" in files["train"].read_text(encoding="utf-8")
    assert "--encoding NAME" in CliRunner().invoke(train_main, ["--help"]).output


def cp1252_chats(path: Path, accented_line: int, lines: int = 4) -> None:
    """JSON lines written by a tool that wrote Windows-1252 where JSON wants UTF-8: line `accented_line` says café."""
    rows = [{"messages": [{"role": "user", "content": f"question {n}"},
                          {"role": "assistant", "content": "un café" if n == accented_line else f"answer {n}"}]}
            for n in range(1, lines + 1)]
    data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("cp1252")
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


@pytest.mark.parametrize("name", ["chats.jsonl", "chats.jsonl.gz"])
def test_json_lines_in_windows_1252_are_refused_at_their_line_and_read_with_encoding(tmp_path, name):
    path = tmp_path / name
    cp1252_chats(path, accented_line=3)
    assert refusal("--dataset", path) == (
        f"error: {path}: line 3 is not UTF-8 (invalid continuation byte at column 98); it reads as cp1252 "
        f'(confidence 1.00: "café"): uv run inspect --dataset {path} --encoding cp1252')
    report = report_of("--dataset", path, "--encoding", "cp1252")
    assert (report["rows"], report["dialect"], report["findings"]) == (4, "trl", [])
    assert converted_rows(tmp_path, "--dataset", path, "--encoding", "cp1252")[2]["messages"][1]["content"] == "un café"


def test_a_json_array_that_is_not_utf8_is_refused_at_its_line_not_as_invalid_json(tmp_path):
    path = tmp_path / "rows.json"
    path.write_bytes('[{"text": "a"},\n {"text": "b"},\n {"text": "crème"}]'.encode("cp1252"))
    assert refusal("--dataset", path).startswith(f"error: {path}: line 3 is not UTF-8 (invalid continuation byte "
                                                 f"at column 14); it reads as cp1252")
    assert report_of("--dataset", path, "--encoding", "cp1252")["rows"] == 3


def test_a_line_past_the_first_rows_that_is_not_utf8_is_refused_not_an_internal_error(tmp_path):
    """Past the rows that decide the shape, the fast path reads lines in blocks (it used to fail with exit 3)."""
    path = tmp_path / "chats.jsonl"
    cp1252_chats(path, accented_line=1500, lines=1600)
    assert refusal("--dataset", path).startswith(f"error: {path}: line 1500 is not UTF-8")


def test_a_line_of_a_large_file_scanned_in_chunks_is_named_by_its_line_in_the_file(tmp_path):
    from trlprep.inspector.encodings import UndecodableLine
    from trlprep.inspector.scan.parallel import line_boundaries, scan_chunks

    path = tmp_path / "chats.jsonl"
    cp1252_chats(path, accented_line=700, lines=800)
    assert line_boundaries(path, 4)[2][0] < path.read_bytes().index(b"caf\xe9")  # in the third chunk of four
    with pytest.raises(UndecodableLine, match=r": line 700 is not UTF-8"):
        scan_chunks(path, expected=None, example=None, enabled=set(), max_rows=5, workers=2, advance=lambda n: None)


def test_a_line_cut_inside_a_character_is_a_broken_row_not_another_encoding(tmp_path):
    path = tmp_path / "cut.jsonl"
    path.write_bytes(json.dumps({"messages": CHATS[0]}).encode() + b'\n{"text": "caf' + "é".encode()[:1])
    report = report_of("--dataset", path)
    assert [(f["rule"], f["where"]) for f in report["findings"]] == [("TP001", [f"{path}:2"])]


@pytest.mark.parametrize("text,encoding", [
    ("I slapped my sister’s head", "mac_roman"), ("He said “it’s fine” – and left… didn’t he?", "cp1252"),
    ("un café crème brûlée", "cp1252"), ("Zażółć gęślą jaźń, łódź i przykładowe zdanie", "cp1250"),
    ("Жизнь прекрасна и удивительна", "cp1251"), ("日本語のテキストです", "cp932")])
def test_the_encoding_proposed_reads_the_line_as_written(text, encoding):
    from trlprep.inspector.encodings import proposed_reading

    reading = proposed_reading(text.encode(encoding))
    assert reading.encoding == encoding and reading.word in text


def test_an_unknown_encoding_is_bad_usage():
    assert refusal("--dataset", MAC_ROMAN_CSV, "--encoding", "klingon") == (
        "error: --encoding klingon: unknown encoding (e.g. cp1252, mac_roman, latin_1)")


def test_utf8_is_read_as_bytes_and_inspecting_imports_neither_the_detector_nor_torch(tmp_path):
    from trlprep.inspector.sources import json_lines_path, open_source

    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps({"messages": chat}) + "\n" for chat in CHATS))
    assert json_lines_path(open_source(path, encoding="utf-8")) == path  # the fast path's blocks of bytes
    assert json_lines_path(open_source(path, encoding="cp1252")) is None  # through the text layer
    done, loaded = in_fresh_python(
        "import sys\nfrom trlprep.inspector import inspect_dataset\ninspect_dataset(sys.argv[1])\n"
        "print('charset_normalizer' in sys.modules)", str(path))
    assert done.stdout.strip() == "False" and "torch" not in loaded


# 4. --executor takes a folder, as one pass does


def test_executor_takes_a_folder_and_gives_the_one_pass_report(tmp_path):
    pytest.importorskip("datatrove", reason="the distributed extra is not installed")
    from tests.test_shards import report_of as report_without_timings
    from tests.test_shards import write_shards

    folder = tmp_path / "shards"
    write_shards(folder, shards=3, rows=20)
    (folder / "notes.txt").write_text("not data: one pass leaves it out, and so do the shards")
    sharded = report_without_timings(["--dataset", str(folder), "--executor", "local", "--workers", "2",
                                      "--work-dir", str(tmp_path / "work")])
    assert json.dumps(sharded, sort_keys=True) == json.dumps(report_without_timings(["--dataset", str(folder)]),
                                                             sort_keys=True)
    assert sharded["files"] == [str(folder / f"shard-{n}.jsonl") for n in range(3)]


def json_lines_in_cp1252(path: Path, shard: int) -> None:
    cp1252_chats(path, accented_line=2 + shard)


def json_arrays(path: Path, shard: int) -> None:
    path.write_text(json.dumps([{"messages": chat} for chat in CHATS[shard:]]))


@pytest.mark.parametrize("write,options", [(json_lines_in_cp1252, ["--encoding", "cp1252"]), (json_arrays, [])],
                         ids=["json-lines-in-cp1252", "json-arrays"])
def test_convert_executor_takes_a_folder_and_writes_the_one_pass_rows(tmp_path, write, options):
    """Shards read row by row (in another encoding, or JSON arrays), whose rows all take the fast conversion."""
    pytest.importorskip("datatrove", reason="the distributed extra is not installed")
    from tests.test_shards import assert_same_conversion

    folder = tmp_path / "shards"
    folder.mkdir()
    for shard in range(2):
        write(folder / f"shard-{shard}.json", shard)
    sharded = assert_same_conversion(str(folder), "sft", tmp_path, *options)
    assert [shard["input"] for shard in sharded["shards"]] == [str(folder / f"shard-{n}.json") for n in range(2)]
    assert sharded["rows_out"] == sum(shard["rows_in"] for shard in sharded["shards"]) > 0


def test_a_json_array_of_records_under_a_jsonl_name_is_one_row_a_record(tmp_path):
    # `json.dump(rows)` into a .jsonl file: a list on its first line, but of records, not messages.
    path = tmp_path / "dumped.jsonl"
    path.write_text(json.dumps([{"prompt": f"{n}+{n}?", "completion": str(2 * n)} for n in range(4)]))
    report = inspect_dataset(path)
    assert (report.rows, report.type, report.methods["sft"]["status"]) == (4, "prompt_completion", "ready")
    assert not any("list of messages" in note for note in report.notes)


def test_english_typed_on_windows_is_proposed_windows_1252(tmp_path):
    # Found by an adversarial trial: charset-normalizer reads its curly quotes and dashes as Mac-Roman's ì, î, ó.
    path = tmp_path / "notes.jsonl"
    path.write_bytes("".join(json.dumps({"prompt": f"He said “hi” — {n}", "completion": "ok"}, ensure_ascii=False)
                             + "\n" for n in range(3)).encode("cp1252"))
    refused = CliRunner().invoke(inspect_main, ["--dataset", str(path)])
    assert refused.exit_code == 2
    assert 'it reads as cp1252 (read as punctuation: "“hi”"): uv run inspect --dataset' in refused.stderr
    assert inspect_dataset(path, encoding="cp1252").rows == 3
