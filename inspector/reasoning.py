"""Reasoning traces in a turn: found, split from their answer, joined back, described; pure functions on strings
and message dicts (no transformers: inspecting a local file must not pay for it).

A trace is written in one of two forms. In the field form an assistant message carries it in `reasoning_content`
beside the answer in `content` (Qwen3's and DeepSeek-R1's templates read it; LLaMA-Factory v1 writes it). In the
inline form it opens `content` between markers: `<think>…</think>answer` (Qwen3, DeepSeek-R1), `<reasoning>…
</reasoning>` or `<|begin_of_thought|>…<|end_of_thought|>` (Bespoke-Stratos and OpenThoughts, whose answer then
sits between `<|begin_of_solution|>` and `<|end_of_solution|>`).

>>> split_trace("<think>a</think>b")
('a', 'b')
>>> join_trace("a", "b")
'<think>\\na\\n</think>\\n\\nb'
>>> split_trace(join_trace("a", "b"))
('a', 'b')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Each pair of markers: (opening, closing). `<think>` first: `join_trace` writes it.
MARKERS = (("<think>", "</think>"), ("<reasoning>", "</reasoning>"),
           ("<|begin_of_thought|>", "<|end_of_thought|>"))
SOLUTION = ("<|begin_of_solution|>", "<|end_of_solution|>")
_MARKER = re.compile("|".join(re.escape(marker) for pair in MARKERS for marker in pair))
_OPENING = dict(MARKERS)
_CLOSING = {closing: opening for opening, closing in MARKERS}

# The faults of a trace (`describe`'s `faults`), each a rule of `inspector.rules.reasoning`.
UNCLOSED = "unclosed"
EMPTY = "empty"
MISPLACED = "misplaced"
NO_ANSWER = "no answer"


def find_markers(text: str) -> list[tuple[str, int]]:
    """The trace markers in `text`, each with its position, in order.

    >>> find_markers("<think>a</think>b")
    [('<think>', 0), ('</think>', 8)]
    >>> find_markers("a < b, and no markers")
    []
    """
    if "<" not in text:  # every marker starts with `<`; most texts hold none
        return []
    return [(found.group(0), found.start()) for found in _MARKER.finditer(text)]


def _unsolved(answer: str) -> str:
    """The answer without the `<|begin_of_solution|>` markers around it, where they are."""
    opening, closing = SOLUTION
    stripped = answer.strip()
    if stripped.startswith(opening) and stripped.endswith(closing):
        return stripped[len(opening):-len(closing)].strip("\n")
    return answer


def split_trace(text: str) -> tuple[str | None, str]:
    """An inline trace and the answer after it, as Qwen3's template splits them: the trace between the first
    opening marker and its closing one, line breaks around it dropped; the answer after the closing marker (out of
    its `<|begin_of_solution|>` markers, if any), its leading line breaks dropped. (None, text) when `text` holds no
    closed trace.

    >>> split_trace("<|begin_of_thought|>\\nt\\n<|end_of_thought|>\\n\\n<|begin_of_solution|>\\ns\\n<|end_of_solution|>")
    ('t', 's')
    >>> split_trace("no trace"), split_trace("<think>never closed")
    ((None, 'no trace'), (None, '<think>never closed'))
    """
    return _split(text, find_markers(text))


def _split(text: str, markers: list[tuple[str, int]]) -> tuple[str | None, str]:
    """`split_trace` with the text's markers found already."""
    if not markers or markers[0][0] not in _OPENING:
        return None, text
    opening, start = markers[0]
    closing = _OPENING[opening]
    end = text.find(closing, start)
    if end < 0:
        return None, text
    trace = text[start + len(opening):end].strip("\n")
    return trace, _unsolved(text[end + len(closing):].lstrip("\n"))


def join_trace(trace: str, answer: str) -> str:
    """A field trace written back inline at the start of the answer, as Qwen3's template renders it.

    >>> join_trace("", "4")
    '<think>\\n\\n</think>\\n\\n4'
    """
    opening, closing = MARKERS[0]
    return f"{opening}\n{trace.strip(chr(10))}\n{closing}\n\n{answer}"


@dataclass(frozen=True)
class Trace:
    """A message's trace: its `form` ("field" or "inline"; None when it holds none), the trace and the answer (the
    trace None where an inline one is not closed), its `faults` (UNCLOSED, EMPTY, MISPLACED, NO_ANSWER) and a
    detail for each."""

    form: str | None
    trace: str | None
    answer: str
    faults: tuple[tuple[str, str], ...] = ()

    def has(self, fault: str) -> str | None:
        """The detail of `fault`, or None when the trace does not have it."""
        return next((detail for name, detail in self.faults if name == fault), None)


NO_TRACE = Trace(None, None, "")


