"""The merge, the last layer of the scan: partials of consecutive chunks or files joined as one pass over them
gives them, then the dataset-level rules (duplicates, KTO labels) over the whole and the scan's result.

A partial scanned in another process or on another node (`inspector.shards`) travels as data (`partial_data`,
`partial_from_data`): plain values and 8-byte integer arrays, never objects, so that reading one runs no code.
"""

from __future__ import annotations

import bisect
import datetime
import decimal
import functools
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Read at call time through its module: tests lower it there to take the sorting way on small files.
import trlprep.inspector.scan.rows as row_scan
from trlprep.inspector.dialects import Field, Shape, shape_key
from trlprep.inspector.decision import TYPE_NAMES
from trlprep.inspector.rules.dataset import DUPLICATE_ROW, LABEL_IMBALANCE, SINGLE_LABEL_CLASS
from trlprep.inspector.rules.images import IMAGE_REPEATED
from trlprep.inspector.rules.reasoning import MIXED_TRACES
from trlprep.inspector.scan.plan import line_of
from trlprep.inspector.scan.rows import Collector, Partial, ShapeVotes, Tally


def merge(chunks: list[tuple[Partial, int]], max_rows: int) -> Partial:
    """Partials of consecutive chunks (of one file, or files of one dataset), each with the lines it spans, as
    one: counts summed, first rows kept in order, row hashes joined (the duplicates among them are found once,
    over the whole)."""
    merged = Partial()
    offset = 0
    for partial, lines in chunks:
        merged.rows_read += partial.rows_read
        for rules, rows in partial.rows_by_rules.items():
            merged.rows_by_rules.setdefault(rules, array("q")).extend(row + offset for row in rows)
        merged.final_answers += partial.final_answers
        if partial.last_row:
            merged.last_row = offset + partial.last_row
        merged.labels.update(partial.labels)
        merged.repaired.update(partial.repaired)
        for method, tallies in partial.rejected.items():
            for rule, tally in tallies.items():
                _add(merged.rejected[method], rule, _shift(tally, offset), max_rows)
        merged.type_signatures.update(partial.type_signatures)
        for rule, tally in partial.tallies.items():
            _add(merged.tallies, rule, _shift(tally, offset), max_rows)
        repeated: dict[int, int] = {}  # rows first in their chunk with an image an earlier chunk had -> that row
        for digest, row in partial.first_image_rows.items():
            first = merged.first_image_rows.setdefault(digest, row + offset)
            if first != row + offset:
                repeated.setdefault(row + offset, first)
        flagged_in_chunk = partial.tallies.get(IMAGE_REPEATED.id, Tally()).rows  # for another of its images
        for row, first in sorted(repeated.items()):
            if row - offset not in flagged_in_chunk:
                _add(merged.tallies, IMAGE_REPEATED.id, Tally(1, [row], [f"an image of row {first}"]), max_rows)
        for into, tally in ((merged.traced, partial.traced), (merged.untraced, partial.untraced)):
            into.count += tally.count
            into.rows = (into.rows + [r + offset for r in tally.rows])[:max_rows]
        for key, vote in partial.votes.items():
            into = merged.votes.setdefault(key, ShapeVotes(vote.shape))
            into.count += vote.count
            into.rows = (into.rows + [r + offset for r in vote.rows])[:max_rows]
        offset += lines
    if sum(len(partial.seen) if partial.seen is not None else row_scan.SORT_DUPLICATES_FROM_ROWS
           for partial, _ in chunks) < row_scan.SORT_DUPLICATES_FROM_ROWS:
        merged.repeats = _join_repeats(chunks)
    else:
        merged.hashes, merged.hash_rows = _join_hashes(chunks)
    return merged


def _shift(tally: Tally, offset: int) -> Tally:
    return Tally(tally.count, [r + offset for r in tally.rows], tally.details, tally.last_row)


def _add(tallies: dict[str, Tally], rule: str, tally: Tally, max_rows: int) -> None:
    into = tallies.setdefault(rule, Tally())
    pairs = sorted(zip(into.rows + tally.rows, into.details + tally.details))[:max_rows]
    into.count += tally.count
    into.rows = [row for row, _ in pairs]
    into.details = [detail for _, detail in pairs]


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


