"""Arrow arrays to and from numpy, read from and built on their buffers: what `pa.array` and `to_numpy` would do,
without importing pandas (a second) on the way. The column kernels (`inspector.columnar`) and the rules' Arrow
proofs (`inspector.rules`) build on them.
"""

from __future__ import annotations

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
