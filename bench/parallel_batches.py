"""What a second process gives `inspect` on Parquet: one process against two (row groups across forked workers) and
against the default with two workers (which splits a file only when enough of its rows go through Python), in the
same process, timed alternately (the machine is noisy), each order in turn.

    uv run python bench/parallel_batches.py                 # 200,000 rows a file
    uv run python bench/parallel_batches.py --rows 100000 --repeat 5

Reads `bench.py`'s chat file as Parquet (20,000-row groups), and a Parquet copy, written the same way, of its file
where 40% of the conversations end on a user turn (a TP205 warning each: rows the column kernels flag, which go
through Python). Prints, for each, the best time of each side, rows/s, the ratio of its time to one process's
(below 1: it pays), the CPU time of that run (this process's threads and its workers'), and the peak RSS of this
process and its workers together above its resting size, in one more, untimed run of each side. On a machine
whose cores other work keeps busy, the CPU times say what the wall times cannot: what the split costs in all.
"""

from __future__ import annotations

import argparse
import functools
import resource
import time
from pathlib import Path

from bench import DATA, TreePeak, _memory, _reset_peak, generate, warned_file


def warned_parquet(rows: int) -> Path:
    """The 40%-warned chat rows as Parquet, 20,000 rows a row group (cached)."""
    path = DATA / f"warned-{rows}.parquet"
    if not path.exists():
        import pyarrow.json
        import pyarrow.parquet as pq

        pq.write_table(pyarrow.json.read_json(warned_file(rows)), path, row_group_size=20_000)
    return path


def cpu_seconds() -> float:
    """The CPU time of this process's threads and of its workers that have ended."""
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def peak_mb(run) -> int:
    """The peak RSS of this process and its workers during `run()`, above this process's resting size (as in
    `bench.py`)."""
    resting = _memory("VmRSS")
    tracked = _reset_peak()
    with TreePeak() as tree:
        run()
    return max(_memory("VmHWM") if tracked else 0, tree.peak) - resting


def inspect_with(path: Path, workers: int, split: bool | None) -> None:
    """`inspect` of `path` with `workers`; `split`: split whatever share of rows the kernels flag (True), never
    (False), or as the default decides (None)."""
    import trlprep.inspector.scan as scan
    from trlprep.inspector import inspect_dataset

    default = scan.PARALLEL_FROM_FLAGGED
    scan.PARALLEL_FROM_FLAGGED = {True: 0.0, False: 2.0, None: default}[split]
    try:
        inspect_dataset(path, workers=workers)
    finally:
        scan.PARALLEL_FROM_FLAGGED = default


# Each side: its name, then `inspect_with`'s workers and split.
SIDES = (("1 process", 1, None), ("2 processes", 2, True), ("default, 2 workers", 2, None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    files = {"clean chat rows": generate(args.rows)[1], "40% of rows with a warning": warned_parquet(args.rows)}
    print(f"{args.rows:,} rows a file, best of {args.repeat}, the sides alternating")
    print("| file | side | seconds | rows/s | CPU seconds | peak RSS MB | over 1 process |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, path in files.items():
        inspect_with(path, 1, None)  # the page cache and the imports warm, for every side alike
        runs: dict[str, list[tuple[float, float]]] = {side: [] for side, _, _ in SIDES}  # (seconds, CPU seconds)
        for turn in range(args.repeat):
            for side, workers, split in SIDES if turn % 2 == 0 else SIDES[::-1]:
                started, cpu = time.perf_counter(), cpu_seconds()
                inspect_with(path, workers, split)
                runs[side].append((time.perf_counter() - started, cpu_seconds() - cpu))
        best = {side: min(times) for side, times in runs.items()}
        for side, workers, split in SIDES:
            peak = peak_mb(functools.partial(inspect_with, path, workers, split))
            seconds, cpu = best[side]
            print(f"| {name} | {side} | {seconds:.3f} | {args.rows / seconds:,.0f} | {cpu:.2f} | {peak} | "
                  f"{seconds / best[SIDES[0][0]][0]:.2f} |")


if __name__ == "__main__":
    main()
