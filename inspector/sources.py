"""Reading rows from wherever a dataset lives: local files of every usual format, folders, globs,
`save_to_disk` folders, Hub ids, or rows already in memory.

Rows come as `(row_number, value)`, numbered from 1: the line number for a JSON-lines file, the position
otherwise. A row that cannot be decoded comes as an `UnreadableRow` so that the scan can count it.
`datasets` is imported only for Hub ids and in-memory `Dataset` objects: a local file never pays for it.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import difflib
import errno
import fnmatch
import functools
import glob
import gzip
import io
import itertools
import json
import os
import queue
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Generator, Iterable, Iterator

import orjson

from trlprep.errors import SourceError
from trlprep.inspector.encodings import (Utf8Transcoded, marked_encoding, not_utf8, other_encoding, undecodable_line,
                                         unmarked_wide_encoding, unmarked_wide_text, utf8_failure)
from trlprep.inspector.jsonstream import JsonReader, array_items, finish, object_keys, values

DATA_SUFFIXES = (".jsonl", ".ndjson", ".json", ".parquet", ".csv", ".arrow")
BATCH_ROWS = 16384
BATCH_BYTES = 16 << 20  # and about as many bytes at most: rows of long texts come fewer to a batch
PARQUET_READAHEAD = 2  # batches each decoding thread holds ahead of the one being checked
PARQUET_LANES = 2  # threads decoding a Parquet file's row groups
ROWS_AT_A_TIME = 512  # Arrow rows made Python objects together
# The longest line (and JSON value read a value at a time) held in memory: longer lines are skipped as they are
# read, each an unreadable row (TP001) saying its size. Read when used, so that a test can lower it.
MAX_LINE_BYTES = 64 << 20
# The largest CSV cell read, in characters: the bound on one row that a JSON line has. The csv module's own
# default (128 KiB) refuses real data (a long document in one cell); this bound still stops a file with an unclosed
# quote from being taken as one endless cell.
CSV_CELL_CHARS = MAX_LINE_BYTES
csv.field_size_limit(CSV_CELL_CHARS)  # process-wide; nothing else here reads CSV with a smaller bound


@dataclass(frozen=True)
class UnreadableRow:
    error: str
    text: str = ""  # the undecodable line, kept for the rejects file


@dataclass(frozen=True)
class DuplicateKeys:
    """A row whose object repeats a top-level key; like every JSON reader, the last value is kept."""

    row: dict
    keys: tuple[str, ...]


def row_value(value: Any) -> Any:
    """A row as read, with a `DuplicateKeys` row's object unwrapped."""
    return value.row if isinstance(value, DuplicateKeys) else value


@functools.lru_cache(maxsize=4096)
def _quoted(key: str) -> bytes:
    return b'"' + key.encode() + b'"'


def duplicate_keys(line: bytes, keys: Iterable[str]) -> tuple[str, ...]:
    """Which of `keys` (the decoded row's top-level keys) a JSON line repeats. A byte count at C speed finds
    suspects; only they are re-parsed.

    >>> duplicate_keys(b'{"text": "a", "text": "b"}', ["text"])
    ('text',)
    >>> duplicate_keys(b'{"text": "a", "title": "the \\\\"text\\\\" key"}', ["text", "title"])
    ()
    """
    if not any(line.count(_quoted(key)) > 1 for key in keys):
        return ()
    pairs = json.loads(line, object_pairs_hook=list)
    seen: set = set()
    repeated = []
    for key, _ in pairs:
        if key in seen and key not in repeated:
            repeated.append(key)
        seen.add(key)
    return tuple(repeated)


def quoted_key_count(data: bytes, key: str) -> int:
    """How often `"key"` occurs in JSON text: once per line that has the key, more where a line repeats it
    (a string value can hold the name only with its quotes escaped, so values do not count).

    >>> quoted_key_count(b'{"text": "a"}\\n{"text": "the \\\\"text\\\\""}\\n', "text")
    2
    """
    return data.count(_quoted(key))


class JsonLines:
    """Decodes JSON lines one at a time: a value, an `UnreadableRow`, a `DuplicateKeys`, or `BLANK` for a
    blank line (which is no row). In a whole file (not a chunk of one), twenty undecodable lines before any
    good one mean the file is not JSON lines at all: `SourceError`. A line that is not UTF-8 (but for one cut
    inside a character) is an `UndecodableLine`: the file is in another encoding, which `--encoding` reads. A line
    over `MAX_LINE_BYTES` (its `LONG_LINE` marker) is an unreadable row saying its size."""

    BLANK = object()

    def __init__(self, name: str, whole_file: bool = True):
        self.name, self.whole_file = name, whole_file
        self.decoded_any = False
        self.failures: list[tuple[int, str]] = []

    def decode(self, number: int, line: bytes) -> Any:
        if number == 1:
            line = line.removeprefix(b"\xef\xbb\xbf")
        if not line.strip():
            return self.BLANK
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            long = line.startswith(LONG_LINE)
            undecodable = None if long else not_utf8(self.name, number, line)
            if undecodable is not None:
                raise undecodable from None
            message = long_line_error(line) if long else error.msg
            self.failures.append((number, message))
            if self.whole_file and not self.decoded_any and len(self.failures) >= 20:
                raise _not_json_lines(self.name, self.failures) from None
            if long:
                return UnreadableRow(message)
            return UnreadableRow(f"invalid JSON: {error.msg}", line.decode("utf-8", "replace").rstrip("\r\n"))
        self.decoded_any = True
        repeated = duplicate_keys(line, value) if isinstance(value, dict) else ()
        return DuplicateKeys(value, repeated) if repeated else value

    def finish(self) -> None:
        if self.whole_file and self.failures and not self.decoded_any:
            raise _not_json_lines(self.name, self.failures)


BLOCK_BYTES = 1 << 18  # small enough that a block's decoded rows are still in the CPU cache when checked
# Stands for a line over MAX_LINE_BYTES in a block: no JSON starts with a NUL, so the block's fast path and the
# line decode both fail on it, and the decode words it (`long_line_error`).
LONG_LINE = b"\x00long line of "


def long_line_error(marker: bytes) -> str:
    """What is wrong with a line over the limit, from the `LONG_LINE` marker standing for it.

    >>> long_line_error(LONG_LINE + b"3221225472 67108864")
    'the line is 3,221,225,472 bytes, over the 67,108,864-byte limit on a row'
    """
    size, limit = marker.removeprefix(LONG_LINE).split()
    return f"the line is {int(size):,} bytes, over the {int(limit):,}-byte limit on a row"


def line_blocks(handle: io.BufferedIOBase, end: int | None = None, head: bytes = b"") -> Iterator[bytes]:
    """`head`, then the stream, read in blocks of whole lines (each ends with a newline, except perhaps the
    last), up to byte `end` of the stream when given (a line boundary). A block is read, then the line it
    cuts is read to its end: one copy of the data, however long the lines. A line over `MAX_LINE_BYTES` is
    skipped as it is read, a `LONG_LINE` marker in its place."""
    limit = MAX_LINE_BYTES
    left = end - handle.tell() if end is not None else None
    data = head
    while True:
        if not head:
            data = handle.read(BLOCK_BYTES if left is None else min(BLOCK_BYTES, left))
            if not data:
                return
            if left is not None:
                left -= len(data)
        head = b""
        cut = data.rfind(b"\n") + 1
        if cut < len(data) and (left is None or left > 0):
            line, read = _rest_of_line(handle, data[cut:], limit)
            data = data[:cut] + line
            if left is not None:
                left -= read
        yield data if len(data) <= limit else _long_lines_marked(data, limit)


def _rest_of_line(handle: BinaryIO, start: bytes, limit: int) -> tuple[bytes, int]:
    """The line `start` begins, read to its newline (included), or its `LONG_LINE` marker when it is longer than
    `limit` (its bytes read and dropped); and the bytes read.

    >>> _rest_of_line(io.BytesIO(b'2}\\n{"a": 3}\\n'), b'{"a": ', 10)
    (b'{"a": 2}\\n', 3)
    >>> _rest_of_line(io.BytesIO(b'23456789\\n{"a": 3}\\n'), b'{"a": 1', 10)
    (b'\\x00long line of 15 10\\n', 9)
    """
    rest = handle.readline(max(limit + 1 - len(start), 1))
    read, line = len(rest), start + rest
    if len(line) - line.endswith(b"\n") <= limit:
        return line, read
    size = len(line)
    while not line.endswith(b"\n"):
        line = handle.readline(BLOCK_BYTES)
        if not line:
            break
        size += len(line)
        read += len(line)
    newline = line.endswith(b"\n")
    return LONG_LINE + b"%d %d" % (size - newline, limit) + b"\n" * newline, read


