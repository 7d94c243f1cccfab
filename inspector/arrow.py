"""Arrow arrays to and from numpy, read from and built on their buffers: what `pa.array` and `to_numpy` would do,
without importing pandas (a second) on the way. The column kernels (`inspector.columnar`) and the rules' Arrow
proofs (`inspector.rules`) build on them.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Callable, Iterable, Iterator

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
    """An integer Arrow array as numpy, nulls as `fill`. Read from its buffers: `to_numpy` can import pandas, and
    so does `pc.fill_null` with a Python scalar (a second).

    >>> integers(pc.index_in(strings(("b", "x")), value_set=strings(("a", "b")))).tolist()
    [1, -1]
    """
    width = np.dtype(f"int{values.type.bit_width}")
    numbers = np.frombuffer(values.buffers()[1], dtype=width)[values.offset: values.offset + len(values)]
    return np.where(_validity(values), numbers, fill) if values.null_count else numbers


def true_mask(mask: pa.Array) -> np.ndarray:
    """A boolean Arrow array as numpy, null as False (rules' Arrow proofs build their masks with it)."""
    bits = _bits(mask.buffers()[1], mask.offset, len(mask))
    return bits & _validity(mask) if mask.null_count else bits


def _validity(values: pa.Array) -> np.ndarray:
    return _bits(values.buffers()[0], values.offset, len(values))


def _bits(buffer: pa.Buffer, offset: int, length: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(buffer, dtype=np.uint8), bitorder="little")
    return bits[offset: offset + length].astype(bool)


class TextBytes:
    """A string column's text bytes, read where Arrow holds them, and what was found in them. The rules' Arrow
    proofs run one after another on a column (`text_bytes`), and a search of the whole column's bytes (`memmem`, at
    memory speed) tells each proof whether a kernel over every text has anything to find: a clean
    column runs none."""

    def __init__(self, texts: pa.Array):
        self.texts = texts
        self.offsets = text_offsets(texts)
        data = texts.buffers()[2]
        start, end = (int(self.offsets[0]), int(self.offsets[-1])) if len(texts) else (0, 0)
        self._buffer = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
        # Only this column's own bytes: a batch sliced from a row group shares the group's whole buffer.
        self.bytes = self._buffer[start:end]
        self._masks: dict[tuple[str, str], np.ndarray] = {}
        self._held: dict[int, bool] = {}

    def holds(self, literal: bytes) -> bool:
        """Whether any text of the column holds `literal` (or the bytes of two texts end to end do: a search then
        runs for nothing): its first byte looked for first, once (most columns lack it), the whole literal only
        when the byte is there."""
        held = self._held.get(literal[0])
        if held is None:
            held = self._held[literal[0]] = self._finds(literal[:1])
        return held and (len(literal) == 1 or self._finds(literal))

    def _finds(self, needle: bytes) -> bool:
        """Whether the column's bytes hold `needle`, searched where they lie by the C library's `memmem` (at memory
        speed); where the platform has none (Windows), a byte by a numpy compare (a byte of mask written per byte
        read), a longer needle by Python's search in one copy of the bytes, made once for the column."""
        memmem = _memmem()
        if memmem is not None:
            data = self.bytes
            return len(data) > 0 and memmem(data.ctypes.data, len(data), needle, len(needle)) is not None
        return bool((self.bytes == needle[0]).any()) if len(needle) == 1 else needle in self._copy

    @functools.cached_property
    def _copy(self) -> bytes:
        return self.bytes.tobytes()

    @functools.cached_property
    def printable_ascii(self) -> bool:
        """Every byte printable ASCII, tab or line break.

        >>> TextBytes(strings(("a\\tb\\n", "c"))).printable_ascii, TextBytes(strings(("a\\x07",))).printable_ascii
        (True, False)
        """
        data = self.bytes
        if not len(data) or data.max() >= 0x7F:
            return not len(data)
        if data.min() >= 0x20:  # no byte below a space: known without a mask of the bytes
            return True
        low = data[data < 0x20]
        return bool(((low == 0x09) | (low == 0x0A) | (low == 0x0D)).all())

    def without(self, literal: str) -> np.ndarray:
        """The texts that do not hold `literal`, as a numpy mask (shared: never change it in place)."""
        return self._lacking(("literal", literal), lambda: self.holds(literal.encode()),
                             lambda: pc.match_substring(self.texts, literal))

    def not_matching(self, pattern: str, can_match: bool) -> np.ndarray:
        """The texts RE2's `pattern` finds nothing in, searched only when the column `can_match` it."""
        return self._lacking(("pattern", pattern), lambda: can_match,
                             lambda: pc.match_substring_regex(self.texts, pattern))

    def _lacking(self, key: tuple[str, str], can_find: Callable[[], bool],
                 found: Callable[[], pa.Array]) -> np.ndarray:
        """The texts in which `found()` (a kernel over every text, run only when the column `can_find()` it)
        finds nothing, worked out once for the column."""
        mask = self._masks.get(key)
        if mask is None:
            mask = self._masks[key] = ~true_mask(found()) if can_find() else np.ones(len(self.texts), bool)
        return mask

    def not_blank(self) -> np.ndarray:
        """The texts that are not empty and hold a character that is not white space. A text is blank only if its
        first byte is white space or starts a non-ASCII character: the kernel runs on those texts alone."""
        starts = self.offsets[:-1]
        mask = self.offsets[1:] > starts
        if len(self.bytes):  # each text's first byte, read where the buffer holds it (an empty last text's: clipped)
            first = np.take(self._buffer, starts, mode="clip")
            maybe_blank = np.flatnonzero(mask & ((first <= 0x20) | (first >= 0x80)))
            if len(maybe_blank):
                mask[maybe_blank] &= ~true_mask(pc.utf8_is_space(self.texts.take(indices(maybe_blank))))
        return mask


@functools.cache
def _memmem() -> Callable[[int, int, bytes, int], int | None] | None:
    """The C library's `memmem`: a search of a buffer in place, with no copy and at memory speed (glibc's looks
    for a single byte with `memchr`). None where the platform has none (Windows)."""
    import ctypes

    try:
        memmem = ctypes.CDLL(None).memmem
    except (OSError, AttributeError, TypeError):
        return None
    memmem.restype = ctypes.c_void_p
    memmem.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t)
    return memmem


