"""The JSON-lines engine: a file (or a byte range of it) read a block of lines at a time, a block the fast path
accepts whole taken at once, the others line by line through the row scan.
"""

from __future__ import annotations

import itertools
from typing import Callable, Iterator

from trlprep.inspector.dialects import Shape
from trlprep.inspector.fast import FastPath, Typed, Verdicts
from trlprep.inspector.images import ImageChecker
from trlprep.inspector.scan.rows import Partial, RowScan
from trlprep.inspector.sources import JsonLines, block_lines, duplicate_keys, numbered_blocks, quoted_key_count


def scan_lines(name: str, handle, *, expected: Shape | None, example: dict | None, enabled: set[str],
               max_rows: int, end: int | None = None, advance: Callable[[int], None] = lambda n: None,
               images: ImageChecker | None = None, image_data: bool | None = None) -> tuple[Partial, int]:
    """The row-level rules over the JSON lines of `handle` (up to byte `end`), a block of lines at a time, the
    images of image rows checked by `images` (`image_data`: see `Engine`); returns what they found and the number of lines read."""
    scanner = RowScan(expected, enabled, max_rows, example, images, image_data)
    fast = scanner.fast
    decoder = JsonLines(name, whole_file=False)  # the head, read first, has shown the file to be JSON lines
    number = count = 0
    for number, block, count in numbered_blocks(handle, end, advance):
        verdicts = fast.block(block, count) if fast is not None else None
        if (verdicts is not None and all(verdicts.clean)
                and all(quoted_key_count(block, column) == count for column in fast.signature[0])):
            scanner.accept(range(number + 1, number + 1 + count), verdicts.hashes)
        else:
            _scan_block(scanner, decoder, block_lines(block), number, verdicts)
    return scanner.done(), number + count


def _line_verdicts(fast: FastPath | None, lines: list[bytes], verdicts: Verdicts | None) -> Iterator[Typed | None]:
    """Each line's verdict when it decodes into the fast path's typed structure, else None: from the block's
    verdicts when the whole block decoded, else line by line."""
    if verdicts is not None:
        return map(Typed, *verdicts)
    if fast is None:
        return itertools.repeat(None)
    return (Typed(*(column[0] for column in one)) if one is not None else None
            for one in (fast.block(line, 1) for line in lines))


def _scan_block(scanner: RowScan, decoder: JsonLines, lines: list[bytes], before: int,
                verdicts: Verdicts | None) -> None:
    """A block of lines one by one (`before` is the line number before it), with the fast path's verdicts on
    them when it has them already. The fast path keeps a repeated key's last value silently, so a line it
    accepts is checked for repeated keys here. A line that decodes into its typed structure takes the full
    checks with its verdict, less those its structure and text proofs prove."""
    fast = scanner.fast
    accepted: list[int] = []  # a run of accepted lines and their hashes, taken at once before the next row
    hashes: list[int] = []
    for index, (line, verdict) in enumerate(zip(lines, _line_verdicts(fast, lines, verdicts))):
        number = before + 1 + index
        if verdict is not None and verdict.clean and not duplicate_keys(line, fast.signature[0]):
            accepted.append(number)
            hashes.append(verdict.hash)
            continue
        value = decoder.decode(number, line)
        if value is decoder.BLANK:
            continue
        if accepted:
            scanner.accept(tuple(accepted), hashes)
            accepted, hashes = [], []
        scanner.row(number, value, typed=verdict)
    if accepted:
        scanner.accept(tuple(accepted), hashes)