def _long_lines_marked(block: bytes, limit: int) -> bytes:
    """A block with each line over `limit` bytes replaced by its `LONG_LINE` marker."""
    return b"\n".join(line if len(line) <= limit else LONG_LINE + b"%d %d" % (len(line), limit)
                      for line in block.split(b"\n"))


def numbered_blocks(handle: io.BufferedIOBase, end: int | None = None,
                    advance: Callable[[int], None] = lambda n: None) -> Iterator[tuple[int, bytes, int]]:
    """`line_blocks` with the number of the line before each block and the count of lines in it.

    >>> list(numbered_blocks(io.BytesIO(b'{"a": 1}\\n\\n{"a": 2}')))
    [(0, b'{"a": 1}\\n\\n{"a": 2}', 3)]
    """
    number = 0
    for block in line_blocks(handle, end):
        advance(len(block))
        count = block.count(b"\n") + (not block.endswith(b"\n"))
        yield number, block, count
        number += count


def block_lines(block: bytes) -> list[bytes]:
    """A block's lines, without their newlines.

    >>> block_lines(b'{"a": 1}\\n\\n{"a": 2}\\n')
    [b'{"a": 1}', b'', b'{"a": 2}']
    """
    lines = block.split(b"\n")
    if block.endswith(b"\n"):
        lines.pop()
    return lines


@dataclass
class Source:
    """An opened dataset: `rows()` yields `(row_number, value)`; progress is counted in `unit`s out of `total`."""

    name: str
    numbering: str  # "line" or "row"
    unit: str  # "bytes" or "rows"
    total: int | None
    _rows: Callable[[Callable[[int], None]], Iterator[tuple[int, Any]]]
    files: list[str] = field(default_factory=list)
    lines_path: Path | None = None  # set for one plain JSON-lines file, which can be split at line boundaries
    # Set for Parquet and Arrow files: their rows as Arrow record batches, for checks over whole columns.
    batches: Callable[[Callable[[int], None]], Iterator[Any]] | None = None
    # The files of a dataset of several, each a source of its own: each is detected and read on its own.
    parts: list[Source] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how its files were read, where not one row per object or line
    # Set for a Parquet file and an Arrow IPC file, which can be read a range of row groups (batches) at a time.
    arrow_file: ArrowFile | None = None

    def rows(self, advance: Callable[[int], None] = lambda n: None) -> Iterator[tuple[int, Any]]:
        return self._rows(advance)


def _sniff(path: Path) -> str:
    """The format of a file from its first bytes: gz, parquet, arrow, arrow_stream, json or csv."""
    with _open_bytes(path) as handle:
        head = handle.read(4096)
    marked = marked_encoding(head)
    if marked is not None:  # text in UTF-16 or UTF-32: its format is told from its characters
        head = head.decode(marked, "ignore").encode()
    if head.startswith(b"\x1f\x8b"):
        return "gz"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1"):
        return "arrow"
    if head.startswith(b"\xff\xff\xff\xff"):
        return "arrow_stream"
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text[:1] in (b"[", b"{"):
        return "json"
    if b"\x00" in head:
        wide = unmarked_wide_encoding(head)
        if wide is not None:
            raise unmarked_wide_text(str(path), wide)
        raise SourceError(f"{path}: cannot tell the format (binary content that is not Parquet, Arrow or gzip)")
    return "csv"


