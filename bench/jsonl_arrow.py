"""JSON lines through the Arrow column kernels: does reading them with `pyarrow.json` and checking them a column at a
time (as Parquet is) beat today's engine, msgspec's typed decode of blocks of lines, for each shape the kernels know?

    uv run python bench/jsonl_arrow.py                  # 200,000 rows a shape, best of 3
    uv run python bench/jsonl_arrow.py --rows 20000 --repeat 5

Generates, under bench/data/ (kept between runs, bench/bench.py's chat file reused), one clean file per shape:
ShareGPT `conversations`, `messages`, `text`, `prompt`/`completion` and `prompt`/`chosen`/`rejected` strings.
Then times in this process, each on the same file, best of --repeat rounds of every case (alternating, since
the machine is noisy):
- `inspect` in one process, as a user runs it (the head read and the report included);
- its JSON-lines engine alone (`scan_lines`: blocks decoded by msgspec, value tests, hashes);
- `pyarrow.json.read_json` of the whole file (its threads: both cores) and on one thread, and the streaming
  `pyarrow.json.open_json` reader (memory bounded by its block size);
- `pyarrow.json` with the example row's schema, on `inspect`'s blocks of lines joined to 8,192 lines (what keeps
  row numbers exact: a block whose rows are not its lines would go the row path), alone;
- the Arrow engine: those blocks, then the column kernels and the row scan (`columnar.scan_batches` into
  `RowScan.take`, as Parquet is checked).
Ratios are against the JSON-lines engine: below 0.90 the Arrow engine pays. Peak RSS is this process's peak during
a case's run above its size before it, the highest of its runs (Linux: reset through /proc/self/clear_refs).
"""

from __future__ import annotations

import argparse
import io
import random
import re
import sys
import time
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import _cached_rows, _text, generate  # noqa: E402  (bench/bench.py: this script's folder is on the path)


def _messages(rng: random.Random, index: int) -> dict:
    return {"messages": [{"role": "user" if i % 2 == 0 else "assistant", "content": _text(rng)}
                         for i in range(2 * rng.randint(1, 3))]}


def _plain_text(rng: random.Random, index: int) -> dict:
    return {"text": _text(rng)}


def _prompt_completion(rng: random.Random, index: int) -> dict:
    return {"prompt": _text(rng), "completion": _text(rng)}


def _preference(rng: random.Random, index: int) -> dict:
    return {"prompt": _text(rng), "chosen": _text(rng), "rejected": _text(rng)}


def shape_files(rows: int) -> dict[str, Path]:
    """One clean JSON-lines file of `rows` rows per shape the column kernels know (cached)."""
    return {"conversations": generate(rows)[0],
            "messages": _cached_rows("messages", rows, 3, _messages),
            "text": _cached_rows("text", rows, 4, _plain_text),
            "prompt/completion": _cached_rows("prompt-completion", rows, 5, _prompt_completion),
            "prompt/chosen/rejected": _cached_rows("preference-strings", rows, 6, _preference)}


def _memory(field: str) -> int:
    with open("/proc/self/status") as status:
        return int(re.search(rf"{field}:\s+(\d+)", status.read()).group(1)) // 1024


