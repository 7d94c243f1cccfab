"""Text encodings of the files a dataset is read from. Text is UTF-8 unless `--encoding` names another; bytes that
do not decode are refused at their line, with the encoding they read as when one does (`undecodable_line`).

UTF-8 is read as bytes, never through a text layer (the JSON-lines fast path decodes bytes); another encoding is
read through `Utf8Transcoded`, which gives the JSON readers the same text as UTF-8 bytes. charset-normalizer, which
proposes an encoding, is imported only when a file does not decode. A byte-order mark of UTF-16 or UTF-32 names the
file's encoding unambiguously: when `--encoding` names none, such a file is read in it through the same text layer
(`marked_encoding`); text in either without the mark is refused, with the command that reads it
(`unmarked_wide_encoding`).
"""

from __future__ import annotations

import codecs
import io
import re
import shlex
import unicodedata
from dataclasses import dataclass
from typing import BinaryIO

from trlprep.errors import SourceError, UsageError

# The legacy encodings an encoding is proposed among, the most common first (the first wins a tie: Windows-1252,
# the web's reading of Latin-1, before Mac-Roman and Central European Windows-1250).
LEGACY_ENCODINGS = ("cp1252", "mac_roman", "cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257",
                    "cp1258", "iso8859_2", "koi8_r", "mac_cyrillic", "cp932", "euc_jp", "gb18030", "big5", "cp949",
                    "cp437", "cp850")
# The words of a line that hold bytes outside ASCII: what an encoding is told from (ASCII text around them would
# only dilute the measure of how garbled each reading is).
_NON_ASCII_WORDS = re.compile(rb'[^\s"]*[\x80-\xff][^\s"]*')


# The byte-order marks that name an encoding other than UTF-8, UTF-32's first: its little-endian mark begins with
# UTF-16's. The codec named reads the mark itself, and the byte order from it.
BYTE_ORDER_MARKS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def marked_encoding(head: bytes) -> str | None:
    """The encoding text starting with `head` names by its byte-order mark, UTF-16 or UTF-32; None without one
    (UTF-8's mark included: UTF-8 is read as bytes, the mark skipped).

    >>> marked_encoding('{"a": 1}'.encode("utf-16")), marked_encoding(codecs.BOM_UTF32_BE + b"\\0\\0\\0{")
    ('utf-16', 'utf-32')
    >>> marked_encoding(codecs.BOM_UTF8 + b'{"a": 1}') is None
    True
    """
    return next((encoding for mark, encoding in BYTE_ORDER_MARKS if head.startswith(mark)), None)


_PRINTABLE_ASCII = frozenset(b"\t\n\r" + bytes(range(0x20, 0x7f)))


def unmarked_wide_encoding(head: bytes) -> str | None:
    """The encoding text starting with `head` looks like when it has no byte-order mark but its characters are
    units of 2 or 4 bytes: at least half of them a printable ASCII character and NULs (`{\\0"\\0` is UTF-16-LE);
    None for any other bytes (binary data has NULs too, seldom beside text).

    >>> unmarked_wide_encoding('{"a": 1}'.encode("utf-16-le")), unmarked_wide_encoding('{"a": 1}'.encode("utf-32-be"))
    ('utf-16-le', 'utf-32-be')
    >>> unmarked_wide_encoding(b'{"a": 1}'), unmarked_wide_encoding(b"\\x00\\x01\\x02\\x03" * 100)
    (None, None)
    """
    for width, encoding in ((4, "utf-32"), (2, "utf-16")):  # UTF-32's units read as UTF-16 would be half ASCII
        units = [head[start:start + width] for start in range(0, len(head) - width + 1, width)]
        for order, character in (("le", 0), ("be", width - 1)):
            ascii_units = sum(1 for unit in units if unit[character] in _PRINTABLE_ASCII and unit.count(0) == width - 1)
            if units and ascii_units * 2 >= len(units):
                return f"{encoding}-{order}"
    return None


def unmarked_wide_text(name: str, encoding: str) -> SourceError:
    """The refusal of text that looks like `encoding` (`unmarked_wide_encoding`) but has no byte-order mark to say
    so, with the command that reads it in that encoding.

    >>> print(unmarked_wide_text("d.jsonl", "utf-16-le"))
    d.jsonl: looks like UTF-16-LE text without a byte-order mark (NUL bytes beside its ASCII characters); read it \
so: uv run inspect --dataset d.jsonl --encoding utf-16-le
    """
    return SourceError(f"{name}: looks like {encoding.upper()} text without a byte-order mark (NUL bytes beside its "
                       f"ASCII characters); read it so: uv run inspect --dataset {shlex.quote(name)} "
                       f"--encoding {encoding}")


