"""`inspect` against a bare read of the same file, per format, and its peak memory as the file grows, in one run.

    uv run python bench/formats.py                 # 200,000 chat rows (the performance issue's size), ~3 minutes
    uv run python bench/formats.py --rows 2000 --repeat 1 --json

From bench/bench.py's ShareGPT chat file and its copy where 40% of the conversations end on a user turn (a TP205
warning each: rows the column kernels and the fast path refuse; `--warned-rows`, a quarter of `--rows` by default,
as each such row costs ~10x a clean one), it makes (cached under --data) a Parquet copy in row groups of 20,000
rows, an Arrow IPC file and an Arrow IPC stream in record batches of as many. Then, best of --repeat, the
measurements alternating (one round in order, the next reversed), each file is read bare (`pyarrow.json.read_json`,
`pyarrow.parquet.read_table`, `pyarrow.ipc.open_file(...).read_all()` and `open_stream` on a memory map) and
inspected with `inspect_dataset(path, workers=1)` and `workers=2`: seconds of the whole call, rows/s, and the ratio
(bare seconds / inspect seconds: 0.5 means inspect takes twice the bare read). The two lines the issue's "done
when" names (the chat file: Parquet in one process, JSON lines as `inspect` runs them by default, split across 2
processes here; ratio >= 0.5) say PASS or FAIL. An Arrow file's
bare read maps it and decodes nothing (milliseconds): there, rows/s is the figure to compare, not the ratio.

Peak memory: `inspect` of the chat Parquet at 1x, 2x and 4x --rows (times --scale) in a subprocess, as
bench/memory.py measures it (the largest resident size of that process or a worker it waited for), above the
resting peak of the same command on a 1,000-row slice, and over 1x's peak ("vs 1x": 1 where memory is bounded by
the batch size). Copy k of the rows has " k" after each text, so no row repeats another.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from bench import DATA, ROW_GROUP_ROWS, generate, warned_file  # bench/bench.py: this script's folder is on the path

HERE = Path(__file__).resolve().parent
DONE_WHEN_RATIO = 0.5
RESTING_ROWS = 1000
SCALES = (1, 2, 4)


@dataclass(frozen=True)
class Copy:
    """One format of a generated file: how to read it bare, and where it is."""

    format: str
    path: Path
    read: Callable[[Path], object]


def _read_json(path: Path):
    import pyarrow.json

    return pyarrow.json.read_json(path)


def _read_parquet(path: Path):
    import pyarrow.parquet as pq

    return pq.read_table(path)


def _read_ipc_file(path: Path):
    import pyarrow as pa

    return pa.ipc.open_file(pa.memory_map(str(path))).read_all()


def _read_ipc_stream(path: Path):
    import pyarrow as pa

    return pa.ipc.open_stream(pa.memory_map(str(path))).read_all()


def copies(jsonl: Path) -> list[Copy]:
    """The JSON-lines file and its Parquet, Arrow file and Arrow stream copies (written beside it once)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet, arrow, stream = (jsonl.with_suffix(suffix) for suffix in (".parquet", ".arrow", ".stream.arrow"))
    if not (parquet.exists() and arrow.exists() and stream.exists()):
        table = _read_json(jsonl)
        if not parquet.exists():  # bench.py's generate() made the chat file's
            pq.write_table(table, parquet, row_group_size=ROW_GROUP_ROWS)
        for path, writer in ((arrow, pa.ipc.new_file), (stream, pa.ipc.new_stream)):
            with pa.OSFile(str(path), "wb") as sink, writer(sink, table.schema) as out:
                out.write_table(table, max_chunksize=ROW_GROUP_ROWS)
    return [Copy("Parquet", parquet, _read_parquet), Copy("Arrow file", arrow, _read_ipc_file),
            Copy("Arrow stream", stream, _read_ipc_stream), Copy("JSON lines", jsonl, _read_json)]


@dataclass
class Timing:
    format: str
    file: str
    what: str
    rows: int
    seconds: float = float("inf")
    ratio: float | None = None  # bare read seconds / these seconds
    done_when: str | None = None  # PASS or FAIL on the lines the "done when" names


