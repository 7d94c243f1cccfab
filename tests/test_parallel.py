"""Scanning a JSON-lines file in blocks of lines, and in several processes, gives exactly what one pass over
the rows gives."""

import gzip
import json
import os
import re
import random
import threading
from pathlib import Path

import pytest

from trlprep.inspector import inspect_dataset
from trlprep.inspector.scan.parallel import line_boundaries



def _comparable(report) -> dict:
    """A report as JSON without what names the file (its name, the commands, `file:line`) or times the run."""
    data = json.loads(re.sub(re.escape(report.source) + r'[^":]*', "DATA", report.to_json()))
    data.pop("stats")
    return data

def _rows(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        kind = rng.random()
        user = {"from": "human", "value": f"question {rng.randint(0, 300)}"}
        answer = {"from": "gpt", "value": f"answer {rng.randint(0, 5)}"}
        if kind < 0.80:
            lines.append(json.dumps({"conversations": [user, answer]}))
        elif kind < 0.85:
            lines.append(json.dumps({"conversations": [user, user, answer]}))
        elif kind < 0.88:
            lines.append('{"conversations": [{"from": "human", "value": "cut')
        elif kind < 0.90:
            lines.append("")
        elif kind < 0.91:
            lines.append(json.dumps({"conversations": [user, answer]}, separators=(",", ":")))  # same content
        elif kind < 0.92:
            lines.append(json.dumps({"conversations": [{"from": "human", "value": "x"}]})[:-1]
                         + ', "conversations": ' + json.dumps([user, answer]) + "}")  # a repeated key
        elif kind < 0.93:
            lines.append(json.dumps({"instruction": f"say {i}", "output": "ok"}))
        elif kind < 0.96:
            lines.append(json.dumps({"conversations": [{"from": "bot", "value": "hi"}, answer]}))
        else:
            lines.append(json.dumps({"conversations": [user, {"from": "gpt", "value": "<|im_end|> x"}]}))
    return lines


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("sorted_duplicates", [False, True], ids=["set", "sort"])
def test_parallel_scan_equals_one_pass(tmp_path, monkeypatch, workers, sorted_duplicates):
    """Also holds the two ways of finding duplicate rows (a set for small files, a sort for large) together."""
    import trlprep.inspector.scan

    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(_rows(4000, seed=workers)))  # no final newline
    monkeypatch.setattr(trlprep.inspector.scan, "PARALLEL_FROM_BYTES", 0)
    one = inspect_dataset(path, workers=1, max_rows=50).to_dict()
    if sorted_duplicates:
        monkeypatch.setattr(trlprep.inspector.scan.rows, "SORT_DUPLICATES_FROM_ROWS", 0)
    many = inspect_dataset(path, workers=workers, max_rows=50).to_dict()
    one.pop("stats")
    many.pop("stats")
    assert many == one
    assert {f["rule"] for f in one["findings"]} >= {"TP001", "TP003", "TP106", "TP203", "TP207", "TP401", "TP404"}


def test_block_scan_equals_row_by_row_scan(tmp_path, monkeypatch):
    """The same lines gzipped are read row by row; plain, in blocks through the typed fast path. Tiny blocks
    cut lines everywhere; a repeat of a row with other spacing is a repeat; a repeated key is still found."""
    import trlprep.inspector.sources

    monkeypatch.setattr(trlprep.inspector.sources, "BLOCK_BYTES", 300)
    data = ("\n".join(_rows(3000, seed=7)) + "\n").encode()
    plain, packed = tmp_path / "chat.jsonl", tmp_path / "chat.jsonl.gz"
    plain.write_bytes(data)
    packed.write_bytes(gzip.compress(data))
    by_blocks = _comparable(inspect_dataset(plain, workers=1, max_rows=50))
    by_rows = _comparable(inspect_dataset(packed, max_rows=50))
    assert by_blocks == by_rows
    rules = {f["rule"]: f for f in by_blocks["findings"]}
    assert rules["TP003"]["count"] == data.count(b'"conversations": [{"from": "human", "value": "x"}], ')
    assert rules["TP401"]["count"] > 2900 - len(set(data.splitlines()))  # repeats with other spacing count


def test_line_boundaries_cover_the_file_at_line_starts(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"aaaa\nbb\ncccccc\nd\n" * 100)
    ranges = line_boundaries(path, 3)
    assert ranges[0][0] == 0 and ranges[-1][1] == path.stat().st_size
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    data = path.read_bytes()
    assert all(data[start - 1:start] == b"\n" for start, _ in ranges[1:])