@dataclass
class FileSummary:
    """What the scan found of one file: its place in the dataset's numbering, its rows and shapes."""

    name: str
    offset: int
    rows: int
    shape: Shape | None
    judged_as: Shape | None
    lines: array | None = None  # each row's line, when one line may hold several rows (`plan.Expansion`)


@dataclass
class ScanResult:
    rows_read: int
    tallies: dict[str, Tally]
    shapes: list[ShapeVotes]  # most common first
    columns: dict[str, Counter]  # column -> Counter of value types
    labels: Counter  # KTO label value -> rows
    final_answers: int  # question/answer rows with a `####` final answer
    rows_by_rules: dict[frozenset[str], array]  # the rows with findings, by the set of rules each breaks
    dataset_findings: list[tuple[str, int, str]]  # (rule, rows affected, detail) for dataset-level rules
    rejected: dict[str, dict[str, Tally]]  # method -> rule -> the rows `convert --to method` rejects
    repaired: Counter  # rule -> rows `convert` repairs
    expected: Shape | None  # the dataset's shape, from its first rows: every row is read against it
    files: list[FileSummary] = field(default_factory=list)
    first_rows: list = field(default_factory=list)  # the first file's first rows: what a `--map` is checked on

    def where(self, row: int) -> str:
        """A row number of the dataset as `file:line` (the row's place in its file; the line it came from, in a file
        whose lines hold several rows).

        >>> result = ScanResult(0, {}, [], {}, Counter(), 0, {}, [], {}, Counter(), None,
        ...                     [FileSummary("a.jsonl", 0, 3, None, None),
        ...                      FileSummary("tasks.jsonl", 3, 3, None, None, array("q", [1, 1, 2]))])
        >>> result.where(2), result.where(5), result.where(6)
        ('a.jsonl:2', 'tasks.jsonl:1', 'tasks.jsonl:2')
        """
        index = bisect.bisect_left([file.offset for file in self.files], row) - 1
        file = self.files[max(index, 0)]
        return f"{file.name}:{line_of(file.lines, row - file.offset)}"

    def rows_breaking(self, rules: set[str] | frozenset[str]) -> int:
        """The distinct rows that break one of `rules` (the error rules, after a config file's severities).
        The rules found over the whole dataset whose rows are not all kept (TP806, the label rules, an image
        repeated across chunks) count as many as they affect, when that is more.

        >>> result = ScanResult(0, {}, [], {}, Counter(), 0, {frozenset({"TP101"}): array("q", [1, 2]),
        ...                     frozenset({"TP101", "TP205"}): array("q", [3]), frozenset({"TP205"}): array("q", [4])},
        ...                     [], {}, Counter(), None)
        >>> result.rows_breaking({"TP101"}), result.rows_breaking({"TP101", "TP205"}), result.rows_breaking(set())
        (3, 4, 0)
        >>> result.rows_by_rules[frozenset({"TP401"})] = array("q", [2, 5])  # duplicates: row 2 breaks TP101 too
        >>> result.rows_breaking({"TP101", "TP401"}), result.rows_breaking({"TP401"})
        (4, 2)
        """
        import numpy

        # The pass files each row once, under all the rules it breaks, so its lists are disjoint and their lengths
        # add up; only the duplicates, found at the end, can repeat a row of theirs: those are merged as 8-byte
        # integers, never a Python set, which would cost ~70 bytes a row on a file where most rows break a rule.
        duplicates = self.rows_by_rules.get(frozenset({DUPLICATE_ROW.id}))
        found = [rows for broken, rows in self.rows_by_rules.items() if broken & rules and rows is not duplicates]
        breaking = sum(map(len, found))
        if duplicates is not None and DUPLICATE_ROW.id in rules:
            breaking = len(numpy.union1d(numpy.frombuffer(duplicates, dtype=numpy.int64),
                                         numpy.concatenate([numpy.frombuffer(rows, dtype=numpy.int64)
                                                            for rows in found] or [numpy.empty(0, numpy.int64)])))
        kept = set().union(*self.rows_by_rules)
        unkept = [tally.count for rule, tally in self.tallies.items() if rule in rules and rule not in kept]
        unkept += [count for rule, count, _ in self.dataset_findings if rule in rules]
        return max([breaking, *unkept])


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
    rows_by_rules = dict(partial.rows_by_rules)
    if DUPLICATE_ROW.id in enabled:
        rows_by_rules[frozenset({DUPLICATE_ROW.id})] = _report_duplicates(collector, partial)
    if MIXED_TRACES.id in enabled:
        _report_traces(collector, partial)
    result = ScanResult(partial.rows_read, collector.tallies, ordered, columns, partial.labels,
                        partial.final_answers, rows_by_rules, [], partial.rejected, partial.repaired, expected)
    _report_labels(result, enabled)
    return result


