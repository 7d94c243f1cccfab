"""Text hygiene: what a text picked up on its way to the dataset, found in every message and answer (TP210-TP213).

- TP210 mojibake: UTF-8 read as Latin-1 or Windows-1252 (`CafÃ©` for `Café`, `itâ€™s` for `it's`). A pair of such
  characters is looked for first; ftfy's badness measure, which knows the legitimate uses of those characters,
  confirms it, and `convert --fix-text` repairs it with ftfy.
- TP211 replacement-character: U+FFFD, left where a decoder met bytes it could not read: the text is lost there.
- TP212 control-character: C0 controls other than tab and line breaks, DEL and C1 controls (terminal escapes,
  NUL bytes, form feeds from a PDF).
- TP213 html-leftover: HTML entities (`&amp;`, `&#39;`) and layout tags (`<br>`, `<p>`, `<div>`) outside code spans,
  left by a scraper or an export; the model learns to write them.

All are warnings: the text may be right (a lesson on HTML), and nothing is rewritten unless asked. `plainly_clean`
is the fast proof the scan's fast paths use: most texts are ASCII without `&` or `<`, and need no more than that.

>>> list(text_faults("CafÃ© au lait &amp; croissants", "messages[1].content"))
[('TP210', "messages[1].content looks like mojibake: 'CafÃ©' (ftfy reads 'Café')"), ('TP213', "messages[1].content holds HTML: '&amp;'")]
>>> list(text_faults("Use `&amp;` to write an ampersand in HTML.", "completion"))
[]
"""

from __future__ import annotations

import re
from collections.abc import Iterator

CONTROL = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_ASCII_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A UTF-8 lead byte read as Latin-1 (Â-ô), then a continuation byte read as Latin-1 or Windows-1252.
_MOJIBAKE_PAIR = "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc" \
                 "\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
_SUSPECT = re.compile(f"[{CONTROL}\ufffd]|{_MOJIBAKE_PAIR}")
_MOJIBAKE = re.compile(f"\\S*{_MOJIBAKE_PAIR}\\S*")
_CONTROL_CHAR = re.compile(f"[{CONTROL}]")
_HTML = re.compile(r"&(?:amp|lt|gt|quot|apos|nbsp|#\d{2,6}|#x[0-9a-fA-F]{2,5});"
                   r"|</?(?:br|p|div|span|li|ul|ol|b|i|em|strong|a|table|tr|td|th|h[1-6]|img|font)(?:\s[^<>]*)?/?>",
                   re.IGNORECASE)
_CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]+`", re.DOTALL)


def plainly_clean(text: str) -> bool:
    """True when no hygiene rule can fire on `text`, proven by cheap tests (most texts); False: run `text_faults`.

    >>> plainly_clean("Plain text,\\nover two lines."), plainly_clean("AT&T"), plainly_clean("naïve café")
    (True, False, True)
    """
    if "&" in text or "<" in text:
        return False
    if text.isascii():
        return text.isprintable() or not _ASCII_CONTROL.search(text)
    return not _SUSPECT.search(text)


def text_faults(text: str, where: str) -> Iterator[tuple[str, str]]:
    """The hygiene findings on one text, as (rule, detail)."""
    if plainly_clean(text):
        return
    mojibake = _MOJIBAKE.search(text)
    if mojibake and _is_bad(mojibake.group(0)):
        from ftfy import fix_text

        yield "TP210", f"{where} looks like mojibake: {mojibake.group(0)!r} (ftfy reads {fix_text(mojibake.group(0))!r})"
    lost = text.count("\ufffd")
    if lost:
        yield "TP211", f"{where} holds {lost} U+FFFD replacement character(s), where a decoder lost bytes"
    control = _CONTROL_CHAR.search(text)
    if control:
        yield "TP212", f"{where} holds the control character {control.group(0)!r} at character {control.start()}"
    if "&" in text or "<" in text:
        html = _HTML.search(_CODE.sub(" ", text) if "`" in text else text)
        if html:
            yield "TP213", f"{where} holds HTML: {html.group(0)!r}"


def _is_bad(text: str) -> bool:
    from ftfy.badness import is_bad

    return is_bad(text)


def fix_text(text: str) -> str:
    """What `convert --fix-text` writes: mojibake repaired by ftfy, control characters removed; entities and
    replacement characters are left, since only a person can say what they stood for.

    >>> fix_text("itâ€™s\\x00 fine")
    "it's fine"
    """
    from ftfy import TextFixerConfig, fix_text as ftfy_fix

    config = TextFixerConfig(unescape_html=False, fix_line_breaks=False, normalization=None, uncurl_quotes=False,
                             fix_latin_ligatures=False, fix_character_width=False, explain=False)
    return _CONTROL_CHAR.sub("", ftfy_fix(text, config))
