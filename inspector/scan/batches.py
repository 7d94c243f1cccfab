"""The engine of Arrow batches: a Parquet or Arrow file's record batches (or a range of its row groups) checked a
column at a time by `inspector.columnar`, the rows its kernels flag taken row by row by the row scan.
"""

from __future__ import annotations

from typing import Any, Iterable

from trlprep.inspector.columnar import ColumnPlan, scan_batches
from trlprep.inspector.dialects import Shape
from trlprep.inspector.images import ImageChecker
from trlprep.inspector.scan.rows import Partial, RowScan


def scan_arrow(batches: Iterable[Any], *, expected: Shape | None, example: dict | None, enabled: set[str],
               max_rows: int, images: ImageChecker | None = None, image_data: bool | None = None) -> Partial:
    """The row-level rules over `batches`, their rows numbered from 1 (`image_data`: see `Engine`)."""
    scanner = RowScan(expected, enabled, max_rows, example, images, image_data, sort_duplicates=True)
    for checked in scan_batches(batches, lambda schema: ColumnPlan.for_schema(expected, example, schema)):
        scanner.take(*checked)
    return scanner.done()