def file_format(path: Path) -> str:
    """The format named by the extension (`.jsonl.gz` is `gz`), else sniffed from the content."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "json"
    if suffix in (".parquet", ".csv", ".gz"):
        return suffix[1:]
    if suffix == ".arrow":
        return "arrow" if _sniff(path) == "arrow" else "arrow_stream"
    return _sniff(path)


BOM = b"\xef\xbb\xbf"
HEAD_BYTES = 1 << 16
# JSON text that is one value (an array, an object) or objects spread over lines is decoded whole, at C speed, when
# it is at most this long (its objects take about four times the text); longer, it is read a value at a time
# (`jsonstream`), so that memory holds one row, not the file. Read when used, so that a test can lower it.
WHOLE_JSON_BYTES = 32 << 20
MESSAGES_LISTS_NOTE = 'each line is a JSON list of messages, read as one row {"messages": [...]}'


@dataclass(frozen=True)
class JsonLayout:
    """How a JSON file holds its rows (`json_layout`): "array" (one JSON array), "lines" (JSON lines),
    "messages_lists" (JSON lines each a list of messages, read as a `messages` row), "records" (one object of
    records keyed by id, each key into the column `key`), "wrapped" (one object whose only key, `key`, holds the
    list of rows) or "objects" (objects spread over lines, one or several); `note`: what the report says of a
    reading that is not one row per object or line."""

    kind: str
    note: str | None = None
    key: str | None = None


def json_layout(name: str, handle: BinaryIO, lines_named: bool) -> JsonLayout:
    """The layout of JSON text from its start (`lines_named`: the file's name says JSON lines): read as far as it
    takes to tell, which is the whole text only when it is one value spread over lines, and then read a value at a
    time past `WHOLE_JSON_BYTES`. A first line over `MAX_LINE_BYTES` is not read: the file is JSON lines, that line
    a bad row. An empty, binary or scalar file is refused here, before any row is read."""
    text = _first_text(name, handle)
    line, after, ended = _first_line(text, handle)
    more = bool(after.strip())
    if text[:1] not in (b"[", b"{"):
        if line is not None and not more:
            _refuse_top_level_scalar(name, line)
        return JsonLayout("lines")
    if text[:1] == b"[":
        # A list of messages on the first line, more lines after it (or a name saying JSON lines): a conversation
        # a line. A list of records (`json.dump(rows)` under a .jsonl name) is a JSON array, one row a record.
        if (more or lines_named) and is_message_list(_decoded_head(line)):
            return JsonLayout("messages_lists", MESSAGES_LISTS_NOTE)
        return JsonLayout("array")
    value = _decoded_head(line)
    if line is None or (more and (value is not None or _lines_follow(after))):
        return JsonLayout("lines")  # a first line that does not decode, then lines that do: a bad first row
    if value is not None:  # one object, alone on its line
        return _object_layout(value) or JsonLayout("lines")
    data = line + after + (b"" if ended else handle.read(max(WHOLE_JSON_BYTES + 1 - len(line) - len(after), 0)))
    if len(data) <= WHOLE_JSON_BYTES:
        whole = _decoded_or_none(data)
        if isinstance(whole, dict):
            return _object_layout(whole) or JsonLayout("objects")
        # Objects one after another; anything else is read as JSON lines, each line that does not decode a bad row.
        return JsonLayout("objects" if concatenated_objects(data) is not None else "lines")
    return _streamed_layout(name, JsonReader(name, handle, MAX_LINE_BYTES, data.lstrip(BOM)))


def _decoded_head(line: bytes | None) -> Any:
    """A first line decoded to tell the layout, None when it does not decode or is too long to decode whole (an
    array on one line is read a value at a time: decoding it here would hold it all)."""
    return _decoded_or_none(line) if line is not None and len(line) <= WHOLE_JSON_BYTES else None


def _first_text(name: str, handle: BinaryIO) -> bytes:
    """The first bytes of a stream from its first that is not blank (blank lines before the rows are no rows)."""
    first = handle.read(HEAD_BYTES)
    text = first.lstrip(BOM).lstrip()
    while True:
        if b"\x00" in first:
            raise SourceError(f"{name}: binary content, not JSON (a NUL byte in the first {len(first)} bytes)")
        if text:
            return text
        first = handle.read(HEAD_BYTES)
        if not first:
            raise SourceError(f"{name}: empty file (no rows)")
        text = first.lstrip()


def _first_line(first: bytes, handle: BinaryIO) -> tuple[bytes | None, bytes, bool]:
    """The first line of a stream whose first bytes are `first` (read on to its end when they end inside it; None,
    and nothing more read, when it is longer than `MAX_LINE_BYTES`), what follows it up to the next line that is
    not blank, and whether the stream ends there.

    >>> _first_line(b'[1]\\n\\n[2', io.BytesIO(b']\\n'))
    (b'[1]', b'\\n[2', False)
    >>> _first_line(b'[1, ', io.BytesIO(b'2]\\n\\n'))
    (b'[1, 2]\\n', b'\\n', True)
    """
    line, newline, after = first.partition(b"\n")
    if not newline:
        line += handle.readline(max(MAX_LINE_BYTES + 1 - len(line), 1))
    if len(line) - line.endswith(b"\n") > MAX_LINE_BYTES:
        return None, b"", False  # the rest of it is not read here: it may be gigabytes
    while not after.strip():
        more = handle.read(HEAD_BYTES)
        if not more:
            return line, after, True
        after = after + more if len(after) < WHOLE_JSON_BYTES else more  # blank lines past that are not kept
    return line, after, False


def _lines_follow(after: bytes) -> bool:
    """Whether one of the next few lines after a first line that does not decode is an object or a list starting at
    its first column: then the file is JSON lines whose first line is broken, not a value spread over lines (whose
    inner lines are indented, and whose top-level lines, `{` and `}`, do not decode).

    >>> _lines_follow(b'{"text": "b"}\\n'), _lines_follow(b'  "text": "a"\\n}\\n'), _lines_follow(b'  {"a": 1}\\n')
    (True, False, False)
    """
    lines = [line for line in after.split(b"\n")[:-1] if line.strip()][:8]
    return any(line[:1] in (b"{", b"[") and isinstance(_decoded_or_none(line), (dict, list)) for line in lines)


def _object_layout(value: dict) -> JsonLayout | None:
    """The layout of a file that is one JSON object: records keyed by id, a list of rows under one key, or None
    (the object is one row)."""
    keyed = _records_column(value.items())
    if keyed is not None:
        return _records_layout(*keyed)
    if len(value) == 1 and _wrapped_rows(rows := next(iter(value.values()))):
        return _wrapped_layout(next(iter(value)), len(rows))
    return None


def _wrapped_rows(value: Any) -> bool:
    """Whether the value of an object's only key is the list of rows (`{"data": [{...}, ...]}`): a non-empty list
    of objects that is not a conversation (a row `{"messages": [...]}` alone in its file stays one row).

    >>> _wrapped_rows([{"text": "a"}]), _wrapped_rows([{"role": "user", "content": "Hi"}]), _wrapped_rows(["a"])
    (True, False, False)
    """
    return (isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)
            and not is_message_list(value))


def _records_layout(column: str, count: int) -> JsonLayout:
    taken = f" (the records have a column `{column[1:]}` of their own)" if column != "id" else ""
    return JsonLayout("records", f"one JSON object of {count} records keyed by id or path, read as {count} rows, "
                                 f"each key in a column `{column}`{taken}", column)


def _wrapped_layout(key: str, count: int) -> JsonLayout:
    return JsonLayout("wrapped", f"one JSON object whose only key `{key}` holds a list of {count} rows, read as "
                                 f"{count} rows", key)


def _streamed_layout(name: str, reader: JsonReader) -> JsonLayout:
    """The layout of an object, or objects one after another, too long to decode whole: read through once, a value
    at a time (a list under the first key counted, an element at a time)."""
    keys = object_keys(reader)
    first = next(keys, None)
    if first is not None and reader.peek() == b"[":
        count = objects = messages = 0
        for item in array_items(reader):
            count += 1
            objects += isinstance(item, dict)
            messages += is_message_list([item])
        if next(keys, None) is not None or reader.peek() or not count or objects < count or messages == count:
            raise SourceError(f"{name}: one JSON object over {WHOLE_JSON_BYTES:,} bytes is read as rows when it is "
                              f"records keyed by id, or a list of them under its only key; write its rows as JSON "
                              f"lines")
        return _wrapped_layout(first, count)
    members = itertools.chain([(first, reader.value())] if first is not None else [],
                              ((key, reader.value()) for key in keys))
    keyed = _records_column(members)
    return _records_layout(*keyed) if keyed is not None and not reader.peek() else JsonLayout("objects")


def _is_record(value: Any) -> bool:
    """A record of a keyed object: a non-empty object, not a message (no `role`)."""
    return isinstance(value, dict) and bool(value) and "role" not in value


def _records_column(members: Iterable[tuple[str, Any]]) -> tuple[str, int] | None:
    """Whether an object's `members` are records keyed by id or path (MATH-500's `{"test/algebra/1.json": {...},
    ...}`): the column their keys go into (`id`, or `_id`, ... when the records have one) and how many there are;
    None for any other object. Records: more than one member, each a record (`_is_record`) but for a stray value
    among at least three records, all the records sharing a column; so a single row whose values are objects
    stays one row.

    >>> _records_column({"a/1.json": {"problem": "1+1?"}, "a/2.json": {"problem": "2+2?", "id": 7}}.items())
    ('_id', 2)
    >>> _records_column({"chosen": {"role": "assistant", "content": "a"}, "rejected": {"role": "user"}}.items())
    >>> _records_column({"question": {"problem": "1+1?"}, "label": {"steps": []}}.items())
    >>> _records_column({"q": "2+2?", "chosen": {"text": "4"}, "rejected": {"text": "5"}}.items())
    """
    count = records = 0
    shared: set | None = None
    columns: set = set()
    for _, value in members:
        count += 1
        if _is_record(value):
            records += 1
            shared = set(value) if shared is None else shared & value.keys()
            columns |= value.keys()
    strays = count - records
    if records < 2 or not shared or (strays and records < 3 * strays):
        return None
    column = "id"
    while column in columns:
        column = "_" + column
    return column, count


_JSON_TYPES = {str: "string", int: "number", float: "number", bool: "boolean", list: "list", type(None): "null"}


def keyed_rows(members: Iterable[tuple[str, Any]], column: str) -> Iterator[Any]:
    """The rows of an object of records keyed by id: each record with its key in `column`; a stray value that is
    no record is an unreadable row naming its key.

    >>> list(keyed_rows({"a": {"x": 1}, "b": 2}.items(), "id"))
    [{'id': 'a', 'x': 1}, UnreadableRow(error="the value of key 'b' is number, not a record (an object of fields)", text='2')]
    """
    for key, value in members:
        if _is_record(value):
            yield {column: key, **value}
        else:
            kind = _JSON_TYPES.get(type(value), "object")
            yield UnreadableRow(f"the value of key {key!r} is {kind}, not a record (an object of fields)",
                                orjson.dumps(value).decode())


def is_message_list(value: Any) -> bool:
    """Whether a JSON value is a conversation: a non-empty list of message objects (`role`, or ShareGPT's `from`).

    >>> is_message_list([{"role": "user", "content": "Hi"}]), is_message_list([{"question": "1+1?"}])
    (True, False)
    """
    return (isinstance(value, list) and bool(value)
            and all(isinstance(item, dict) and ("role" in item or "from" in item) for item in value))


def _json_rows(name: str, handle: BinaryIO, advance: Callable[[int], None],
               layout: JsonLayout) -> Iterator[tuple[int, Any]]:
    """Rows of JSON text (UTF-8 bytes) in its `layout`: JSON lines a block at a time; one value (or objects over
    lines) decoded whole up to `WHOLE_JSON_BYTES`, else a value at a time."""
    if layout.kind in ("lines", "messages_lists"):
        yield from _line_rows(name, handle, advance, messages_lists=layout.kind == "messages_lists")
        return
    data = handle.read(WHOLE_JSON_BYTES + 1)
    if len(data) <= WHOLE_JSON_BYTES:
        advance(len(data))
        yield from enumerate(_decoded_rows(name, data, layout), start=1)
        return
    reader = JsonReader(name, handle, MAX_LINE_BYTES, data.lstrip(BOM))
    for number, row in enumerate(_streamed_rows(reader, layout), start=1):
        if number % 1024 == 0:
            advance(0)  # the progress is where the file is read to (`_open_text_file`)
        yield number, row
    advance(0)


def _decoded_rows(name: str, data: bytes, layout: JsonLayout) -> list:
    """The rows of JSON text decoded whole, in its `layout` (not JSON lines)."""
    if layout.kind == "objects":
        return concatenated_objects(data) or []
    try:
        value = orjson.loads(data.lstrip(BOM))
    except orjson.JSONDecodeError as error:
        raise _invalid_json(name, data, error) from None
    if layout.kind == "records":
        return list(keyed_rows(value.items(), layout.key))
    return value[layout.key] if layout.kind == "wrapped" else value


def _streamed_rows(reader: JsonReader, layout: JsonLayout) -> Iterator[Any]:
    """The rows of JSON text read a value at a time, in its `layout` (not JSON lines)."""
    if layout.kind == "objects":
        yield from (value for _, value in values(reader))
        return
    if layout.kind == "array":
        yield from array_items(reader)
    elif layout.kind == "records":
        yield from keyed_rows(((key, reader.value()) for key in object_keys(reader)), layout.key)
    else:  # "wrapped": the list under the object's one key (`_streamed_layout` saw it is the only one)
        keys = object_keys(reader)
        next(keys)
        yield from array_items(reader)
        next(keys, None)
    finish(reader)


def _refuse_top_level_scalar(name: str, data: bytes) -> None:
    """A whole file holding one number, string or null is no dataset (a JSONL line of them is a bad row)."""
    try:
        value = orjson.loads(data.lstrip(BOM))
    except orjson.JSONDecodeError:
        return
    raise SourceError(f"{name}: the top-level JSON value is {type(value).__name__}, expected rows")


def _invalid_json(name: str, data: bytes, error: orjson.JSONDecodeError) -> SourceError:
    """JSON read whole that does not decode: at the line of its first byte that is not UTF-8, or where orjson
    stopped."""
    if utf8_failure(data) is not None:
        return undecodable_line(name, io.BytesIO(data))
    line = data.count(b"\n", 0, error.pos) + 1
    return SourceError(f"{name}: invalid JSON at line {line}: {error.msg}")


def _line_rows(name: str, handle: BinaryIO, advance, messages_lists: bool) -> Iterator[tuple[int, Any]]:
    """Rows of JSON lines (each list of them a `messages` row, with `messages_lists`)."""
    decoder = JsonLines(name)
    number = 0
    for block in line_blocks(handle):
        advance(len(block))
        for line in block_lines(block):
            number += 1
            value = decoder.decode(number, line)
            if value is not decoder.BLANK:
                yield number, {"messages": value} if messages_lists and isinstance(value, list) else value
    decoder.finish()


def json_lines_path(source: Source) -> Path | None:
    """The file of a source that is one plain JSON-lines file, which can be read in blocks of lines; None for any
    other source."""
    return source.lines_path


def _not_json_lines(name: str, failures: list[tuple[int, str]]) -> SourceError:
    """A file none of whose first lines decodes is not JSON lines at all: unreadable, not rows with errors."""
    line, message = failures[0]
    return SourceError(f"{name}: not JSON lines (line {line}: {message})")


def _decoded_or_none(data: bytes) -> Any:
    """JSON text decoded, None when it does not decode (or is `null`)."""
    try:
        return orjson.loads(data.lstrip(BOM))
    except orjson.JSONDecodeError:
        return None


def concatenated_objects(data: bytes) -> list | None:
    """Objects written one after another (or one alone), pretty-printed over lines, as rows; None when the text is
    not that. Each is decoded by orjson, as a JSON line would be: NaN, a lone surrogate or nesting past its limit
    are no object.

    >>> concatenated_objects(b'{\\n  "text": "a"\\n}\\n{\\n  "text": "b"\\n}\\n')
    [{'text': 'a'}, {'text': 'b'}]
    >>> concatenated_objects(b'{"text": "a"} oops') is None, concatenated_objects(b'{"x": NaN}') is None
    (True, True)
    """
    try:
        rows = [value for _, value in values(JsonReader("", io.BytesIO(data.lstrip(BOM)), len(data) + 1))]
    except SourceError:
        return None
    return rows if rows and all(isinstance(row, dict) for row in rows) else None


def _csv_rows(name: str, handle: BinaryIO, advance, encoding: str | None) -> Iterator[tuple[int, Any]]:
    """Rows of CSV bytes in `encoding` (None: UTF-8, a BOM skipped)."""
    text = io.TextIOWrapper(handle, encoding=encoding or "utf-8-sig", newline="")
    number = 0
    try:
        reader = csv.DictReader(_bounded_lines(name, text), dialect=_csv_dialect(text))
        for number, record in enumerate(reader, start=1):
            # Cells past the header's columns (DictReader files them under None) get a name of their own.
            extra = record.pop(None, None)
            advance(0)  # the progress is where the file is read to (`_open_text_file`)
            row = {key: _cell(value) for key, value in record.items()}
            if extra is not None:
                row["_extra_cells"] = extra
            yield number, row
    except csv.Error as error:
        raise _malformed_csv(name, number + 1, error) from None


def _bounded_lines(name: str, text: io.TextIOBase) -> Iterator[str]:
    """The lines of CSV text as the csv reader takes them, each refused (SourceError) as soon as it passes
    CSV_CELL_CHARS, the bound on one row, before it is held whole (the reader would join a 3 GB line first).

    >>> list(_bounded_lines("d.csv", io.StringIO("a,b\\n1,2\\n")))
    ['a,b\\n', '1,2\\n']
    """
    for number, line in enumerate(iter(lambda: text.readline(CSV_CELL_CHARS + 1), ""), start=1):
        if len(line) > CSV_CELL_CHARS:
            raise SourceError(f"{name}: line {number} is longer than {CSV_CELL_CHARS:,} characters, the bound on one "
                              f"row (an unclosed quote?)")
        yield line


def _malformed_csv(name: str, row: int, error: csv.Error) -> SourceError:
    """The one line for CSV that does not parse at `row` (counted as `_csv_rows` numbers them).

    >>> print(_malformed_csv("d.csv", 3, csv.Error(f"field larger than field limit ({CSV_CELL_CHARS})")))
    d.csv: malformed CSV at row 3: a cell is longer than 67,108,864 characters, the bound on one (an unclosed quote?)
    """
    if "field larger than field limit" in str(error):
        return SourceError(f"{name}: malformed CSV at row {row}: a cell is longer than {CSV_CELL_CHARS:,} characters, "
                           f"the bound on one (an unclosed quote?)")
    return SourceError(f"{name}: malformed CSV at row {row}: {error}")


def csv_record_lines(path: Path, encoding: str | None = None) -> Iterator[int]:
    """The physical line each record of a CSV file (gzip-compressed or not) starts on, in the order `_csv_rows`
    numbers them: a quoted cell may hold newlines, so record N need not be on line N + 1. Blank lines, which the
    reader skips, start no record."""
    compressed = _sniff(path) == "gz"
    encoding, _ = _text_encoding(str(path), path, encoding, compressed)
    with _text_bytes(str(path), path, encoding, compressed) as (handle, _):
        text = io.TextIOWrapper(handle, encoding=encoding or "utf-8-sig", newline="")
        reader = csv.reader(_bounded_lines(str(path), text), dialect=_csv_dialect(text))
        next(reader, None)  # the header
        ended = reader.line_num
        for record in reader:
            if record:
                yield ended + 1
            ended = reader.line_num


def is_csv(path: Path) -> bool:
    """Whether a local file is read as CSV (`.csv.gz` too)."""
    fmt = file_format(path)
    return fmt == "csv" or (fmt == "gz" and Path(path.stem).suffix.lower() == ".csv")


class _Semicolons(csv.excel):
    delimiter = ";"


class _Tabs(csv.excel):
    delimiter = "\t"


def _csv_dialect(text: io.TextIOWrapper) -> type[csv.Dialect]:
    """Excel's CSV dialect with the delimiter the header line uses most: `,`, `;` or a tab (a header alone
    is too little for `csv.Sniffer` to tell quoting)."""
    header = text.readline(CSV_CELL_CHARS)
    text.seek(0)
    counts = {",": header.count(","), ";": header.count(";"), "\t": header.count("\t")}
    return {",": csv.excel, ";": _Semicolons, "\t": _Tabs}[max(counts, key=counts.get)]


def _cell(value: str | None) -> Any:
    """CSV cells that hold JSON lists or objects (message lists, say) are read as such."""
    if value and value[0] in "[{":
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _arrow_rows(batches: Iterable) -> Iterator[tuple[int, Any]]:
    number = 0
    for batch in batches:
        # A slice at a time: a scan that reads only a file's first rows (to classify them) makes Python objects
        # of those, not of its whole first batch.
        for start in range(0, batch.num_rows, ROWS_AT_A_TIME):
            for row in batch_rows(batch.slice(start, ROWS_AT_A_TIME)):
                number += 1
                yield number, row


def batch_rows(batch: Any) -> list[dict]:
    """An Arrow record batch as rows, JSON-text columns decoded (see `_json_decoder`)."""
    rows = batch.to_pylist()
    decoders = _json_decoders(batch.schema)
    for row in rows if decoders else ():
        for name, decode in decoders.items():
            row[name] = decode(row[name])
    return rows


@functools.lru_cache(maxsize=64)
def _json_decoders(schema: Any) -> dict[str, Callable[[Any], Any]]:
    return {f.name: decode for f in schema if (decode := _json_decoder(f.type)) is not None}


def _json_decoder(kind: Any) -> Callable[[Any], Any] | None:
    """How to read values of an Arrow type that holds JSON text (the `arrow.json` extension type, which
    `datasets` writes for columns of mixed objects such as messages with tool calls), or None when it holds
    none: `to_pylist` gives that text as strings, and TRL, through `datasets`, sees the objects.

    >>> import pyarrow as pa
    >>> decode = _json_decoder(pa.list_(pa.json_()))
    >>> decode(['{"role": "user"}', None])
    [{'role': 'user'}, None]
    >>> _json_decoder(pa.list_(pa.string())) is None
    True
    """
    import pyarrow as pa

    if kind.__class__.__name__ == "JsonType":
        return lambda value: orjson.loads(value) if isinstance(value, str) else value
    if _is_list_kind(kind):
        item = _json_decoder(kind.value_type)
        return None if item is None else lambda value: value if value is None else [item(v) for v in value]
    if pa.types.is_struct(kind):
        fields = {f.name: d for f in kind if (d := _json_decoder(f.type)) is not None}
        if not fields:
            return None
        return lambda value: value if value is None else {
            key: fields[key](item) if key in fields else item for key, item in value.items()}
    return None


def _open_file(path: Path, fmt: str, encoding: str | None) -> Source:
    if fmt == "gz":
        inner = Path(path.stem)
        inner_fmt = file_format(inner) if inner.suffix else "json"
        if inner_fmt not in ("json", "csv"):
            raise SourceError(f"{path}: compressed {inner.suffix} files are not supported; decompress it first")
        return _open_text_file(path, inner_fmt, encoding, compressed=True)
    if fmt in ("json", "csv"):
        return _open_text_file(path, fmt, encoding, compressed=False)
    return _open_arrow_file(path, fmt)


def _open_text_file(path: Path, fmt: str, encoding: str | None, compressed: bool) -> Source:
    """A JSON or CSV file (gzip-compressed or not) in `encoding` (None or UTF-8: read as bytes)."""
    name = str(path)
    encoding, notes = _text_encoding(name, path, encoding, compressed)
    layout = None
    if fmt == "json":
        lines_named = Path(path.stem if compressed else path).suffix.lower() in (".jsonl", ".ndjson")
        with _text_bytes(name, path, encoding, compressed) as (handle, _):
            layout = json_layout(name, _utf8(handle, encoding), lines_named)

    def rows(advance):
        with _text_bytes(name, path, encoding, compressed) as (handle, raw):
            position = 0

            def advance_read(_n: int) -> None:  # progress counts the bytes read from the file
                nonlocal position
                now = raw.tell()
                advance(now - position)
                position = now

            if layout is None:
                yield from _csv_rows(name, handle, advance_read, encoding)
            else:
                yield from _json_rows(name, _utf8(handle, encoding), advance_read, layout)

    # Objects over lines are numbered as they were when they were read as lines.
    by_line = layout is not None and layout.kind in ("lines", "messages_lists", "objects", "wrapped")
    plain_lines = layout is not None and layout.kind == "lines" and not compressed and encoding is None
    if layout is not None and layout.note:
        notes.append(f"{name}: {layout.note}")
    return Source(name, "line" if by_line else "row", "bytes", path.stat().st_size, rows, [name],
                  lines_path=path if plain_lines else None, notes=notes)


def _text_encoding(name: str, path: Path, encoding: str | None, compressed: bool) -> tuple[str | None, list[str]]:
    """The encoding a text file is read in (None: UTF-8, read as bytes) and what the report says of it: `encoding`
    when it names one; else UTF-16 or UTF-32 when the file's byte-order mark says so, which the report notes. Text
    that looks like either but has no mark is refused, with the command that names its encoding."""
    encoding = other_encoding(encoding)
    if encoding is not None:
        return encoding, []
    with _text_bytes(name, path, None, compressed) as (handle, _):
        head = handle.read(4096)
    marked = marked_encoding(head)
    if marked is not None:
        return marked, [f"{name}: read as {marked.upper()}, as its byte-order mark says"]
    wide = unmarked_wide_encoding(head)
    if wide is not None:
        raise unmarked_wide_text(name, wide)
    return None, []


def _utf8(handle: BinaryIO, encoding: str | None) -> BinaryIO:
    """A text file's bytes as UTF-8: themselves, or transcoded from `encoding`."""
    return handle if encoding is None else Utf8Transcoded(handle, encoding)