def inspected(path: Path, workers: int, rows: int) -> None:
    from trlprep.inspector import inspect_dataset

    report = inspect_dataset(path, workers=workers)
    if report.rows_checked != rows:  # rows/s would be wrong
        raise SystemExit(f"{path}: inspect checked {report.rows_checked:,} rows, not {rows:,}")


def time_formats(files: dict[str, tuple[Path, int]], repeat: int) -> list[Timing]:
    """Every copy of every file read bare and inspected with 1 and 2 workers, best of `repeat`, alternating."""
    runs: list[tuple[Timing, Callable[[], object]]] = []
    for name, (jsonl, rows) in files.items():
        for copy in copies(jsonl):
            runs.append((Timing(copy.format, name, "bare read", rows), lambda c=copy: c.read(c.path)))
            for workers in (1, 2):
                what = f"inspect, {workers} process{'es' if workers > 1 else ''}"
                runs.append((Timing(copy.format, name, what, rows),
                             lambda c=copy, w=workers, n=rows: inspected(c.path, w, n)))
    for round_ in range(repeat):
        for timing, function in runs if round_ % 2 == 0 else reversed(runs):
            started = time.perf_counter()
            function()
            timing.seconds = min(timing.seconds, time.perf_counter() - started)
    timings = [timing for timing, _ in runs]
    for bare, *inspects in zip(timings[::3], timings[1::3], timings[2::3]):
        for timing in (bare, *inspects):
            timing.ratio = bare.seconds / timing.seconds
        # The issue holds Parquet to one process, and JSON lines to what `inspect` does by default (it measured
        # `stats.seconds` of a default run: the chat file, past 64 MiB, split across both cores).
        named = {("Parquet", "chat"): inspects[0], ("JSON lines", "chat"): inspects[1]}.get((bare.format, bare.file))
        if named is not None:
            named.done_when = "PASS" if named.ratio >= DONE_WHEN_RATIO else "FAIL"
    return timings