def timed(run: Callable[[], object]) -> tuple[float, int]:
    """One run's seconds, and this process's peak RSS during it above its size before it, in MB."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        pass
    resting = _memory("VmRSS")
    started = time.perf_counter()
    run()
    return time.perf_counter() - started, max(0, _memory("VmHWM") - resting)


class Cases:
    """The runs timed on one file, sharing its read plan (shape, fast-path example)."""

    def __init__(self, path: Path):
        from trlprep.inspector.rules import select_rules
        from trlprep.inspector.scan import read_plan
        from trlprep.inspector.sources import open_source

        self.path = path
        self.enabled = select_rules((), ())
        part = read_plan(open_source(str(path)), columns=True).parts[0]
        self.expected, self.example = part.judged_as, part.example

    def inspect(self) -> None:
        from trlprep.inspector.api import inspect_dataset

        inspect_dataset(str(self.path), workers=1)

    def lines_engine(self) -> None:
        from trlprep.inspector.scan import scan_lines

        with open(self.path, "rb") as handle:
            scan_lines(str(self.path), handle, expected=self.expected, example=self.example, enabled=self.enabled,
                       max_rows=5)

    def read_json(self, threads: bool) -> None:
        import pyarrow.json as pj

        pj.read_json(self.path, read_options=pj.ReadOptions(use_threads=threads))

    def open_json(self) -> None:
        import pyarrow.json as pj

        for _ in pj.open_json(self.path, read_options=pj.ReadOptions(use_threads=False, block_size=1 << 20)):
            pass

    def schema(self):
        """The Arrow schema `pyarrow.json` infers for the example row: the one every block is read with."""
        import orjson
        import pyarrow.json as pj

        return pj.read_json(io.BytesIO(orjson.dumps(self.example))).schema

    def blocks(self) -> Iterator:
        """The file's record batches, read by `pyarrow.json` with the example's schema on one thread, from blocks of
        lines joined until they hold BATCH_ROWS lines (the kernels cost 2-2.5x as much on the 300-row batches of
        one 256 KB block); each batch's rows are its lines."""
        import pyarrow.json as pj

        from trlprep.inspector.sources import BATCH_ROWS, numbered_blocks

        options = pj.ParseOptions(explicit_schema=self.schema(), unexpected_field_behavior="error")
        read = pj.ReadOptions(use_threads=False, block_size=64 << 20)
        blocks, lines = [], 0

        def batch():
            table = pj.read_json(io.BytesIO(b"".join(blocks)), read_options=read, parse_options=options)
            assert table.num_rows == lines
            return table.combine_chunks().to_batches()

        with open(self.path, "rb") as handle:
            for _, block, count in numbered_blocks(handle):
                blocks.append(block)
                lines += count
                if lines >= BATCH_ROWS:
                    yield from batch()
                    blocks, lines = [], 0
        if blocks:
            yield from batch()

    def read_blocks(self) -> None:
        for _ in self.blocks():
            pass

    def arrow_engine(self) -> None:
        from trlprep.inspector.columnar import ColumnPlan, scan_batches
        from trlprep.inspector.scan.rows import RowScan

        plan = ColumnPlan.for_schema(self.expected, self.example, self.schema())
        assert plan is not None, "the column kernels have no plan for this shape"
        scanner = RowScan(self.expected, self.enabled, 5, self.example)
        for checked in scan_batches(self.blocks(), lambda _: plan):
            scanner.take(*checked)
        result = scanner.done()
        assert result.rows_read == len(result.hashes), "every row of these files is clean"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", help="shapes whose name holds this")
    args = parser.parse_args()
    print(f"{args.rows:,} rows a shape, best of {args.repeat}; ratio: seconds over the JSON-lines engine's")
    print("| shape | what | seconds | rows/s | peak RSS MB | ratio |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for shape, path in shape_files(args.rows).items():
        if args.only and args.only not in shape:
            continue
        cases = Cases(path)
        runs = {"JSON-lines engine (`scan_lines`)": cases.lines_engine,
                "`inspect`, 1 process": cases.inspect,
                "`pyarrow.json.read_json`, threads": partial(cases.read_json, True),
                "`pyarrow.json.read_json`, 1 thread": partial(cases.read_json, False),
                "`pyarrow.json.open_json`, 1 thread": cases.open_json,
                "`pyarrow.json` by blocks of 8,192 lines": cases.read_blocks,
                "Arrow engine: those blocks + kernels + row scan": cases.arrow_engine}
        best = {what: (float("inf"), 0) for what in runs}
        for _ in range(args.repeat):  # each case once a round, so that the machine's swings hit them all alike
            for what, run in runs.items():
                seconds, peak = timed(run)
                best[what] = min(best[what][0], seconds), max(best[what][1], peak)
        reference = best["JSON-lines engine (`scan_lines`)"][0]
        for what, (seconds, peak) in best.items():
            print(f"| {shape} | {what} | {seconds:.3f} | {args.rows / seconds:,.0f} | {peak} | {seconds / reference:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
