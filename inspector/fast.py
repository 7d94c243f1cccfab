"""Fast acceptance of clean rows of the common shapes: a typed decode in C (msgspec), then a few value tests.

A `FastPath` is built from one row that the full checks found clean; it accepts a row only when the row has
the same columns with the same value types, decodes into the shape's typed structure (known roles, string
contents, two keys per message) and passes the value tests (no blank text, no character that starts template
markup, system first, user and assistant alternating). Anything else is refused and takes the full path,
which finds and words the problem. A property test holds the two paths together.

An accepted row comes back as its content hash (the decoded structure's fields hashed as a tuple, in C): equal
content, equal hash, whatever the key order or spacing of the JSON. Python's string hashes are salted per
interpreter and the messages' struct hashes depend on their class; processes forked from one scan share both.
"""

from __future__ import annotations

import operator
import re
from typing import Any, Callable, Iterable, Iterator, Literal, NamedTuple

import msgspec
import msgspec.structs

from trlprep.inspector.dialects import Shape, is_id_column, shape_key, shared_prompt_length
from trlprep.inspector.rules import Proof, text_proofs, unproven_rules
from trlprep.inspector.rules.content import ASSISTANT_LINE, NO_FLATTENED_TURNS, NO_MARKUP, NO_PLACEHOLDER, NOT_BLANK
from trlprep.inspector.rules.hygiene import HYGIENE, control_escapes, plainly_clean
from trlprep.inspector.rules.reasoning import TRACE_MARKERS

Decoded = Any  # a msgspec Struct instance built for one set of columns


