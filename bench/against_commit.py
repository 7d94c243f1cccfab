"""This checkout against an earlier commit, in one run: the same paths timed in alternation, best of --repeat each.

    uv run python bench/against_commit.py                      # against ff2be09, the commit before issue 26
    uv run python bench/against_commit.py --commit HEAD~3 --rows 200000

The earlier commit is checked out in a temporary git worktree and imported from there by a subprocess of this
environment (its folder first on `sys.path`), so both run with the same interpreter and libraries; runs of the two
alternate, so that the machine's swings hit both alike. Each run times `inspect_dataset` in its own process (the
scan's seconds, as the report's `stats.seconds` says) or `convert`, on files generated like `bench/bench.py`'s:
- the ShareGPT chat JSON lines, in one and in two processes (the file is past the parallel threshold);
- the same rows as Parquet (the column kernels), in one and in two processes, and as an Arrow IPC file;
- the chat rows where 40% of the conversations end on a user turn (a TP205 warning each: rows off the fast path);
- OpenAI tool-call rows, with `tools` and JSON-string arguments (every row off the fast path; `--tools` only);
- `convert` ShareGPT -> messages.
Prints seconds and rows/s for each side and the ratio (this checkout's time over the commit's).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import generate, tool_calls_file, warned_file  # noqa: E402  (bench/bench.py: this script's folder is on the path)
from formats import copies  # noqa: E402  (bench/formats.py)

BEFORE_ISSUE_26 = "ff2be09"
# One timed run, in a process of its own: prints the seconds it took.
# Its stages are imported from the checkout's own layout: top-level packages before issue 26, `trlprep.*` after (an
# earlier commit's must not fall through to this checkout's `trlprep`, which the editable install puts on the path).
RUN = """
import importlib, json, sys, tempfile, time
case, path, workers, prefix = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if case == "convert":
    convert = importlib.import_module(prefix + "converters").convert
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        convert(path, to="sft", output=folder + "/out.jsonl")
        print(json.dumps(time.perf_counter() - started))
else:
    inspect_dataset = importlib.import_module(prefix + "inspector").inspect_dataset
    print(json.dumps(inspect_dataset(path, workers=workers).stats["seconds"]))
"""


def timed(checkout: Path, case: str, path: Path, workers: int) -> float:
    prefix = "trlprep." if (checkout / "trlprep" / "__init__.py").exists() else ""
    done = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(checkout)!r})\n" + RUN,
                           case, str(path), str(workers), prefix], capture_output=True, text=True, cwd=checkout)
    if done.returncode:
        raise SystemExit(f"{checkout} {case}: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commit", default=BEFORE_ISSUE_26)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tools", action="store_true", help="also time inspect on tool-call rows")
    args = parser.parse_args()
    chat, parquet, _ = generate(args.rows)
    arrow = next(copy.path for copy in copies(chat) if copy.format == "Arrow file")
    cases = [("inspect, JSON lines, 1 process", "inspect", chat, 1),
             ("inspect, JSON lines, 2 processes", "inspect", chat, 2),
             ("inspect, Parquet", "inspect", parquet, 1),
             ("inspect, Parquet, 2 processes", "inspect", parquet, 2),
             ("inspect, Arrow file", "inspect", arrow, 1),
             ("inspect, 40% of rows with a warning", "inspect", warned_file(args.rows), 1),
             ("convert ShareGPT -> messages", "convert", chat, 1)]
    if args.tools:
        cases.append(("inspect, tool-call rows", "inspect", tool_calls_file(args.rows), 1))
    with tempfile.TemporaryDirectory() as folder:
        before = Path(folder) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(before), args.commit], cwd=ROOT,
                       check=True)
        try:
            print(f"{args.rows:,} rows; this checkout against {args.commit}, best of {args.repeat}, alternating")
            print(f"| what | {args.commit} s | rows/s | this checkout s | rows/s | ratio |")
            print("| --- | ---: | ---: | ---: | ---: | ---: |")
            for name, case, path, workers in cases:
                times: dict[Path, list[float]] = {before: [], ROOT: []}
                for _ in range(args.repeat):
                    for checkout in times:
                        times[checkout].append(timed(checkout, case, path, workers))
                old, new = min(times[before]), min(times[ROOT])
                print(f"| {name} | {old:.3f} | {args.rows / old:,.0f} | {new:.3f} | {args.rows / new:,.0f} | "
                      f"{new / old:.2f} |", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
