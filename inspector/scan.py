"""The scan: every rule over every row in one pass, failures collected and reported once.

Counts are exact; only the first `max_rows` row numbers and details of each rule are kept, never row payloads.
"""

from __future__ import annotations

import bisect
import itertools
from array import array
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import orjson

from inspector.checks import check_row
from inspector.engine import TYPE_NAMES, Engine
from inspector.methods import METHODS
from inspector.dialects import Shape, classify_row, final_answer, shape_key, without_ids
from inspector.fast import FastPath
from inspector.trees import is_tree_message, thread_rows
from inspector.mapping import SUGGESTION_ROWS
from inspector.sources import (JsonLines, Source, SourceError, block_lines,
                               duplicate_keys, json_lines_path, numbered_blocks, quoted_key_count, row_value)
from inspector.rules.dataset import DUPLICATE_ROW, LABEL_IMBALANCE, SINGLE_LABEL_CLASS

# Rows read before the dataset's expected shape is fixed; rows that fit no shape are checked against it.
DETECTION_ROWS = 1000
# A dataset of many files keeps fewer first rows of each, so that thousands of shards fit in memory.
HEAD_ROWS_OF_ALL_FILES = 50_000
MIN_HEAD_ROWS = 50
PARALLEL_FROM_BYTES = 64 << 20  # smaller files are done before worker processes would have started
# Below this many rows a set finds duplicates faster than importing numpy (0.3-0.4 s here) to sort them.
SORT_DUPLICATES_FROM_ROWS = 500_000


@dataclass
class Tally:
    """What one rule found: an exact row count and the first row numbers with their details."""

    count: int = 0
    rows: list[int] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    last_row: int = -1


@dataclass
class ShapeVotes:
    shape: Shape
    count: int = 0
    rows: list[int] = field(default_factory=list)


@dataclass
class FileSummary:
    """What the scan found of one file: its place in the dataset's numbering, its rows and shapes."""

    name: str
    offset: int
    rows: int
    shape: Shape | None
    judged_as: Shape | None


@dataclass
class ScanResult:
    rows_read: int
    tallies: dict[str, Tally]
    shapes: list[ShapeVotes]  # most common first
    columns: dict[str, Counter]  # column -> Counter of value types
    labels: Counter  # KTO label value -> rows
    final_answers: int  # question/answer rows with a `####` final answer
    rows_with_errors: int
    dataset_findings: list[tuple[str, int, str]]  # (rule, rows affected, detail) for dataset-level rules
    rejected: dict[str, Counter]  # method -> rule -> rows `convert --to method` rejects
    repaired: Counter  # rule -> rows `convert` repairs
    expected: Shape | None  # the dataset's shape, from its first rows: every row is read against it
    files: list[FileSummary] = field(default_factory=list)
    first_rows: list = field(default_factory=list)  # of data of no known shape: what it holds

    def where(self, row: int) -> str:
        """A row number of the dataset as `file:line` (the row's place in its file).

        >>> result = ScanResult(0, {}, [], {}, Counter(), 0, 0, [], {}, Counter(), None,
        ...                     [FileSummary("a.jsonl", 0, 3, None, None), FileSummary("b.jsonl", 3, 2, None, None)])
        >>> result.where(2), result.where(4)
        ('a.jsonl:2', 'b.jsonl:1')
        """
        index = bisect.bisect_left([file.offset for file in self.files], row) - 1
        file = self.files[max(index, 0)]
        return f"{file.name}:{row - file.offset}"


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


class Collector:
    def __init__(self, enabled: set[str], max_rows: int):
        self.enabled = enabled
        self.max_rows = max_rows
        self.tallies: dict[str, Tally] = {}

    def add(self, rule: str, row: int, detail: str) -> None:
        if rule not in self.enabled:
            return
        tally = self.tallies.get(rule)
        if tally is None:
            tally = self.tallies[rule] = Tally()
        if tally.last_row == row:
            return
        tally.last_row = row
        tally.count += 1
        if len(tally.rows) < self.max_rows:
            tally.rows.append(row)
            tally.details.append(detail)


