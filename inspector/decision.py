"""One decision per row, read by `inspect` and `convert` alike.

`decide` reads a row against the dataset's shape: every finding (for the report), whether it breaks an error rule
as it is (so the data is not ready), the repairs `convert` makes, and the row read as its TRL type. `rejection`
then says, for one method, whether `convert --to` keeps the row or rejects it and by which rule. `inspect` counts
the rejections of every method into its verdicts; `convert` acts on those of its method; a test holds the two
together on every file of shared data.

>>> u, a = {"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}
>>> engine = Engine(classify_row({"prompt": [u], "completion": [a], "label": True}))
>>> decision = engine.decide({"prompt": [u], "completion": [a], "label": "false"})
>>> decision.issues, decision.repairs, decision.error
([('TP110', "label is 'false' (a string), expected true or false")], ('TP110',), True)
>>> engine.rejection(decision, "kto"), engine.rejection(decision, "sft")
(None, ('TC101', 'label is false'))
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Iterable

from trlprep.inspector.checks import Issue, check_fields, check_row
from trlprep.inspector.dialects import Shape, classify_row, shape_key
from trlprep.inspector.images import ImageChecker
from trlprep.inspector.methods import BASE_METHODS, METHOD, METHODS
from trlprep.inspector.rules import ERROR, RULES, Rule, declared_checks, method_checks, rejecting_rules
from trlprep.inspector.sources import DuplicateKeys, UnreadableRow
from trlprep.inspector.vision import holds_images, read_images
from trlprep.inspector.rules.content import NO_ASSISTANT_TURN
from trlprep.inspector.rules.dataset import MIXED_SHAPE
from trlprep.inspector.rules.images import NOT_VISION_SHAPE, check_images
from trlprep.inspector.rules.read import DUPLICATE_KEY, INVALID_JSON
from trlprep.inspector.rules.tools import TOOL_CALLS_NOT_CANONICAL
from trlprep.inspector.rules.structure import LABEL_NOT_BOOLEAN, MIXED_DATASET_FORMAT, MIXED_ROW_FORMAT, NOT_AN_OBJECT

TYPE_NAMES = {str: "string", list: "list", dict: "object", bool: "boolean", int: "number", float: "number",
              type(None): "null"}
LABEL_WORDS = {"true": True, "false": False, "1": True, "0": False, 1: True, 0: False}


def coerce_label(value: Any) -> Any:
    """KTO labels written as "true"/"false" or 1/0, as booleans; anything else unchanged.

    >>> coerce_label("True"), coerce_label(0), coerce_label("maybe")
    (True, False, 'maybe')
    """
    if isinstance(value, bool):
        return value
    key = value.strip().lower() if isinstance(value, str) else value
    try:
        return LABEL_WORDS.get(key, value)
    except TypeError:  # unhashable values are left for the checks to report
        return value


def as_conversational(row: dict) -> dict:
    """A standard TRL row's strings wrapped as messages: the prompt as a user turn, answers as assistant turns.

    >>> as_conversational({"prompt": "Q", "chosen": [{"role": "assistant", "content": "A"}]})
    {'prompt': [{'role': 'user', 'content': 'Q'}], 'chosen': [{'role': 'assistant', 'content': 'A'}]}
    """
    out = dict(row)
    if isinstance(out.get("prompt"), str):
        out["prompt"] = [{"role": "user", "content": out["prompt"]}]
    for key in ("completion", "chosen", "rejected"):
        if isinstance(out.get(key), str):
            out[key] = [{"role": "assistant", "content": out[key]}]
    return out


def repair(row: dict, shape: Shape, expected: Shape, issues: list[Issue]) -> tuple[dict, tuple[str, ...]]:
    """The row with what `convert` repairs fixed, and the rules repaired: string or 0/1 KTO labels (TP110), a
    string prompt beside message lists (TP107), a standard row in a conversational dataset (TP108)."""
    found = {rule for rule, _ in issues}
    repaired = []
    if LABEL_NOT_BOOLEAN.id in found:
        labels = {f.name: coerce_label(row.get(f.name)) for f in shape.fields if f.kind == "label"}
        if all(isinstance(label, bool) for label in labels.values()):
            row = {**row, **labels}
            repaired.append(LABEL_NOT_BOOLEAN.id)
    if shape.dialect == "trl" and (MIXED_ROW_FORMAT.id in found or MIXED_DATASET_FORMAT.id in found):
        row = as_conversational(row)
        repaired += sorted(found & {MIXED_ROW_FORMAT.id, MIXED_DATASET_FORMAT.id})
    return row, tuple(repaired)


def rewritten(issues: list[Issue]) -> tuple[str, ...]:
    """The repairs that reading a row as its TRL type makes: its tool calls put in canonical form (TP605)."""
    return (TOOL_CALLS_NOT_CANONICAL.id,) if any(rule == TOOL_CALLS_NOT_CANONICAL.id for rule, _ in issues) else ()


@dataclass
class Decision:
    """What one row is: its findings, and how it is read and repaired."""

    issues: list[Issue]  # every finding, as the row is written
    error: bool  # it breaks an error rule as it is written
    shape: Shape | None = None  # the shape it is read as, after repairs
    trl_row: dict | None = None  # read as its TRL type, after repairs; None when it cannot be
    repairs: tuple[str, ...] = ()
    remaining: list[Issue] | None = None  # the findings left after the repairs (None: the same as `issues`)
    written: Shape | None = None  # the shape of the row as written, before repairs (None: `shape`, or none)
    method_checks_left: dict[str, tuple[Rule, ...]] | None = None  # by method (None: every one of its type)
    image_digests: list[bytes] | None = None  # of its readable images, in order

    @property
    def written_shape(self) -> Shape | None:
        return self.written or self.shape

    @property
    def left(self) -> list[Issue]:
        return self.issues if self.remaining is None else self.remaining


def _unread(rule: str, detail: str, issues: list[Issue] | None = None) -> Decision:
    issues = (issues or []) + [(rule, detail)]
    return Decision(issues, True, remaining=issues)


@dataclass(frozen=True)
class TypedChecks:
    """The checks of their own left to run on a row that decoded into a fast path's typed structure (its exact
    columns and value types, known roles, string contents) but failed its value tests: those of the rules that
    structure does not prove (`Rule.proven_by_structure`), nor, when every text of the row passes every text
    proof (`texts_clean`), the rules proven by text. Only a row read as the fast path's shape has them."""

    key: tuple  # the fast path's shape_key
    declared: tuple[Rule, ...]  # stage "trl"
    by_method: dict[str, tuple[Rule, ...]]  # stage "method"
    texts_clean: bool  # the texts need not take the text rules either

    @classmethod
    def of(cls, shape: Shape, columns: Iterable[str], texts_clean: bool = False) -> TypedChecks:
        """Those of rows of `shape` with exactly these `columns` (and texts that pass every text proof)."""
        columns = tuple(columns)

        def left(rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
            return tuple(rule for rule in rules if not (rule.proven_by_structure(columns)
                                                        or (texts_clean and rule.proof.how == "text")))

        return cls(shape_key(shape), left(declared_checks(shape.type)),
                   {method: left(own_checks(method, shape.type)) for method in decided_methods()}, texts_clean)


@functools.cache
def decided_methods() -> tuple[str, ...]:
    """The methods whose rows are decided on their own: those with data of their own, and those that take another's
    with rules of their own beside its (TPO's `reference`); every other method's decision is its base's.

    >>> decided_methods()[5:]
    ('tpo', 'sdft')
    """
    named = {method for rule in RULES.values() for method in rule.methods or ()}
    return BASE_METHODS + tuple(m for m in METHODS if METHOD[m].data_as and m in named)


@functools.cache
def own_checks(method: str, data_type: str) -> tuple[Rule, ...]:
    """The stage "method" rules of a decided method: its base's, then its own."""
    base = METHOD[method].base
    return method_checks(base, data_type) + (method_checks(method, data_type) if method != base else ())


class Engine:
    """Decisions on rows of a dataset whose shape is `expected` (found from its first rows); the images of image
    rows are checked by `images` (an `inspector.images.ImageChecker`: paths read against the current folder when
    none is given); `image_data` says whether the whole dataset is image data when it is not `expected`'s."""

    def __init__(self, expected: Shape | None, images: ImageChecker | None = None, image_data: bool | None = None):
        self.expected = expected
        self.expected_key = shape_key(expected) if expected is not None else None
        self.rejecting = {method: rejecting_rules(method) | rejecting_rules(METHOD[method].base)
                          for method in decided_methods()}
        # Whether the dataset is image data, as TRL decides it from its first row: that of the whole dataset when
        # its files are read apart (`image_data`), since `convert` writes them into one output.
        self.image_data = image_data if image_data is not None else expected is not None and expected.reads_images
        self.images = images if images is not None else ImageChecker(None)

    def decide(self, value: Any, shape: Any = None, typed: TypedChecks | None = None) -> Decision:
        """The decision on one row as read from the source (`shape` when it is classified already; `typed`, the
        checks left to run when it decoded into a fast path's typed structure)."""
        if isinstance(value, UnreadableRow):
            return _unread(INVALID_JSON.id, value.error)
        read_issues: list[Issue] = []
        if isinstance(value, DuplicateKeys):
            read_issues.append((DUPLICATE_KEY.id, f"key(s) {', '.join(value.keys)} repeated; the last value is used"))
            value = value.row
        if not isinstance(value, dict):
            return _unread(NOT_AN_OBJECT.id, f"the row is {TYPE_NAMES.get(type(value), type(value).__name__)}", read_issues)
        if self.image_data or holds_images(value):  # read with its images placed, each image checked
            placement = read_images(value)
            image_issues, digests = check_images(placement, self.images, self.image_data)
            decision = self._read(placement.row, None, None, read_issues + image_issues)
            decision.image_digests = digests
            if placement.rewrites:  # what `convert` rewrites into TRL's vision shape counts as a repair
                decision.repairs = (NOT_VISION_SHAPE.id,) + decision.repairs
            return decision
        return self._read(value, shape, typed, read_issues)

    def _read(self, value: dict, shape: Any, typed: TypedChecks | None, read_issues: list[Issue]) -> Decision:
        """The decision on a row that is an object, after the findings of its reading (`read_issues`)."""
        if shape is None:
            shape = classify_row(value)
        if shape is None:
            fields = check_fields(value, self.expected) if self.expected is not None else []
            issues = read_issues + (fields or [(MIXED_SHAPE.id, "the row fits no known dataset shape")])
            return Decision(issues, True, remaining=issues)
        key = shape_key(shape)
        if typed is not None and key != typed.key:
            typed = None  # read as another shape than the fast path's: its structure proves nothing of it
        if typed is None:
            issues, trl_row = check_row(value, shape)
        else:
            issues, trl_row = check_row(value, shape, typed.declared, texts=not typed.texts_clean)
        issues = read_issues + issues
        if self.expected is not None and key != self.expected_key:
            issues.append(disagreement(self.expected, shape))
        error = any(RULES[rule].severity == ERROR for rule, _ in issues)
        left_to_check = typed.by_method if typed is not None else None
        if not error:
            return Decision(issues, False, shape, trl_row, rewritten(issues), method_checks_left=left_to_check)
        fixed, repairs = repair(value, shape, self.expected or shape, issues)
        if not repairs:
            return Decision(issues, True, shape, trl_row, rewritten(issues), method_checks_left=left_to_check)
        fixed_shape = classify_row(fixed)
        remaining, fixed_trl = check_row(fixed, fixed_shape)
        remaining = read_issues + remaining
        if shape_key(fixed_shape) != self.expected_key:
            remaining.append(disagreement(self.expected, fixed_shape))
        return Decision(issues, True, fixed_shape, fixed_trl, repairs + rewritten(remaining), remaining, written=shape)

    def rejection(self, decision: Decision, method: str) -> Issue | None:
        """Why `convert --to method` rejects the row, or None when it keeps it (by the rules of the method whose
        data it takes)."""
        method = method if method in self.rejecting else METHOD[method].base
        rejecting = self.rejecting[method]
        for rule, detail in decision.left:
            if rule in rejecting:
                return rule, detail
        if decision.trl_row is None:  # unreadable without an error rule: cannot happen, but never kept
            return decision.left[0] if decision.left else (MIXED_SHAPE.id, "the row cannot be read")
        checks = decision.method_checks_left
        for rule in own_checks(method, decision.shape.type) if checks is None else checks[method]:
            for detail in rule.check(decision.trl_row, decision.shape):
                return rule.id, detail
        return None


def disagreement(main: Shape, other: Shape) -> Issue:
    """The rule a row of shape `other` breaks in a dataset of shape `main`: TP108 when only the format
    differs, TP204 for a conversation of user turns only among answered ones, TP404 otherwise."""
    if (other.dialect, other.type) == (main.dialect, main.type) and other.format != main.format:
        return MIXED_DATASET_FORMAT.id, f"{other.format} row in a {main.format} dataset"
    if other.type == "prompt_only" and main.type != "prompt_only" and other.format == "conversational":
        return NO_ASSISTANT_TURN.id, f"{other.columns[0]}: no assistant turn"
    return MIXED_SHAPE.id, (f"{other.dialect} {other.type} row ({', '.join(other.columns)}) in a {main.dialect} "
                     f"{main.type} dataset ({', '.join(main.columns)})")
