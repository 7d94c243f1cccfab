"""A row's text as normalised words, and hashes of their n-grams: what the leakage and near-duplicate checks compare.

Words are lower-cased, with ASCII punctuation taken for a space (the normalisation of lm-evaluation-harness's
decontamination), so `"Hello, World!"` and `"hello world"` are the same two words. Rows are read as they are
written, every string in them (id-like columns aside), so a question is found whether it sits in `question`,
`prompt` or a user message. The work is done a batch of rows at a time, in C (`bytes.translate`, `zlib.crc32`) and
numpy, and is deterministic: the same words give the same hashes in every process and on every run.

>>> words("Hello, World! It's 4.")
[b'hello', b'world', b'it', b's', b'4']
>>> hashes, offsets = ngram_hashes([words("a b c d"), words("a b c e"), words("")], 3)
>>> offsets.tolist(), bool(hashes[0] == hashes[2]), bool(hashes[1] == hashes[3])
([0, 2, 4, 4], True, False)
"""

from __future__ import annotations

import itertools
import re
import string
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from trlprep.inspector.dialects import Shape, classify_row, content_text, to_trl, without_ids
from trlprep.inspector.sources import row_value

PUNCTUATION = bytes.maketrans(string.punctuation.encode(), b" " * len(string.punctuation))
MAX_N = 16
# Odd 64-bit multipliers, one for each place in an n-gram (wrapping arithmetic): a word's place changes the hash.
_WEIGHTS = np.random.default_rng(20261127).integers(1, 2**63, size=MAX_N, dtype=np.uint64) * 2 + 1


def strings(value: Any, skip: frozenset[str] = frozenset(), keys: bool = False) -> list[str]:
    """Every string inside a value, in order: not object keys (unless `keys`), nor the values of keys in `skip`.

    >>> strings({"a": ["x", {"b": "y", "role": "user"}], "n": 1}, skip=frozenset({"role"}))
    ['x', 'y']
    >>> strings({"calculate_bmi": {"unit": "metric"}}, keys=True)
    ['calculate_bmi', 'unit', 'metric']
    """
    found: list[str] = []
    _collect(value, skip, keys, found)
    return found