@dataclass
class Partial:
    """What a pass over some rows found, before the dataset-level rules; partials of chunks merge in order."""

    rows_read: int = 0
    rows_with_errors: int = 0
    tallies: dict[str, Tally] = field(default_factory=dict)
    votes: dict[tuple, ShapeVotes] = field(default_factory=dict)
    type_signatures: Counter = field(default_factory=Counter)  # (keys, value types) -> rows
    labels: Counter = field(default_factory=Counter)  # KTO label -> rows KTO conversion keeps
    final_answers: int = 0
    rejected: dict[str, Counter] = field(default_factory=lambda: {m: Counter() for m in METHODS})  # by rule
    repaired: Counter = field(default_factory=Counter)  # rule -> rows `convert` repairs
    last_row: int = 0  # the number of the last row read (the next file's rows are numbered on from it)
    # Every readable row's content hash and row number, 16 bytes a row, for finding duplicates at the end
    # (a set of Python ints would cost ~4x the memory) ...
    hashes: array = field(default_factory=lambda: array("q"))
    hash_rows: array = field(default_factory=lambda: array("q"))
    # ... unless one pass over fewer than SORT_DUPLICATES_FROM_ROWS rows found them as it went with a set of
    # the hashes: the rows that repeat an earlier one, and the set (chunks scanned in parallel are joined by it).
    repeats: list[int] | None = None
    seen: set[int] | None = None


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
    trees: bool = False  # its rows are conversation-tree messages, read as prompts with replies (`thread_rows`)

    @property
    def name(self) -> str:
        return self.source.name


@dataclass
class ReadPlan:
    """A dataset's files, each detected from its first rows, and the dataset's shape; `rows` reads a part."""

    source: Source
    parts: list[FilePart]
    expected: Shape | None  # the shape most first rows of all files have
    limit: int | None = None  # rows to read in all
    prepare: Callable[[Iterator], Iterator] | None = None  # what rows go through on the way (convert's options)
    taken: int = 0

    def rows(self, part: FilePart, advance: Callable[[int], None] = lambda n: None) -> Iterator[tuple[int, Any]]:
        """A part's rows from its first, numbered in its file, up to the plan's limit; progress from where it
        was not counted yet."""
        if part.rest is not None:
            rows = itertools.chain(part.head, part.rest)
        else:
            rows = part.source.rows(advance)
            rows = thread_rows(rows) if part.trees else rows
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
    trees = bool(first) and is_tree_message(row_value(first[0][1]))
    if trees:  # a message is no row: the whole file is read again, into prompts with their replies
        rows.close()
        mode, goes_on = "rows", not several
        rows = thread_rows(file.rows(advance if goes_on else lambda n: None))
    else:
        rows = _after(first, rows)
    if prepare is not None:
        rows = prepare(rows)
    head = list(itertools.islice(rows, head_rows))
    if not goes_on:
        rows.close()
    shapes = [classify_row(row_value(value)) for _, value in head]
    return FilePart(file, head, shapes, most_common_shape(shapes), None, None, mode, rows if goes_on else None, trees)


def judge(parts: list[FilePart]) -> Shape | None:
    """The dataset's shape (that of most first rows of all its files), and what each file is read against: its
    own shape when it is the dataset's to TRL (`trl_key`), else the dataset's."""
    expected = most_common_shape([shape for part in parts for shape in part.head_shapes])
    for part in parts:
        own = part.shape is not None and expected is not None and trl_key(part.shape) == trl_key(expected)
        part.judged_as = part.shape if own else expected
        part.example = fast_example(part.head, part.head_shapes, part.judged_as)
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


def scan(source: Source, *, enabled: set[str], max_rows: int = 5, sample: int | None = None,
         advance: Callable[[int], None] = lambda n: None, workers: int | None = None,
         prepare: Callable[[Iterator], Iterator] | None = None) -> ScanResult:
    """Run every enabled rule over the source's rows (the first `sample` rows when given, each through `prepare`
    when given), file by file.

    A JSON-lines file is read in blocks of lines, clean rows through the typed fast path; a large one is split
    at line boundaries and scanned by `workers` processes (both cores by default). Parquet and Arrow files are
    checked a column at a time. The result is the same as one pass over the rows, row numbers and counts
    included.
    """
    plan = read_plan(source, limit=sample, prepare=prepare, columns=True, advance=advance)
    partials = []
    files = []
    offset = 0
    for part in plan.parts:
        partial = scan_part(plan, part, enabled=enabled, max_rows=max_rows, advance=advance, workers=workers)
        partials.append((partial, partial.last_row))
        files.append(FileSummary(part.name, offset, partial.rows_read, part.shape, part.judged_as))
        offset += partial.last_row
    if len(partials) == 1:
        partial = partials[0][0]
    else:
        from inspector.parallel import merge

        partial = merge(partials, max_rows)
    if partial.rows_read == 0:
        raise SourceError(f"{source.name}: no rows")
    result = finish(partial, enabled, max_rows, plan.expected)
    result.files = files
    if plan.expected is None:
        result.first_rows = [row_value(value) for _, value in plan.parts[0].head[:SUGGESTION_ROWS]]
    return result


