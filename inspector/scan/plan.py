"""The plan of a scan, its first layer: each file of a dataset opened and its first rows classified, the
dataset's shape decided from them, and what each file is read against and how (in blocks of lines, as Arrow
batches or row by row). The row scan (`inspector.scan.rows`) reads rows against it.
"""

from __future__ import annotations

import itertools
from array import array
from collections import Counter
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from trlprep.inspector.checks import check_row
from trlprep.inspector.dialects import Shape, classify_row, shape_key
from trlprep.inspector.mapping import SUGGESTION_ROWS
from trlprep.inspector.sources import Source, json_lines_path, row_value
from trlprep.inspector.instances import instance_rows, is_task
from trlprep.inspector.trees import is_message_tree, is_tree_message, thread_rows, tree_rows

# Rows read before the dataset's expected shape is fixed; rows that fit no shape are checked against it.
DETECTION_ROWS = 1000
# A dataset of many files keeps fewer first rows of each, so that thousands of shards fit in memory.
HEAD_ROWS_OF_ALL_FILES = 50_000
MIN_HEAD_ROWS = 50


def most_common_shape(shapes: list[Shape | None]) -> Shape | None:
    """The shape most rows have (optional columns aside), or None when no row has one.

    >>> a, b = classify_row({"text": "x"}), classify_row({"prompt": "q"})
    >>> most_common_shape([a, None, b, a]).type
    'language_modeling'
    """
    votes = Counter(shape_key(s) for s in shapes if s is not None)
    if not votes:
        return None
    key = votes.most_common(1)[0][0]
    return next(s for s in shapes if s is not None and shape_key(s) == key)


def source_folder(source: Source) -> Path | None:
    """The folder a source's relative image paths are read against: its (first) file's (a dataset folder's own,
    for a folder such as `save_to_disk`'s), None when it is no local file."""
    path = Path(source.files[0] if source.files else source.name)
    return path if path.is_dir() else path.parent if path.exists() else None


@dataclass(frozen=True)
class Expansion:
    """How a file is read whose rows hold no training example as they are, told from its first row (`holds`): whole,
    again, through `read`, a stream transform of its (line, row) pairs into the rows they hold. Where one line may
    hold several rows (`several`), a file's rows are numbered in order, from 1, and `FilePart.lines` keeps the line
    each came from (`line_of`): every row is counted, and `where` still names its line."""

    name: str
    holds: Callable[[Any], bool]
    read: Callable[[Iterator[tuple[int, Any]]], Iterator[tuple[int, Any]]]
    several: bool


# The files read through a transform, asked in order: OpenAssistant's flat messages (a row a prompt, numbered by
# the prompt's own line), its nested trees and instruction tasks (several rows a line).
EXPANSIONS = (Expansion("conversation-tree messages", is_tree_message, thread_rows, False),
              Expansion("nested conversation trees", is_message_tree, tree_rows, True),
              Expansion("tasks with instances", is_task, instance_rows, True))


def expansion_of(first: list[tuple[int, Any]]) -> Expansion | None:
    """The expansion a file whose first row (`first`, empty for an empty file) is read through; None: as it is."""
    return next((e for e in EXPANSIONS if first and e.holds(row_value(first[0][1]))), None)


def expanded(expansion: Expansion, rows: Iterator[tuple[int, Any]]) -> tuple[Iterator[tuple[int, Any]], array | None]:
    """A file's rows through its expansion, and each one's line as they are read: when a line may hold several,
    they are numbered in order (else the lines are their numbers, and None is given).

    >>> task = {"instruction": "Add.", "instances": [{"input": "1 2", "output": "3"}, {"input": "2 2", "output": "4"}]}
    >>> rows, lines = expanded(EXPANSIONS[2], iter([(1, task), (2, task)]))
    >>> [n for n, _ in rows], list(lines)
    ([1, 2, 3, 4], [1, 1, 2, 2])
    """
    rows = expansion.read(rows)
    if not expansion.several:
        return rows, None
    lines = array("q")
    return _numbered(rows, lines), lines


def _numbered(rows: Iterator[tuple[int, Any]], lines: array) -> Iterator[tuple[int, Any]]:
    for number, (line, value) in enumerate(rows, 1):
        lines.append(line)
        yield number, value


