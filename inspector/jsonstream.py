"""JSON text too large to read whole, read a value at a time: the containers' brackets, commas and keys are walked
here, and each value is decoded by orjson, which says where a value ends ("unexpected content after document" at
its end). An array's elements are decoded a batch at a time where that proves right (`JsonReader.batch`). A
streamed file therefore decodes exactly as one read whole: the same values, the same refusals (NaN, a lone
surrogate, nesting too deep), the same "invalid JSON at line N" messages. Memory: a batch (1 MB of text) and a read
buffer, never the file; a value longer than the limit is refused rather than held.

ijson (a streaming parser with a C backend) was measured against this on a 200 MB array of chat rows: 0.55M
rows/s against 0.93M. It also reads differently: a lone surrogate becomes "?", its errors span lines without a
position. See docs/performance.md.
"""

from __future__ import annotations

import re
from typing import Any, BinaryIO, Iterator

import orjson

from trlprep.errors import SourceError

READ_BYTES = 1 << 20
MIN_WINDOW = 4096
BATCH_BYTES = 1 << 20
_SPACE = re.compile(rb"[ \t\r\n]*")
_ENDS_INSIDE = "unexpected end of data"
_ENDS_BEFORE = "unexpected content after document"


class JsonReader:
    """A stream of JSON text (UTF-8 bytes), read a value at a time (`value`), its punctuation taken by `peek` and
    `take`. Values longer than `limit` bytes are refused.

    >>> import io
    >>> reader = JsonReader("f", io.BytesIO(b'[{"a": 1}, 2]'), limit=100)
    >>> list(array_items(reader))
    [{'a': 1}, 2]
    """

    def __init__(self, name: str, handle: BinaryIO, limit: int, skip: bytes = b""):
        self.name, self.handle, self.limit = name, handle, limit
        self.buffer = skip  # text read and not yet taken, from `at`
        self.at = 0
        self.ended = False
        self.lines = 1  # the line at buffer index `counted`
        self.counted = 0
        self.window = MIN_WINDOW
        self.view = memoryview(self.buffer)

    def line(self, index: int | None = None) -> int:
        """The line (from 1) of buffer index `index` (at least the last one asked for), by default where reading is."""
        index = self.at if index is None else index
        self.lines += self.buffer.count(b"\n", self.counted, index)
        self.counted = index
        return self.lines

    def _more(self) -> bool:
        """Read on, dropping the text taken already; False at the end of the stream."""
        if self.ended:
            return False
        if len(self.buffer) - self.at > self.limit:
            raise self.too_long()
        self.line()
        self.buffer, self.at, self.counted = self.buffer[self.at:], 0, 0
        data = self.handle.read(max(READ_BYTES, len(self.buffer)))
        self.ended = not data
        self.buffer += data
        self.view = memoryview(self.buffer)
        return not self.ended

    def peek(self) -> bytes:
        """The next character that is not whitespace, not taken (b"" at the end of the text)."""
        while True:
            self.at = _SPACE.match(self.buffer, self.at).end()
            if self.at < len(self.buffer):
                return self.buffer[self.at:self.at + 1]
            if not self._more():
                return b""

    def take(self, expected: bytes) -> bytes:
        """The next character, which must be one of `expected`."""
        char = self.peek()
        if not char or char not in expected:
            raise self.invalid(f"expected {' or '.join(repr(chr(c)) for c in expected)}")
        self.at += 1
        return char

    def batch(self, ending: bytes) -> list | None:
        """The elements of an array from here (at the start of one) up to the last place within `BATCH_BYTES` where
        an element ends as the last one did (`ending`: its last bytes and the comma after it), decoded at once;
        None when there is none, or when what is up to it does not decode as elements. Decoding it proves that
        place ends an element: inside an element or a string, the brackets and quotes would not balance."""
        self.peek()
        start = self.at
        found = self.buffer.rfind(ending, start, start + BATCH_BYTES)
        if found <= start:
            return None
        end = found + len(ending) - 1  # at the comma
        try:
            rows = orjson.loads(b"[" + self.buffer[start:end] + b"]")
        except orjson.JSONDecodeError:
            return None
        self.at = end
        return rows

    def too_long(self) -> SourceError:
        return SourceError(f"{self.name}: a JSON value at line {self.line()} is over the "
                           f"{self.limit:,}-byte limit on a row")

    def invalid(self, message: str, offset: int = 0) -> SourceError:
        line = self.line() + self.buffer.count(b"\n", self.at, self.at + offset)
        return SourceError(f"{self.name}: invalid JSON at line {line}: {message}")

    def value(self) -> Any:
        """The next JSON value, decoded by orjson. orjson checks all the text it is given before decoding, so it is
        given a window a little longer than the last value, widened while the value goes on past it."""
        self.peek()
        window = self.window
        while True:
            at, size = self.at, len(self.buffer)
            whole = at + window >= size  # the window takes the rest of what is read
            cut = size if whole and self.ended else _char_boundary(self.buffer, min(at + window, size))
            part = self.view[at:cut]
            last = self.ended and cut == size  # nothing follows the window
            try:
                value, end, complete = orjson.loads(part), cut - at, last  # else a number, say, may go on
            except orjson.JSONDecodeError as error:
                if error.msg == _ENDS_BEFORE:
                    end = _byte_offset(part, error.pos)
                    value, complete = orjson.loads(part[:end]), True
                elif (error.msg == _ENDS_INSIDE or cut == at) and not last:
                    complete = False
                else:
                    raise self.invalid(error.msg, _byte_offset(part, error.pos)) from None
            if complete:
                break
            if whole:
                self._more()
            else:
                window *= 2
        if end > self.limit:
            raise self.too_long()
        self.at = self.at + end
        self.window = max(MIN_WINDOW, 2 * end)
        return value