@contextlib.contextmanager
def _text_bytes(name: str, path: Path, encoding: str | None, compressed: bool) -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """A text file's bytes, decompressed, and the file itself (whose position is the progress). Text that does not
    decode in `encoding` (None: UTF-8) while they are read is refused at its line, read again to find it; corrupt
    gzip data is refused."""
    try:
        with _decompressed(path, compressed) as opened:
            yield opened
    except UnicodeDecodeError:
        with _decompressed(path, compressed) as (handle, _):
            raise undecodable_line(name, handle, encoding) from None
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
        if not compressed:
            raise unreadable(name, error) from None
        raise SourceError(f"{name}: corrupt gzip data ({error})") from None


@contextlib.contextmanager
def _decompressed(path: Path, compressed: bool) -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """A file's bytes, gunzipped when `compressed`, and the file itself."""
    with _open_bytes(path) as raw, (gzip.GzipFile(fileobj=raw) if compressed else contextlib.nullcontext(raw)) \
            as handle:
        yield handle, raw


def _open_bytes(path: Path) -> BinaryIO:
    """A local file opened for reading; one that cannot be (permission denied) is unreadable input."""
    try:
        return open(path, "rb")
    except OSError as error:
        raise unreadable(str(path), error) from None


def unreadable(name: str, error: OSError) -> SourceError:
    """The one line for a file or folder the system will not let us read.

    >>> print(unreadable("data/secret.jsonl", PermissionError(errno.EACCES, "Permission denied")))
    data/secret.jsonl: cannot read it: permission denied
    """
    reason = error.strerror or type(error).__name__
    return SourceError(f"{name}: cannot read it: {reason[:1].lower()}{reason[1:]}")