def scan_part(plan: ReadPlan, part: FilePart, *, enabled: set[str], max_rows: int,
              advance: Callable[[int], None], workers: int | None) -> Partial:
    expected, example = part.judged_as, part.example
    if part.mode == "lines":
        path = part.source.lines_path
        workers = workers or min(8, os.cpu_count() or 1)
        # Workers are forked: they share the parent's string-hash salt, so their content hashes agree.
        if workers > 1 and hasattr(os, "fork") and part.source.total >= PARALLEL_FROM_BYTES:
            from inspector.parallel import scan_chunks

            return scan_chunks(path, expected=expected, example=example, enabled=enabled, max_rows=max_rows,
                               workers=workers, advance=advance)
        with open(path, "rb") as handle:
            return scan_lines(part.name, handle, expected=expected, example=example, enabled=enabled,
                              max_rows=max_rows, advance=advance)[0]
    scanner = RowScan(expected, enabled, max_rows, example)
    if part.mode == "batches":
        from inspector.columnar import ColumnPlan, scan_batches

        scan_batches(part.source.batches(advance), scanner,
                     lambda schema: ColumnPlan.for_schema(expected, example, schema))
    else:
        shapes = iter(part.head_shapes)
        for number, value in plan.rows(part, advance):
            scanner.row(number, value, next(shapes, None))
    return scanner.done()


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


class RowScan:
    """The row-level rules over rows as they come, clean rows of the expected shape through the fast path;
    `done()` gives what they found."""

    def __init__(self, expected: Shape | None, enabled: set[str], max_rows: int, example: dict | None = None):
        self.collector = Collector(enabled, max_rows)
        self.result = Partial(tallies=self.collector.tallies)
        self.expected, self.max_rows = expected, max_rows
        self.engine = Engine(expected)
        self.fast = FastPath.for_row(expected, example) if example is not None else None
        self.expected_vote = None
        if expected is not None:
            self.expected_vote = self.result.votes[shape_key(expected)] = ShapeVotes(expected)
        self.accepted_rows = 0  # rows the fast path took: their columns are the fast path's, counted once
        self.result.repeats, self.result.seen = [], set()  # the content hashes so far, while there are few

    def accept(self, numbers: range | tuple[int, ...], row_hashes: list[int] | tuple[int, ...]) -> None:
        """Rows the fast path found clean, and their content hashes."""
        vote = self.expected_vote
        vote.count += len(numbers)
        if len(vote.rows) < self.max_rows:
            vote.rows.extend(numbers[: self.max_rows - len(vote.rows)])
        self.accepted_rows += len(numbers)
        self.result.last_row = numbers[-1]
        self._remember(numbers, row_hashes)

    def _remember(self, numbers: range | tuple[int, ...], row_hashes: list[int] | tuple[int, ...]) -> None:
        result, seen = self.result, self.result.seen
        result.hashes.extend(row_hashes)
        result.hash_rows.extend(numbers)
        if seen is None:
            return
        if len(seen) >= SORT_DUPLICATES_FROM_ROWS:
            result.seen = result.repeats = None  # too many to keep as Python ints: found by sorting at the end
            return
        if seen.isdisjoint(row_hashes):
            before = len(seen)
            seen.update(row_hashes)
            if len(seen) - before == len(row_hashes):
                return
            seen.difference_update(row_hashes)  # a repeat within these rows: go through them in order
        for row_hash, number in zip(row_hashes, numbers):
            if row_hash in seen:
                result.repeats.append(number)
            else:
                seen.add(row_hash)

    def row(self, number: int, value: Any, shape: Shape | None = None) -> None:
        """One row through every check (`shape` when it is classified already)."""
        collector, result = self.collector, self.result
        result.last_row = number
        if self.fast is not None and type(value) is dict:
            accepted = self.fast.value(value)
            if accepted is not None:
                self.accept((number,), (accepted,))
                return
        result.rows_read += 1
        decision = self.engine.decide(value, shape)
        for rule, detail in decision.issues:
            collector.add(rule, number, detail)
        kept_for_kto = True
        for method in METHODS:
            rejection = self.engine.rejection(decision, method)
            if rejection is not None:
                result.rejected[method][rejection[0]] += 1
                kept_for_kto = kept_for_kto and method != "kto"
        for rule in decision.repairs:
            result.repaired[rule] += 1
        if decision.error:
            result.rows_with_errors += 1
        row = row_value(value)
        if not isinstance(row, dict):
            return
        self._remember((number,), (self.row_hash(row),))
        result.type_signatures[tuple(row), tuple(map(type, row.values()))] += 1
        shape = decision.written_shape
        if shape is None:
            return
        key = shape_key(shape)
        vote = result.votes.get(key)
        if vote is None:
            vote = result.votes[key] = ShapeVotes(shape)
        vote.count += 1
        if len(vote.rows) < self.max_rows:
            vote.rows.append(number)
        trl_row = decision.trl_row
        if trl_row is not None and kept_for_kto and decision.shape.type == "unpaired_preference":
            result.labels[trl_row["label"]] += 1
        elif not decision.error and shape.dialect == "question_answer" and final_answer(row.get("answer")):
            result.final_answers += 1

    def row_hash(self, value: dict) -> int:
        """The row's content hash, id-like columns left out: the fast path's when the row has its structure (so
        that a repeat of an accepted row is found whichever path each took), else that of its key-sorted JSON."""
        if self.fast is not None:
            content_hash = self.fast.content_hash(value)
            if content_hash is not None:
                return content_hash
        try:
            return hash(orjson.dumps(without_ids(value), option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS))
        except TypeError:
            return hash(repr(value))

    def done(self) -> Partial:
        if self.accepted_rows:
            self.result.rows_read += self.accepted_rows
            self.result.type_signatures[self.fast.signature] += self.accepted_rows
        return self.result


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