def _byte_offset(text: memoryview, position: int) -> int:
    """The byte offset in UTF-8 `text` of orjson's error position, which counts characters.

    >>> _byte_offset(memoryview('{"é": 1} x'.encode()), 9)
    10
    """
    data = bytes(text)
    return position if data.isascii() else len(data.decode("utf-8", "replace")[:position].encode())


def _char_boundary(text: bytes, index: int) -> int:
    """`index`, or the start of the UTF-8 character it falls inside, or of a character cut off at the end of `text`
    (`index` at its end: the rest of the character is still to be read).

    >>> _char_boundary("aé".encode(), 2), _char_boundary(b"ab", 1), _char_boundary("aé".encode()[:2], 2)
    (1, 1, 1)
    """
    if index < len(text):
        while index > 0 and 0x80 <= text[index] < 0xC0:
            index -= 1
        return index
    lead = index - 1
    while lead > max(index - 4, 0) and 0x80 <= text[lead] < 0xC0:
        lead -= 1
    if lead < 0 or text[lead] < 0xC0:
        return index
    length = 2 if text[lead] < 0xE0 else 3 if text[lead] < 0xF0 else 4
    return lead if lead + length > index else index


def array_items(reader: JsonReader) -> Iterator[Any]:
    """The elements of the JSON array next in `reader`: a batch of them at a time where a batch decodes (see
    `JsonReader.batch`), else one at a time."""
    reader.take(b"[")
    if reader.peek() == b"]":
        reader.at += 1
        return
    ending = b""  # how the last element read one at a time ends
    single = 0  # elements to read one at a time before a batch is tried again
    backoff = 1
    while True:
        batch = reader.batch(ending) if ending and not single else None
        if batch is not None:
            yield from batch
            backoff = 1
        else:
            if ending and not single:  # the batch did not decode: read on one at a time, longer each time
                single = backoff = min(backoff * 2, 1024)
            start = reader.at
            yield reader.value()
            ending = reader.buffer[max(start, reader.at - 3):reader.at].rstrip() + b","
            single = max(single - 1, 0)
        if reader.take(b",]") == b"]":
            return


def object_keys(reader: JsonReader) -> Iterator[str]:
    """The keys of the JSON object next in `reader`; after each, the caller reads its value from `reader`.

    >>> import io
    >>> reader = JsonReader("f", io.BytesIO(b'{"a": {"b": 1},\\n "c": [2]}'), limit=100)
    >>> [(key, reader.value()) for key in object_keys(reader)]
    [('a', {'b': 1}), ('c', [2])]
    """
    reader.take(b"{")
    if reader.peek() == b"}":
        reader.at += 1
        return
    while True:
        if reader.peek() != b'"':
            raise reader.invalid("expected a key")
        key = reader.value()
        reader.take(b":")
        yield key
        if reader.take(b",}") == b"}":
            return


def values(reader: JsonReader) -> Iterator[tuple[int, Any]]:
    """JSON values written one after another (whitespace between them), each with the line it starts on."""
    while reader.peek():
        yield reader.line(), reader.value()


def finish(reader: JsonReader) -> None:
    """Nothing but whitespace must follow the value read."""
    if reader.peek():
        raise reader.invalid(_ENDS_BEFORE)