def other_encoding(encoding: str | None) -> str | None:
    """The codec name of a text encoding other than UTF-8 (which is read as bytes), or None for UTF-8 or no
    encoding; `UsageError` for a name Python does not know.

    >>> other_encoding("MacRoman"), other_encoding("UTF8"), other_encoding("utf-8-sig"), other_encoding(None)
    ('mac-roman', None, None, None)
    """
    if encoding is None:
        return None
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise UsageError(f"--encoding {encoding}: unknown encoding (e.g. cp1252, mac_roman, latin_1)") from None
    return None if name in ("utf-8", "utf-8-sig") else name


class Utf8Transcoded(io.RawIOBase):
    """A binary stream of text in `encoding`, read as the same text in UTF-8 bytes, line endings kept.

    >>> Utf8Transcoded(io.BytesIO("caf\\u00e9\\r\\n".encode("mac_roman")), "mac_roman").read()
    b'caf\\xc3\\xa9\\r\\n'
    """

    def __init__(self, handle: BinaryIO, encoding: str):
        super().__init__()
        self._text = io.TextIOWrapper(handle, encoding=encoding, newline="")

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._text.read(size).encode()

    def readline(self, size: int = -1) -> bytes:
        return self._text.readline(size).encode()


@dataclass(frozen=True)
class Reading:
    """An encoding a line's bytes read as, with charset-normalizer's confidence (None: read as punctuation, see
    `proposed_reading`) and the first word they hold outside ASCII, as read."""

    encoding: str
    confidence: float | None
    word: str

    def __str__(self) -> str:
        why = "read as punctuation" if self.confidence is None else f"confidence {self.confidence:.2f}"
        return f"{self.encoding} ({why}: \"{self.word}\")"


def implausible_characters(text: str) -> int:
    """How many characters outside ASCII are unlikely in real text: a control character, an upper-case letter right
    after a lower-case one (`sisterÕs`), or a character that is neither letter nor punctuation between two letters
    (`przyk³adowe`). It tells apart readings charset-normalizer finds equally clean.

    >>> implausible_characters("sister’s café crème"), implausible_characters("sisterÕs przyk³adowe")
    (0, 2)
    """
    count = 0
    for index, char in enumerate(text):
        if char.isascii():
            continue
        before = text[index - 1] if index else " "
        after = text[index + 1] if index + 1 < len(text) else " "
        kind = unicodedata.category(char)[0]
        count += (kind == "C" or (char.isupper() and before.islower())
                  or (kind not in "LP" and before.isalpha() and after.isalpha()))
    return count


def punctuation_only(text: str) -> bool:
    """Whether every character of `text` outside ASCII is punctuation or a symbol (curly quotes, dashes, `€`).

    >>> punctuation_only("“hi” — 5€"), punctuation_only("ìhiî")
    (True, False)
    """
    return all(unicodedata.category(char)[0] in "PSZ" for char in text if not char.isascii())


def proposed_reading(line: bytes) -> Reading | None:
    """The legacy encoding the words of `line` outside ASCII read as most plausibly: charset-normalizer's readings
    of them (each encoding it finds them clean in), ranked by implausible characters, then by its measures, then
    by how common the encoding is; None when none reads them. Bytes that Windows-1252 reads as punctuation alone
    are English typed on Windows, its curly quotes and dashes (which charset-normalizer reads as Mac-Roman's `ì`,
    `î` and `ó`): Windows-1252, with no confidence of charset-normalizer's.

    >>> proposed_reading("my sister’s head".encode("mac_roman"))
    Reading(encoding='mac_roman', confidence=1.0, word='sister’s')
    >>> proposed_reading("crème brûlée".encode("cp1252")).encoding
    'cp1252'
    >>> proposed_reading("He said “hi” — ok".encode("cp1252"))
    Reading(encoding='cp1252', confidence=None, word='“hi”')
    """
    import charset_normalizer

    words = _NON_ASCII_WORDS.findall(line)
    if not words:  # an encoding failed on ASCII (a UTF-16 named for an 8-bit file): no legacy one is in question
        return None
    sample = b" ".join(words)
    windows = sample.decode("cp1252", "replace")
    if "\ufffd" not in windows and punctuation_only(windows):
        return Reading("cp1252", None, words[0].decode("cp1252"))
    matches = {encoding: match for match in charset_normalizer.from_bytes(sample, cp_isolation=list(LEGACY_ENCODINGS))
               for encoding in match.could_be_from_charset  # the encodings that read these bytes as the same text
               if encoding in LEGACY_ENCODINGS}
    if not matches:
        return None

    def rank(encoding: str) -> tuple:
        match = matches[encoding]
        return (implausible_characters(sample.decode(encoding)), round(match.chaos, 3), -match.coherence,
                LEGACY_ENCODINGS.index(encoding))

    best = min(matches, key=rank)
    return Reading(best, round(1 - matches[best].chaos, 2), words[0].decode(best))


