"""The parallel engine: one large file scanned by several processes, each taking a range of it through the
engine of its kind: a JSON-lines file split at line boundaries (`scan_chunks`), a Parquet file at row groups and an
Arrow IPC file at record batches (`scan_ranges`). It returns the ranges' partial results in file order; the merge
(`inspector.scan.merge`) joins them so that counts, row numbers and duplicates come out as one pass gives."""

from __future__ import annotations

import multiprocessing
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from trlprep.inspector.dialects import Shape
from trlprep.inspector.encodings import UndecodableLine
from trlprep.inspector.images import ImageChecker
from trlprep.inspector.scan.lines import scan_lines
from trlprep.inspector.scan.rows import Partial
from trlprep.inspector.sources import BLOCK_BYTES, ArrowFile, group_ranges, line_blocks

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
    _PROGRESS["units"] = progress
    # The parent alone answers Ctrl-C: it kills its workers (`_stopped_on_failure`), so a worker ignores SIGINT
    # (a terminal sends it to the whole process group) instead of dying with a traceback of its own. SIGTERM is
    # put back to its default, quiet death: the parent's handler for it (`terminating_cleanly`) came with the fork.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _advance(n: int) -> None:
    """Progress from a worker: its bytes or rows, added to what every worker has read."""
    progress = _PROGRESS["units"]
    with progress.get_lock():
        progress.value += n


def _scan_chunk(args: tuple) -> tuple[Partial, int]:
    path, start, end, expected, example, enabled, max_rows, images, image_data = args
    with open(path, "rb") as handle:
        handle.seek(start)
        try:
            return scan_lines(str(path), handle, expected=expected, example=example, enabled=enabled,
                              max_rows=max_rows, end=end, advance=_advance, images=images, image_data=image_data)
        except UndecodableLine as error:  # its line numbered in the chunk: numbered in the file
            handle.seek(0)
            raise error.after_lines(sum(block.count(b"\n") for block in line_blocks(handle, start))) from None


def _scan_range(args: tuple) -> tuple[Partial, int]:
    # Imported by the parent before it forked (`scan_part`): a JSON-lines scan does without numpy and pyarrow.
    from trlprep.inspector.scan.batches import scan_arrow

    file, start, stop, expected, example, enabled, max_rows, images, image_data = args
    partial = scan_arrow(file.batches(_advance, groups=range(start, stop)), expected=expected, example=example,
                         enabled=enabled, max_rows=max_rows, images=images, image_data=image_data)
    return partial, sum(file.group_rows[start:stop])


def scan_chunks(path: Path, *, expected: Shape | None, example: dict | None, enabled: set[str], max_rows: int,
                workers: int, advance: Callable[[int], None], images: ImageChecker | None = None,
                image_data: bool | None = None) -> list[tuple[Partial, int]]:
    """Scan the JSON-lines file `path` in `workers` processes: each chunk's partial result with the lines it spans,
    in file order; `advance` hears the bytes read as they go."""
    ranges = line_boundaries(path, workers * CHUNKS_PER_WORKER)
    return _in_workers(_scan_chunk, [(path, start, end, expected, example, enabled, max_rows, images, image_data)
                                     for start, end in ranges], workers, advance)


def scan_ranges(file: ArrowFile, *, expected: Shape | None, example: dict | None, enabled: set[str],
                max_rows: int, workers: int, advance: Callable[[int], None], images: ImageChecker | None = None,
                image_data: bool | None = None) -> list[tuple[Partial, int]]:
    """Scan a Parquet or Arrow IPC file in `workers` processes, ranges of its row groups (record batches) through
    the engine of Arrow batches: each range's partial result with the rows it holds, in file order; `advance` hears
    the rows read as they go."""
    ranges = group_ranges(file.group_rows, workers * CHUNKS_PER_WORKER)
    return _in_workers(_scan_range, [(file, start, stop, expected, example, enabled, max_rows, images, image_data)
                                     for start, stop in ranges], workers, advance)


def _in_workers(task: Callable[[tuple], tuple[Partial, int]], jobs: list[tuple], workers: int,
                advance: Callable[[int], None]) -> list[tuple[Partial, int]]:
    """`task` over each of `jobs` in at most `workers` processes, the results in the jobs' order; `advance` hears
    the progress the workers report as they go. A job's error is raised as soon as every job before it is done
    (the error one pass over the file meets first), and an interrupt at once: either way the workers are killed
    first, not left to finish the other jobs."""
    # More jobs than workers (CHUNKS_PER_WORKER each): a worker whose core is busier than the others' ends up
    # taking fewer of them.
    # Forked workers start in milliseconds with everything imported, and hash strings as the parent does.
    context = multiprocessing.get_context("fork")
    progress = context.Value("q", 0)
    pool = ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context, initializer=_init, initargs=(progress,))
    with _stopped_on_failure(pool):
        futures = [pool.submit(task, job) for job in jobs]
        reported = 0
        while not settled(futures):
            # Only the unfinished ones: waiting on a finished future returns at once, and the loop would spin.
            wait([future for future in futures if not future.done()], timeout=0.2, return_when=FIRST_COMPLETED)
            now = progress.value
            advance(now - reported)
            reported = now
        advance(progress.value - reported)
        results = [future.result() for future in futures]  # raises the first failed job's error
    pool.shutdown()
    del futures  # each future holds its range's result: let the merge free them
    return results


def settled(futures: list) -> bool:
    """Whether the jobs' outcome is known: every job done, or one failed with every job before it done.

    >>> from concurrent.futures import Future
    >>> done, failed, running = Future(), Future(), Future()
    >>> done.set_result(1); failed.set_exception(ValueError("unreadable"))
    >>> settled([done, failed, running]), settled([running, failed]), settled([done, running]), settled([done])
    (True, False, False, True)
    """
    for future in futures:
        if not future.done():
            return False
        if future.exception() is not None:
            return True
    return True


@contextmanager
def _stopped_on_failure(pool: ProcessPoolExecutor) -> Iterator[None]:
    """Kill `pool`'s workers and drop its queued jobs when the block raises (an error, Ctrl-C, SIGTERM made one by
    `terminating_cleanly`): leaving the pool would wait for every running job to end."""
    try:
        yield
    except BaseException:
        # No public way to stop a running job before Python 3.14 (ProcessPoolExecutor.kill_workers).
        for process in list(pool._processes.values()):
            process.kill()
        pool.shutdown(cancel_futures=True)  # its manager sees the workers gone, and joins them
        raise
