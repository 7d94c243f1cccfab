"""The row scan, the second layer: the row-level rules over rows as they come, clean rows of the expected shape
through the fast path, and what a pass found (`Partial`) before the dataset-level rules. The engines
(`inspector.scan.lines`, `inspector.columnar`, `inspector.scan.parallel`, `inspector.shards`) feed it rows or
their fast path's verdicts; the merge (`inspector.scan.merge`) joins what it found.

Counts are exact; only the first `max_rows` row numbers and details of each rule are kept, never row payloads.
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson

from trlprep.inspector.dialects import Shape, final_answer, shape_key, to_trl, without_ids
from trlprep.inspector.decision import Engine, TypedChecks, decided_methods
from trlprep.inspector.fast import FastPath, Typed
from trlprep.inspector.images import ImageChecker
from trlprep.inspector.rules.conversion import first_wrong_step
from trlprep.inspector.rules.images import IMAGE_REPEATED
from trlprep.inspector.rules.reasoning import MIXED_TRACES, holds_trace
from trlprep.inspector.sources import row_value

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


def record(tallies: dict[str, Tally], rule: str, row: int, detail: str, max_rows: int) -> None:
    """One finding of `rule` on `row` into `tallies`: a row counted once, its first `max_rows` rows kept with a
    detail each.

    >>> tallies = {}
    >>> for row in (3, 3, 5):
    ...     record(tallies, "TP201", row, f"row {row}", max_rows=1)
    >>> tallies["TP201"].count, tallies["TP201"].rows
    (2, [3])
    """
    tally = tallies.get(rule)
    if tally is None:
        tally = tallies[rule] = Tally()
    if tally.last_row == row:
        return
    tally.last_row = row
    tally.count += 1
    if len(tally.rows) < max_rows:
        tally.rows.append(row)
        tally.details.append(detail)


class Collector:
    def __init__(self, enabled: set[str], max_rows: int):
        self.enabled = enabled
        self.max_rows = max_rows
        self.tallies: dict[str, Tally] = {}

    def add(self, rule: str, row: int, detail: str) -> None:
        if rule in self.enabled:
            record(self.tallies, rule, row, detail, self.max_rows)


@dataclass
class Partial:
    """What a pass over some rows found, before the dataset-level rules; partials of chunks merge in order."""

    rows_read: int = 0
    # The rows with row-level findings, by the set of rules each breaks: how many rows break an error rule is
    # counted from them once the severities are known (a config file may change them), as distinct rows.
    rows_by_rules: dict[frozenset[str], array] = field(default_factory=dict)
    tallies: dict[str, Tally] = field(default_factory=dict)
    votes: dict[tuple, ShapeVotes] = field(default_factory=dict)
    type_signatures: Counter = field(default_factory=Counter)  # (keys, value types) -> rows
    labels: Counter = field(default_factory=Counter)  # KTO label -> rows KTO conversion keeps
    final_answers: int = 0
    # The rows `convert --to method` rejects, by rule, for each method decided on its own
    # (`decision.decided_methods`; the others take their base's).
    rejected: dict[str, dict[str, Tally]] = field(default_factory=lambda: {m: {} for m in decided_methods()})
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
    # Each image's digest and the first row it appeared in (TP711, found across chunks by the merge).
    first_image_rows: dict[bytes, int] = field(default_factory=dict)
    # The rows whose answers hold a reasoning trace and those whose answers hold none (TP806, by the merge).
    traced: Tally = field(default_factory=Tally)
    untraced: Tally = field(default_factory=Tally)


def _count(tally: Tally, numbers: range | tuple[int, ...], max_rows: int) -> None:
    """Rows into a tally of rows (no details): counted, the first `max_rows` kept."""
    tally.count += len(numbers)
    if len(tally.rows) < max_rows:
        tally.rows.extend(map(int, numbers[: max_rows - len(tally.rows)]))


class RowScan:
    """The row-level rules over rows as they come, clean rows of the expected shape through the fast path;
    `done()` gives what they found."""

    def __init__(self, expected: Shape | None, enabled: set[str], max_rows: int, example: dict | None = None,
                 images: ImageChecker | None = None, image_data: bool | None = None, sort_duplicates: bool = False):
        """`sort_duplicates`: repeats are found by sorting the hashes at the end (`merge`), never with a set of
        them as Python ints, which the column kernels' numpy arrays would each have to become."""
        self.collector = Collector(enabled, max_rows)
        self.result = Partial(tallies=self.collector.tallies)
        self.expected, self.max_rows = expected, max_rows
        self.engine = Engine(expected, images, image_data)
        self.fast = FastPath.for_row(expected, example) if example is not None else None
        # The checks left to a row of the fast path's structure that it refuses, by whether its texts are clean.
        self.typed_checks = {clean: TypedChecks.of(expected, example, clean)
                             for clean in (False, True)} if self.fast is not None else None
        self.expected_vote = None
        if expected is not None:
            self.expected_vote = self.result.votes[shape_key(expected)] = ShapeVotes(expected)
        self.accepted_rows = 0  # rows the fast path took: their columns are the fast path's, counted once
        self.counts_traces = MIXED_TRACES.id in enabled
        # The rows the fast path takes have answers without traces (no `<`, no `reasoning_content`), unless their
        # shape has no answers (prompts, `text`).
        self.fast_rows_untraced = bool(self.counts_traces and self.fast is not None
                                       and holds_trace(to_trl(example, expected)) is not None)
        if not sort_duplicates:
            self.result.repeats, self.result.seen = [], set()  # the content hashes so far, while there are few

    def accept(self, numbers: range | tuple[int, ...], row_hashes: list[int] | tuple[int, ...]) -> None:
        """Rows the fast path found clean, and their content hashes."""
        self._count_accepted(numbers)
        self._remember(numbers, row_hashes)

    def _count_accepted(self, numbers: Any) -> None:
        vote = self.expected_vote
        vote.count += len(numbers)
        if len(vote.rows) < self.max_rows:
            vote.rows.extend(map(int, numbers[: self.max_rows - len(vote.rows)]))
        self.accepted_rows += len(numbers)
        self.result.last_row = int(numbers[-1])
        if self.fast_rows_untraced:
            _count(self.result.untraced, numbers, self.max_rows)

    def take(self, accepted: Any, hashes: Any, flagged: Iterable[tuple[int, int, Any]]) -> None:
        """Rows the column kernels went over, in file order: those they accepted (row numbers and content hashes,
        numpy int64 arrays) and those they flagged, each as (accepted rows before it, row number, value), which
        take every check. The accepted rows' hashes are kept in bulk (`sort_duplicates`), in the order of a stable
        sort: the batches' runs of sorted hashes leave the sort at the end (`merge`) a merge of runs (a quarter of
        its time: 3.2 ms against 14 per 200,000 rows, which the scan's last moments wait for). A value's rows stay
        in file order, and an accepted row's hash never equals a flagged row's (`inspector.columnar`), so the end's
        stable sort finds each value's first row as before."""
        import numpy as np

        start = 0
        for cut, number, value in flagged:
            if cut > start:
                self._count_accepted(accepted[start:cut])
                start = cut
            self.row(number, value)
        if start < len(accepted):
            self._count_accepted(accepted[start:])
        order = np.argsort(hashes, kind="stable")
        self.result.hashes.frombytes(hashes[order].tobytes())
        self.result.hash_rows.frombytes(accepted[order].tobytes())

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

    def row(self, number: int, value: Any, shape: Shape | None = None, typed: Typed | None = None) -> None:
        """One row through every check (`shape` when it is classified already). `typed`: the fast path's verdict
        when the row decoded into its typed structure (else the row is judged here), which refused it; then it
        skips the checks that structure and, when its texts are clean, their text proofs prove (`TypedChecks`):
        a row with a finding costs what the rules that can fire on it cost."""
        collector, result = self.collector, self.result
        result.last_row = number
        if typed is None and self.fast is not None and type(value) is dict:
            typed = self.fast.judge(value)
            if typed is not None and typed.clean:
                self.accept((number,), (typed.hash,))
                return
        result.rows_read += 1
        decision = self.engine.decide(value, shape,
                                      self.typed_checks[typed.texts_clean] if typed is not None else None)
        broken = {rule for rule, _ in decision.issues}
        for rule, detail in decision.issues:
            collector.add(rule, number, detail)
        kept_for_kto = True
        for method in decided_methods():
            rejection = self.engine.rejection(decision, method)
            if rejection is not None:
                record(result.rejected[method], rejection[0], number, rejection[1], self.max_rows)
                kept_for_kto = kept_for_kto and method != "kto"
        for rule in decision.repairs:
            result.repaired[rule] += 1
        for digest in decision.image_digests or ():
            first = result.first_image_rows.setdefault(digest, number)
            if first != number:
                collector.add(IMAGE_REPEATED.id, number, f"an image of row {first}")
                broken.add(IMAGE_REPEATED.id)
        if broken:
            result.rows_by_rules.setdefault(frozenset(broken), array("q")).append(number)
        row = row_value(value)
        if not isinstance(row, dict):
            return
        self._remember((number,), (self.row_hash(row) if typed is None else typed.hash,))
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
        traced = holds_trace(trl_row) if self.counts_traces and trl_row is not None else None
        if traced is not None:
            _count(self.result.traced if traced else self.result.untraced, (number,), self.max_rows)
        if trl_row is not None and kept_for_kto and decision.shape.type == "unpaired_preference":
            result.labels[trl_row["label"]] += 1
        elif trl_row is not None and kept_for_kto and decision.shape.type == "stepwise_supervision":
            result.labels[first_wrong_step(trl_row) is None] += 1  # the label `convert --to kto` gives the row
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
