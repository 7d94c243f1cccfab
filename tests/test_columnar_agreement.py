"""Parquet and Arrow files through the column kernels give the report the row path gives, byte for byte (timings
aside), whatever Arrow types their columns have: plain, large, views, dictionary-encoded, with nulls anywhere.

`inspector.scan.COLUMN_KERNELS` off reads every batch row by row; each file here is inspected both ways.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trlprep.inspector.arrow as arrow
import trlprep.inspector.columnar as columnar
import trlprep.inspector.scan as scan
from trlprep.inspector import inspect_dataset
from tests.conftest import SHARED_DATA, SLICES
from tests.test_properties import COLUMN_EXAMPLES, COLUMN_TABLES, TYPE_VARIANTS, typed_table


def reports_both_ways(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, int]:
    """`inspect`'s JSON report of `path` with the column kernels and without (timings left out), and how many
    rows the kernels found clean: none means the file never reached them, and the two reports prove nothing."""
    clean_rows, found = columnar.ColumnPlan.clean_rows, []

    def counted(plan, batch):
        clean, keys = clean_rows(plan, batch)
        found.append(int(clean.sum()))
        return clean, keys

    reports = []
    for kernels in (True, False):
        with monkeypatch.context() as patch:
            patch.setattr(scan, "COLUMN_KERNELS", kernels)
            patch.setattr(columnar.ColumnPlan, "clean_rows", counted)
            report = inspect_dataset(path)
        report.stats = {}
        reports.append(report.to_json())
    return reports[0], reports[1], sum(found)


def write_files(table: pa.Table, folder: Path, variant: str) -> list[Path]:
    """`table` as Parquet (row groups of 3 rows; pyarrow 26 writes no view types to Parquet) and as Arrow IPC
    file and stream (batches of 3 rows, one dictionary for all)."""
    paths = []
    if variant != "view":
        paths.append(folder / "rows.parquet")
        pq.write_table(table, paths[-1], row_group_size=3)
    for name, writer in (("rows.arrow", pa.ipc.new_file), ("rows.arrows", pa.ipc.new_stream)):
        paths.append(folder / name)
        with writer(paths[-1], table.schema) as out:
            out.write_table(table, max_chunksize=3)
    return paths


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_a_file_of_any_arrow_types_reports_what_the_row_path_reports(data):
    """Random rows of each kernel shape, with nulls anywhere, written as Parquet, Arrow and Arrow stream in each
    type variant: the column kernels' report is the row path's, byte for byte. The example row, repeated after
    the drawn ones, makes the file the kernels' shape (and repeats an accepted row: duplicates across paths).
    Half the files search the columns' bytes as a platform without the C library's `memmem` does."""
    kind = data.draw(st.sampled_from(sorted(COLUMN_TABLES)))
    example, variant = COLUMN_EXAMPLES[kind], data.draw(st.sampled_from(TYPE_VARIANTS))
    rows = data.draw(COLUMN_TABLES[kind])
    rows += [example] * (len(rows) + 1)
    table = typed_table(rows, example, variant)
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as monkeypatch:
        if data.draw(st.booleans(), label="without memmem"):
            monkeypatch.setattr(arrow, "_memmem", lambda: None)
        for path in write_files(table, Path(folder), variant):
            with_kernels, row_by_row, clean = reports_both_ways(path, monkeypatch)
            assert clean > 0, f"{path.name}: no row of the {variant} types reached the column kernels"
            assert with_kernels == row_by_row, path.name


@given(texts=st.lists(st.binary(max_size=12), min_size=1, max_size=4), needle=st.binary(min_size=1, max_size=3),
       memmem=st.booleans())
def test_a_search_of_a_columns_bytes_finds_what_python_finds(texts, needle, memmem):
    """`TextBytes.holds`, by the C library's `memmem` or (where there is none) by numpy and Python, says what
    Python's `in` says of the column's bytes end to end: a column sliced from a buffer that holds more (a batch of a
    row group), its first byte asked first and then the whole needle, as the proofs ask."""
    column = pa.array([b"<", *texts, b"_"], pa.binary()).slice(1, len(texts))
    with pytest.MonkeyPatch.context() as monkeypatch:
        if not memmem:
            monkeypatch.setattr(arrow, "_memmem", lambda: None)
        found = arrow.TextBytes(column)
        assert found.holds(needle[:1]) == (needle[:1] in b"".join(texts))
        assert found.holds(needle) == (needle in b"".join(texts))


# The real files `datasets` does not load, as a user would find them (each is read by `inspect` itself, with the
# encoding or separator its refusal proposes: see tests/test_golden.py).
UNLOADABLE = {
    "mmlu_redux_high_school_macroeconomics_semicolon.csv": "separated by semicolons: datasets' CSV reader "
                                                           "expects commas",
    "mmlu_redux_moral_scenarios_macroman_crlf.csv": "Mac Roman text: datasets reads CSV as UTF-8",
}


def as_hub_parquet(path: Path, folder: Path) -> Path:
    """A JSON, JSON-lines or CSV file written as the Hub's Parquet files are: loaded by `datasets` and saved
    with `Dataset.to_parquet` (its types: `large_string` for CSV text, struct fields in its own order)."""
    import datasets

    datasets.disable_progress_bars()
    load = datasets.Dataset.from_csv if path.suffix == ".csv" else datasets.Dataset.from_json
    written = folder / f"{path.stem}.parquet"
    load(str(path), cache_dir=str(folder / "cache"), keep_in_memory=True).to_parquet(str(written))
    return written


def compare_as_hub_parquet(files: list[Path], folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Each file as the Hub's Parquet, inspected with the column kernels and without: the two reports must be
    one. The rows the kernels found clean, by file compared (a file of `UNLOADABLE` must still fail to load)."""
    from datasets.exceptions import DatasetGenerationError

    compared = {}
    for path in files:
        if path.name in UNLOADABLE:
            with pytest.raises(DatasetGenerationError):
                as_hub_parquet(path, folder)
            continue
        with_kernels, row_by_row, clean = reports_both_ways(as_hub_parquet(path, folder), monkeypatch)
        assert with_kernels == row_by_row, path
        compared[path.name] = clean
    return compared