def _report_duplicates(collector: Collector, partial: Partial) -> array:
    """TP401 for every row whose content hash an earlier row has: found during the pass with a set, or, past
    SORT_DUPLICATES_FROM_ROWS rows, by a stable sort (first occurrences first) at the end. A sort's temporaries
    are dropped as soon as they are used: on a multi-GB file each is tens of MB. Returns the repeating rows."""
    if partial.repeats is not None:
        rows = partial.repeats
        if rows:
            first = rows[: collector.max_rows]
            collector.tallies[DUPLICATE_ROW.id] = Tally(len(rows), first, ["repeats an earlier row"] * len(first))
        return array("q", rows)
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
        return array("q")
    rows = np.frombuffer(partial.hash_rows, dtype=np.int64)[repeated]
    del repeated
    shown = min(collector.max_rows, len(rows))
    rows.partition(shown - 1)
    first = np.sort(rows[:shown]).tolist()
    collector.tallies[DUPLICATE_ROW.id] = Tally(len(rows), first, ["repeats an earlier row"] * len(first))
    return array("q", rows.tobytes())


def _report_traces(collector: Collector, partial: Partial) -> None:
    """TP806 when some rows' answers hold a reasoning trace and others' none: the rows of the smaller group."""
    traced, untraced = partial.traced, partial.untraced
    if not traced.count or not untraced.count:
        return
    fewer, what = (traced, "holds a trace") if traced.count < untraced.count else (untraced, "holds no trace")
    detail = f"{what}: {traced.count} rows hold a reasoning trace, {untraced.count} hold none"
    collector.tallies[MIXED_TRACES.id] = Tally(fewer.count, fewer.rows, [detail] * len(fewer.rows))


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


# The value types a row's column can have, by the name a partial gives them (`type_name`): those a JSON, CSV or
# Arrow reader gives.
KNOWN_TYPES = {kind.__name__: kind for kind in (
    str, int, float, bool, type(None), dict, list, tuple, bytes, datetime.datetime, datetime.date, datetime.time,
    datetime.timedelta, decimal.Decimal)}


def type_name(kind: type) -> str:
    """The name a partial gives a value type: its own for the types of `KNOWN_TYPES`, else module and name.

    >>> type_name(str), type_name(type(None)), type_name(Counter)
    ('str', 'NoneType', 'collections.Counter')
    """
    return kind.__name__ if KNOWN_TYPES.get(kind.__name__) is kind else f"{kind.__module__}.{kind.__qualname__}"


@functools.cache
def named_type(name: str) -> type:
    """The type a partial names (`type_name`): a known one, else a stand-in of that name, created once (a column
    table names a type, never uses it; no module is imported for it).

    >>> named_type("str") is str, named_type("collections.Counter").__name__, named_type("a.B") is named_type("a.B")
    (True, 'Counter', True)
    """
    return KNOWN_TYPES.get(name) or type(name.rsplit(".", 1)[-1], (), {"__module__": "trlprep.stand_in"})


def shape_data(shape: Shape | None) -> list | None:
    """A shape as plain values (`shape_from_data` reads it back).

    >>> from trlprep.inspector.dialects import classify_row
    >>> shape = classify_row({"prompt": "q", "completion": "a"})
    >>> shape_from_data(shape_data(shape)) == shape, shape_data(None)
    (True, None)
    """
    if shape is None:
        return None
    return [shape.dialect, shape.type, shape.format, shape.implicit_prompt,
            [[f.name, f.kind, f.required] for f in shape.fields]]