def _collect(value: Any, skip: frozenset[str], keys: bool, found: list[str]) -> None:
    if isinstance(value, str):
        found.append(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in skip:
                if keys:
                    found.append(str(key))
                _collect(item, skip, keys, found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect(item, skip, keys, found)


def row_text(value: Any) -> str:
    """A row's strings, id-like columns aside, joined by spaces (a `DuplicateKeys` row's object's).

    >>> row_text({"id": "x1", "messages": [{"role": "user", "content": "Hi"}], "label": True})
    'user Hi'
    """
    value = row_value(value)
    return " ".join(strings(without_ids(value) if isinstance(value, dict) else value))


ANSWER_COLUMNS = ("completion", "chosen", "rejected", "completions", "text")
ROLE_KEYS = frozenset({"role"})


def as_trl(value: Any, shape: Shape | None = None) -> dict | None:
    """The row read as its TRL type: as `shape` (the dataset's) when it has that shape's columns, else as its own
    shape; None for a row of no known shape, or one its shape cannot read (other rules say why)."""
    if not isinstance(value, dict):
        return None
    if shape is None or not all(column in value for column in shape.columns):
        shape = classify_row(value)
    try:
        return to_trl(value, shape) if shape is not None else None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None


def final_answers(value: Any, shape: Shape | None = None) -> list[str]:
    """The texts a row ends on: its completion, chosen and rejected answers' last turns, or a conversation's last
    assistant turn.

    >>> final_answers({"prompt": "2+2?", "chosen": "4.", "rejected": "5."})
    ['4.', '5.']
    >>> final_answers({"messages": [{"role": "user", "content": "Hi"},
    ...                             {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]}]})
    ['Hello']
    """
    trl = as_trl(row_value(value), shape) or {}
    ends = [trl.get(column) for column in ("completion", "chosen", "rejected")] + [trl.get("messages")]
    texts = []
    for end in ends:
        if isinstance(end, list) and end and isinstance(end[-1], dict) and end[-1].get("role") == "assistant":
            end = content_text(end[-1].get("content"))
        if isinstance(end, str):
            texts.append(end)
    return texts


def row_parts(value: Any, shape: Shape | None = None) -> tuple[str, str]:
    """A row's prompt and its answers (what is trained, or ranked) as two texts, read as TRL reads the row: the
    assistant turns of a conversation are its answers, the other turns its prompt. The row is read as `shape` (the
    dataset's) when it has that shape's columns, else as its own. A row of no known shape, or one its shape cannot
    read, is all answer, its keys included (they may be all that tells two rows apart).

    >>> row_parts({"instruction": "Add", "input": "2 and 2", "output": "4"})
    ('Add\\n2 and 2', '4')
    >>> row_parts({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
    ...                         {"role": "assistant", "content": "Hello"}]})
    ('Be brief. Hi', 'Hello')
    """
    value = row_value(value)
    trl = as_trl(value, shape)
    if trl is None:
        return "", " ".join(strings(value, keys=True))
    return trl_parts(trl)


def images_key(value: Any, shape: Shape | None = None) -> int:
    """A number that tells a row's images apart, 0 for a row without: two rows can only repeat each other with
    the same pictures (the same paths or data, as written).

    >>> images_key({"messages": [{"role": "user", "content": "Hi"}]}), images_key({"prompt": "<image>Hi",
    ...     "completion": "Yo", "images": ["a.png"]}) == images_key({"prompt": "Hi<image>", "completion": "Yo",
    ...     "images": ["a.png"]}) != images_key({"prompt": "<image>Hi", "completion": "Yo", "images": ["b.png"]})
    (0, True)
    """
    images = (as_trl(row_value(value), shape) or {}).get("images") or ()
    return zlib.crc32("\x1f".join(map(str, images)).encode()) if images else 0


def trl_parts(trl: dict) -> tuple[str, str]:
    """`row_parts` of a row already read as its TRL type (`as_trl`).

    >>> trl_parts({"prompt": [{"role": "user", "content": "2+2?"}], "completion": "4"})
    ('2+2?', '4')
    """
    prompt, answers = [trl.get("prompt")], [trl.get(column) for column in ANSWER_COLUMNS]
    for message in trl.get("messages") or ():
        (answers if isinstance(message, dict) and message.get("role") == "assistant" else prompt).append(message)
    return " ".join(strings(prompt, ROLE_KEYS)), " ".join(strings(answers, ROLE_KEYS))


# Chinese and Japanese write no spaces between words: each of their characters counts as a word, and their
# punctuation (CJK symbols, full-width forms) as a space.
_IDEOGRAPH = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WIDE_PUNCTUATION = re.compile("[\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]")


def words(text: str) -> list[bytes]:
    """The normalised words of a text.

    >>> [w.decode() for w in words("糖尿病患者，应该怎么吃？ OK")]
    ['糖', '尿', '病', '患', '者', '应', '该', '怎', '么', '吃', 'ok']
    """
    if not text.isascii():
        text = _IDEOGRAPH.sub(" \\g<0> ", _WIDE_PUNCTUATION.sub(" ", text))
    return text.lower().encode("utf-8", "surrogatepass").translate(PUNCTUATION).split()


def ngram_hashes(rows: list[list[bytes]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """The 64-bit hashes of every row's n-word windows, in one flat array, and where each row's start (`offsets`,
    one more than rows). A row of fewer than n words has one hash, of all its words; a row of none has none."""
    assert n <= MAX_N
    lengths = np.fromiter(map(len, rows), np.int64, len(rows))
    flat = np.fromiter(map(zlib.crc32, itertools.chain.from_iterable(rows)), np.uint64, int(lengths.sum()))
    windows = np.where(lengths >= n, lengths - n + 1, np.minimum(lengths, 1))
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(windows, out=offsets[1:])
    row_of_window = np.repeat(np.arange(len(rows)), windows)
    first = (np.cumsum(lengths) - lengths)[row_of_window] + np.arange(offsets[-1]) - offsets[:-1][row_of_window]
    # Every n-word window of the flat words at once (those across rows are never taken), then the rows' own.
    every = np.zeros(max(len(flat) - n + 1, 0), np.uint64)
    for place in range(n):
        every += flat[place:place + len(every)] * _WEIGHTS[place]
    whole = lengths[row_of_window] >= n
    hashes = np.zeros(len(first), np.uint64)
    hashes[whole] = every[first[whole]]
    short = np.flatnonzero(~whole)
    for place in range(n - 1):
        inside = short[lengths[row_of_window[short]] > place]
        hashes[inside] += flat[first[inside] + place] * _WEIGHTS[place]
    return hashes, offsets


def batches(rows: Iterable[tuple[int, Any]], size: int = 4096) -> Iterator[tuple[list[int], list[Any]]]:
    """(row numbers, their values) a batch of rows at a time."""
    rows = iter(rows)
    while batch := list(itertools.islice(rows, size)):
        yield [number for number, _ in batch], [value for _, value in batch]
