"""The parallel engine: one large JSON-lines file scanned by several processes, split at line boundaries, each
chunk through the JSON-lines engine. It returns the chunks' partial results in file order; the merge
(`inspector.scan.merge`) joins them so that counts, row numbers and duplicates come out as one pass gives."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Callable

from trlprep.inspector.dialects import Shape
from trlprep.inspector.encodings import UndecodableLine
from trlprep.inspector.images import ImageChecker
from trlprep.inspector.scan.lines import scan_lines
from trlprep.inspector.scan.rows import Partial
from trlprep.inspector.sources import BLOCK_BYTES, line_blocks

_PROGRESS: dict = {}
CHUNKS_PER_WORKER = 2


def line_boundaries(path: Path, parts: int) -> list[tuple[int, int]]:
    """`parts` byte ranges covering the file, each ending just after a newline (the last at the file's end)."""
    size = path.stat().st_size
    cuts = [0]
    with open(path, "rb") as handle:
        for i in range(1, parts):
            handle.seek(max(cuts[-1], size * i // parts))
            while (piece := handle.readline(BLOCK_BYTES)) and not piece.endswith(b"\n"):
                pass  # a line may be gigabytes long: it is skipped, never held
            cuts.append(min(handle.tell(), size))
    cuts.append(size)
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def _init(progress) -> None:
    _PROGRESS["bytes"] = progress


def _scan_chunk(args: tuple) -> tuple[Partial, int]:
    path, start, end, expected, example, enabled, max_rows, images, image_data = args
    progress = _PROGRESS.get("bytes")

    def advance(n: int) -> None:
        with progress.get_lock():
            progress.value += n

    with open(path, "rb") as handle:
        handle.seek(start)
        try:
            return scan_lines(str(path), handle, expected=expected, example=example, enabled=enabled,
                              max_rows=max_rows, end=end, advance=advance, images=images, image_data=image_data)
        except UndecodableLine as error:  # its line numbered in the chunk: numbered in the file
            handle.seek(0)
            raise error.after_lines(sum(block.count(b"\n") for block in line_blocks(handle, start))) from None


def scan_chunks(path: Path, *, expected: Shape | None, example: dict | None, enabled: set[str], max_rows: int,
                workers: int, advance: Callable[[int], None], images: ImageChecker | None = None,
                image_data: bool | None = None) -> list[tuple[Partial, int]]:
    """Scan `path` in `workers` processes: each chunk's partial result with the lines it spans, in file order;
    `advance` hears the bytes read as they go."""
    # More chunks than workers: a worker whose core is busier than the others' ends up taking fewer of them.
    ranges = line_boundaries(path, workers * CHUNKS_PER_WORKER)
    # Forked workers start in milliseconds with everything imported, and hash strings as the parent does.
    context = multiprocessing.get_context("fork")
    progress = context.Value("q", 0)
    jobs = [(path, start, end, expected, example, enabled, max_rows, images, image_data) for start, end in ranges]
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context, initializer=_init,
                             initargs=(progress,)) as pool:
        futures = [pool.submit(_scan_chunk, job) for job in jobs]
        reported = 0
        pending = futures
        while pending:
            # Only the unfinished ones: waiting on a finished future returns at once, and the loop would spin.
            pending = list(wait(pending, timeout=0.2, return_when=FIRST_COMPLETED).not_done)
            now = progress.value
            advance(now - reported)
            reported = now
        advance(progress.value - reported)
        chunks = [future.result() for future in futures]
    del futures  # each future holds its chunk's result: let the merge free them
    return chunks