def describe(message: Any) -> Trace:
    """The trace of one message (a dict with `content` and maybe `reasoning_content`, or an answer string).

    >>> describe({"role": "assistant", "content": "4", "reasoning_content": "2+2"})
    Trace(form='field', trace='2+2', answer='4', faults=())
    >>> describe({"role": "assistant", "content": "<think>\\n\\n</think>\\n\\n4"}).faults
    (('empty', 'an empty trace'),)
    >>> describe("So: <think>2+2</think>").faults
    (('misplaced', 'the trace starts at character 4, not at the start'), ('no answer', 'nothing after the trace'))
    >>> describe("<think>2+2").faults
    (('unclosed', "'<think>' is never closed"),)
    >>> describe("4") is NO_TRACE
    True
    """
    if isinstance(message, str):
        return describe_text(message)
    if not isinstance(message, dict):
        return NO_TRACE
    content = message.get("content")
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str):
        empty = () if reasoning.strip() else ((EMPTY, "an empty `reasoning_content`"),)
        return Trace("field", reasoning, content if isinstance(content, str) else "", empty)
    return describe_text(content) if isinstance(content, str) else NO_TRACE


def describe_text(text: str) -> Trace:
    """The inline trace of an answer text (see `describe`)."""
    markers = find_markers(text)
    if not markers:
        return NO_TRACE
    unclosed = _unbalanced(markers)
    if unclosed:
        return Trace("inline", None, text, ((UNCLOSED, unclosed),))
    trace, answer = _split(text, markers)
    faults = []
    if not trace.strip():
        faults.append((EMPTY, "an empty trace"))
    start = markers[0][1]
    if text[:start].strip():
        faults.append((MISPLACED, f"the trace starts at character {start}, not at the start"))
    if not answer.strip():
        faults.append((NO_ANSWER, "nothing after the trace"))
    return Trace("inline", trace, answer, tuple(faults))


def _unbalanced(markers: list[tuple[str, int]]) -> str | None:
    """What is wrong with the markers' nesting: an opening never closed, or a closing never opened."""
    open_markers: list[str] = []
    for marker, position in markers:
        if marker in _CLOSING:
            if not open_markers or open_markers[-1] != _CLOSING[marker]:
                return f"{marker!r} at character {position} closes no opening marker"
            open_markers.pop()
        else:
            open_markers.append(marker)
    return f"{open_markers[-1]!r} is never closed" if open_markers else None


def _movable(trace: Trace) -> bool:
    """Whether a trace can be moved or dropped without losing text or the answer: closed, opening its turn, and
    followed by an answer (an empty content would be another fault, TP201)."""
    return (trace.form is not None and trace.trace is not None and trace.has(MISPLACED) is None
            and trace.has(NO_ANSWER) is None)


def strip_trace(message: Any) -> Any:
    """The message (or answer string) without its trace, in either form (`convert --reasoning drop`); unchanged
    when it holds none, or one that is unclosed, misplaced (text before it would be lost) or without an answer.

    >>> strip_trace({"role": "assistant", "content": "<think>2+2</think>\\n\\n4"})
    {'role': 'assistant', 'content': '4'}
    >>> strip_trace("So: <think>2+2</think>4")
    'So: <think>2+2</think>4'
    """
    trace = describe(message)
    if not _movable(trace):
        return message
    if isinstance(message, str):
        return trace.answer
    stripped = {key: value for key, value in message.items() if key != "reasoning_content"}
    stripped["content"] = trace.answer
    return stripped


def as_form(message: dict, form: str) -> dict:
    """The message with its trace in `form`: "field" (`reasoning_content`), "inline" (`<think>` at the start of
    `content`: other markers become `<think>`, which templates split on) or "drop" (none). Unchanged when it holds
    no trace, one that cannot move (`strip_trace`), or has it so already.

    >>> as_form({"role": "assistant", "content": "<think>2+2</think>4"}, "field")
    {'role': 'assistant', 'content': '4', 'reasoning_content': '2+2'}
    >>> as_form({"role": "assistant", "content": "<reasoning>2+2</reasoning>4"}, "inline")["content"]
    '<think>\\n2+2\\n</think>\\n\\n4'
    >>> as_form({"role": "assistant", "content": "4", "reasoning_content": "2+2"}, "inline")
    {'role': 'assistant', 'content': '<think>\\n2+2\\n</think>\\n\\n4'}
    """
    trace = describe(message)
    if not _movable(trace) or (trace.form == form and (form == "field" or message["content"].startswith(MARKERS[0][0]))):
        return message
    stripped = strip_trace(message)
    if form == "field":
        return {**stripped, "reasoning_content": trace.trace}
    if form == "inline":
        return {**stripped, "content": join_trace(trace.trace, trace.answer)}
    return stripped
