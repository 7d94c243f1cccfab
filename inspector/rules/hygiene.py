"""Text hygiene: what a text picked up on its way to the dataset, found in every message and answer (TP210-TP213).

- TP210 mojibake: UTF-8 read as Latin-1 or Windows-1252 (`CafÃ©` for `Café`, `itâ€™s` for `it's`). A pair of such
  characters is looked for first; ftfy's badness measure, which knows the legitimate uses of those characters,
  confirms it, and `convert --fix-text` repairs it with ftfy.
- TP211 replacement-character: U+FFFD, left where a decoder met bytes it could not read: the text is lost there.
- TP212 control-character: C0 controls other than tab and line breaks, DEL and C1 controls (terminal escapes,
  NUL bytes, form feeds from a PDF).
- TP213 html-leftover: HTML entities (`&amp;`, `&#39;`) and layout tags (`<br>`, `<p>`, `<li>`) outside code spans,
  left by a scraper or an export; the model learns to write them. A text that builds a page or a table (`<div>`,
  `<table>`, `<html>`) writes HTML on purpose: only its entities count.

All are warnings: the text may be right (a lesson on HTML), and nothing is rewritten unless asked. `plainly_clean`
is the fast proof the scan's fast paths use: most texts are ASCII without `&` or `<`, and need no more than that.

>>> list(text_faults("CafÃ© au lait &amp; croissants", "messages[1].content"))
[('TP210', "messages[1].content looks like mojibake: 'CafÃ©' (ftfy reads 'Café')"), ('TP213', "messages[1].content holds HTML: '&amp;'")]
>>> list(text_faults("Use `&amp;` to write an ampersand in HTML.", "completion"))
[]
>>> list(text_faults("Here is your table:\\n<table>\\n  <tr><td>John</td></tr>\\n</table>", "completion"))
[]
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np

from trlprep.inspector.rules.catalog import WARNING, by_text, register, Rule
from trlprep.inspector.rules.examples import CHAT, USER, chat, flagged

# Code point ranges: C0 controls but tab and line breaks, DEL and C1; a UTF-8 lead byte read as Latin-1 (Â-ô); a
# continuation byte read as Latin-1 or Windows-1252.
CONTROL = ((0x00, 0x08), (0x0B, 0x0C), (0x0E, 0x1F), (0x7F, 0x9F))
LEAD = ((0xC2, 0xF4),)
CONTINUATION = ((0x80, 0xBF), (0x152, 0x153), (0x160, 0x161), (0x178, 0x178), (0x17D, 0x17E), (0x192, 0x192),
                (0x2C6, 0x2C6), (0x2DC, 0x2DC), (0x2013, 0x2014), (0x2018, 0x201E), (0x2020, 0x2022),
                (0x2026, 0x2026), (0x2030, 0x2030), (0x2039, 0x203A), (0x20AC, 0x20AC), (0x2122, 0x2122))


def _python(code: int) -> str:
    return f"\\U{code:08x}"


def _re2(code: int) -> str:
    return f"\\x{{{code:x}}}"


def _class(ranges: tuple[tuple[int, int], ...], escape=_python) -> str:
    return "[" + "".join(escape(a) if a == b else f"{escape(a)}-{escape(b)}" for a, b in ranges) + "]"


def suspect_pattern(escape=_python) -> str:
    """What `plainly_clean` looks for in a non-ASCII text, in Python's regex syntax, or (`escape=_re2`) in RE2's
    for pyarrow's `match_substring_regex`."""
    return f"{_class(CONTROL + ((0xFFFD, 0xFFFD),), escape)}|{_class(LEAD, escape)}{_class(CONTINUATION, escape)}"


SUSPECT_RE2 = suspect_pattern(_re2)
_SUSPECT = re.compile(suspect_pattern())
# One character class is searched four times as fast as the pattern's two branches: most texts have none of them.
_SUSPECT_FIRST = re.compile(_class(CONTROL + ((0xFFFD, 0xFFFD),) + LEAD))
_MOJIBAKE_PAIR = re.compile(f"{_class(LEAD)}{_class(CONTINUATION)}")
_CONTROL_CHAR = re.compile(_class(CONTROL))
# A control character in a JSON string is written as an escape (`\\u0000`-`\\u001f`, `\\b`, `\\f`, `\\u007f`) or
# is DEL itself: JSON bytes without one hold no control character in ASCII text (C1 controls are not ASCII).
CONTROL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\(?:[bf]|u00[01][0-9a-fA-F]|u007[fF])|\x7f")
_BACKSLASH, _ESCAPES_OF_CONTROLS = ord("\\"), np.frombuffer(b"bfu", np.uint8)