_shared: TextBytes | None = None


@contextlib.contextmanager
def sharing_text_bytes(texts: pa.Array) -> Iterator[None]:
    """Within it, every `text_bytes(texts)` is one `TextBytes`: the kernels run each rule's proof on a column in
    turn, and the column's bytes are searched once for all of them."""
    global _shared
    _shared = TextBytes(texts)
    try:
        yield
    finally:
        _shared = None


def text_bytes(texts: pa.Array) -> TextBytes:
    """The column's `TextBytes`: the shared one within `sharing_text_bytes(texts)`, else its own."""
    return _shared if _shared is not None and _shared.texts is texts else TextBytes(texts)


def without(texts: pa.Array, *literals: str) -> np.ndarray:
    """A mask of the texts that hold none of `literals`.

    >>> without(strings(("a<b", "ab", "x_token")), "<", "_token").tolist()
    [False, True, False]
    """
    found = text_bytes(texts)
    mask = np.ones(len(texts), dtype=bool)
    for literal in literals:
        mask &= found.without(literal)
    return mask


# Content hashes of rows, built a column at a time: xxh3 of each row's bytes (one C call a row, on bytes Arrow
# lays out without a copy), numbers folded in with splitmix64's finaliser, all over numpy arrays of uint64.
_MIX = (np.uint64(30), np.uint64(0xBF58476D1CE4E5B9), np.uint64(27), np.uint64(0x94D049BB133111EB), np.uint64(31))


_PLACE = np.uint64(0x9E3779B97F4A7C15)  # 2**64 over the golden ratio, odd: distinct places stay distinct


