"""The scan: every rule over every row in one pass, failures collected and reported once.

Counts are exact; only the first `max_rows` row numbers and details of each rule are kept, never row payloads.
"""

from __future__ import annotations

import itertools
from array import array
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import orjson
from xxhash import xxh3_64_intdigest

from inspector.checks import check_fields, check_row
from inspector.dialects import Shape, classify_row, final_answer
from inspector.fast import fast_check_for
from inspector.rules import ERROR, RULES
from inspector.sources import DuplicateKeys, Source, SourceError, UnreadableRow

# Rows read before the dataset's expected shape is fixed; rows that fit no shape are checked against it.
DETECTION_ROWS = 1000
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
    clean: int = 0  # rows of this shape that broke no error rule
    rows: list[int] = field(default_factory=list)


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


def shape_key(shape: Shape) -> tuple:
    """Shapes that differ only in optional columns are the same shape."""
    return shape.dialect, shape.type, shape.format, shape.implicit_prompt, tuple(
        f.name for f in shape.fields if f.required)


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


_TYPE_NAMES = {str: "string", list: "list", dict: "object", bool: "boolean", int: "number", float: "number",
               type(None): "null"}


def _value_type(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _row_hash(value: Any) -> int:
    """A 64-bit hash of the row's content, the same in every process (Python's `hash` of bytes is salted
    per process, and chunks scanned in parallel must agree)."""
    try:
        data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        data = repr(value).encode()
    return xxh3_64_intdigest(data)


@dataclass
class Partial:
    """What a pass over some rows found, before the dataset-level rules; partials of chunks merge in order."""

    rows_read: int = 0
    rows_with_errors: int = 0
    tallies: dict[str, Tally] = field(default_factory=dict)
    votes: dict[tuple, ShapeVotes] = field(default_factory=dict)
    type_signatures: Counter = field(default_factory=Counter)  # (keys, value types) -> rows
    labels: Counter = field(default_factory=Counter)
    final_answers: int = 0
    # Every readable row's content hash and row number, 16 bytes a row (arrays; numpy once chunks are merged):
    # duplicates are found once, at the end, by sorting (a set of Python ints costs ~4x the memory).
    hashes: Any = field(default_factory=lambda: array("Q"))
    hash_rows: Any = field(default_factory=lambda: array("q"))


def scan(source: Source, *, enabled: set[str], max_rows: int = 5, sample: int | None = None,
         advance: Callable[[int], None] = lambda n: None, workers: int | None = None) -> ScanResult:
    """Run every enabled rule over the source's rows (the first `sample` rows when given).

    A large JSON-lines file is split at line boundaries and scanned by `workers` processes (both cores by
    default); the result is the same as one pass, row numbers and counts included.
    """
    rows: Iterator[tuple[int, Any]] = source.rows(advance)
    if sample is not None:
        rows = itertools.islice(rows, sample)
    head = list(itertools.islice(rows, DETECTION_ROWS))
    head_shapes = [classify_row(value) for _, value in head]
    expected = most_common_shape(head_shapes)
    workers = workers or min(8, os.cpu_count() or 1)
    if (sample is None and workers > 1 and source.lines_path is not None and len(head) == DETECTION_ROWS
            and source.total >= PARALLEL_FROM_BYTES):
        from inspector.parallel import scan_chunks

        partial = scan_chunks(source.lines_path, expected=expected, enabled=enabled, max_rows=max_rows,
                              workers=workers, advance=advance)
    else:
        partial = scan_rows(itertools.chain(head, rows), expected=expected, enabled=enabled, max_rows=max_rows,
                            head_shapes=head_shapes)
    if partial.rows_read == 0:
        raise SourceError(f"{source.name}: no rows")
    return finish(partial, enabled, max_rows)


def scan_rows(rows: Iterable[tuple[int, Any]], *, expected: Shape | None, enabled: set[str], max_rows: int,
              head_shapes: list[Shape | None] = ()) -> Partial:
    """One pass of the row-level rules."""
    collector = Collector(enabled, max_rows)
    result = Partial(tallies=collector.tallies)
    votes, type_signatures, labels = result.votes, result.type_signatures, result.labels
    hashes, hash_rows = result.hashes, result.hash_rows
    fast = fast_check_for(expected)
    expected_vote = None
    if expected is not None:
        expected_vote = votes[shape_key(expected)] = ShapeVotes(expected)
    verified: set[tuple] = set()  # key tuples whose rows the full path found to be clean rows of `expected`
    rows_read = rows_with_errors = final_answers = 0
    for index, (number, value) in enumerate(rows):
        rows_read += 1
        if isinstance(value, UnreadableRow):
            collector.add("TP001", number, value.error)
            rows_with_errors += 1
            continue
        if isinstance(value, DuplicateKeys):
            collector.add("TP003", number, f"key(s) {', '.join(value.keys)} repeated; the last value is used")
            value = value.row
        if not isinstance(value, dict):
            collector.add("TP002", number, f"the row is {_value_type(value)}")
            rows_with_errors += 1
            continue
        keys = tuple(value)
        type_signatures[keys, tuple(map(type, value.values()))] += 1
        hashes.append(_row_hash(value))
        hash_rows.append(number)
        if fast is not None and keys in verified and fast(value):
            expected_vote.count += 1
            expected_vote.clean += 1
            if len(expected_vote.rows) < max_rows:
                expected_vote.rows.append(number)
            continue
        shape = head_shapes[index] if index < len(head_shapes) else classify_row(value)
        if shape is None:
            issues = check_fields(value, expected) if expected else []
            for rule, detail in issues or [("TP404", "the row fits no known dataset shape")]:
                collector.add(rule, number, detail)
            rows_with_errors += 1
            continue
        key = shape_key(shape)
        vote = votes.get(key)
        if vote is None:
            vote = votes[key] = ShapeVotes(shape)
        vote.count += 1
        if len(vote.rows) < max_rows:
            vote.rows.append(number)
        issues, trl_row = check_row(value, shape)
        for rule, detail in issues:
            collector.add(rule, number, detail)
        if any(RULES[rule].severity == ERROR for rule, _ in issues):
            rows_with_errors += 1
        else:
            vote.clean += 1
        if not issues and vote is expected_vote:
            verified.add(keys)
        if trl_row is not None:
            if shape.type == "unpaired_preference" and isinstance(trl_row.get("label"), bool):
                labels[trl_row["label"]] += 1
            elif shape.dialect == "question_answer" and final_answer(value.get("answer")) is not None:
                final_answers += 1
    result.rows_read, result.rows_with_errors, result.final_answers = rows_read, rows_with_errors, final_answers
    return result


def finish(partial: Partial, enabled: set[str], max_rows: int) -> ScanResult:
    """The dataset-level rules over a whole pass: disagreeing shapes, KTO labels; the columns table."""
    collector = Collector(enabled, max_rows)
    collector.tallies = partial.tallies
    ordered = sorted((v for v in partial.votes.values() if v.count), key=lambda v: -v.count)
    columns: dict[str, Counter] = {}
    for (keys, types), count in partial.type_signatures.items():
        for key, kind in zip(keys, types):
            columns.setdefault(key, Counter())[_TYPE_NAMES.get(kind, kind.__name__)] += count
    _report_disagreeing_shapes(collector, ordered)
    if "TP401" in enabled:
        _report_duplicates(collector, partial.hashes, partial.hash_rows)
    # Rows of a minority shape break TP404/TP108 even when their own checks passed.
    rows_with_errors = partial.rows_with_errors + sum(vote.clean for vote in ordered[1:])
    result = ScanResult(partial.rows_read, collector.tallies, ordered, columns, partial.labels,
                        partial.final_answers, rows_with_errors, [])
    _report_labels(result, enabled)
    return result


def disagreement(main: Shape, other: Shape) -> tuple[str, str]:
    """The rule a row of shape `other` breaks in a dataset of shape `main`: TP108 when only the format
    differs, TP404 otherwise."""
    if (other.dialect, other.type) == (main.dialect, main.type) and other.format != main.format:
        return "TP108", f"{other.format} row in a {main.format} dataset"
    return "TP404", (f"{other.dialect} {other.type} row ({', '.join(other.columns)}) in a {main.dialect} "
                     f"{main.type} dataset ({', '.join(main.columns)})")


def _report_disagreeing_shapes(collector: Collector, ordered: list[ShapeVotes]) -> None:
    if len(ordered) < 2:
        return
    main = ordered[0].shape
    for vote in ordered[1:]:
        rule, detail = disagreement(main, vote.shape)
        # Only the first rows of each shape are known, but the count must stay exact.
        tally_rows = vote.rows
        for row in tally_rows:
            collector.add(rule, row, detail)
        if rule in collector.enabled:
            tally = collector.tallies[rule]
            tally.count += vote.count - len(tally_rows)


def _report_duplicates(collector: Collector, hashes: Any, hash_rows: Any) -> None:
    """TP401 for every row whose content hash an earlier row has: a stable sort puts first occurrences first.
    Temporaries are dropped as soon as they are used: on a multi-GB file each is tens of MB."""
    if len(hashes) < 2:
        return
    if len(hashes) < SORT_DUPLICATES_FROM_ROWS:
        # One pass with a set: rows come in file order, so the repeats come out in order too.
        seen: set[int] = set()
        rows = []
        for row_hash, row in zip(hashes, hash_rows):
            if row_hash in seen:
                rows.append(row)
            else:
                seen.add(row_hash)
        if rows:
            first = rows[: collector.max_rows]
            collector.tallies["TP401"] = Tally(len(rows), first, ["repeats an earlier row"] * len(first))
        return
    import numpy as np

    values = np.frombuffer(hashes, dtype=np.uint64)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    repeat = np.zeros(len(values), dtype=bool)
    np.equal(ordered[1:], ordered[:-1], out=repeat[1:])
    del ordered
    repeated = order[repeat]
    del order, repeat
    if not len(repeated):
        return
    rows = np.frombuffer(hash_rows, dtype=np.int64)[repeated]
    del repeated
    shown = min(collector.max_rows, len(rows))
    rows.partition(shown - 1)
    first = np.sort(rows[:shown]).tolist()
    collector.tallies["TP401"] = Tally(len(rows), first, ["repeats an earlier row"] * len(first))


def _report_labels(result: ScanResult, enabled: set[str]) -> None:
    true, false = result.labels.get(True, 0), result.labels.get(False, 0)
    total = true + false
    if not total:
        return
    if (true == 0 or false == 0) and "TP402" in enabled:
        result.dataset_findings.append(("TP402", total, f"all {total} labels are {str(true > 0).lower()}"))
    elif max(true, false) / min(true, false) > 4 and "TP403" in enabled:
        weight = "undesirable_weight" if true > false else "desirable_weight"
        result.dataset_findings.append((
            "TP403", total,
            f"{true} desirable vs {false} undesirable; try {weight}={max(true, false) / min(true, false):.2f}"))