def control_escapes(json_bytes: bytes) -> bool:
    """Whether JSON text holds a control character. The exact search runs only where a backslash is followed by
    `b`, `f` or `u` (found with numpy: most JSON has only `\\n` and `\\"`), or DEL is there.

    >>> control_escapes(rb'{"a": "line\\nbreak, \\\\frac{1}{2}"}'), control_escapes(rb'{"a": "\\u001b[0m"}')
    (False, True)
    """
    if b"\x7f" not in json_bytes:
        if b"\\" not in json_bytes:
            return False
        data = np.frombuffer(json_bytes, np.uint8)
        if not np.isin(data[np.flatnonzero(data[:-1] == _BACKSLASH) + 1], _ESCAPES_OF_CONTROLS).any():
            return False
    return CONTROL_ESCAPE.search(json_bytes) is not None
_ENTITY = re.compile(r"&(?:amp|lt|gt|quot|apos|nbsp|#\d{2,6}|#x[0-9a-fA-F]{2,5});", re.IGNORECASE)
_TAG = re.compile(r"</?(?:br|p|div|span|li|ul|ol|b|i|em|strong|a|table|tr|td|th|h[1-6]|img|font)(?:\s[^<>]*)?/?>",
                  re.IGNORECASE)
# A text that builds a page or a table is HTML on purpose (an answer to "write an HTML table"): its tags are its
# content. Markup left in prose (ShareGPT's `<p>` and `<li>` from the chat page) has none of these.
_HTML_DOCUMENT = re.compile(r"<(?:!doctype|html|head|body|style|script|table|form|div)\b", re.IGNORECASE)
_CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]+`", re.DOTALL)


# JSON's `\\b` and `\\f` (and Python's `\\a`, `\\v`) are control characters: LaTeX written with one backslash
# too few loses it to them (`\\frac` becomes a form feed and `rac`). After such a character, these letters finish
# a LaTeX command, and `fix_text` gives its backslash back.
_ESCAPED_LETTER = {"\x07": "a", "\x08": "b", "\x0b": "v", "\x0c": "f"}
_LATEX_TAILS = {"a": "lpha|pprox|ngle|leph|rccos|rcsin|rctan", "b": "eta|oxed|inom|egin|ar|ig|old|ullet|ackslash",
                "f": "rac|orall|lat|box|rown", "v": "ec|arphi|arepsilon|artheta|dots|ee|ert|line"}
_EATEN_LATEX = re.compile("|".join(f"{re.escape(char)}(?:{_LATEX_TAILS[letter]})"
                                   for char, letter in _ESCAPED_LETTER.items()))


def plainly_clean(text: str) -> bool:
    """True when no hygiene rule can fire on `text`, proven by cheap tests (most texts); False: run `text_faults`.

    >>> plainly_clean("Plain text,\\nover two lines."), plainly_clean("AT&T"), plainly_clean("naïve café")
    (True, False, True)
    """
    if "&" in text or "<" in text:
        return False
    if text.isascii():
        return text.isprintable() or not _CONTROL_CHAR.search(text)
    return not _SUSPECT_FIRST.search(text) or not _SUSPECT.search(text)


def text_faults(text: str, where: str) -> Iterator[tuple[str, str]]:
    """The hygiene findings on one text, as (rule, detail)."""
    if plainly_clean(text):
        return
    pair = _MOJIBAKE_PAIR.search(text)
    if pair:
        word = _word_around(text, pair.start(), pair.end())
        if _is_bad(word):
            from ftfy import fix_text

            yield MOJIBAKE.id, f"{where} looks like mojibake: {word!r} (ftfy reads {fix_text(word)!r})"
    lost = text.count("\ufffd")
    if lost:
        yield REPLACEMENT_CHARACTER.id, f"{where} holds {lost} U+FFFD replacement character(s), where a decoder lost bytes"
    control = _CONTROL_CHAR.search(text)
    if control:
        said = f"{where} holds the control character {control.group(0)!r} at character {control.start()}"
        latex = _EATEN_LATEX.match(text, control.start())
        if latex:
            said += (f", where LaTeX's `\\{_ESCAPED_LETTER[latex.group(0)[0]]}{latex.group(0)[1:]}` lost its "
                     f"backslash to an escape")
        yield CONTROL_CHARACTER.id, said
    if "&" in text or "<" in text:
        prose = _CODE.sub(" ", text) if "`" in text else text
        html = _ENTITY.search(prose) or (None if _HTML_DOCUMENT.search(prose) else _TAG.search(prose))
        if html:
            yield HTML_LEFTOVER.id, f"{where} holds HTML: {html.group(0)!r}"


