"""The scan: every rule over every row in one pass, failures collected and reported once. Its layers, each
importing only those before it:

1. the plan (`plan`): each file opened, its first rows classified, what it is read against and how;
2. the row scan (`rows`): the row-level rules over rows as they come, into a `Partial`;
3. the engines, which feed the row scan: row by row (`ReadPlan.rows`), blocks of JSON lines (`lines`), Arrow
   batches checked a column at a time (`inspector.columnar`), chunks of a large file in worker processes
   (`parallel`), and datatrove shards (`inspector.shards`, above this package);
4. the merge (`merge`): partials joined, the dataset-level rules, the `ScanResult` the report is built from.

`scan` here runs them in that order; the names other modules use are exported here.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Callable, Iterator

from trlprep.inspector.images import ImageChecker
from trlprep.inspector.mapping import SUGGESTION_ROWS
from trlprep.inspector.scan.lines import scan_lines
from trlprep.inspector.scan.merge import FileSummary, ScanResult, finish, merge
from trlprep.inspector.scan.plan import (FilePart, ReadPlan, fast_example, file_part, head_rows_per_file, judge,
                                 line_of, most_common_shape, read_plan, trl_key)
from trlprep.inspector.scan.rows import Collector, Partial, RowScan, ShapeVotes, Tally
from trlprep.inspector.sources import ArrowFile, GroupsAhead, Source, SourceError

# The limits are not exported: each is read at call time from the module that defines it, where a test lowers it
# (PARALLEL_FROM_BYTES, PARALLEL_FROM_FLAGGED and COLUMN_KERNELS here; DETECTION_ROWS in `plan`;
# SORT_DUPLICATES_FROM_ROWS in `rows`).
__all__ = [
    "PARALLEL_FROM_BYTES", "SUGGESTION_ROWS", "Collector", "FilePart", "FileSummary", "Partial", "ReadPlan",
    "RowScan", "ScanResult", "ShapeVotes", "Tally", "fast_example", "file_part", "finish", "head_rows_per_file",
    "judge", "line_of", "merge", "most_common_shape", "read_plan", "scan", "scan_lines", "scan_part", "trl_key",
]

PARALLEL_FROM_BYTES = 64 << 20  # smaller files are done before worker processes would have started
# Parquet and Arrow batches through the column kernels; False reads them row by row, as any other file: the same
# report, slower (the tests hold the two to one report; a user can rule the kernels out when debugging one).
COLUMN_KERNELS = True
# The share of a Parquet or Arrow file's first rows that the column kernels flag from which it is split across
# processes. One process already keeps two cores busy on clean rows, one decoding and one checking: on 2 cores,
# two processes took 1.46x its time on a clean file, 1.37x with 1.6% of rows flagged, 1.38x with 4%, 0.93x with
# 10% and 0.61x with 40% (`bench/parallel_batches.py`, docs/performance.md).
PARALLEL_FROM_FLAGGED = 0.1


def splittable(file: ArrowFile) -> bool:
    """Whether a Parquet or Arrow file is large enough to be split across processes: its data, decompressed, is
    past PARALLEL_FROM_BYTES and at least two of its row groups (record batches) hold rows."""
    return file.data_bytes >= PARALLEL_FROM_BYTES and sum(map(bool, file.group_rows)) > 1


def scan(source: Source, *, enabled: set[str], max_rows: int = 5, sample: int | None = None,
         advance: Callable[[int], None] = lambda n: None, workers: int | None = None,
         prepare: Callable[[Iterator], Iterator] | None = None, image_root: str | Path | None = None,
         decode_images: bool = False) -> ScanResult:
    """Run every enabled rule over the source's rows (the first `sample` rows when given, each through `prepare`
    when given), file by file; image paths are read against `image_root`, else each file's folder, and every
    image is decoded in full with `decode_images` (its header only, else).

    A JSON-lines file is read in blocks of lines, clean rows through the typed fast path; a large one is split
    at line boundaries and scanned by `workers` processes (both cores by default). Parquet and Arrow files are
    checked a column at a time, a large one split at row groups (record batches) across processes. The result
    is the same as one pass over the rows, row numbers and counts included.
    """
    # A Parquet file decodes from now on, beside the plan's reading and classifying of its first rows (a core
    # that would wait otherwise), for the engine of Arrow batches to read; closed at the end, read or not.
    with _decoding_early(source, sample, prepare) as decoded:
        plan = read_plan(source, limit=sample, prepare=prepare, columns=True, advance=advance)
        if decoded is not None and plan.parts[0].mode != "batches":
            decoded.close()  # read another way (its rows expanded): it would decode for nothing
            decoded = None
        partials = []
        files = []
        offset = 0
        for part in plan.parts:
            images = ImageChecker(Path(image_root) if image_root is not None else part.folder,
                                  full_decode=decode_images)
            partial = scan_part(plan, part, enabled=enabled, max_rows=max_rows, advance=advance, workers=workers,
                                images=images, decoded=decoded)
            partials.append((partial, partial.last_row))
            files.append(FileSummary(part.name, offset, partial.rows_read, part.shape, part.judged_as, part.lines))
            offset += partial.last_row
    partial = partials[0][0] if len(partials) == 1 else merge(partials, max_rows)
    if partial.rows_read == 0:
        raise SourceError(f"{source.name}: no rows")
    result = finish(partial, enabled, max_rows, plan.expected)
    result.files = files
    result.first_rows = plan.parts[0].first_rows
    return result


@contextlib.contextmanager
def _decoding_early(source: Source, sample: int | None,
                    prepare: Callable[[Iterator], Iterator] | None) -> Iterator[GroupsAhead | None]:
    """A Parquet file's batches decoding ahead (`ArrowFile.decoding_ahead`) when the engine of Arrow batches is to
    read the whole file as it is, else None; stopped at the end."""
    file = source.arrow_file
    if file is None or sample is not None or prepare is not None or not COLUMN_KERNELS:
        yield None
        return
    decoded = file.decoding_ahead()
    try:
        yield decoded
    finally:
        if decoded is not None:
            decoded.close()


def scan_part(plan: ReadPlan, part: FilePart, *, enabled: set[str], max_rows: int,
              advance: Callable[[int], None], workers: int | None, images: ImageChecker | None = None,
              decoded: GroupsAhead | None = None) -> Partial:
    """What the row-level rules find in one file of the plan, through the engine its mode and size call for
    (image rows' images checked by `images`; a Parquet file's batches taken from `decoded` when given).

    The engines of large files and of Arrow batches are imported only when used: they bring in worker
    processes, numpy and pyarrow, which a small JSON-lines file does without.
    """
    expected, example = part.judged_as, part.example
    # Its files are written into one output, which TRL reads as image data only if its first row is one.
    image_data = plan.expected is not None and plan.expected.reads_images
    workers = workers or min(8, os.cpu_count() or 1)
    # Workers are forked: they share the parent's string-hash salt, so their content hashes agree.
    forks = workers > 1 and hasattr(os, "fork")
    if part.mode == "lines":
        path = part.source.lines_path
        if forks and part.source.total >= PARALLEL_FROM_BYTES:
            from trlprep.inspector.scan.parallel import scan_chunks

            return merge(scan_chunks(path, expected=expected, example=example, enabled=enabled, max_rows=max_rows,
                                     workers=workers, advance=advance, images=images, image_data=image_data),
                         max_rows)
        with open(path, "rb") as handle:
            return scan_lines(part.name, handle, expected=expected, example=example, enabled=enabled,
                              max_rows=max_rows, advance=advance, images=images, image_data=image_data)[0]
    if part.mode == "batches" and COLUMN_KERNELS:
        from trlprep.inspector.scan.batches import flagged_share, scan_arrow  # before a fork: workers inherit it

        file = part.source.arrow_file
        if (forks and file is not None and splittable(file)
                and flagged_share(file, expected, example) >= PARALLEL_FROM_FLAGGED):
            from trlprep.inspector.scan.parallel import scan_ranges

            if decoded is not None:
                decoded.close()  # before the fork: a worker would inherit the threads' locks, not the threads
            return merge(scan_ranges(file, expected=expected, example=example, enabled=enabled, max_rows=max_rows,
                                     workers=workers, advance=advance, images=images, image_data=image_data),
                         max_rows)
        batches = file.batches(advance, decoded=decoded) if decoded is not None else part.source.batches(advance)
        return scan_arrow(batches, expected=expected, example=example, enabled=enabled,
                          max_rows=max_rows, images=images, image_data=image_data)
    scanner = RowScan(expected, enabled, max_rows, example, images, image_data)
    shapes = iter(part.head_shapes)
    for number, value in plan.rows(part, advance):
        scanner.row(number, value, next(shapes, None))
    return scanner.done()