def _is_list_kind(kind: Any) -> bool:
    """Whether an Arrow type is a list of any kind (plain, large, fixed-size, or a view)."""
    import pyarrow as pa

    return any(test(kind) for test in (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list,
                                       pa.types.is_list_view, pa.types.is_large_list_view))


def _open_arrow_file(path: Path, fmt: str) -> Source:
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = str(path)
    try:
        if fmt == "parquet":
            with pq.ParquetFile(path) as handle:
                metadata, schema = handle.metadata, handle.schema_arrow
            _refuse_rows_past_the_bound(name, metadata)
            groups = [metadata.row_group(i) for i in range(metadata.num_row_groups)]
            file = ArrowFile(path, fmt, tuple(group.num_rows for group in groups),
                             sum(group.total_byte_size for group in groups))
        else:
            opener = pa.ipc.open_file if fmt == "arrow" else pa.ipc.open_stream
            with pa.memory_map(str(path)) as probe:
                reader = opener(probe)
                schema = reader.schema
                file = ArrowFile(path, fmt, tuple(reader.get_batch(i).num_rows
                                                  for i in range(reader.num_record_batches)),
                                 path.stat().st_size) if fmt == "arrow" else None

            def read_stream(advance, ahead=True):  # a memory map: nothing is decoded ahead
                with pa.memory_map(str(path)) as handle:
                    yield from _counted(map(_text_checked, _sliced(opener(handle))), advance)
    except (pa.ArrowInvalid, OSError) as error:
        raise SourceError(f"{name}: not a readable {fmt.replace('_stream', '')} file ({error})") from None
    _refuse_repeated_fields(name, schema)
    batches = file.batches if file is not None else _guard_arrow(name, read_stream)
    return Source(name, "row", "rows", sum(file.group_rows) if file is not None else None,
                  lambda advance: _arrow_rows(batches(advance, ahead=False)), [name], batches=batches,
                  arrow_file=file)