def _word_around(text: str, start: int, end: int, reach: int = 30) -> str:
    """The non-space run around text[start:end], at most `reach` characters each way."""
    left = text.rfind(" ", max(start - reach, 0), start) + 1 or max(start - reach, 0)
    right = text.find(" ", end, end + reach)
    return text[left:right if right >= 0 else min(end + reach, len(text))].strip()


def _is_bad(text: str) -> bool:
    from ftfy.badness import is_bad

    return is_bad(text)


def fix_text(text: str) -> str:
    """What `convert --fix-text` writes: mojibake repaired by ftfy (TP210); LaTeX's lost backslashes given back,
    then terminal escapes and the other control characters removed (TP212). Nothing else changes: replacement
    characters and entities are left (only a person can say what they stood for), and quotes, widths, ligatures,
    line breaks, invisible format characters and normalisation are kept as written.

    >>> fix_text("itâ€™s\\x00 \\x1b[1mfine\\x1b[0m")
    'it’s fine'
    >>> fix_text("\\\\(\\x0crac{1}{2}\\\\)")
    '\\\\(\\\\frac{1}{2}\\\\)'
    """
    from ftfy import TextFixerConfig
    from ftfy import fix_text as ftfy_fix_text

    config = TextFixerConfig(unescape_html=False, replace_lossy_sequences=False, fix_latin_ligatures=False,
                             fix_character_width=False, uncurl_quotes=False, fix_line_breaks=False,
                             remove_control_chars=False, normalization=None, explain=False)
    text = _EATEN_LATEX.sub(lambda eaten: "\\" + _ESCAPED_LETTER[eaten.group(0)[0]] + eaten.group(0)[1:], text)
    return _CONTROL_CHAR.sub("", ftfy_fix_text(text, config))


def _arrow_plainly_clean(texts):
    """`plainly_clean` over an Arrow string column: no `&`, no `<` and nothing the hygiene rules look for
    (`SUSPECT_RE2`), which a column of printable ASCII, tabs and line breaks cannot hold."""
    from trlprep.inspector.arrow import text_bytes, without

    found = text_bytes(texts)
    return without(texts, "&", "<") & found.not_matching(SUSPECT_RE2, not found.printable_ascii)


HYGIENE = by_text("a text the fast paths accept is plainly clean (`plainly_clean`); the JSON path looks for ASCII "
                  "control characters in the JSON bytes instead (`control_escapes`)", plainly_clean,
                  _arrow_plainly_clean)

MOJIBAKE = register(Rule("TP210", "mojibake", WARNING,
         "text decoded with the wrong encoding: UTF-8 read as Latin-1 or Windows-1252 (`CafÃ©` for `Café`, `itâ€™s` "
         "for `it’s`), as ftfy's badness measure confirms", "`convert --fix-text` repairs it with ftfy and counts "
         "the rows it changed", "field",
         why="the model learns to write the garbled characters, and the tokenizer spends several tokens on each",
         example=flagged(CHAT, chat(USER, {"role": "assistant", "content": "Itâ€™s 4, as in CafÃ© 4."})),
         proof=HYGIENE))

REPLACEMENT_CHARACTER = register(Rule("TP211", "replacement-character", WARNING,
         "text holds U+FFFD (�), left where a decoder met bytes it could not read", "re-export the text from its "
         "source with the right encoding: what was lost cannot be recovered from the row", "field",
         why="the model learns to write � where the words were",
         example=flagged(CHAT, chat(USER, {"role": "assistant", "content": "It is 4 \ufffd\ufffd."})),
         proof=HYGIENE))

CONTROL_CHARACTER = register(Rule("TP212", "control-character", WARNING,
         "text holds a control character (NUL, a terminal escape, a form feed, C1 controls; tab and line breaks "
         "aside), such as LaTeX's `\\frac` read as a JSON escape (a form feed, then `rac`)", "`convert --fix-text` "
         "removes them, and gives a LaTeX command its backslash back", "field",
         why="invisible in an editor, they are tokenized, trained on and generated",
         example=flagged(CHAT, chat(USER, {"role": "assistant", "content": "\x1b[1m4\x1b[0m"})),
         proof=HYGIENE))

HTML_LEFTOVER = register(Rule("TP213", "html-leftover", WARNING,
         "text holds HTML entities (`&amp;`, `&#39;`) or layout tags (`<br>`, `<p>`, `<div>`) outside code spans, "
         "left by a scraper or an export", "unescape and strip them where the data is exported (`html.unescape`); "
         "keep them where the text is about HTML", "field",
         why="the model learns to write markup and escaped characters in plain answers",
         example=flagged(CHAT, chat(USER, {"role": "assistant", "content": "It&#39;s 4.<br>Four."})),
         proof=HYGIENE))