def line_of(lines: array | None, number: int) -> int:
    """The line of a file's row `number`: the number itself, unless the file's lines hold several rows each
    (`lines`, each row's line: see `Expansion`).

    >>> line_of(None, 3), line_of(array("q", [1, 1, 2]), 3)
    (3, 2)
    """
    return lines[number - 1] if lines is not None else number


@dataclass
class FilePart:
    """One file of a dataset (the whole dataset when it is one file, or not files), detected on its own."""

    source: Source
    head: list[tuple[int, Any]]  # its first rows, as the reader gives them
    head_shapes: list[Shape | None]
    shape: Shape | None  # the shape most of its first rows have
    judged_as: Shape | None  # the shape its rows are read against (see `read_plan`)
    example: dict | None  # the row the fast path takes rows like (see `fast_example`)
    mode: str  # "lines" (read again in blocks), "batches" (read again as Arrow batches) or "rows" (head, then on)
    rest: Iterator[tuple[int, Any]] | None  # its rows after the head; None: it is read again from the start
    expansion: Expansion | None = None  # the transform its rows are read through (conversation trees, tasks)
    lines: array | None = None  # each row's line, when one line may hold several rows (`Expansion.several`)
    # The columns of its first rows, kept when they are dropped to be read again: what a method that needs a
    # column beyond its type's (TPO's `reference`) is checked against before a row is converted.
    head_columns: frozenset[str] = frozenset()
    # Its first rows' values, kept when they are dropped to be read again: what a proposed `--map` is checked on.
    first_rows: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def folder(self) -> Path | None:
        """The folder its relative image paths are read against (`source_folder`)."""
        return source_folder(self.source)


def head_columns(parts: list[FilePart]) -> set[str]:
    """The columns of every part's first rows."""
    return set().union(*(part.head_columns for part in parts))


@dataclass
class ReadPlan:
    """A dataset's files, each detected from its first rows, and the dataset's shape; `rows` reads a part."""

    source: Source
    parts: list[FilePart]
    expected: Shape | None  # the shape most first rows of all files have
    limit: int | None = None  # rows to read in all
    prepare: Callable[[Iterator], Iterator] | None = None  # what rows go through on the way (convert's options)
    taken: int = 0

    def head_columns(self) -> set[str]:
        return head_columns(self.parts)

    def rows(self, part: FilePart, advance: Callable[[int], None] = lambda n: None) -> Iterator[tuple[int, Any]]:
        """A part's rows from its first, numbered in its file, up to the plan's limit; progress from where it
        was not counted yet."""
        if part.rest is not None:
            rows = itertools.chain(part.head, part.rest)
        else:
            rows = part.source.rows(advance)
            if part.expansion is not None:
                rows, part.lines = expanded(part.expansion, rows)
            rows = self.prepare(rows) if self.prepare is not None else rows
        for number, value in rows:
            if self.limit is not None:
                if self.taken >= self.limit:
                    return
                self.taken += 1
            yield number, value

    def numbered_rows(self) -> Iterator[tuple[int, Any]]:
        """Every part's rows, numbered across files as the scan numbers them: a file's rows go on from the last row
        number of the file before."""
        offset = 0
        for part in self.parts:
            last = 0
            for number, value in self.rows(part):
                last = number
                yield offset + number, value
            offset += last


def _after(first: list, rows: Iterator) -> Iterator:
    """`first` then `rows`; closing it closes `rows`."""
    yield from first
    yield from rows


def trl_key(shape: Shape) -> tuple:
    """What a shape is to TRL, whatever dialect it is written in: rows of two files with the same TRL key convert
    to rows of one shape."""
    return shape.type, shape.format, shape.implicit_prompt


