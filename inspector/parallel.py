"""Scanning one large JSON-lines file with several processes: split at line boundaries, scan each chunk,
merge the partial results in order so that counts, row numbers and duplicates come out as one pass gives."""

from __future__ import annotations

import multiprocessing
from array import array
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Callable

from inspector.dialects import Shape
from inspector.scan import SORT_DUPLICATES_FROM_ROWS, Partial, Tally, scan_lines

_PROGRESS: dict = {}
CHUNKS_PER_WORKER = 2


def line_boundaries(path: Path, parts: int) -> list[tuple[int, int]]:
    """`parts` byte ranges covering the file, each ending just after a newline (the last at the file's end)."""
    size = path.stat().st_size
    cuts = [0]
    with open(path, "rb") as handle:
        for i in range(1, parts):
            handle.seek(max(cuts[-1], size * i // parts))
            handle.readline()
            cuts.append(min(handle.tell(), size))
    cuts.append(size)
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def _init(progress) -> None:
    _PROGRESS["bytes"] = progress


def _scan_chunk(args: tuple) -> tuple[Partial, int]:
    path, start, end, expected, example, enabled, max_rows = args
    progress = _PROGRESS.get("bytes")

    def advance(n: int) -> None:
        with progress.get_lock():
            progress.value += n

    with open(path, "rb") as handle:
        handle.seek(start)
        return scan_lines(str(path), handle, expected=expected, example=example, enabled=enabled,
                          max_rows=max_rows, end=end, advance=advance)


def _shift(tally: Tally, offset: int) -> Tally:
    return Tally(tally.count, [r + offset for r in tally.rows], tally.details, tally.last_row)


def merge(chunks: list[tuple[Partial, int]], max_rows: int) -> Partial:
    """Partials of consecutive chunks (of one file, or files of one dataset), each with the lines it spans, as
    one: counts summed, first rows kept in order, row hashes joined (the duplicates among them are found once,
    over the whole)."""
    merged = Partial()
    offset = 0
    for partial, lines in chunks:
        merged.rows_read += partial.rows_read
        merged.rows_with_errors += partial.rows_with_errors
        merged.final_answers += partial.final_answers
        if partial.last_row:
            merged.last_row = offset + partial.last_row
        merged.labels.update(partial.labels)
        merged.repaired.update(partial.repaired)
        for method, counts in partial.rejected.items():
            merged.rejected[method].update(counts)
        merged.type_signatures.update(partial.type_signatures)
        for rule, tally in partial.tallies.items():
            _add(merged.tallies, rule, _shift(tally, offset), max_rows)
        for key, vote in partial.votes.items():
            into = merged.votes.setdefault(key, type(vote)(vote.shape))
            into.count += vote.count
            into.rows = (into.rows + [r + offset for r in vote.rows])[:max_rows]
        offset += lines
    if sum(len(partial.seen) if partial.seen is not None else SORT_DUPLICATES_FROM_ROWS
           for partial, _ in chunks) < SORT_DUPLICATES_FROM_ROWS:
        merged.repeats = _join_repeats(chunks)
    else:
        merged.hashes, merged.hash_rows = _join_hashes(chunks)
    return merged


def _join_repeats(chunks: list[tuple[Partial, int]]) -> list[int]:
    """The file's repeated rows from chunks that each found their own with a set of their hashes: those, and
    each chunk's first occurrences of a hash an earlier chunk has (set intersections, in C)."""
    seen: set[int] = set()
    repeats: list[int] = []
    offset = 0
    for partial, lines in chunks:
        earlier = seen & partial.seen
        for row_hash, row in zip(partial.hashes, partial.hash_rows) if earlier else ():
            if row_hash in earlier:
                repeats.append(row + offset)
                earlier.discard(row_hash)  # its later occurrences in this chunk are among the chunk's repeats
        repeats.extend(row + offset for row in partial.repeats)
        seen |= partial.seen
        offset += lines
    return sorted(repeats)


def _join_hashes(chunks: list[tuple[Partial, int]]) -> tuple[array, array]:
    """The chunks' row hashes and row numbers end to end, row numbers made the file's. Each chunk's copy goes
    as soon as it is joined: 16 bytes a row is enough."""
    hashes, rows = array("q"), array("q")
    offset = 0
    for partial, lines in chunks:
        hashes.extend(partial.hashes)
        rows.extend(map(offset.__add__, partial.hash_rows))
        partial.hashes = partial.hash_rows = None
        offset += lines
    return hashes, rows


def _add(tallies: dict[str, Tally], rule: str, tally: Tally, max_rows: int) -> None:
    into = tallies.setdefault(rule, Tally())
    pairs = sorted(zip(into.rows + tally.rows, into.details + tally.details))[:max_rows]
    into.count += tally.count
    into.rows = [row for row, _ in pairs]
    into.details = [detail for _, detail in pairs]


def scan_chunks(path: Path, *, expected: Shape | None, example: dict | None, enabled: set[str], max_rows: int,
                workers: int, advance: Callable[[int], None]) -> Partial:
    """Scan `path` in `workers` processes; `advance` hears the bytes read as they go."""
    # More chunks than workers: a worker whose core is busier than the others' ends up taking fewer of them.
    ranges = line_boundaries(path, workers * CHUNKS_PER_WORKER)
    # Forked workers start in milliseconds with everything imported, and hash strings as the parent does.
    context = multiprocessing.get_context("fork")
    progress = context.Value("q", 0)
    jobs = [(path, start, end, expected, example, enabled, max_rows) for start, end in ranges]
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
    del futures  # each future holds its chunk's result: let merge free them
    return merge(chunks, max_rows)
