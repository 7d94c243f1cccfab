"""Arrow arrays to and from numpy, read from and built on their buffers: what `pa.array` and `to_numpy` would do,
without importing pandas (a second) on the way. The column kernels (`inspector.columnar`) and the rules' Arrow
proofs (`inspector.rules`) build on them.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def indices(positions: np.ndarray) -> pa.Array:
    """numpy positions as an Arrow array, built from buffers like `strings`."""
    positions = np.ascontiguousarray(positions, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(positions), [None, pa.py_buffer(positions)])


def strings(values: tuple[str, ...]) -> pa.Array:
    """A small Arrow string array, built from buffers: `pa.array` would import pandas (a second)."""
    data = [value.encode() for value in values]
    offsets = np.cumsum([0] + [len(item) for item in data], dtype=np.int32)
    return pa.StringArray.from_buffers(len(values), pa.py_buffer(offsets), pa.py_buffer(b"".join(data)))


def integers(values: pa.Array, fill: int = -1) -> np.ndarray:
    """An integer Arrow array as numpy, nulls as `fill`. Read from its buffer: `to_numpy` can import pandas."""
    if values.null_count:
        values = pc.fill_null(values, fill)
    width = np.dtype(f"int{values.type.bit_width}")
    return np.frombuffer(values.buffers()[1], dtype=width)[values.offset: values.offset + len(values)]


def true_mask(mask: pa.Array) -> np.ndarray:
    """A boolean Arrow array as numpy, null as False (rules' Arrow proofs build their masks with it)."""
    if mask.null_count:
        mask = pc.fill_null(mask, False)
    bits = np.unpackbits(np.frombuffer(mask.buffers()[1], dtype=np.uint8), bitorder="little")
    return bits[mask.offset: mask.offset + len(mask)].astype(bool)


# How far a 32-bit offset reaches: the text of a `string` column, the items of a `list` column.
_OFFSET_LIMIT = (1 << 31) - 1


def rows_at(batch: pa.RecordBatch, positions: np.ndarray) -> pa.RecordBatch | pa.Table:
    """The batch's rows at `positions`, in the types the batch holds: taken, or one slice a row where Arrow has no
    `take` for a column's type (string views, in pyarrow 26).

    >>> views = pa.RecordBatch.from_arrays([pa.array(["a", "b", "c"], pa.string_view())], ["text"])
    >>> rows_at(views, np.array([0, 2])).to_pylist()
    [{'text': 'a'}, {'text': 'c'}]
    """
    try:
        return batch.take(indices(positions))
    except pa.ArrowNotImplementedError:
        return pa.Table.from_batches([batch.slice(position, 1) for position in positions.tolist()], batch.schema)


def plain_batches(batches: Iterable[pa.RecordBatch]) -> Iterator[tuple[pa.RecordBatch, pa.RecordBatch | None]]:
    """Each batch with its plain form (`plain_batch`), in slices: one whose text does not fit is halved until
    it does, so that the rows of one batch are all checked the same way (a clean row's twin is found by its
    key, and a key is only made of plain columns). Only a row past 2 GiB of text alone goes without (None).

    >>> texts = pa.RecordBatch.from_arrays([pa.array(["a", "b"], pa.large_string())], ["text"])
    >>> [(len(batch), plain.schema.field("text").type) for batch, plain in plain_batches([texts])]
    [(2, DataType(string))]
    """
    for batch in batches:
        plain = plain_batch(batch)
        if plain is not None or batch.num_rows < 2:
            yield batch, plain
        else:
            half = batch.num_rows // 2
            yield from plain_batches((batch.slice(0, half), batch.slice(half)))


def plain_batch(batch: pa.RecordBatch) -> pa.RecordBatch | None:
    """The batch in the plain types the column kernels read (`string`, `list`, `struct`), or None when a column's
    values do not fit them (over 2 GiB of text in a `large_string` column): its values, and its nulls, unchanged.

    Dictionary-encoded columns are decoded; `large_string` and `string_view` become `string` (the text itself
    not copied where Arrow can keep it); `large_list` and list views become `list`; through lists and structs
    alike. A null struct's fields read as null (Arrow keeps whatever values lie under it), and a null list holds
    no items: what a kernel reads of a null is then a null, which it flags.

    >>> texts = pa.array(["hi", None, "hi"]).dictionary_encode()
    >>> plain = plain_batch(pa.RecordBatch.from_arrays([texts], ["text"]))
    >>> plain.schema.field("text").type, plain.column("text").to_pylist()
    (DataType(string), ['hi', None, 'hi'])
    """
    columns = []
    for column in batch.columns:
        try:
            columns.append(plain_array(column))
        except (pa.ArrowInvalid, pa.ArrowCapacityError):  # more text than 32-bit offsets reach
            return None
    if all(new is old for new, old in zip(columns, batch.columns)):
        return batch
    return pa.RecordBatch.from_arrays(columns, [field.name for field in batch.schema])


def plain_array(array: pa.Array) -> pa.Array:
    """One column as `plain_batch` gives it: the same array when it is plain already, without a null struct or
    list (the case of nearly every batch, which then costs nothing).

    >>> plain_array(pa.array([["a"], None], pa.large_list(pa.large_string()))).type
    ListType(list<item: string>)
    >>> chats = pa.StructArray.from_arrays([pa.array(["user"])], ["role"], mask=pa.array([True]))
    >>> chats.field("role").to_pylist(), plain_array(chats).field("role").to_pylist()
    (['user'], [None])
    """
    kind = array.type
    if pa.types.is_dictionary(kind):
        return plain_array(array.dictionary_decode())
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return array.cast(pa.string())
    if pa.types.is_struct(kind):
        fields = array.flatten()  # each field null where its struct is
        plain = [plain_array(field) for field in fields]
        if not array.null_count and all(new is old for new, old in zip(plain, fields)):
            return array
        return pa.StructArray.from_arrays(plain, fields=[field.with_type(item.type) for field, item in
                                                        zip(kind, plain)], mask=_null_mask(array))
    if _is_list(kind):
        items = pc.list_flatten(array)  # a null list's items left out
        plain = plain_array(items)
        if pa.types.is_list(kind) and not array.null_count and plain is items:
            return array
        lengths = pc.fill_null(pc.list_value_length(array), 0)
        offsets = np.zeros(len(array) + 1, dtype=np.int64)
        np.cumsum(integers(lengths), out=offsets[1:])
        if offsets[-1] > _OFFSET_LIMIT:
            raise pa.ArrowCapacityError(f"{offsets[-1]:,} list items, past what 32-bit offsets reach")
        offsets = np.ascontiguousarray(offsets, dtype=np.int32)
        offsets = pa.Array.from_buffers(pa.int32(), len(offsets), [None, pa.py_buffer(offsets)])
        return pa.ListArray.from_arrays(offsets, plain, mask=_null_mask(array))
    return array


def _is_list(kind: pa.DataType) -> bool:
    return (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_list_view(kind)
            or pa.types.is_large_list_view(kind))


def _null_mask(array: pa.Array) -> pa.Array | None:
    return array.is_null() if array.null_count else None