def _chat_rows(count: int, seed: int) -> list[dict]:
    """ShareGPT rows with ids, 30% of them one of a few flawed conversations (an unknown role, blank or missing
    text, template markup, no turns), the others repeating every 900 rows with another id."""
    rng = random.Random(seed)
    turns = ([{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}],
             [{"from": "human", "value": f"q{rng.random()}"}, {"from": "gpt", "value": "<|im_end|>"}],
             [{"from": "bot", "value": "hi"}, {"from": "gpt", "value": "a"}],
             [{"from": "human", "value": " "}, {"from": "gpt", "value": "a"}],
             [{"from": "human", "value": "q"}, {"from": "human", "value": "q"}, {"from": "gpt", "value": None}],
             [])
    return [{"conversations": rng.choice(turns) if rng.random() < 0.3 else
             [{"from": "human", "value": f"question {i % 900}"}, {"from": "gpt", "value": "answer"}],
             "id": i % 900} for i in range(count)]


def _write_groups(path, rows: list[dict], group_rows: int, *, empty_after: int | None = None,
                  dictionary: bool = False) -> None:
    """`rows` as a Parquet file (`.parquet`) of `group_rows`-row groups, or an Arrow IPC file (`.arrow`) of
    `group_rows`-row record batches; an empty group (batch) after the `empty_after`th when given; with
    `dictionary`, ShareGPT turns' roles and texts dictionary-encoded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows)
    if dictionary:
        words = pa.dictionary(pa.int32(), pa.string())
        table = table.cast(pa.schema([("conversations", pa.list_(pa.struct([("from", words), ("value", words)])))]))
    slices = [table.slice(start, group_rows) for start in range(0, len(rows), group_rows)]
    if empty_after is not None:
        slices.insert(empty_after, table.slice(0, 0))
    if path.suffix == ".parquet":
        with pq.ParquetWriter(path, table.schema) as writer:
            for piece in slices:
                writer.write_table(piece, row_group_size=group_rows)
    else:
        with pa.ipc.new_file(path, table.schema) as writer:
            for piece in slices:
                writer.write_batch(piece.combine_chunks().to_batches()[0] if len(piece) else
                                   pa.RecordBatch.from_pylist([], schema=table.schema))


def test_column_scan_equals_row_by_row_scan(tmp_path):
    """The same rows as JSON lines (read in blocks) and as Parquet and Arrow (checked a column at a time)."""
    rows = _chat_rows(3000, seed=3)
    lines, parquet, arrow = tmp_path / "d.jsonl", tmp_path / "d.parquet", tmp_path / "d.arrow"
    lines.write_text("".join(json.dumps(row) + "\n" for row in rows))
    _write_groups(parquet, rows, 700)
    _write_groups(arrow, rows, 1100)
    reports = []
    for path in (lines, parquet, arrow):
        report = _comparable(inspect_dataset(path, max_rows=50))
        report.pop("row_numbering")  # lines here, rows there
        reports.append(report)
    assert reports[0] == reports[1] == reports[2]
    assert {f["rule"] for f in reports[0]["findings"]} >= {"TP105", "TP106", "TP111", "TP201", "TP207", "TP401"}


# Every fork of this process, counted: a hook of the os module, which cannot be taken back, so tests compare counts.
_FORKS: list[int] = []
os.register_at_fork(after_in_parent=lambda: _FORKS.append(1))
# The threads decoding a Parquet file ahead (`sources.DecodedAhead`) running as each fork was made: a child would
# inherit their locks as they stood, not the threads.
_DECODING_AT_FORK: list[int] = []
os.register_at_fork(before=lambda: _DECODING_AT_FORK.append(len(_decoding_threads())))


def _decoding_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "trlprep-decode"]


def _forks_of(run) -> tuple[object, int]:
    """What `run()` returns and how many processes it forked."""
    before = len(_FORKS)
    return run(), len(_FORKS) - before


@pytest.mark.parametrize("suffix", [".parquet", ".arrow"])
@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("sorted_duplicates", [False, True], ids=["set", "sort"])
def test_parquet_and_arrow_scanned_in_workers_equal_one_pass(tmp_path, monkeypatch, suffix, workers,
                                                             sorted_duplicates):
    """Row groups (record batches) in ranges across processes: rows repeated and flawed in every range, an empty
    group among them; the report is one process's. With one worker, nothing is forked."""
    import trlprep.inspector.scan

    path = tmp_path / f"chat{suffix}"
    _write_groups(path, _chat_rows(3000, seed=workers), 250, empty_after=5)
    monkeypatch.setattr(trlprep.inspector.scan, "PARALLEL_FROM_BYTES", 0)
    one, forked_for_one = _forks_of(lambda: inspect_dataset(path, workers=1, max_rows=3000).to_dict())
    if sorted_duplicates:
        monkeypatch.setattr(trlprep.inspector.scan.rows, "SORT_DUPLICATES_FROM_ROWS", 0)
    forks_before = len(_DECODING_AT_FORK)
    many, forked_for_many = _forks_of(lambda: inspect_dataset(path, workers=workers, max_rows=3000).to_dict())
    assert forked_for_one == 0 and forked_for_many > 1
    assert set(_DECODING_AT_FORK[forks_before:]) == {0}  # a Parquet file's early decoding stopped before forking
    one.pop("stats")
    many.pop("stats")
    assert many == one
    findings = {f["rule"]: f for f in one["findings"]}
    assert set(findings) >= {"TP105", "TP106", "TP111", "TP201", "TP207", "TP401"}
    # Every rule's rows are listed (max_rows): repeats and flawed rows in every range, of 500 rows or more.
    for rule in ("TP105", "TP401"):
        assert {(row - 1) // 500 for row in findings[rule]["rows"]} == set(range(6))


@pytest.mark.parametrize("dictionary", [False, True], ids=["plain", "dictionary"])
@pytest.mark.parametrize("suffix", [".parquet", ".arrow"])
def test_a_file_of_clean_rows_stays_in_one_process_unless_told(tmp_path, monkeypatch, suffix, dictionary):
    """Clean rows cost a process no more than reading them, which one process already does on a second core: such
    a file is split only when the share of rows the kernels flag is lowered to zero, with the same report; the
    share is the kernels' on the batch as they read it (dictionary-encoded texts decoded)."""
    import trlprep.inspector.scan

    path = tmp_path / f"chat{suffix}"
    _write_groups(path, [{"conversations": [{"from": "human", "value": f"question {i % 700}"},
                                            {"from": "gpt", "value": "answer"}]} for i in range(3000)], 250,
                  dictionary=dictionary)
    monkeypatch.setattr(trlprep.inspector.scan, "PARALLEL_FROM_BYTES", 0)
    alone, forked_alone = _forks_of(lambda: inspect_dataset(path, workers=2, max_rows=50).to_dict())
    monkeypatch.setattr(trlprep.inspector.scan, "PARALLEL_FROM_FLAGGED", 0)
    split, forked_split = _forks_of(lambda: inspect_dataset(path, workers=2, max_rows=50).to_dict())
    assert (forked_alone, forked_split > 1) == (0, True)
    alone.pop("stats")
    split.pop("stats")
    assert split == alone
    assert [(f["rule"], f["count"]) for f in alone["findings"]] == [("TP401", 2300)]


def test_progress_counts_each_row_once_across_workers(tmp_path, monkeypatch):
    import trlprep.inspector.scan
    from trlprep.inspector.rules import select_rules
    from trlprep.inspector.scan import scan
    from trlprep.inspector.sources import open_source

    path = tmp_path / "chat.parquet"
    _write_groups(path, _chat_rows(2000, seed=5), 100)
    monkeypatch.setattr(trlprep.inspector.scan, "PARALLEL_FROM_BYTES", 0)
    counted: list[int] = []
    _, forked = _forks_of(lambda: scan(open_source(path), enabled=select_rules((), ()), workers=2,
                                       advance=counted.append))
    assert forked > 1 and sum(counted) == 2000


def test_an_unreadable_row_group_in_a_worker_is_refused_as_in_one_process(tmp_path, monkeypatch):
    """The same one line, the row group's error, whichever process reads it."""
    import trlprep.inspector.scan
    from trlprep.errors import SourceError

    path = tmp_path / "chat.parquet"
    _write_groups(path, _chat_rows(6000, seed=9), 1000)
    _corrupt_texts(path, 5)  # the last group: past the rows tried before a split
    monkeypatch.setattr(trlprep.inspector.scan, "PARALLEL_FROM_BYTES", 0)
    refusals = []
    for workers in (1, 2):
        before = len(_FORKS)
        with pytest.raises(SourceError) as refused:
            inspect_dataset(path, workers=workers)
        refusals.append((str(refused.value), len(_FORKS) - before))
    message = refusals[0][0]
    assert refusals == [(message, 0), (message, 2)]
    assert message.startswith(f"{path}: unreadable data (") and "\n" not in message


def _corrupt_texts(path, group: int) -> None:
    """Garble the message texts of the Parquet file's row group `group` (its pages no longer decompress)."""
    import pyarrow.parquet as pq

    column = pq.ParquetFile(path).metadata.row_group(group).column(1)
    data = bytearray(path.read_bytes())
    middle = column.data_page_offset + column.total_compressed_size // 2
    data[middle:middle + 40] = b"\xff" * 40
    path.write_bytes(bytes(data))


def test_an_unreadable_row_group_stops_the_other_workers(tmp_path, monkeypatch):
    """The first range fails on its third row group: its error is raised without the other ranges being read, the
    workers killed (the progress they reported falls short of one range of the file's four)."""
    import trlprep.inspector.scan
    from trlprep.errors import SourceError
    from trlprep.inspector.rules import select_rules
    from trlprep.inspector.scan import scan
    from trlprep.inspector.sources import open_source

    path = tmp_path / "chat.parquet"
    _write_groups(path, _chat_rows(160_000, seed=13), 1000)
    _corrupt_texts(path, 2)  # past the rows read to tell the file's shape, and those tried before a split
    monkeypatch.setattr(trlprep.inspector.scan, "PARALLEL_FROM_BYTES", 0)
    with pytest.raises(SourceError) as alone:
        inspect_dataset(path, workers=1)
    counted: list[int] = []
    before = len(_FORKS)
    with pytest.raises(SourceError) as split:
        scan(open_source(path), enabled=select_rules((), ()), workers=2, advance=counted.append)
    assert len(_FORKS) - before == 2
    assert str(split.value) == str(alone.value)
    assert sum(counted) < 40_000


def test_past_the_set_limit_duplicates_are_found_by_sorting(tmp_path, monkeypatch):
    """Past SORT_DUPLICATES_FROM_ROWS rows the set of hashes is dropped (memory stays 16 bytes a row) and the
    repeats, before and after that point, come out of the sort the same."""
    import trlprep.inspector.scan
    import trlprep.inspector.sources
    from trlprep.inspector.dialects import classify_row
    from trlprep.inspector.scan import scan_lines

    path = tmp_path / "chat.jsonl"
    distinct = [json.dumps({"conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": "a"}]})
                for i in range(2000)]
    path.write_text("\n".join(distinct + _rows(1000, seed=11) + distinct[:3] + distinct[:1]) + "\n")  # q0 thrice
    expected = inspect_dataset(path, workers=1, max_rows=50).to_dict()
    monkeypatch.setattr(trlprep.inspector.scan.rows, "SORT_DUPLICATES_FROM_ROWS", 200)
    found = inspect_dataset(path, workers=1, max_rows=50).to_dict()
    example = {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
    (tmp_path / "distinct.jsonl").write_text("\n".join(distinct))  # no repeat: the set would only grow
    monkeypatch.setattr(trlprep.inspector.sources, "BLOCK_BYTES", 4096)
    with open(tmp_path / "distinct.jsonl", "rb") as handle:
        partial, _ = scan_lines("distinct.jsonl", handle, expected=classify_row(example), example=example,
                                enabled={"TP401"}, max_rows=5)
    assert partial.seen is None and len(partial.hashes) == 2000
    expected.pop("stats")
    found.pop("stats")
    assert found == expected


def test_a_parquet_file_decodes_beside_its_plan_and_leaves_no_thread(tmp_path, monkeypatch):
    """A Parquet file's batches decode while its first rows are read and classified (the plan), on a core that
    would wait otherwise; the decoding threads are gone when the scan ends, whether the kernels read the batches,
    the rows were read another way (oasst1's messages, expanded into conversations), or the scan failed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import trlprep.inspector.scan
    from trlprep.inspector.sources import SourceError

    during_plan = []
    real_plan = trlprep.inspector.scan.read_plan

    def plan_watched(*args, **kwargs):
        during_plan.append(len(_decoding_threads()))
        return real_plan(*args, **kwargs)

    monkeypatch.setattr(trlprep.inspector.scan, "read_plan", plan_watched)
    chat = tmp_path / "chat.parquet"
    _write_groups(chat, _chat_rows(600, seed=3), 100)
    messages = [json.loads(line) for line in (Path(__file__).parent / "data/shared/more/"
                                              "oasst1_en_validation_messages.jsonl").read_text().splitlines()]
    pq.write_table(pa.Table.from_pylist(messages), tmp_path / "oasst1.parquet")
    pq.write_table(pa.Table.from_pylist([{"text": "hi"}]).slice(0, 0), tmp_path / "empty.parquet")

    assert inspect_dataset(chat, workers=1).rows == 600
    assert inspect_dataset(tmp_path / "oasst1.parquet", workers=1).rows < len(messages)
    with pytest.raises(SourceError, match="no rows"):
        inspect_dataset(tmp_path / "empty.parquet", workers=1)
    assert during_plan == [2, 1, 1]  # a lane a row group, two at most: the last two files have one group each
    assert not _decoding_threads()