def head_rows_per_file(files: int) -> int:
    """First rows read from each of a dataset's `files` to detect its shape (fewer each, of many files)."""
    return min(DETECTION_ROWS, max(MIN_HEAD_ROWS, HEAD_ROWS_OF_ALL_FILES // files))


def file_part(file: Source, head_rows: int, *, several: bool, limit: int | None = None,
              prepare: Callable[[Iterator], Iterator] | None = None, columns: bool = False,
              advance: Callable[[int], None] = lambda n: None) -> FilePart:
    """One file of a dataset, its first `head_rows` rows read and classified (`judge` then says what the dataset
    reads it as); `several`: the dataset has other files, so this one is read again rather than left open."""
    if prepare is None and limit is None and json_lines_path(file) is not None:
        mode = "lines"
    elif columns and prepare is None and limit is None and file.batches is not None:
        mode = "batches"
    else:
        mode = "rows"
    goes_on = mode == "rows" and not several
    rows = file.rows(advance if goes_on else lambda n: None)
    first = list(itertools.islice(rows, 1))
    expansion, lines = expansion_of(first), None
    if expansion is not None:  # a tree message, a tree, a task is no row: the whole file is read again, expanded
        rows.close()
        mode, goes_on = "rows", not several
        rows, lines = expanded(expansion, file.rows(advance if goes_on else lambda n: None))
    else:
        rows = _after(first, rows)
    if prepare is not None:
        rows = prepare(rows)
    head = list(itertools.islice(rows, head_rows))
    if not goes_on:
        rows.close()
    shapes = [classify_row(row_value(value)) for _, value in head]
    return FilePart(file, head, shapes, most_common_shape(shapes), None, None, mode, rows if goes_on else None,
                    expansion, lines)


def judge(parts: list[FilePart]) -> Shape | None:
    """The dataset's shape (that of most first rows of all its files), and what each file is read against: its
    own shape when it is the dataset's to TRL (`trl_key`), else the dataset's."""
    expected = most_common_shape([shape for part in parts for shape in part.head_shapes])
    for part in parts:
        own = part.shape is not None and expected is not None and trl_key(part.shape) == trl_key(expected)
        part.judged_as = part.shape if own else expected
        part.example = fast_example(part.head, part.head_shapes, part.judged_as)
        values = (row_value(value) for _, value in part.head)
        part.head_columns = frozenset(key for value in values if isinstance(value, dict) for key in value)
        part.first_rows = [row_value(value) for _, value in part.head[:SUGGESTION_ROWS]]
        if part.rest is None and expected is not None:  # of unknown data the first rows show what it holds
            part.head = []  # read again; its shapes stay, in file order
    return expected


def read_plan(source: Source, *, limit: int | None = None, prepare: Callable[[Iterator], Iterator] | None = None,
              columns: bool = False, advance: Callable[[int], None] = lambda n: None) -> ReadPlan:
    """Open every file of `source` and read its first rows: its own shape, and the dataset's (that of most first
    rows of all files). A file is read against its own shape when it is the dataset's to TRL (`trl_key`: alpaca
    beside question/answer, ShareGPT beside messages), else against the dataset's, every row of it a TP404.

    Plain JSON-lines files are read again in blocks of lines, Parquet and Arrow files as batches (with
    `columns`), unless `prepare` changes rows on the way or a `limit` cuts them. One file of other rows goes on
    after its head; several are each read again, so that only one is open at a time, and of many files fewer
    first rows each are kept (HEAD_ROWS_OF_ALL_FILES in all). Under a limit, files are opened until their first
    rows reach it.
    """
    files = source.parts or [source]
    head_rows = head_rows_per_file(len(files))
    parts: list[FilePart] = []
    remaining = limit
    for file in files:
        if remaining is not None and remaining <= 0:
            break
        rows = head_rows if remaining is None else min(head_rows, remaining)
        parts.append(file_part(file, rows, several=len(files) > 1, limit=limit, prepare=prepare, columns=columns,
                               advance=advance))
        if remaining is not None:
            remaining -= len(parts[-1].head)
    expected = judge(parts)
    return ReadPlan(source, parts, expected, limit, prepare)


def fast_example(head: list[tuple[int, Any]], head_shapes: list[Shape | None], expected: Shape | None) -> dict | None:
    """The clean row of the expected shape whose columns and value types most head rows have: the fast path
    takes rows like it."""
    if expected is None:
        return None
    key = shape_key(expected)
    signatures: Counter = Counter()
    examples = {}
    for (_, value), shape in zip(head, head_shapes):
        value = row_value(value)
        if shape is not None and shape_key(shape) == key and isinstance(value, dict):
            signature = tuple(value), tuple(map(type, value.values()))
            if signature not in examples and check_row(value, shape)[0]:
                continue
            examples.setdefault(signature, value)
            signatures[signature] += 1
    return examples[signatures.most_common(1)[0][0]] if signatures else None