@dataclass(frozen=True)
class ArrowFile:
    """A Parquet file or an Arrow IPC file, read whole or a range of its row groups (an IPC file's record batches,
    which it indexes) at a time: what lets its rows be checked in several processes. An IPC stream has no index,
    so it is read only from its start."""

    path: Path
    fmt: str  # "parquet" or "arrow"
    group_rows: tuple[int, ...]  # the rows of each row group (record batch), in file order
    data_bytes: int  # the size of its data, decompressed

    def batches(self, advance: Callable[[int], None] = lambda n: None, ahead: bool = True,
                groups: range | None = None, decoded: GroupsAhead | None = None) -> Iterator[Any]:
        """Its record batches (of the row groups `groups` only, when given; `ahead`: see `parquet_batches`), taken
        from `decoded` when given (a Parquet file's `decoding_ahead()`, started earlier); progress in rows. Data
        that does not decode is refused in one line."""
        return _guard_arrow(str(self.path), functools.partial(self._read, groups, decoded))(advance, ahead)

    def decoding_ahead(self) -> GroupsAhead | None:
        """A Parquet file's batches, every row group's, decoding from now on, for `batches(decoded=)` to read
        later (and for its reader to close); None for an Arrow IPC file, which a memory map reads with nothing to
        decode."""
        return GroupsAhead(self.path, list(range(len(self.group_rows)))) if self.fmt == "parquet" else None

    def _read(self, groups: range | None, decoded: GroupsAhead | None, advance: Callable[[int], None],
              ahead: bool) -> Iterator[Any]:
        groups = range(len(self.group_rows)) if groups is None else groups
        if decoded is not None:
            with decoded:
                yield from _counted(decoded, advance)
            return
        if self.fmt == "parquet":
            yield from _counted(parquet_batches(self.path, list(groups), ahead=ahead), advance)
            return
        import pyarrow as pa

        with pa.memory_map(str(self.path)) as handle:  # a memory map: nothing is decoded ahead
            reader = pa.ipc.open_file(handle)
            yield from _counted(map(_text_checked, _sliced(map(reader.get_batch, groups))), advance)


def _counted(batches: Iterable[Any], advance: Callable[[int], None]) -> Iterator[Any]:
    for batch in batches:
        advance(batch.num_rows)
        yield batch


def _text_checked(batch: Any) -> Any:
    """The batch, once its text is known to be UTF-8: Parquet and Arrow writers do not check it, Python cannot read
    text that is not, and the column kernels would take it unseen."""
    import pyarrow as pa

    for name, column in zip(batch.schema.names, batch.columns):
        if not _all_utf8(column):
            raise pa.ArrowInvalid(f"column {name!r} holds text that is not UTF-8")
    return batch


def _all_utf8(values: Any) -> bool:
    """Whether every text in `values`, at any depth, is UTF-8: ASCII bytes are (one numpy pass), others are
    validated by Arrow."""
    import numpy as np
    import pyarrow as pa

    from trlprep.inspector.arrow import text_offsets

    kind = values.type
    if pa.types.is_dictionary(kind):
        return _all_utf8(values.dictionary)
    if pa.types.is_struct(kind):
        return all(_all_utf8(values.field(index)) for index in range(kind.num_fields))
    if _is_list_kind(kind):
        return _all_utf8(values.flatten())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        data = values.buffers()[2]
        offsets = text_offsets(values)
        if data is None or not len(values) or np.frombuffer(data, dtype=np.uint8)[offsets[0]: offsets[-1]].max(
                initial=0) < 0x80:
            return True
    elif not pa.types.is_string_view(kind):
        return True
    try:
        values.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _sliced(batches: Iterable[Any]) -> Iterator[Any]:
    """Record batches as written (an Arrow IPC file's may be of any size) in slices of BATCH_ROWS rows and about
    BATCH_BYTES at most, as Parquet's are read: what the column kernels make of a batch grows with it."""
    for batch in batches:
        size = _rows_within(BATCH_BYTES, batch.nbytes, batch.num_rows, BATCH_ROWS)
        for start in range(0, batch.num_rows, size):
            yield batch.slice(start, size)