class UndecodableLine(SourceError):
    """Line `number` of `name` does not decode in `encoding` (None: UTF-8; `line` holds its bytes, `error` the
    failure within them): one line naming the column, with the encoding the line reads as and the command that
    reads the file in it.

    >>> line = "my sister’s head".encode("mac_roman")
    >>> print(UndecodableLine("d.csv", 54, line, utf8_failure(line)))
    d.csv: line 54 is not UTF-8 (invalid continuation byte at column 10); it reads as mac_roman (confidence 1.00: \
"sister’s"): uv run inspect --dataset d.csv --encoding mac_roman
    """

    def __init__(self, name: str, number: int, line: bytes, error: UnicodeDecodeError, encoding: str | None = None):
        self.details = (name, number, line, error, encoding)
        column = len(line[:error.start].decode(encoding or "utf-8", "replace")) + 1
        message = f"{name}: line {number} is not {encoding or 'UTF-8'} ({error.reason} at column {column})"
        reading = proposed_reading(line)
        self.proposed = reading.encoding if reading is not None else None  # what a program retries with
        if reading is None:
            super().__init__(f"{message}; no common encoding reads it: name its encoding with --encoding")
            return
        super().__init__(f"{message}; it reads as {reading}: uv run inspect --dataset {shlex.quote(name)} "
                         f"--encoding {reading.encoding}")

    def __reduce__(self):  # raised in a worker process, it crosses to the parent pickled
        return type(self), self.details

    def after_lines(self, lines: int) -> UndecodableLine:
        """The same line numbered in a text `lines` lines longer at the start (a chunk's line in its file)."""
        name, number, *rest = self.details
        return UndecodableLine(name, number + lines, *rest)


def utf8_failure(data: bytes) -> UnicodeDecodeError | None:
    """Why `data` is not UTF-8, or None when it is.

    >>> utf8_failure(b"caf\\xe9 au lait").reason, utf8_failure(b"caf\\xc3\\xa9") is None
    ('invalid continuation byte', True)
    """
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return error
    return None


def undecodable_line(name: str, handle: BinaryIO, encoding: str | None = None) -> SourceError:
    """The error naming the first line of `handle` (read from where it stands, which should be its start) that does
    not decode in `encoding` (None: UTF-8). Only a file already known not to decode is searched so.

    >>> print(undecodable_line("d.csv", io.BytesIO(b"text\\nok\\ncaf\\xe9\\n")))  # doctest: +ELLIPSIS
    d.csv: line 3 is not UTF-8 (invalid continuation byte at column 4); it reads as cp1252 ...
    """
    decoder = codecs.getincrementaldecoder(encoding or "utf-8")()
    number, line = 0, b""
    for number, line in enumerate(handle, start=1):
        try:
            decoder.decode(line)
        except UnicodeDecodeError as error:
            return UndecodableLine(name, number, line, error, encoding)
    try:
        decoder.decode(b"", final=True)  # a sequence cut off by the end of the file
    except UnicodeDecodeError as error:
        return UndecodableLine(name, number, line, error, encoding)
    return SourceError(f"{name}: not {encoding or 'UTF-8'} text")


def not_utf8(name: str, number: int, line: bytes) -> UndecodableLine | None:
    """The error for line `number` of a UTF-8 file (its bytes `line`) when they are not UTF-8; None when they are,
    or when they only end inside a character: a line cut short (the end of a file cut off) is a broken row, its
    text no sign of another encoding.

    >>> not_utf8("d.jsonl", 3, '{"text": "café"}'.encode()[:-3]) is None
    True
    """
    failure = utf8_failure(line)
    if failure is None or failure.reason == "unexpected end of data":
        return None
    return UndecodableLine(name, number, line, failure)