def mixed(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser over uint64 values: every input bit changes about half the output's bits, so that
    folding hashes with `^` or `+` keeps them apart."""
    first, times, second, again, third = _MIX
    values = values ^ (values >> first)  # a new array: the caller's stays as it was; the rest is done in place
    values *= times
    values ^= values >> second
    values *= again
    values ^= values >> third
    return values


def text_offsets(texts: pa.Array) -> np.ndarray:
    """A string (or binary) column's offsets into its data buffer, one more than it has values (64-bit for the
    large types)."""
    width = np.int64 if pa.types.is_large_string(texts.type) or pa.types.is_large_binary(texts.type) else np.int32
    return np.frombuffer(texts.buffers()[1], dtype=width)[texts.offset: texts.offset + len(texts) + 1]


def span_hashes(texts: pa.Array, starts: np.ndarray) -> np.ndarray:
    """For each span `starts[i]:starts[i + 1]` of a string column, the xxh3 hash of its texts' bytes end to end
    (null texts count as empty), read where Arrow holds them: no text is copied to be hashed."""
    import xxhash

    data = texts.buffers()[2]
    bounds = text_offsets(texts)[starts].tolist()
    view = memoryview(data if data is not None else b"")
    digest = xxhash.xxh3_64_intdigest
    # A comprehension slicing in place: a fifth faster than `map` over slice objects made one by one.
    return np.fromiter([digest(view[start:end]) for start, end in zip(bounds, bounds[1:])], dtype=np.uint64,
                       count=len(starts) - 1)


def value_hashes(values: pa.Array) -> np.ndarray:
    """Each value's hash, values other than strings taken as their text (as `pc.cast` writes it).

    >>> a, b, c = value_hashes(strings(("x", "y", "x"))).tolist()
    >>> a == c, a == b
    (True, False)
    """
    if not pa.types.is_string(values.type):
        values = pc.cast(values, pa.string())
    return span_hashes(values, np.arange(len(values) + 1))


def sequence_hashes(items: np.ndarray, starts: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """For each span `starts[i]:starts[i + 1]` of uint64 `items` (`parents` gives each item's span), a hash of
    the items in their order: each item mixed with its place in the span, the results summed.

    >>> a, b, c = sequence_hashes(np.array([1, 2, 2, 1], dtype=np.uint64), np.array([0, 2, 4, 4]),
    ...                           np.array([0, 0, 1, 1])).tolist()
    >>> a != b, c
    (True, 0)
    """
    places = np.arange(1, len(items) + 1, dtype=np.uint64)  # from 1 in each span
    places -= starts.astype(np.uint64)[parents]
    # Each place times an odd constant: distinct places, distinct words, which `mixed` spreads with the item's.
    spread = mixed(items ^ (places * _PLACE))
    hashes = np.zeros(len(starts) - 1, dtype=np.uint64)
    filled = np.flatnonzero(np.diff(starts) > 0)
    if len(filled):
        hashes[filled] = np.add.reduceat(spread, starts[filled])
    return hashes


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
    hash, and a hash is only made of plain columns). Only a row past 2 GiB of text alone goes without (None).

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
    if _already_plain(array):
        return array
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
        offsets = np.zeros(len(array) + 1, dtype=np.int64)
        np.cumsum(integers(pc.list_value_length(array), fill=0), out=offsets[1:])
        if offsets[-1] > _OFFSET_LIMIT:
            raise pa.ArrowCapacityError(f"{offsets[-1]:,} list items, past what 32-bit offsets reach")
        offsets = np.ascontiguousarray(offsets, dtype=np.int32)
        offsets = pa.Array.from_buffers(pa.int32(), len(offsets), [None, pa.py_buffer(offsets)])
        return pa.ListArray.from_arrays(offsets, plain, mask=_null_mask(array))
    return array


def _already_plain(array: pa.Array) -> bool:
    """Whether `plain_array` would give the array back as it is: plain types and no null list or struct, at any
    depth. Read from types and null counts alone, where taking the items out of every list of a batch costs
    Arrow a call each; a child holds at least the parent's values, so a null it holds elsewhere only sends the
    array the long way."""
    kind = array.type
    if pa.types.is_struct(kind):
        return not array.null_count and all(_already_plain(array.field(index)) for index in range(kind.num_fields))
    if pa.types.is_list(kind):
        return not array.null_count and _already_plain(array.values)
    return not (pa.types.is_dictionary(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
                or _is_list(kind))


def _is_list(kind: pa.DataType) -> bool:
    return (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_list_view(kind)
            or pa.types.is_large_list_view(kind))


def _null_mask(array: pa.Array) -> pa.Array | None:
    return array.is_null() if array.null_count else None
