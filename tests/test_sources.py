"""Every kind of source the inspector reads, built with the real libraries (pyarrow, datasets)."""

import gzip
import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trlprep.inspector import SourceError, inspect_dataset
from trlprep.inspector.sources import open_source

ROWS = [{"prompt": f"What is {i}+{i}?", "completion": str(2 * i)} for i in range(1, 6)]


def _rows(path, **kwargs):
    return [value for _, value in open_source(path, **kwargs).rows()]


def test_jsonl_rows_are_numbered_by_line(write_jsonl):
    path = write_jsonl([ROWS[0], "", ROWS[1]])
    numbered = list(open_source(path).rows())
    assert numbered == [(1, ROWS[0]), (3, ROWS[1])]


def test_json_array_and_json_lines_under_json(tmp_path):
    array = tmp_path / "array.json"
    array.write_text(json.dumps(ROWS, indent=2))
    lines = tmp_path / "lines.json"
    lines.write_text("\n".join(json.dumps(r) for r in ROWS))
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"data": ROWS}, indent=2))
    assert _rows(array) == _rows(lines) == _rows(wrapped) == ROWS


def test_bom_and_crlf(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(json.dumps(r).encode() for r in ROWS) + b"\r\n")
    assert _rows(path) == ROWS


def test_parquet_arrow_and_arrow_stream(tmp_path):
    table = pa.Table.from_pylist(ROWS)
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=2)
    with pa.OSFile(str(tmp_path / "file.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    with pa.OSFile(str(tmp_path / "stream.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    for name in ("d.parquet", "file.arrow", "stream.arrow"):
        assert _rows(tmp_path / name) == ROWS, name
    assert open_source(tmp_path / "d.parquet").total == 5


def test_csv_with_quoted_newlines_and_json_cells(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('prompt,completion\n"line one\nline two","ok"\n'
                    '"[{""role"": ""user"", ""content"": ""hi""}]",x\n')
    rows = _rows(path)
    assert rows[0] == {"prompt": "line one\nline two", "completion": "ok"}
    assert rows[1]["prompt"] == [{"role": "user", "content": "hi"}]


def test_gzip_and_unknown_extension_sniffed(tmp_path):
    text = "\n".join(json.dumps(r) for r in ROWS).encode()
    (tmp_path / "d.jsonl.gz").write_bytes(gzip.compress(text))
    (tmp_path / "d.data").write_bytes(text)
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "d.bin")
    for name in ("d.jsonl.gz", "d.data", "d.bin"):
        assert _rows(tmp_path / name) == ROWS, name


def test_folder_and_glob(tmp_path):
    for i, chunk in enumerate((ROWS[:2], ROWS[2:])):
        (tmp_path / f"part-{i}.jsonl").write_text("\n".join(json.dumps(r) for r in chunk))
    (tmp_path / "README.md").write_text("not data")
    assert _rows(tmp_path) == ROWS
    assert _rows(str(tmp_path / "part-*.jsonl")) == ROWS
    numbers = [n for n, _ in open_source(tmp_path).rows()]
    assert numbers == [1, 2, 3, 4, 5]


def test_save_to_disk_folders(tmp_path):
    import datasets

    dataset = datasets.Dataset.from_list(ROWS)
    dataset.save_to_disk(tmp_path / "single")
    datasets.DatasetDict({"train": dataset, "test": dataset.select([0])}).save_to_disk(tmp_path / "dict")
    assert _rows(tmp_path / "single") == ROWS
    assert _rows(tmp_path / "dict") == ROWS
    assert _rows(tmp_path / "dict", split="test") == ROWS[:1]
    with pytest.raises(SourceError, match="no split 'validation'"):
        open_source(tmp_path / "dict", split="validation")


def test_in_memory_dataset_object():
    import datasets

    report = inspect_dataset(datasets.Dataset.from_list(ROWS))
    assert report.type == "prompt_completion" and report.rows == 5


@pytest.mark.parametrize("setup,message", [
    (lambda p: p / "missing.jsonl", "no such file or folder"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "folder holds no data files"),
    (lambda p: str(p / "*.nothing"), "no files match"),
])
def test_unreadable_sources(tmp_path, setup, message):
    with pytest.raises(SourceError, match=message):
        open_source(setup(tmp_path))


def test_folder_mixing_formats_is_refused(tmp_path):
    (tmp_path / "a.jsonl").write_text(json.dumps(ROWS[0]))
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "b.parquet")
    with pytest.raises(SourceError, match="mixes file formats"):
        open_source(tmp_path)


def test_invalid_json_array_names_the_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[\n{"prompt": "a", "completion": "b"},\n{"prompt": "a" "completion": "b"}\n]')
    with pytest.raises(SourceError, match=r"broken.json: invalid JSON at line 3"):
        list(open_source(path).rows())


def test_truncated_parquet_is_unreadable(tmp_path):
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "d.parquet")
    data = (tmp_path / "d.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match="cut.parquet"):
        list(open_source(tmp_path / "cut.parquet").rows())


def test_a_corrupt_row_group_mid_file_is_one_error_and_stops_the_decoding_threads(tmp_path):
    """Batches are decoded ahead by threads of their own, a row group each: a group that cannot be decoded, after
    good ones, is the same one error as when rows are read in turn, and no decoding thread is left running."""
    import threading

    rows = [{"text": f"row {i} " + "x" * 200} for i in range(400)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet", row_group_size=50, compression="none")
    metadata = pq.ParquetFile(tmp_path / "d.parquet").metadata
    column = metadata.row_group(5).column(0)
    data = bytearray((tmp_path / "d.parquet").read_bytes())
    start = column.data_page_offset
    data[start: start + column.total_compressed_size] = b"\xff" * column.total_compressed_size
    (tmp_path / "bad.parquet").write_bytes(bytes(data))
    source = open_source(tmp_path / "bad.parquet")
    with pytest.raises(SourceError, match=r"bad.parquet: unreadable data") as in_turn:
        list(source.rows())
    read = []
    with pytest.raises(SourceError, match=r"bad.parquet: unreadable data") as ahead:
        for batch in source.batches(lambda n: None):
            read.append(batch.num_rows)
    assert str(ahead.value) == str(in_turn.value) and sum(read) == 250
    assert not [thread for thread in threading.enumerate() if thread.name == "trlprep-decode"]


@pytest.mark.parametrize("name", ["d.parquet", "d.arrow"])
def test_batches_of_long_rows_are_bounded_in_bytes_not_only_rows(tmp_path, monkeypatch, name):
    """What the column kernels make of a batch grows with its bytes: 30,000 rows of 8 KB in one row group came in
    batches of 8,192 rows (64 MB each) and took 4x the memory of the row path. Batches hold BATCH_BYTES or so."""
    import trlprep.inspector.sources as sources

    monkeypatch.setattr(sources, "BATCH_BYTES", 1 << 20)
    table = pa.Table.from_pylist([{"text": f"{i:05d}" + "x" * 10_000} for i in range(300)])
    if name.endswith(".parquet"):
        pq.write_table(table, tmp_path / name, row_group_size=300)
    else:
        with pa.ipc.new_file(tmp_path / name, table.schema) as writer:
            writer.write_table(table)  # one record batch of all 300 rows
    sizes = [batch.num_rows for batch in open_source(tmp_path / name).batches(lambda n: None)]
    assert sum(sizes) == 300 and max(sizes) <= 105 and len(sizes) >= 3


def test_hub_id_offline_is_one_clear_error(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there, on any machine
    with pytest.raises(SourceError, match=r"trl-lib/Capybara: cannot reach the Hugging Face Hub at 127.0.0.1"):
        open_source("trl-lib/Capybara", split="train")


def test_input_file_is_never_modified(shared_data, tmp_path):
    copy = tmp_path / "alpaca.json"
    shutil.copy(shared_data / "alpaca_en_demo.json", copy)
    before = copy.read_bytes()
    inspect_dataset(copy)
    assert copy.read_bytes() == before


def test_a_decoding_thread_the_system_refuses_stops_the_ones_started(tmp_path, monkeypatch):
    """Under a limit on threads, the second lane of a Parquet file's decoding cannot start: the error reaches the
    reader, and the first lane, already decoding, stops with it (it would poll for a reader forever)."""
    import threading

    pq.write_table(pa.Table.from_pylist([{"text": f"row {i}"} for i in range(40)]), tmp_path / "d.parquet",
                   row_group_size=10)
    started, start = [], threading.Thread.start

    def refused_second(thread):
        if thread.name == "trlprep-decode":
            started.append(thread)
            if len(started) == 2:
                raise RuntimeError("can't start new thread")
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", refused_second)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        list(open_source(tmp_path / "d.parquet").batches(lambda n: None))
    started[0].join(timeout=5)
    assert not started[0].is_alive()
