"""The JSON-lines engine: a file (or a byte range of it) read a block of lines at a time, a block the fast path
accepts whole taken at once, the others line by line through the row scan.
"""

from __future__ import annotations

from typing import Callable

from trlprep.inspector.dialects import Shape
from trlprep.inspector.scan.rows import Partial, RowScan
from trlprep.inspector.sources import JsonLines, block_lines, duplicate_keys, numbered_blocks, quoted_key_count


def scan_lines(name: str, handle, *, expected: Shape | None, example: dict | None, enabled: set[str],
               max_rows: int, end: int | None = None, advance: Callable[[int], None] = lambda n: None,
               ) -> tuple[Partial, int]:
    """The row-level rules over the JSON lines of `handle` (up to byte `end`), a block of lines at a time;
    returns what they found and the number of lines read."""
    scanner = RowScan(expected, enabled, max_rows, example)
    fast = scanner.fast
    decoder = JsonLines(name, whole_file=False)  # the head, read first, has shown the file to be JSON lines
    number = count = 0
    for number, block, count in numbered_blocks(handle, end, advance):
        hashes = fast.block(block, count) if fast is not None else None
        if (hashes is not None and None not in hashes
                and all(quoted_key_count(block, column) == count for column in fast.signature[0])):
            scanner.accept(range(number + 1, number + 1 + count), hashes)
        else:
            _scan_block(scanner, decoder, block_lines(block), number, hashes)
    return scanner.done(), number + count


def _scan_block(scanner: RowScan, decoder: JsonLines, lines: list[bytes], before: int,
                hashes: list[int | None] | None) -> None:
    """A block of lines one by one (`before` is the line number before it), with the fast path's verdicts on
    them when it has them already. The fast path keeps a repeated key's last value silently, so a line it
    accepts is checked for repeated keys here."""
    fast = scanner.fast
    for index, line in enumerate(lines):
        number = before + 1 + index
        accepted = hashes[index] if hashes is not None else fast.line(line) if fast is not None else None
        if accepted is not None and not duplicate_keys(line, fast.signature[0]):
            scanner.accept((number,), (accepted,))
            continue
        value = decoder.decode(number, line)
        if value is not decoder.BLANK:
            scanner.row(number, value)