def _write_copies(path: Path, rows: int, source: Path) -> None:
    """The first `rows` rows of copies 0, 1, 2, ... of the Parquet file `source`, copy k with " k" after each
    text (no row repeats another), written a copy at a time: this process holds one table and one copy's texts."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(source)
    column = table.column("conversations").combine_chunks()
    turns = column.values
    names = [field.name for field in turns.type]
    with pq.ParquetWriter(path, table.schema) as out:
        copy = 0
        while rows > 0:
            texts = turns.field("value") if copy == 0 else pc.binary_join_element_wise(turns.field("value"),
                                                                                        str(copy), " ")
            suffixed = pa.StructArray.from_arrays([texts if name == "value" else turns.field(name) for name in names],
                                                 names=names)
            conversations = pa.ListArray.from_arrays(column.offsets, suffixed)
            part = pa.table({"conversations": conversations}).slice(0, rows)
            out.write_table(part, row_group_size=ROW_GROUP_ROWS)
            rows -= part.num_rows
            copy += 1


# bench/memory.py's measurement of a file already made (its case's `make` is not called), from a small process
# of its own: Linux carries the peak RSS of the process that starts a command over into that command's, and this
# one has held whole tables.
MEASURE = ("import json, sys; from pathlib import Path; from memory import Case, run; "
           "print(json.dumps(run(Case('Parquet', sys.argv[1], 0, make=None), Path(sys.argv[2]))))")


@dataclass
class Peak:
    rows: int
    file_mb: float
    seconds: float
    peak_mb: float
    above_resting_mb: float = 0.0
    vs_1x: float = 0.0  # this peak over that of 1x the rows: 1 when memory is bounded by the batch size


def peak_memory(parquet: Path, rows: int, scale: float, folder: Path) -> list[Peak]:
    """`inspect` of the chat Parquet at each of SCALES times `rows` (times `scale`), in a subprocess, after one
    of a RESTING_ROWS slice (its peak is the resting one: the interpreter and the libraries)."""
    sizes = [min(RESTING_ROWS, rows)] + [round(rows * scale * factor) for factor in SCALES]
    peaks = []
    for size in sizes:
        file = folder / f"chat-{size}.parquet"
        _write_copies(file, size, parquet)
        done = subprocess.run([sys.executable, "-c", MEASURE, file.name, str(folder)], cwd=HERE, check=True,
                              capture_output=True, text=True)
        file.unlink()
        result = json.loads(done.stdout)
        if result["exit"] != 0 or result["rows"] != size:
            raise SystemExit(f"inspect of {size:,} rows: exit {result['exit']}, {result['rows']} rows, "
                             f"{result['message']}")
        peaks.append(Peak(size, result["bytes"] / 1e6, result["seconds"], result["peak_mb"]))
    for peak in peaks:
        peak.above_resting_mb = peak.peak_mb - peaks[0].peak_mb
        peak.vs_1x = peak.peak_mb / peaks[1].peak_mb
    return peaks


def print_tables(timings: list[Timing], peaks: list[Peak], repeat: int) -> None:
    print(f"best of {repeat}, alternating; ratio = bare read seconds / these seconds; done when, on the chat file: "
          f"Parquet in 1 process and JSON lines as inspect runs them by default (2 processes here), >= {DONE_WHEN_RATIO}")
    print("| format | file | what | seconds | rows/s | ratio | done when |")
    print("| --- | --- | --- | ---: | ---: | ---: | --- |")
    for t in timings:
        print(f"| {t.format} | {t.file} ({t.rows:,} rows) | {t.what} | {t.seconds:.3f} | {t.rows / t.seconds:,.0f} | "
              f"{t.ratio:.2f} | {t.done_when or ''} |")
    print()
    print(f"peak RSS of `inspect` on the chat Parquet (a subprocess; resting: the same on {peaks[0].rows:,} rows)")
    print("| rows | file MB | seconds | peak RSS MB | above resting MB | vs 1x |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for p in peaks:
        print(f"| {p.rows:,} | {p.file_mb:,.1f} | {p.seconds:.2f} | {p.peak_mb:,.0f} | {p.above_resting_mb:,.0f} | "
              f"{p.vs_1x:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the chat file (default 200,000)")
    parser.add_argument("--warned-rows", type=int, default=None,
                        help="rows of the file where 40%% carry a warning (default: a quarter of --rows)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="the memory files' rows as a share of 1x, 2x and 4x --rows (default 1)")
    parser.add_argument("--data", type=Path, default=DATA, help="where the generated files are kept (default "
                        "bench/data)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    warned_rows = args.warned_rows or max(1, args.rows // 4)
    chat, parquet, _ = generate(args.rows, folder=args.data)
    files = {"chat": (chat, args.rows), "40% warned": (warned_file(warned_rows, folder=args.data), warned_rows)}
    # Imported before the first timed run, which would count them otherwise.
    import pyarrow.dataset, pyarrow.json, pyarrow.parquet  # noqa: E401, F401
    import trlprep.inspector.columnar  # noqa: F401

    timings = time_formats(files, args.repeat)
    with tempfile.TemporaryDirectory(prefix="trlprep-formats-") as folder:
        peaks = peak_memory(parquet, args.rows, args.scale, Path(folder))
    if args.json:
        print(json.dumps({"timings": [asdict(t) for t in timings], "peak_memory": [asdict(p) for p in peaks]},
                         indent=1))
    else:
        print_tables(timings, peaks, args.repeat)
        from trlprep.inspector.scan import PARALLEL_FROM_BYTES

        for name, (path, _) in files.items():
            splits = path.stat().st_size >= PARALLEL_FROM_BYTES
            print(f"the {name} JSON lines ({path.stat().st_size >> 20} MiB) "
                  f"{'are' if splits else 'are NOT'} split across 2 processes (from {PARALLEL_FROM_BYTES >> 20} MiB)")


if __name__ == "__main__":
    main()