def finish(partial: Partial, enabled: set[str], max_rows: int, expected: Shape | None = None) -> ScanResult:
    """The dataset-level rules over a whole pass: duplicates, KTO labels; the shapes (the expected one first)
    and the columns table."""
    collector = Collector(enabled, max_rows)
    collector.tallies = partial.tallies
    key = shape_key(expected) if expected is not None else None
    ordered = sorted((v for v in partial.votes.values() if v.count),
                     key=lambda v: (shape_key(v.shape) != key, -v.count))
    columns: dict[str, Counter] = {}
    for (keys, types), count in partial.type_signatures.items():
        for name, kind in zip(keys, types):
            columns.setdefault(name, Counter())[TYPE_NAMES.get(kind, kind.__name__)] += count
    if DUPLICATE_ROW.id in enabled:
        _report_duplicates(collector, partial)
    result = ScanResult(partial.rows_read, collector.tallies, ordered, columns, partial.labels,
                        partial.final_answers, partial.rows_with_errors, [], partial.rejected, partial.repaired, expected)
    _report_labels(result, enabled)
    return result


def _report_duplicates(collector: Collector, partial: Partial) -> None:
    """TP401 for every row whose content hash an earlier row has: found during the pass with a set, or, past
    SORT_DUPLICATES_FROM_ROWS rows, by a stable sort (first occurrences first) at the end. A sort's temporaries
    are dropped as soon as they are used: on a multi-GB file each is tens of MB."""
    if partial.repeats is not None:
        rows = partial.repeats
        if rows:
            first = rows[: collector.max_rows]
            collector.tallies[DUPLICATE_ROW.id] = Tally(len(rows), first, ["repeats an earlier row"] * len(first))
        return
    import numpy as np

    values = np.frombuffer(partial.hashes, dtype=np.int64)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    repeat = np.zeros(len(values), dtype=bool)
    np.equal(ordered[1:], ordered[:-1], out=repeat[1:])
    del ordered
    repeated = order[repeat]
    del order, repeat
    if not len(repeated):
        return
    rows = np.frombuffer(partial.hash_rows, dtype=np.int64)[repeated]
    del repeated
    shown = min(collector.max_rows, len(rows))
    rows.partition(shown - 1)
    first = np.sort(rows[:shown]).tolist()
    collector.tallies[DUPLICATE_ROW.id] = Tally(len(rows), first, ["repeats an earlier row"] * len(first))


def _report_labels(result: ScanResult, enabled: set[str]) -> None:
    true, false = result.labels.get(True, 0), result.labels.get(False, 0)
    total = true + false
    if not total:
        return
    if (true == 0 or false == 0) and SINGLE_LABEL_CLASS.id in enabled:
        result.dataset_findings.append((SINGLE_LABEL_CLASS.id, total, f"all {total} labels are {str(true > 0).lower()}"))
    elif max(true, false) / min(true, false) > 4 and LABEL_IMBALANCE.id in enabled:
        weight = "undesirable_weight" if true > false else "desirable_weight"
        result.dataset_findings.append((
            LABEL_IMBALANCE.id, total,
            f"{true} desirable vs {false} undesirable; try {weight}={max(true, false) / min(true, false):.2f}"))
