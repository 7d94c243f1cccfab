"""Sharded `inspect` and `convert` on datatrove's local executor against one pass over the same files, in one process.

    uv run --extra distributed python bench/shards.py                  # 8 shards of the 200,000-row chat file
    uv run --extra distributed python bench/shards.py --shards 16 --workers 2

The chat file bench/bench.py writes is cut into shards at line boundaries; then, best of --repeat each: one pass
(`inspect_dataset` on the glob, one process), the same with the scan's own 2 processes, and `inspect_shards` with
--workers datatrove workers (four steps: first rows, judgement, scan, merge). Printed: seconds, rows/s, the ratio to
the one-process pass, and rows/s per worker (what the cost model in docs/sharded.md scales). The reports are checked
equal, timings aside. Then `convert --to sft` the same way: one pass to one Parquet file against `convert_shards`
(one Parquet file per shard), the rows checked equal as `datasets` loads them, and each shard's conversion rate
inside its task.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def cut(source: Path, folder: Path, shards: int) -> None:
    lines = source.read_bytes().splitlines(keepends=True)
    size = -(-len(lines) // shards)
    for number in range(shards):
        (folder / f"part-{number:04d}.jsonl").write_bytes(b"".join(lines[number * size:(number + 1) * size]))


def timed(runs: dict, repeat: int) -> tuple[dict, dict, list[float]]:
    """Best seconds and last result of each run (given a fresh work folder), and the per-shard rates its tasks
    recorded."""
    seconds, results, task_rates = {}, {}, []
    for name, run in runs.items():
        best = float("inf")
        for _ in range(repeat):
            work = Path(tempfile.mkdtemp(prefix="work-"))
            started = time.perf_counter()
            results[name] = run(work)
            best = min(best, time.perf_counter() - started)
            for path in (work / "progress").glob("*.json"):  # each shard's step, in its task
                shard = json.loads(path.read_text())
                task_rates.append(shard["rows"] / shard["seconds"])
            shutil.rmtree(work)
        seconds[name] = best
    return seconds, results, sorted(task_rates)


def table(seconds: dict, rows: int, workers: int) -> None:
    baseline = next(iter(seconds.values()))
    for name, took in seconds.items():
        used = workers if name.startswith("datatrove") else (2 if "2 processes" in name else 1)
        print(f"{name:36} {took:6.2f} s {rows / took:10,.0f} rows/s  {baseline / took:5.2f}x the speed  "
              f"{rows / took / used:10,.0f} rows/s per worker")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from bench import generate
    from trlprep.inspector import inspect_dataset
    from trlprep.options import Executor

    chat = generate(args.rows)[0]
    folder = Path(tempfile.mkdtemp(prefix="shards-"))
    cut(chat, folder, args.shards)
    pattern = str(folder / "*.jsonl")
    runs = {
        "one pass, 1 process": lambda work: inspect_dataset(pattern, workers=1),
        "one pass, the scan's 2 processes": lambda work: inspect_dataset(pattern, workers=2),
        f"datatrove local, {args.workers} workers": lambda work: inspect_dataset(
            pattern, executor=Executor(workers=args.workers, work_dir=work)),
    }
    seconds, reports, task_rates = timed(runs, args.repeat)
    print(f"{args.rows:,} rows in {args.shards} shards ({chat.stat().st_size / 1e6:.0f} MB)")
    table(seconds, args.rows, args.workers)
    print(f"scan step inside a task: median {task_rates[len(task_rates) // 2]:,.0f} rows/s per shard (the rest of a "
          f"sharded run is datatrove's start-up of 4 steps and the first rows of every shard)")
    same = {json.dumps({k: v for k, v in report.to_dict().items() if k != "stats"}, sort_keys=True)
            for report in reports.values()}
    print("reports equal, timings aside:", len(same) == 1)

    from trlprep.converters import convert

    outputs = Path(tempfile.mkdtemp(prefix="converted-"))
    conversions = {
        "convert, one pass": lambda work: convert(pattern, to="sft", output=outputs / "single.parquet",
                                                  overwrite=True),
        f"datatrove local, {args.workers} workers": lambda work: convert(
            pattern, to="sft", output=outputs / "sharded", overwrite=True,
            executor=Executor(workers=args.workers, work_dir=work)),
    }
    seconds, _, task_rates = timed(conversions, args.repeat)
    print(f"convert --to sft, {args.rows:,} rows:")
    table(seconds, args.rows, args.workers)
    print(f"conversion step inside a task: median {task_rates[len(task_rates) // 2]:,.0f} rows/s per shard "
          f"(conversion, Parquet writing and the output's scan)")
    print("converted rows equal:", loaded(sorted((outputs / "sharded").glob("*.parquet")))
          == loaded([outputs / "single.parquet"]))
    shutil.rmtree(outputs)
    shutil.rmtree(folder)


def loaded(files: list[Path]) -> list[bytes]:
    import datasets
    import orjson

    rows = datasets.load_dataset("parquet", data_files=[str(path) for path in files], split="train")
    return sorted(orjson.dumps(row, option=orjson.OPT_SORT_KEYS) for row in rows)


if __name__ == "__main__":
    main()