def _data_files(folder: Path, recursive: bool = False) -> list[Path]:
    return sorted(p for p in (folder.rglob("*") if recursive else folder.iterdir())
                  if p.suffix in (".json", ".jsonl", ".csv"))


def test_the_shipped_slices_as_hub_parquet_report_what_the_row_path_reports(tmp_path, monkeypatch):
    files = _data_files(SLICES, recursive=True)
    compared = compare_as_hub_parquet(files, tmp_path, monkeypatch)
    assert len(compared) == len(files) - len(UNLOADABLE) >= 23
    # The files of the kernels' shapes, whose rows they took (the others are read row by row either way).
    assert {name for name, clean in compared.items() if clean} == {"c4_demo.jsonl", "sharegpt_medical_sft_zh.jsonl"}


@pytest.mark.slow
@pytest.mark.parametrize("folder", ["", "more"])
def test_the_real_datasets_as_hub_parquet_report_what_the_row_path_reports(folder, tmp_path, monkeypatch):
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside this checkout")
    files = _data_files(SHARED_DATA / folder)
    compared = compare_as_hub_parquet(files, tmp_path, monkeypatch)
    assert len(compared) == len(files) - len(UNLOADABLE.keys() & {p.name for p in files}) >= 7
    assert any(compared.values()), compared  # the kernels took part


def test_a_batch_past_what_32_bit_offsets_reach_is_checked_in_slices_that_fit(tmp_path, monkeypatch):
    """A `large_list` batch holding more items than a `list` can is halved until each slice fits (here the bound
    is lowered to 3 messages, not 2**31): two-message rows still reach the kernels, a row past the bound alone
    is read row by row, and the report is the row path's."""
    import trlprep.inspector.arrow as arrow

    example = COLUMN_EXAMPLES["conversations"]
    long = {"conversations": example["conversations"] * 2}
    rows = [example] + [{"conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": "a"}]}
                        for i in range(6)] + [long]
    monkeypatch.setattr(arrow, "_OFFSET_LIMIT", 3)
    path = tmp_path / "rows.arrow"
    table = typed_table(rows, example, "large")
    with pa.ipc.new_file(path, table.schema) as out:
        out.write_table(table)
    with_kernels, row_by_row, clean = reports_both_ways(path, monkeypatch)
    assert clean == 7
    assert with_kernels == row_by_row