def shape_from_data(data: list | None) -> Shape | None:
    if data is None:
        return None
    dialect, kind, form, implicit_prompt, fields = data
    return Shape(dialect, kind, form, bool(implicit_prompt), tuple(Field(name, what, bool(required))
                                                                    for name, what, required in fields))


def int64s(values: array | None) -> bytes | None:
    """Integers kept as 8-byte ones (row numbers, row hashes) as bytes; `int64s_from` reads them back."""
    return None if values is None else values.tobytes()


def int64s_from(data: bytes | None) -> array | None:
    return None if data is None else array("q", data)


def _tally_data(tally: Tally) -> list:
    return [tally.count, tally.rows, tally.details, tally.last_row]


def _tally_from(data: list) -> Tally:
    count, rows, details, last_row = data
    return Tally(count, list(rows), list(details), last_row)


def partial_data(partial: Partial) -> dict[str, Any]:
    """A partial as plain values (numbers, strings, bytes, lists and maps of them), for another process or node:
    `partial_from_data` gives back a partial that merges as this one does.

    >>> partial = Partial(rows_read=2, last_row=2, tallies={"TP201": Tally(1, [2], ["empty"], 2)})
    >>> partial.type_signatures[("text",), (str,)] = 2
    >>> partial_from_data(partial_data(partial)) == partial
    True
    """
    return {
        "rows_read": partial.rows_read,
        "rows_by_rules": [[sorted(rules), int64s(rows)] for rules, rows in partial.rows_by_rules.items()],
        "tallies": {rule: _tally_data(tally) for rule, tally in partial.tallies.items()},
        "votes": [[shape_data(vote.shape), vote.count, vote.rows] for vote in partial.votes.values()],
        "type_signatures": [[list(keys), [type_name(kind) for kind in kinds], count]
                            for (keys, kinds), count in partial.type_signatures.items()],
        "labels": [[label, count] for label, count in partial.labels.items()],
        "final_answers": partial.final_answers,
        "rejected": {method: {rule: _tally_data(tally) for rule, tally in tallies.items()}
                     for method, tallies in partial.rejected.items()},
        "repaired": dict(partial.repaired),
        "last_row": partial.last_row,
        "hashes": int64s(partial.hashes),
        "hash_rows": int64s(partial.hash_rows),
        "repeats": partial.repeats,
        "seen": None if partial.seen is None else int64s(array("q", partial.seen)),
        "first_image_rows": [[digest, row] for digest, row in partial.first_image_rows.items()],
        "traced": _tally_data(partial.traced),
        "untraced": _tally_data(partial.untraced),
    }


def partial_from_data(data: dict[str, Any]) -> Partial:
    votes = {}
    for shape, count, rows in data["votes"]:
        vote = ShapeVotes(shape_from_data(shape), count, list(rows))
        votes[shape_key(vote.shape)] = vote
    seen = int64s_from(data["seen"])
    return Partial(
        rows_read=data["rows_read"],
        rows_by_rules={frozenset(rules): int64s_from(rows) for rules, rows in data["rows_by_rules"]},
        tallies={rule: _tally_from(tally) for rule, tally in data["tallies"].items()},
        votes=votes,
        type_signatures=Counter({(tuple(keys), tuple(map(named_type, kinds))): count
                                 for keys, kinds, count in data["type_signatures"]}),
        labels=Counter({label: count for label, count in data["labels"]}),
        final_answers=data["final_answers"],
        rejected={method: {rule: _tally_from(tally) for rule, tally in tallies.items()}
                  for method, tallies in data["rejected"].items()},
        repaired=Counter(data["repaired"]),
        last_row=data["last_row"],
        hashes=int64s_from(data["hashes"]),
        hash_rows=int64s_from(data["hash_rows"]),
        repeats=None if data["repeats"] is None else list(data["repeats"]),
        seen=None if seen is None else set(seen),
        first_image_rows={bytes(digest): row for digest, row in data["first_image_rows"]},
        traced=_tally_from(data["traced"]),
        untraced=_tally_from(data["untraced"]),
    )