def _rows_within(limit: int, size: int, rows: int, most: int) -> int:
    """How many of `rows` rows that take `size` bytes in all fit in `limit` bytes, from 1 to `most`.

    >>> _rows_within(16 << 20, 6_000_000, 8192, 8192), _rows_within(16 << 20, 240_000_000, 30_000, 8192)
    (8192, 2097)
    """
    return max(1, min(most, limit * rows // max(size, 1)))


def group_ranges(group_rows: tuple[int, ...], parts: int) -> list[tuple[int, int]]:
    """At most `parts` ranges (start, stop) of consecutive row groups of about equal rows, covering every group that
    holds rows (a range of empty groups only is left out: it has nothing to read).

    >>> group_ranges((10, 10, 10, 10), 2)
    [(0, 2), (2, 4)]
    >>> group_ranges((30, 0, 5, 5), 3), group_ranges((0, 10), 4)
    ([(0, 1), (1, 4)], [(0, 2)])
    """
    total, cuts = sum(group_rows), [0]
    ends = list(itertools.accumulate(group_rows))
    for part in range(1, parts):
        cuts.append(max(cuts[-1], bisect.bisect_left(ends, total * part / parts) + 1))
    cuts.append(len(group_rows))
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a and any(group_rows[a:b])]


def parquet_batches(path: Path, row_groups: list[int], *, ahead: bool = True) -> Iterator[Any]:
    """The record batches of a Parquet file's `row_groups`, a row group at a time (a batch across
    two groups of a nested dictionary column is not implemented in pyarrow: "Nested data conversions not
    implemented for chunked array outputs").

    Without `ahead`, ROWS_AT_A_TIME rows a batch, decoded as they are asked for: a reader of the first rows only
    (to classify them) or of Python rows stops early. With it, BATCH_ROWS rows a batch, decoded by PARQUET_LANES
    threads of their own, each a row group in turn, PARQUET_READAHEAD batches ahead of the one being checked
    (pyarrow decodes without holding the GIL): a bare `read_table` decodes on two cores, and one thread alone made
    the decoding, not the checks, what a scan waited for. Memory stays bounded by the batch size. (pyarrow's
    dataset scanner reads ahead too, but importing it imports pandas, seconds, and it decoded row groups far
    past its readahead.)"""
    if not ahead:
        return _parquet_lane(path, row_groups, ROWS_AT_A_TIME)
    return _decoded_in_order(path, row_groups)


def _decoded_in_order(path: Path, row_groups: list[int]) -> Iterator[Any]:
    """`GroupsAhead`, started when the first batch is asked for and stopped when the reader stops."""
    with GroupsAhead(path, row_groups) as ahead:
        yield from ahead


def _parquet_lane(path: Path, row_groups: list[int], rows: int, *, ends: bool = False) -> Generator[Any, None, None]:
    """The row groups' batches in turn, and after each group `_END_OF_GROUP` when `ends`."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as handle:
        for group in row_groups:
            metadata = handle.metadata.row_group(group)
            size = _rows_within(BATCH_BYTES, metadata.total_byte_size, metadata.num_rows, rows)
            # Checked here, in the decoding thread (numpy and Arrow let go of the GIL): not on the scan's time.
            yield from map(_text_checked, handle.iter_batches(batch_size=size, row_groups=[group],
                                                                use_threads=False))
            if ends:
                yield _END_OF_GROUP


_END_OF_GROUP = object()


class GroupsAhead:
    """A Parquet file's `row_groups`' batches in file order, group i decoded by lane i modulo PARQUET_LANES
    (`DecodedAhead`), every lane started when this is made: lane 1 decodes group 1 while group 0 is checked, and
    a reader that makes it before it needs the batches has them decoding meanwhile. Read once; `close()` (or the
    end of `with`) stops the lanes, read or not."""

    def __init__(self, path: Path, row_groups: list[int]):
        self._lanes: list[DecodedAhead] = []
        try:
            for lane in range(min(PARQUET_LANES, len(row_groups))):
                self._lanes.append(DecodedAhead(_parquet_lane(path, row_groups[lane::PARQUET_LANES], BATCH_ROWS,
                                                              ends=True), PARQUET_READAHEAD))
        except BaseException:  # a thread the system would not start: the lanes already running stop
            self.close()
            raise
        self._batches = self._in_order(len(row_groups))

    def __iter__(self) -> Iterator[Any]:
        return self._batches

    def _in_order(self, groups: int) -> Iterator[Any]:
        for group in range(groups):
            for batch in self._lanes[group % len(self._lanes)]:
                if batch is _END_OF_GROUP:
                    break
                yield batch

    def close(self) -> None:
        for lane in self._lanes:
            lane.close()

    def __enter__(self) -> GroupsAhead:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class DecodedAhead:
    """`batches`, taken from a thread of their own, started at once, that keeps up to `ahead` of them waiting. Its
    errors are raised here, in turn. `close()` (which the reader must call when it stops early: closed, an error,
    Ctrl-C) stops the thread after the batch it is decoding.

    >>> squares = DecodedAhead((n * n for n in range(5)), 2)
    >>> list(squares)
    [0, 1, 4, 9, 16]
    >>> squares.close()
    """

    def __init__(self, batches: Generator[Any, None, None], ahead: int):
        self._waiting: queue.Queue = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._batches = batches
        self._thread = threading.Thread(target=self._decode, name="trlprep-decode", daemon=True)
        self._thread.start()

    def __iter__(self) -> DecodedAhead:
        return self

    def __next__(self) -> Any:
        batch, error = self._waiting.get()
        if error is not None:
            raise error
        if batch is None:
            raise StopIteration
        return batch

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def _decode(self) -> None:
        try:
            for batch in self._batches:
                if not self._put((batch, None)):
                    return
            self._put((None, None))
        except BaseException as error:  # re-raised in the reader's thread, where it is handled
            self._put((None, error))
        finally:
            self._batches.close()

    def _put(self, item: tuple) -> bool:
        while not self._stop.is_set():
            try:
                self._waiting.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False


def _refuse_repeated_fields(name: str, schema: Any) -> None:
    """Refuse a file with two columns, or two fields of a struct at any depth, of one name: a row read as Python
    objects cannot hold both, and which one TRL would read is anyone's guess.

    >>> import pyarrow as pa
    >>> turn = pa.struct([("role", pa.string()), ("content", pa.string()), ("role", pa.string())])
    >>> _refuse_repeated_fields("d.parquet", pa.schema([("messages", pa.list_(turn))]))
    Traceback (most recent call last):
    trlprep.errors.SourceError: d.parquet: column 'messages' holds two fields named 'role'
    """
    import pyarrow as pa

    def check(members: list, column: str | None) -> None:
        names = [member.name for member in members]
        repeated = next((each for each in names if names.count(each) > 1), None)
        if repeated is not None:
            raise SourceError(f"{name}: two columns are named {repeated!r}" if column is None else
                              f"{name}: column {column!r} holds two fields named {repeated!r}")
        for member in members:
            kind = member.type
            while hasattr(kind, "value_type") and not pa.types.is_dictionary(kind):  # lists of any kind
                kind = kind.value_type
            if pa.types.is_struct(kind):
                check(list(kind), member.name if column is None else column)

    check(list(schema), None)


def _refuse_rows_past_the_bound(name: str, metadata) -> None:
    """Refuse, from its metadata and before any page is read, a Parquet file one of whose row groups holds more
    than MAX_LINE_BYTES a row on average once decompressed: a row past the bound a JSON line has, which a few
    kilobytes of zstd can hold (a 31 KB file of one 1 GB cell took 6.9 GB to read)."""
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        size = sum(group.column(column).total_uncompressed_size for column in range(group.num_columns))
        if group.num_rows and size / group.num_rows > MAX_LINE_BYTES:
            raise SourceError(f"{name}: row group {index} holds {size:,} bytes in {group.num_rows:,} row(s) once "
                              f"decompressed, past the bound of {MAX_LINE_BYTES:,} bytes on one row")


def _guard_arrow(name: str, read):
    import pyarrow as pa

    def guarded(advance, ahead=True):
        try:
            yield from read(advance, ahead)
        except (pa.ArrowInvalid, OSError) as error:
            raise SourceError(f"{name}: unreadable data ({error})") from None

    return guarded


def _chain(name: str, sources: list[Source]) -> Source:
    """Several files read as one dataset: a row's number is its line (or row) in its file plus the lines of the
    files before it, so that `where` can name the file and line back."""
    def rows(advance):
        offset = 0
        for source in sources:
            last = 0
            for last, value in source.rows(advance):
                yield offset + last, value
            offset += last

    units = {s.unit for s in sources}
    totals = [s.total for s in sources]
    total = sum(totals) if None not in totals and len(units) == 1 else None
    files = [f for s in sources for f in s.files]
    return Source(name, "row", units.pop() if len(units) == 1 else "rows", total, rows, files, parts=sources,
                  notes=[note for s in sources for note in s.notes])


def _open_files(name: str, paths: list[Path], encoding: str | None) -> Source:
    for path in paths:  # refused now, not when its rows are reached
        _open_bytes(path).close()
    formats = {p: file_format(p) for p in paths}
    kinds = sorted({("gz" if f == "gz" else f.replace("_stream", "")) for f in formats.values()})
    if len(kinds) > 1:
        raise SourceError(f"{name}: mixes file formats ({', '.join(kinds)}); point at one kind of file")
    sources = [_open_file(p, formats[p], encoding) for p in paths]
    return sources[0] if len(sources) == 1 else _chain(name, sources)


def _open_folder(path: Path, split: str | None, encoding: str | None) -> Source:
    folder = _split_folder(path, split)
    return _open_files(str(folder), folder_files(folder), encoding)


def _split_folder(path: Path, split: str | None) -> Path:
    """The folder of a `DatasetDict` folder's split (`split`, else train, else its first), or the folder itself."""
    try:  # a folder we may not list is unreadable, not one without data
        os.scandir(path).close()
    except OSError as error:
        raise unreadable(str(path), error) from None
    if not (path / "dataset_dict.json").exists():
        return path
    splits = json.loads((path / "dataset_dict.json").read_text())["splits"]
    chosen = split or ("train" if "train" in splits else splits[0])
    if chosen not in splits:
        raise SourceError(f"{path}: no split {chosen!r} (splits: {', '.join(splits)})")
    return path / chosen


def folder_files(path: Path, split: str | None = None) -> list[Path]:
    """The files one pass reads from a folder: a `save_to_disk` dataset's (of the split `_split_folder` picks), or
    every data file under it, sorted."""
    path = _split_folder(path, split)
    if (path / "state.json").exists() and (path / "dataset_info.json").exists():
        state = json.loads((path / "state.json").read_text())
        return [path / item["filename"] for item in state.get("_data_files", [])]
    paths = _walked_files(path, _is_data_file, hidden_folders=True)
    if not paths:
        raise SourceError(f"{path}: folder holds no data files ({', '.join(DATA_SUFFIXES)}, .gz)")
    return paths


def glob_files(pattern: str) -> list[Path]:
    """The files a glob names, sorted, each real file once (a file reached through two symlinks, or through a
    symlink loop, is one file). `**` matches folders at any depth, symlinked ones walked once each (a loop is cut
    where it comes back); like `glob.glob`, wildcards do not match hidden names.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp()); (root / "a").mkdir(); (root / "a" / "d.jsonl").touch()
    >>> (root / "a" / "up").symlink_to("..")  # a loop
    >>> [p.relative_to(root).as_posix() for p in glob_files(f"{root}/**/*.jsonl")]
    ['a/d.jsonl']
    """
    parts = Path(pattern).parts
    fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    if "**" not in parts[fixed:]:  # wildcards one folder deep each: a loop can only be walked as deep as the pattern
        return _unique_files(Path(found) for found in glob.glob(pattern))
    root = Path(*parts[:fixed]) if fixed else Path(".")
    return _walked_files(root, lambda relative: _glob_matches(relative.parts, parts[fixed:]),
                         hidden_folders=any(part.startswith(".") for part in parts[fixed:]))


def _glob_matches(names: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Whether a relative path's names match a glob's parts, as `glob.glob(recursive=True)` matches them: `**`
    any number of folders, other parts one name each; a hidden name only by a part that starts with a dot.

    >>> _glob_matches(("a", "b", "d.jsonl"), ("**", "*.jsonl")), _glob_matches(("d.jsonl",), ("**", "*.jsonl"))
    (True, True)
    >>> _glob_matches((".cache", "d.jsonl"), ("**", "*.jsonl")), _glob_matches(("a", "d.jsonl"), ("*.jsonl",))
    (False, False)
    """
    if not pattern:
        return not names
    if pattern[0] == "**":
        return any(_glob_matches(names[skip:], pattern[1:]) for skip in range(len(names) + 1)
                   if not any(name.startswith(".") for name in names[:skip]))
    return bool(names) and (pattern[0].startswith(".") or not names[0].startswith(".")) \
        and fnmatch.fnmatch(names[0], pattern[0]) and _glob_matches(names[1:], pattern[1:])


def _walked_files(root: Path, wanted: Callable[[Path], bool], hidden_folders: bool) -> list[Path]:
    """The regular files under `root` whose path relative to it is `wanted`, sorted, each real file once. Symlinked
    folders are walked, each real folder once: a symlink loop ends where it comes back. A folder that cannot be
    listed is unreadable input, not a folder without data."""
    def refuse(error: OSError) -> None:
        raise unreadable(error.filename or str(root), error)

    walked: set[tuple[int, int]] = set()
    found = []
    for folder, folders, files in os.walk(root, onerror=refuse, followlinks=True):
        where = os.stat(folder)
        if (where.st_dev, where.st_ino) in walked:
            folders.clear()
            continue
        walked.add((where.st_dev, where.st_ino))
        folders[:] = sorted(name for name in folders if hidden_folders or not name.startswith("."))
        relative = Path(folder).relative_to(root)
        found += [Path(folder, name) for name in files if wanted(relative / name)]
    return _unique_files(found)


def _unique_files(paths: Iterable[Path]) -> list[Path]:
    """The regular files among `paths` (not folders, FIFOs or devices), sorted, each real file once: under the
    first of its names."""
    unique: dict[str, Path] = {}
    for path in sorted(paths):
        if path.is_file():
            unique.setdefault(os.path.realpath(path), path)
    return list(unique.values())


def _is_data_file(path: Path) -> bool:
    name = path.name.lower()
    return not name.startswith(".") and (name.endswith(DATA_SUFFIXES) or any(
        name.endswith(s + ".gz") for s in DATA_SUFFIXES))


def looks_like_hub_id(spec: str) -> bool:
    parts = spec.split("/")
    return (
        len(parts) <= 2
        and all(parts)
        and not spec.startswith((".", "~"))
        and not spec.lower().endswith(DATA_SUFFIXES + (".gz",))
        and all(c.isalnum() or c in "-_." for part in parts for c in part)
    )


def hub_unreachable_reason(timeout: float = 3.0) -> str | None:
    """Why the Hub cannot be reached (None when it can), found in seconds rather than after retries."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return None  # offline mode reads the local cache; `datasets` says if the dataset is not there
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
    except OSError as error:
        return f"cannot reach the Hugging Face Hub at {url.hostname} ({error.strerror or error})"
    return None


def _open_hub(dataset_id: str, split: str | None, config: str | None, revision: str | None) -> Source:
    """A Hub dataset, streamed; the token comes from the usual places (HF_TOKEN, `hf auth login`)."""
    reason = hub_unreachable_reason()
    if reason:
        raise SourceError(f"{dataset_id}: {reason}; pass a local path, or set HF_HUB_OFFLINE=1 to use the cache")
    import datasets

    datasets.logging.set_verbosity_error()
    name = f"hf://datasets/{dataset_id}" + (f"@{revision}" if revision else "")
    chosen = split or "train"
    try:
        stream = datasets.load_dataset(dataset_id, name=config, split=chosen, revision=revision, streaming=True)
        splits = stream.info.splits or {}
        total = splits[chosen].num_examples if chosen in splits else None
    except Exception as error:  # datasets raises many types for one cause: the dataset cannot be had
        text = str(error).strip()
        reason = text.splitlines()[0] if text else type(error).__name__
        raise SourceError(f"{dataset_id}: cannot load from the Hugging Face Hub ({reason})") from None
    return _open_dataset_object(name, stream, total or None)


def _open_dataset_object(name: str, dataset: Any, total: int | None = None) -> Source:
    def rows(advance):
        try:
            for number, row in enumerate(dataset, start=1):
                advance(1)
                yield number, row
        except Exception as error:  # a stream that breaks mid-way is as unreadable as one that never opened
            raise SourceError(f"{name}: reading failed ({str(error).splitlines()[0] if str(error) else error!r})") \
                from None

    if total is None and hasattr(dataset, "__len__"):
        total = len(dataset)
    return Source(name, "row", "rows", total, rows)


def url_filesystem(url: str) -> tuple[Any, str]:
    """fsspec's filesystem for `url` and the path in it. The package that serves a protocol (s3fs for `s3://`,
    gcsfs for `gs://`) is the user's to install, not a bug of ours: its absence is a `SourceError` naming it."""
    import fsspec
    from fsspec.registry import known_implementations

    try:
        return fsspec.core.url_to_fs(url)
    except ImportError:
        protocol = url.split("://", 1)[0]
        implementation = known_implementations.get(protocol, {}).get("class", "")
        package = implementation.split(".", 1)[0] or f"an fsspec filesystem for {protocol}://"
        raise SourceError(f"{url}: reading {protocol}:// URLs needs {package}, which is not installed: "
                          f"pip install {package} (or uv add {package}), or copy the shards to a local folder "
                          f"and pass that") from None


def open_source(source: Any, *, split: str | None = None, config: str | None = None,
                revision: str | None = None, encoding: str | None = None) -> Source:
    """Open a dataset given as a path, a folder, a glob, a Hub id, a `datasets.Dataset` or a list of rows; its
    text files (JSON, CSV) in `encoding` (None: UTF-8).

    >>> src = open_source([{"text": "hello"}])
    >>> list(src.rows())
    [(1, {'text': 'hello'})]
    """
    if isinstance(source, (list, tuple)):
        return _open_dataset_object("<rows>", source)
    if not isinstance(source, (str, os.PathLike)):
        return _open_dataset_object(f"<{type(source).__name__}>", source)
    spec = os.fspath(source)
    path = Path(spec).expanduser()
    kind = _local_kind(path)
    if kind == "folder":
        return _open_folder(path, split, encoding)
    if kind == "file":
        return _open_files(spec, [path], encoding)
    if kind == "other":  # never opened: a FIFO or a device would block, or never end
        raise SourceError(f"{spec}: not a regular file or folder")
    if "://" in spec:
        url_filesystem(spec)  # names the package a protocol needs, when it is not installed
        raise SourceError(f"{spec}: a URL is read as shards, each copied here first: add --executor local "
                          f"(docs/sharded.md)")
    if glob.has_magic(spec):
        matches = glob_files(spec)
        if not matches:
            raise SourceError(f"{spec}: no files match")
        return _open_files(spec, matches, encoding)
    close = close_path(path)
    if close is not None:  # a typo in a local path, not a Hub id that happens to contain a slash
        raise SourceError(f"{spec}: no such file or folder; did you mean {close}?")
    if looks_like_hub_id(spec):
        return _open_hub(spec, split, config, revision)
    raise SourceError(f"{spec}: no such file or folder")


def _local_kind(path: Path) -> str | None:
    """What is at a local path: "folder", "file" (a regular one), "other" (a FIFO, a device, a socket) or None
    (nothing, or a name that cannot be one: a glob, a Hub id). A path the system will not let us look at (a folder
    on the way we may not enter) is unreadable input."""
    try:
        mode = path.stat().st_mode
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP):
            return None
        raise unreadable(str(path), error) from None
    return "folder" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"


def close_path(path: Path) -> Path | None:
    """The existing path a mistyped one most likely means: a close name in its folder, or in a folder of a close
    name beside it; None when nothing is close.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp()); (root / "examples").mkdir(); (root / "examples" / "chat.jsonl").touch()
    >>> [p.relative_to(root).as_posix() for p in (close_path(root / "examples" / "chat.jsnl"),
    ...                                            close_path(root / "exampels" / "chat.jsonl"))]
    ['examples/chat.jsonl', 'examples/chat.jsonl']
    >>> close_path(root / "examples" / "nothing-like-it.parquet") is None
    True
    """
    def closest(folder: Path, name: str) -> Path | None:
        try:
            names = [entry.name for entry in folder.iterdir()]
        except OSError:
            return None
        match = difflib.get_close_matches(name, names, n=1, cutoff=0.8)
        return folder / match[0] if match else None

    parent = path.parent
    if parent.is_dir():
        return closest(parent, path.name)
    folder = closest(parent.parent, parent.name) if parent.parent.is_dir() else None
    if folder is None or not folder.is_dir():
        return None
    return folder / path.name if (folder / path.name).exists() else closest(folder, path.name)
