"""The fast path over Arrow record batches (Parquet, Arrow, `save_to_disk`): its tests as pyarrow.compute kernels
over whole columns, with no Python code per row. Only the rows they flag become Python objects and take the
full checks; a property test holds the column tests to `FastPath`'s row by row.

Clean rows are identified by a key built from their columns by Arrow (message roles and contents joined with
control characters) and hashed; flagged rows by `RowScan.row_hash`. The two never meet: a clean row never
equals a flagged one. `scan_batches`, the engine of Arrow batches, returns what it found of each batch to the
row scan (`inspector.scan.rows`), which it does not import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from trlprep.inspector.arrow import indices, integers, plain_batches, rows_at, strings, true_mask
from trlprep.inspector.dialects import Shape, is_id_column, shape_key
from trlprep.inspector.fast import other_text_proofs, proves_every_rule
from trlprep.inspector.rules import Proof
from trlprep.inspector.rules.hygiene import SUSPECT_RE2
from trlprep.inspector.rules.content import ASSISTANT_LINE
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
_PLAIN_BYTES = bytes(range(0x20, 0x7F)) + b"\t\n\r"
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
    text_proofs: tuple[Proof, ...] = ()  # the rules' text proofs that `_clean_texts` does not fuse

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
                   ("chosen", "rejected") if shape.type == "preference" else None, other_text_proofs())

    def clean_rows(self, batch: pa.RecordBatch) -> tuple[np.ndarray, pa.Array]:
        """A mask of the batch's clean rows and a key per row (equal keys, equal content)."""
        clean = np.ones(batch.num_rows, dtype=bool)
        keys = []
        for name in self.columns:
            column = batch.column(name)
            if self.messages is None:
                clean &= _clean_texts(column, self.text_proofs, human=self.text_only)
                keys.append(column)
            else:
                row_clean, key = _clean_conversations(column, *self.messages, self.text_proofs)
                clean &= row_clean
                keys.append(key)
        if self.distinct:
            clean &= true_mask(pc.not_equal(batch.column(self.distinct[0]), batch.column(self.distinct[1])))
        for name in self.others:
            column = batch.column(name)
            clean &= true_mask(pc.is_valid(column))
            if not is_id_column(name):  # rows that differ only in an id repeat
                keys.append(column if pa.types.is_string(column.type) else pc.cast(column, pa.string()))
        return clean, pc.binary_join_element_wise(*keys, _SEPARATORS[0])


# Between columns, messages, and a role and its content; scalars taken from an array (see `strings`).
_SEPARATORS = [strings(("\x1d", "\x1e", "\x1f"))[i] for i in range(3)]


def _clean_texts(texts: pa.Array, proofs: tuple[Proof, ...] = (), human: bool = False) -> np.ndarray:
    """`fast.clean_text` over a column: present, not blank, no `<`, `[`, `&` or `_token` (nor `Human:` when asked),
    no assistant's name before a colon at a line start, nothing
    the hygiene rules look for (`hygiene.SUSPECT_RE2`, searched only when the column holds a byte past printable
    ASCII); then the other rules' text `proofs`, each an Arrow kernel.

    The kernels that read every byte run only where they can find something: a string is blank only if its
    first byte is whitespace or starts a non-ASCII character, and a marker is looked for per row only when
    the column's bytes hold it at all.
    """
    _, offsets, data = texts.buffers()
    offsets = np.frombuffer(offsets, dtype=np.int32)[texts.offset: texts.offset + len(texts) + 1]
    blob = data.slice(offsets[0], offsets[-1] - offsets[0]).to_pybytes() if data is not None else b""
    lengths = np.diff(offsets)
    clean = true_mask(pc.is_valid(texts)) & (lengths > 0)
    if blob:
        first = np.frombuffer(blob, dtype=np.uint8)[np.minimum(offsets[:-1] - offsets[0], len(blob) - 1)]
        maybe_blank = np.flatnonzero(clean & ((first <= 0x20) | (first >= 0x80)))
        if len(maybe_blank):
            clean[maybe_blank] &= ~true_mask(pc.utf8_is_space(texts.take(indices(maybe_blank))))
    for marker in ("<", "[", "&", "_token", "_TOKEN") + (("Human:",) if human else ()):
        if marker.encode() in blob:
            clean &= ~true_mask(pc.match_substring(texts, marker))
    if b":" in blob:  # an assistant's name before a colon at a line start: a conversation typed as text
        clean &= ~true_mask(pc.match_substring_regex(texts, ASSISTANT_LINE.pattern))
    if blob.translate(None, _PLAIN_BYTES):  # a byte past printable ASCII: what the hygiene rules look for may be
        clean &= ~true_mask(pc.match_substring_regex(texts, SUSPECT_RE2))
    for proof in proofs:
        clean &= proof.arrow(texts)
    return clean


def _clean_conversations(column: pa.Array, fields: tuple[str, str], roles: tuple[str, str, str],
                         proofs: tuple[Proof, ...] = ()) -> tuple[np.ndarray, pa.Array]:
    """`fast.clean_turns` over a column of message lists, and a key per row."""
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
    clean = np.bincount(parents[bad], minlength=rows) == 0
    last_code = np.full(rows, -1)
    last = np.ones(len(codes), dtype=bool)
    last[:-1] = ~later[1:]
    last_code[parents[last]] = codes[last]
    clean &= last_code == 2  # ends with an answer (an empty or missing list has no last message)
    clean &= np.bincount(parents, minlength=rows) > 1  # and a prompt before it (TC102)
    turns = pc.binary_join_element_wise(role, content, _SEPARATORS[2])
    offsets = np.zeros(rows + 1, dtype=np.int32)
    np.cumsum(np.bincount(parents, minlength=rows), out=offsets[1:])
    offsets = pa.Array.from_buffers(pa.int32(), rows + 1, [None, pa.py_buffer(offsets)])
    key = pc.binary_join(pa.ListArray.from_arrays(offsets, turns), _SEPARATORS[1])
    return clean, key


class CheckedBatch(NamedTuple):
    """What the column tests found of one batch, in file order (the arguments of `RowScan.take`)."""

    accepted: list[int]  # the clean rows' numbers
    hashes: tuple[int, ...]  # their content hashes
    flagged: Iterator[tuple[int, int, dict]]  # each other row: (clean rows before it, its number, the row)


def scan_batches(batches: Iterable[pa.RecordBatch],
                 plan_for: Callable[[pa.Schema], ColumnPlan | None]) -> Iterator[CheckedBatch]:
    """Every batch through the column tests when `plan_for(schema)` has a plan for its plain form (large,
    view and dictionary types read as plain ones: `plain_batches`): its clean rows, taken whole, and the others,
    which take the full checks as the batch holds them; every row of a batch without a plan is flagged. Rows
    are numbered on across batches from 1."""
    number = 0
    for batch, plain in plain_batches(batches):
        plan = plan_for(plain.schema) if plain is not None else None
        if plan is None:
            yield CheckedBatch([], (), ((0, offset, row)
                                        for offset, row in enumerate(batch_rows(batch), start=number + 1)))
        else:
            clean, keys = plan.clean_rows(plain)
            accepted, flagged = np.flatnonzero(clean), np.flatnonzero(~clean)
            hashes = tuple(map(hash, keys.take(indices(accepted)).cast(pa.binary()).to_pylist()))
            yield CheckedBatch((accepted + number + 1).tolist(), hashes,
                               zip(np.searchsorted(accepted, flagged).tolist(), (flagged + number + 1).tolist(),
                                   batch_rows(rows_at(batch, flagged))))
        number += batch.num_rows