class Message(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    role: Literal["system", "user", "assistant"]
    content: str


class Turn(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    role: Literal["system", "human", "gpt"] = msgspec.field(name="from")
    content: str = msgspec.field(name="value")


# JSON value types the typed decode can hold a column to (orjson and pyarrow give these Python types); lists
# decode as tuples, which hash.
COLUMN_TYPES = {str: str, bool: bool, int: int, float: float, type(None): None, list: tuple, dict: dict}
MESSAGES = tuple[Message, ...]


def clean_text(text: str) -> bool:
    """Not blank, no `<` or `[` (either may start template markup such as `<|im_start|>` or `[INST]`), no `&`
    (HTML entities), no token-name placeholder (`_token`), no assistant's name before a colon at a line start (a
    conversation typed as text), and plainly clean of what else the hygiene rules look for
    (`hygiene.plainly_clean`) when not ASCII; ASCII control characters are looked for in the JSON the text came in
    (`FastPath`).

    >>> clean_text("4"), clean_text(" "), clean_text("<|im_end|>"), clean_text("CafÃ©"), clean_text("Bot: hi")
    (True, False, False, False, False)
    """
    return (bool(text) and not text.isspace() and "<" not in text and "[" not in text and "&" not in text
            and ("_" not in text or ("_token" not in text and "_TOKEN" not in text))
            and (":" not in text or not ASSISTANT_LINE.search(text))
            and (text.isascii() or plainly_clean(text)))


def clean_turns(messages: list, answer_role: str = "assistant") -> bool:
    """Clean texts, system only first, the other roles alternating, the last message an answer.

    >>> clean_turns([Message("user", "2+2?"), Message("assistant", "4")])
    True
    >>> clean_turns([Message("user", "2+2?"), Message("user", "4")])
    False
    """
    previous = None
    for message in messages:
        text = message.content  # clean_text, inlined: this loop is the hot path of a scan
        if not text or text.isspace() or "<" in text or "[" in text or "&" in text:
            return False
        # One character first, which a text seldom holds: what follows it is slower to look for.
        if ("_" in text and ("_token" in text or "_TOKEN" in text)) or (":" in text and ASSISTANT_LINE.search(text)):
            return False
        if not text.isascii() and not plainly_clean(text):
            return False
        role = message.role
        if role == previous or (role == "system" and previous is not None):
            return False
        previous = role
    return previous == answer_role


def _one_answer(side: list) -> bool:
    return len(side) == 1 and side[0].role == "assistant"


def _chat(row: Decoded) -> bool:
    return len(row.messages) > 1 and clean_turns(row.messages)  # an answer alone has no prompt (TC102)


def _sharegpt(row: Decoded) -> bool:
    return len(row.conversations) > 1 and clean_turns(row.conversations, "gpt")


def _text(row: Decoded) -> bool:
    return clean_text(row.text) and "Human:" not in row.text


def _prompt_completion_standard(row: Decoded) -> bool:
    return clean_text(row.prompt) and clean_text(row.completion)


def _prompt_completion_chat(row: Decoded) -> bool:
    return bool(row.prompt) and _one_answer(row.completion) and clean_turns(row.prompt + row.completion)


def _preference_standard(row: Decoded) -> bool:
    return (clean_text(row.prompt) and clean_text(row.chosen) and clean_text(row.rejected)
            and row.chosen != row.rejected)


def _implicit_preference_chat(row: Decoded) -> bool:
    chosen, rejected = row.chosen, row.rejected
    return (chosen[: len(rejected)] != rejected and rejected[: len(chosen)] != chosen  # neither a prefix
            and clean_turns(chosen) and clean_turns(rejected) and shared_prompt_length(chosen, rejected) > 0)


def _preference_chat(row: Decoded) -> bool:
    return (bool(row.prompt) and _one_answer(row.chosen) and _one_answer(row.rejected)
            and row.chosen != row.rejected
            and clean_turns(row.prompt + row.chosen) and clean_turns(row.prompt + row.rejected))


# The text proofs the value tests run fused into `clean_text` and `clean_turns` (a test holds the fusion to the
# proofs' own predicates); any other rule's text proof runs after them on every text (`with_text_proofs`).
FUSED_TEXT_PROOFS = (NOT_BLANK, NO_MARKUP, HYGIENE, TRACE_MARKERS,  # no `<`: no trace marker
                     NO_PLACEHOLDER, NO_FLATTENED_TURNS)


def other_text_proofs() -> tuple[Proof, ...]:
    """The catalog's text proofs that are not fused into the value tests."""
    return tuple(proof for proof in text_proofs() if proof not in FUSED_TEXT_PROOFS)


def proves_every_rule(shape: Shape, columns: Iterable[str]) -> bool:
    """Whether the fast paths prove every row rule of the catalog that applies to rows of `shape` with exactly
    these `columns` (the only rows a fast path takes), each as its entry's `proof` says: while one is not, rows of
    the shape take the full checks (`inspector.rules.unproven_rules` names it)."""
    return not unproven_rules(shape.type, columns)


def _texts(row: Decoded, columns: tuple[str, ...]) -> Iterator[str]:
    """The texts the value tests read in a decoded row: its string columns and its messages' contents."""
    for name in columns:
        value = getattr(row, name)
        if isinstance(value, str):
            yield value
        else:
            for message in value:
                yield message.content


def with_text_proofs(test: Callable[[Decoded], bool], columns: tuple[str, ...],
                     proofs: tuple[Proof, ...]) -> Callable[[Decoded], bool]:
    """`test`, then each of `proofs` on every text of the row's `columns` (each text test once, however many rules
    share it; plain loops, which every accepted row runs through)."""
    checks = tuple(dict.fromkeys(proof.text for proof in proofs))

    def tested(row: Decoded) -> bool:
        if not test(row):
            return False
        for text in _texts(row, columns):
            for check in checks:
                if not check(text):
                    return False
        return True

    return tested


# shape_key -> (column types, value tests)
_SHAPES: dict[tuple, tuple[dict[str, Any], Callable[[Decoded], bool]]] = {
    ("trl", "language_modeling", "conversational", False, ("messages",)): ({"messages": MESSAGES}, _chat),
    ("sharegpt", "language_modeling", "conversational", False, ("conversations",)): (
        {"conversations": tuple[Turn, ...]}, _sharegpt),
    ("trl", "language_modeling", "standard", False, ("text",)): ({"text": str}, _text),
    ("trl", "prompt_completion", "standard", False, ("prompt", "completion")): (
        {"prompt": str, "completion": str}, _prompt_completion_standard),
    ("trl", "prompt_completion", "conversational", False, ("prompt", "completion")): (
        {"prompt": MESSAGES, "completion": MESSAGES}, _prompt_completion_chat),
    ("trl", "preference", "standard", False, ("prompt", "chosen", "rejected")): (
        {"prompt": str, "chosen": str, "rejected": str}, _preference_standard),
    ("trl", "preference", "conversational", False, ("prompt", "chosen", "rejected")): (
        {"prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES}, _preference_chat),
    ("trl", "preference", "conversational", True, ("chosen", "rejected")): (
        {"chosen": MESSAGES, "rejected": MESSAGES}, _implicit_preference_chat),
}


# A row's struct type is built per scan, and a struct's own hash depends on its type: a row's fields are hashed as a
# tuple. Its messages are structs too (`Message`, `Turn`), whose hash is their type's identity mixed with their
# fields', so only processes forked from one that built those types agree on it (the parallel scan's workers).
# Scans in processes of their own (the sharded tasks, `inspector.shards`) hash each row's msgpack encoding
# instead, which any two interpreters with one PYTHONHASHSEED agree on, at 2x the hashing's cost.
_ENCODE = msgspec.msgpack.Encoder(order="sorted").encode
_stable = False


def hash_rows_stably() -> None:
    """From now on in this process, content hashes that other interpreters agree on (see `_ENCODE`)."""
    global _stable
    _stable = True


def _plain_hashes(rows: Iterable[Decoded]) -> list[int]:
    """Content hashes of decoded rows, in C."""
    if _stable:
        return list(map(hash, map(_ENCODE, rows)))
    return list(map(hash, map(msgspec.structs.astuple, rows)))


def _content_hashes(fields_of: Callable[[tuple], Any]) -> Callable[[Iterable[Decoded]], list[int]]:
    """`_plain_hashes` over the fields `fields_of` picks from each row's fields, for rows whose extra columns may
    hold objects (dicts do not hash): those are hashed by their JSON encoding."""
    def hashes(rows: Iterable[Decoded]) -> list[int]:
        out = []
        for row in rows:
            fields = fields_of(msgspec.structs.astuple(row))
            try:
                out.append(hash(_ENCODE(fields) if _stable else fields))
            except TypeError:
                out.append(hash(msgspec.json.encode(fields, order="sorted")))
        return out

    return hashes


_any_hashes = _content_hashes(lambda fields: fields)


class Typed(NamedTuple):
    """The fast path's verdict on a row that decodes into its typed structure."""

    hash: int  # the row's content hash, clean or not
    clean: bool  # the fast path accepts it
    # Every text of it passes every rule's text proof, and its JSON holds no control character: then, refused or
    # not, no rule proven by text or by the structure can flag it (`inspector.decision.TypedChecks`).
    texts_clean: bool


class Verdicts(NamedTuple):
    """The fast path's verdicts on JSON lines that all decode into its typed structure (`Typed`'s, a list each)."""

    hashes: list[int]
    clean: list[bool]
    texts_clean: list[bool]


# What msgspec refuses in the JSON name of a struct's field: such a column is checked row by row.
_UNSTRUCTURABLE = re.compile(r'[\\"\x00-\x1f]')


class FastPath:
    """Accepts clean rows of `shape` whose columns and value types are those of `example`; an accepted row
    comes back as its content hash, a refused one as None.

    >>> from trlprep.inspector.dialects import classify_row
    >>> example = {"text": "plain", "id": 1}
    >>> fast = FastPath.for_row(classify_row(example), example)
    >>> fast.line(b'{"text": "more", "id": "2"}'), fast.line(b'{"text": " ", "id": 2}')
    (None, None)
    >>> fast.line(b'{"text": "more", "id": 2}') == fast.value({"id": 2, "text": "more"})
    True
    """

    def __init__(self, example: dict, typed: dict[str, Any], test: Callable[[Decoded], bool]):
        # Columns the test reads keep their names; the others get generated ones (any string is a column name).
        attributes = {name if name in typed else f"c{i}": name for i, name in enumerate(example)}
        fields = [(a, typed.get(name) or COLUMN_TYPES[type(example[name])]) for a, name in attributes.items()]
        self._row_type = msgspec.defstruct("Row", fields, rename=attributes, forbid_unknown_fields=True,
                                           frozen=True, gc=False)
        # The columns the test does not read: attribute -> column name.
        self.extras = {a: name for a, name in attributes.items() if name not in typed}
        self._decoder = msgspec.json.Decoder(self._row_type)
        others = other_text_proofs()
        self._test = with_text_proofs(test, tuple(typed), others) if others else test
        self._texts = with_text_proofs(lambda row: all(map(clean_text, _texts(row, tuple(typed)))), tuple(typed),
                                       others)
        plain = all(type(value) not in (list, dict) for name, value in example.items() if name not in typed)
        self._hashes = _plain_hashes if plain else _any_hashes
        # Rows that differ only in id-like columns repeat: those fields are left out of the hash.
        content = [i for i, name in enumerate(example) if not is_id_column(name)]
        if len(content) < len(example):
            self._hashes = _content_hashes(operator.itemgetter(*content))
        # What the scan counts for each accepted row: its columns and their value types.
        self.signature = (tuple(example), tuple(map(type, example.values())))

    @classmethod
    def for_row(cls, shape: Shape | None, example: dict) -> FastPath | None:
        """The fast path for rows like `example` (a clean row of `shape`), or None when the shape has none."""
        if shape is None or shape.reads_images:  # each image is checked row by row
            return None
        if any(_UNSTRUCTURABLE.search(name) for name in example):  # no msgspec field can be named so
            return None
        known = _SHAPES.get(shape_key(shape))
        if known is None or any(type(value) not in COLUMN_TYPES for value in example.values()):
            return None
        if any(f.name in example and f.name not in known[0] for f in shape.fields):
            return None  # an optional column the shape reads (a `system` prompt) that the typed structure does not

        if not proves_every_rule(shape, example):
            return None
        return cls(example, *known)

    def clean(self, line: bytes) -> Decoded | None:
        """A JSON line decoded, if it is a clean row of the shape; the shape's columns are attributes of the same
        name, the others are named in `extras`."""
        try:
            row = self._decoder.decode(line)
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):  # the last: not UTF-8
            return None
        return row if self._test(row) and not control_escapes(line) else None

    def line(self, line: bytes) -> int | None:
        """A JSON line's content hash if it is a clean row of the shape, else None."""
        verdicts = self.block(line, 1)
        return verdicts.hashes[0] if verdicts is not None and verdicts.clean[0] else None

    def block(self, block: bytes, lines: int) -> Verdicts | None:
        """The verdicts on a block of `lines` JSON lines, decoded in one call: a block of clean rows costs no
        Python code per row but the value tests. None when some line does not decode into the shape's
        structure (or is blank, and the numbering would be lost): then each line needs its own call."""
        try:
            rows = self._decoder.decode_lines(block)
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):  # the last: not UTF-8
            return None
        if len(rows) != lines:
            return None
        tested = list(map(self._test, rows))
        texts_clean = [clean or self._texts(row) for clean, row in zip(tested, rows)]
        if control_escapes(block):
            escaped = [control_escapes(line) for line in block.split(b"\n")]
            tested = [clean and not escapes for clean, escapes in zip(tested, escaped)]
            texts_clean = [clean and not escapes for clean, escapes in zip(texts_clean, escaped)]
        return Verdicts(self._hashes(rows), tested, texts_clean)

    def judge(self, row: dict) -> Typed | None:
        """The verdict on a decoded row, or None when it does not have the fast path's columns and types."""
        try:
            typed = msgspec.convert(row, self._row_type)
        except msgspec.ValidationError:
            return None
        clean = self._test(typed)
        texts_clean = clean or self._texts(typed)
        if texts_clean and control_escapes(msgspec.json.encode(row)):
            clean = texts_clean = False
        return Typed(self._hashes((typed,))[0], clean, texts_clean)

    def value(self, row: dict) -> int | None:
        """A decoded row's content hash if it is a clean row of the shape, else None."""
        typed = self.judge(row)
        return typed.hash if typed is not None and typed.clean else None

    def content_hash(self, row: dict) -> int | None:
        """The hash an accepted row with this content would have, clean or not; None when the row does not
        have the fast path's columns and types."""
        try:
            return self._hashes((msgspec.convert(row, self._row_type),))[0]
        except msgspec.ValidationError:
            return None
