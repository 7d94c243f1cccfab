"""Memory on the hostile inputs of issue 32: peak RSS of `inspect` (and `convert`) on each, against 500 MB.

    uv run python bench/memory.py                # the issue's sizes: ~13 GB written, one file at a time
    uv run python bench/memory.py --scale 0.01   # small versions, for a quick check
    uv run python bench/memory.py --dir /big/disk

Each case's file is made in a temporary folder (under --dir), read by `inspect` (or `convert --to sft`) in a
subprocess, then deleted. Peak RSS is the largest resident size of that subprocess or of any worker process it
waited for (`os.wait4`'s rusage); rows/s counts the rows the report says it read. The ratio is to the baseline,
a plain JSON-lines file of the size of the largest case but one.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

BOUND_MB = 500
GIB = 1 << 30
CHUNK = 8 << 20
# A chat row of about 1 KB (what the checks keep grows with the rows: 16 bytes each for duplicates, and more).
ROW = {"messages": [{"role": "user", "content": "What is the capital of France? Say why, in a few lines. " * 5},
                    {"role": "assistant", "content": "Paris. It has been the capital since the tenth century. " * 12}]}


def _rows(size: int) -> Iterator[bytes]:
    """JSON rows (each its own, so that no two are duplicates) in chunks of about CHUNK bytes, `size` in all."""
    template = json.dumps(ROW).replace("France?", "France? #%d", 1).encode()
    number = written = 0
    while written < size:
        lines = []
        length = 0
        while length < CHUNK and written + length < size:
            number += 1
            line = template % number
            lines.append(line)
            length += len(line) + 1
        written += length
        yield lines


def json_lines(path: Path, size: int, first: bytes = b"") -> None:
    with open(path, "wb") as out:
        out.write(first)
        for lines in _rows(size):
            out.write(b"\n".join(lines) + b"\n")


def json_array(path: Path, size: int) -> None:
    with open(path, "wb") as out:
        out.write(b"[")
        separator = b""
        for lines in _rows(size):
            out.write(separator + b", ".join(lines))
            separator = b", "
        out.write(b"]")


def long_line(path: Path, size: int) -> None:
    """One row of `size` bytes (a string of x's), then two ordinary rows."""
    with open(path, "wb") as out:
        out.write(b'{"text": "')
        block = b"x" * CHUNK
        for _ in range(size // CHUNK):
            out.write(block)
        out.write(b'"}\n' + json.dumps(ROW).encode() + b"\n" + json.dumps(ROW).encode() + b"\n")


def csv_long_line(path: Path, size: int) -> None:
    """A CSV header, then a row whose quoted cell is `size` bytes, gzipped when the name says so."""
    opened = gzip.open(path, "wb", compresslevel=1) if path.suffix == ".gz" else open(path, "wb")
    with opened as out:
        out.write(b'prompt,completion\nShort?,"')
        block = b"x" * CHUNK
        for _ in range(size // CHUNK):
            out.write(block)
        out.write(b'"\n')


def parquet_bomb(path: Path, size: int) -> None:
    """A Parquet file of one row whose cell is `size` bytes of one letter, zstd-compressed to a few kilobytes; made
    in a process of its own, whose gigabytes would otherwise count in the peak of every process forked after it."""
    subprocess.run([sys.executable, "-c", "import sys, pyarrow as pa, pyarrow.parquet as pq; "
                    "cell = pa.array(['a' * int(sys.argv[2])], pa.large_string()); "
                    "pq.write_table(pa.table({'prompt': ['Hi'], 'completion': cell}), sys.argv[1], compression='zstd')",
                    str(path), str(size)], check=True)


def gzip_bomb(path: Path, size: int) -> None:
    """`size` bytes of text that is not JSON and has no newline, gzipped (about 1/1000 of it)."""
    block = b"A" * CHUNK
    with gzip.open(path, "wb", compresslevel=9) as out:
        for _ in range(size // CHUNK):
            out.write(block)


@dataclass
class Case:
    name: str
    file: str
    size: int  # bytes of text, before compression
    make: Callable[[Path, int], None]
    command: str = "inspect"


def cases(scale: float) -> list[Case]:
    def size(gib: float) -> int:
        return max(CHUNK, int(gib * GIB * scale))

    return [
        Case("baseline: plain JSON lines", "plain.jsonl", size(2), json_lines),
        Case("gzip of 3 GiB of non-JSON, one line", "bomb.jsonl.gz", size(3), gzip_bomb),
        Case("one 3 GiB line", "long.jsonl", size(3), long_line),
        Case("broken first line, 2 GB JSON lines", "broken.jsonl", size(2),
             lambda p, n: json_lines(p, n, first=b'{"messages": [{"role": "user", "cont\n')),
        Case("broken first line, 2 GB JSON lines", "broken.jsonl", size(2),
             lambda p, n: json_lines(p, n, first=b'{"messages": [{"role": "user", "cont\n'), "convert"),
        Case("one 3 GiB CSV line", "long.csv", size(3), csv_long_line),
        Case("one 3 GiB CSV line, gzipped", "long.csv.gz", size(3), csv_long_line, "convert"),
        Case("Parquet of one 1 GiB cell, zstd", "bomb.parquet", size(1), parquet_bomb),
        Case("valid 2.15 GB JSON array", "big.json", int(size(2) * 1.075), json_array),
        Case("1 GB JSON array", "array.json", size(1), json_array),
        Case("1 GB JSON array", "array.json", size(1), json_array, "convert"),
    ]


def run(case: Case, folder: Path) -> dict:
    path = folder / case.file
    if not path.exists():
        for old in folder.glob("*.json*"):  # one case's file on disk at a time
            old.unlink()
        case.make(path, case.size)
    if case.command == "inspect":
        argv = ["inspect", "--dataset", str(path), "--format", "json"]
    else:
        argv = ["convert", "--dataset", str(path), "--to", "sft", "--output", str(folder / "out.jsonl"),
                "--overwrite", "--format", "json"]
    start = time.perf_counter()
    with open(folder / "stdout", "w+b") as out, open(folder / "stderr", "w+b") as err:
        child = subprocess.Popen([shutil.which(argv[0]) or argv[0], *argv[1:]], stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, its waited-for workers' included
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        output, message = out.read(), err.read().decode(errors="replace").strip().splitlines()
    (folder / "out.jsonl").unlink(missing_ok=True)
    return {"case": case.name, "command": case.command, "bytes": path.stat().st_size, "exit":
            os.waitstatus_to_exitcode(status), "seconds": seconds, "rows": _rows_read(output),
            "peak_mb": usage.ru_maxrss / 1024, "message": (message or [""])[-1][:120]}


def _rows_read(out: bytes) -> int | None:
    try:
        document = json.loads(out)
    except ValueError:
        return None
    return document.get("rows_checked", document.get("rows_in"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="file sizes as a share of the issue's (default 1)")
    parser.add_argument("--dir", default=None, help="where to make the files (default: the system's temp folder)")
    parser.add_argument("--only", default="", help="the cases whose name holds this text (the baseline always runs)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="trlprep-memory-", dir=args.dir))
    results = []
    try:
        every = cases(args.scale)
        for case in [every[0]] + [case for case in every[1:] if args.only in case.name]:
            results.append(run(case, folder))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    baseline = results[0]["peak_mb"]
    print(f"| case | command | file | exit | peak RSS | vs baseline | time | rows/s | under {BOUND_MB} MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        rate = f"{r['rows'] / r['seconds']:,.0f}" if (r["rows"] or 0) > 100 else "-"
        print(f"| {r['case']} | {r['command']} | {r['bytes'] / 1e6:,.0f} MB | {r['exit']} | {r['peak_mb']:,.0f} MB | "
              f"{r['peak_mb'] / baseline:.2f}x | {r['seconds']:.1f} s | {rate} | "
              f"{'PASS' if r['peak_mb'] < BOUND_MB else 'FAIL'} |")
    for r in results:
        if r["exit"] == 2 or r["exit"] == 3:
            print(f"- {r['case']} ({r['command']}): exit {r['exit']}: {r['message']}")


if __name__ == "__main__":
    main()
