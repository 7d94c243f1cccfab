"""The fast path over Arrow record batches (Parquet, Arrow, `save_to_disk`): its tests as pyarrow.compute kernels
over whole columns, with no Python code per row. The texts take every rule's Arrow proof as its catalog entry
declares it. Only the rows they flag become Python objects and take the full checks; a property test holds the
column tests to `FastPath`'s row by row.

Clean rows are identified by a hash of their columns (`arrow.span_hashes`: xxh3 of a row's texts where Arrow
holds them, each message's role and length folded in); flagged rows by `RowScan.row_hash`. The two never meet: a
clean row never equals a flagged one. `scan_batches`, the engine of Arrow batches, returns what it found of each
batch to the row scan (`inspector.scan.rows`), which it does not import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from trlprep.inspector.arrow import (integers, mixed, plain_batches, rows_at, sequence_hashes,
                                     sharing_text_bytes, span_hashes, strings, text_offsets, true_mask, value_hashes,
                                     without)
from trlprep.inspector.dialects import Shape, is_id_column, shape_key
from trlprep.inspector.fast import proves_every_rule
from trlprep.inspector.rules import Proof, text_proofs
from trlprep.inspector.sources import batch_rows

# shape_key -> (message role and content fields, roles in their order system, user, answer) for message
# columns; None for string columns.
_SHAPES: dict[tuple, tuple[tuple[str, str], tuple[str, str, str]] | None] = {
    ("trl", "language_modeling", "conversational", False, ("messages",)): (("role", "content"),
                                                                           ("system", "user", "assistant")),
    ("sharegpt", "language_modeling", "conversational", False, ("conversations",)): (("from", "value"),
                                                                                     ("system", "human", "gpt")),
    ("trl", "language_modeling", "standard", False, ("text",)): None,
    ("trl", "prompt_completion", "standard", False, ("prompt", "completion")): None,
    ("trl", "preference", "standard", False, ("prompt", "chosen", "rejected")): None,
}
# Arrow types of the other columns (in their plain form, `plain_batch`), as the Python types a row of the fast
# path's example has.
_PLAIN_TYPES = ((pa.types.is_string, str), (pa.types.is_integer, int),
                (pa.types.is_floating, float), (pa.types.is_boolean, bool))


@dataclass(frozen=True)
class ColumnPlan:
    """What to test in a batch: the shape's columns (`messages` set for a column of messages) and the others,
    which must only be present."""

    columns: tuple[str, ...]
    messages: tuple[tuple[str, str], tuple[str, str, str]] | None
    others: tuple[str, ...]
    text_only: bool  # a `text` column, which must not hold a `Human:` transcript
    distinct: tuple[str, str] | None  # columns that must differ (chosen, rejected)
    text_proofs: tuple[Proof, ...] = ()  # every rule's text proof, each run on every text

    @classmethod
    def for_schema(cls, shape: Shape | None, example: dict | None, schema: pa.Schema) -> ColumnPlan | None:
        """The plan for batches of `schema` holding rows like `example` (a clean row of `shape`), or None when
        the columns are not ones the kernels know: then every row takes the row-by-row path."""
        if shape is None or shape.reads_images or example is None or list(schema.names) != list(example):
            return None
        key = shape_key(shape)
        if key not in _SHAPES or not proves_every_rule(shape, schema.names):
            return None
        messages, columns = _SHAPES[key], key[4]
        if any(f.name in schema.names and f.name not in columns for f in shape.fields):
            return None  # an optional column the shape reads (a `system` prompt), which the kernels do not
        for name in columns:
            kind = schema.field(name).type
            if messages is None and not pa.types.is_string(kind):
                return None
            if messages is not None and not (
                    pa.types.is_list(kind) and pa.types.is_struct(kind.value_type)
                    and [f.name for f in kind.value_type] == list(messages[0])
                    and all(pa.types.is_string(f.type) for f in kind.value_type)):
                return None
        others = tuple(name for name in schema.names if name not in columns)
        for name in others:
            plain = [kind for test, kind in _PLAIN_TYPES if test(schema.field(name).type)]
            if not plain or plain[0] is not type(example[name]):
                return None
        return cls(columns, messages, others, (shape.type, shape.format) == ("language_modeling", "standard"),
                   ("chosen", "rejected") if shape.type == "preference" else None, text_proofs())

    def clean_rows(self, batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray]:
        """A mask of the batch's clean rows and a content hash per row (equal content, equal hash)."""
        clean = np.ones(batch.num_rows, dtype=bool)
        hashes = np.zeros(batch.num_rows, dtype=np.uint64)
        for name in self.columns:
            column = batch.column(name)
            if self.messages is None:
                clean &= _clean_texts(column, self.text_proofs, human=self.text_only)
                column_hashes = value_hashes(column)
            else:
                row_clean, column_hashes = _clean_conversations(column, *self.messages, self.text_proofs)
                clean &= row_clean
            hashes = mixed(hashes ^ column_hashes)
        if self.distinct:
            clean &= true_mask(pc.not_equal(batch.column(self.distinct[0]), batch.column(self.distinct[1])))
        for name in self.others:
            column = batch.column(name)
            clean &= true_mask(pc.is_valid(column))
            if not is_id_column(name):  # rows that differ only in an id repeat
                hashes = mixed(hashes ^ value_hashes(column))
        return clean, hashes


