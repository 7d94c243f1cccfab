"""The engine of Arrow batches: a Parquet or Arrow file's record batches (or a range of its row groups) checked a
column at a time by `inspector.columnar`, the rows its kernels flag taken row by row by the row scan.
"""

from __future__ import annotations

from typing import Any, Iterable

from trlprep.inspector.arrow import plain_batch
from trlprep.inspector.columnar import ColumnPlan, scan_batches
from trlprep.inspector.dialects import Shape
from trlprep.inspector.images import ImageChecker
from trlprep.inspector.scan.rows import Partial, RowScan
from trlprep.inspector.sources import ArrowFile

# The first rows of a file that the kernels try, to tell how many of its rows will take the full checks.
PROBE_ROWS = 1024


def scan_arrow(batches: Iterable[Any], *, expected: Shape | None, example: dict | None, enabled: set[str],
               max_rows: int, images: ImageChecker | None = None, image_data: bool | None = None) -> Partial:
    """The row-level rules over `batches`, their rows numbered from 1 (`image_data`: see `Engine`)."""
    scanner = RowScan(expected, enabled, max_rows, example, images, image_data, sort_duplicates=True)
    for checked in scan_batches(batches, lambda schema: ColumnPlan.for_schema(expected, example, schema)):
        scanner.take(*checked)
    return scanner.done()


def flagged_share(file: ArrowFile, expected: Shape | None, example: dict | None) -> float:
    """The share of the file's first PROBE_ROWS rows that the column kernels flag (all, where they have no plan
    for its columns): the rows that go through Python, what a second process can take on."""
    rows = flagged = 0
    batches = file.batches(ahead=False)
    for batch in batches:
        batch = batch.slice(0, PROBE_ROWS - rows)
        plain = plain_batch(batch)  # as the kernels will read it
        plan = None if plain is None else ColumnPlan.for_schema(expected, example, plain.schema)
        flagged += batch.num_rows if plan is None else int((~plan.clean_rows(plain)[0]).sum())
        rows += batch.num_rows
        if rows >= PROBE_ROWS:
            break
    batches.close()
    return flagged / rows if rows else 0.0