def _clean_texts(texts: pa.Array, proofs: tuple[Proof, ...], human: bool = False) -> np.ndarray:
    """`fast.clean_text` over a column: present, then every rule's text proof as its catalog entry declares it
    (`Proof.arrow`), and no `Human:` when asked. The proofs share the column's bytes (`sharing_text_bytes`): what
    the whole column lacks, no kernel looks for text by text.
    """
    clean = true_mask(pc.is_valid(texts))
    with sharing_text_bytes(texts):
        for proof in proofs:
            clean &= proof.arrow(texts)
        if human:
            clean &= without(texts, "Human:")
    return clean


def _clean_conversations(column: pa.Array, fields: tuple[str, str], roles: tuple[str, str, str],
                         proofs: tuple[Proof, ...]) -> tuple[np.ndarray, np.ndarray]:
    """`fast.clean_turns` over a column of message lists, and a content hash per row."""
    rows = len(column)
    flat = pc.list_flatten(column)
    role, content = flat.field(fields[0]), flat.field(fields[1])
    parents = integers(pc.list_parent_indices(column))
    codes = integers(pc.index_in(role, value_set=strings(roles)))
    bad = ~_clean_texts(content, proofs) | (codes < 0)
    later = np.zeros(len(codes), dtype=bool)  # not the first message of its row
    later[1:] = parents[1:] == parents[:-1]
    bad[1:] |= later[1:] & (codes[1:] == codes[:-1])  # a role twice in a row
    bad |= later & (codes == 0)  # system after the first message
    counts = np.bincount(parents, minlength=rows)  # messages a row
    clean = np.bincount(parents[bad], minlength=rows) == 0
    last_code = np.full(rows, -1)
    last = np.ones(len(codes), dtype=bool)
    last[:-1] = ~later[1:]
    last_code[parents[last]] = codes[last]
    clean &= last_code == 2  # ends with an answer (an empty or missing list has no last message)
    clean &= counts > 1  # and a prompt before it (TC102)
    # A row's contents lie one after another in the column's text bytes: their hash, with that of each message's
    # role and length in its place, is the row's.
    starts = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    shapes = (np.diff(text_offsets(content)).astype(np.uint64) << np.uint64(2)) | (codes & 3).astype(np.uint64)
    return clean, mixed(span_hashes(content, starts) ^ sequence_hashes(shapes, starts, parents))


class CheckedBatch(NamedTuple):
    """What the column tests found of one batch, in file order (the arguments of `RowScan.take`)."""

    accepted: np.ndarray  # the clean rows' numbers (int64)
    hashes: np.ndarray  # their content hashes (int64)
    flagged: Iterator[tuple[int, int, dict]]  # each other row: (clean rows before it, its number, the row)


def scan_batches(batches: Iterable[pa.RecordBatch],
                 plan_for: Callable[[pa.Schema], ColumnPlan | None]) -> Iterator[CheckedBatch]:
    """Every batch through the column tests when `plan_for(schema)` has a plan for its plain form (large,
    view and dictionary types read as plain ones: `plain_batches`): its clean rows, taken whole, and the others,
    which take the full checks as the batch holds them; every row of a batch without a plan is flagged. Rows
    are numbered on across batches from 1."""
    number, plans = 0, {}
    for batch, plain in plain_batches(batches):
        if plain is not None and plain.schema not in plans:  # once a schema: every batch of a file has one
            plans[plain.schema] = plan_for(plain.schema)
        plan = plans[plain.schema] if plain is not None else None
        if plan is None:
            nothing = np.zeros(0, dtype=np.int64)
            yield CheckedBatch(nothing, nothing, ((0, offset, row)
                                                  for offset, row in enumerate(batch_rows(batch), start=number + 1)))
        else:
            clean, hashes = plan.clean_rows(plain)
            accepted, flagged = np.flatnonzero(clean), np.flatnonzero(~clean)
            yield CheckedBatch(accepted + number + 1, hashes[accepted].view(np.int64),
                               zip(np.searchsorted(accepted, flagged).tolist(), (flagged + number + 1).tolist(),
                                   batch_rows(rows_at(batch, flagged)) if len(flagged) else ()))
        number += batch.num_rows
