"""The catalog's machinery: what a rule is, how it is registered, and what the rest of trlprep derives from it.

A rule is one `Rule` entry, registered by the module of its family (`inspector/rules/*.py`): its id, name,
severity, docs, example, its check, and how the fast paths prove that a row they accept does not break it
(`Proof`). Everything else reads the registry: the checks that stop a row from being read as its TRL type
(`blocking`), the rules the JSON Schemas express (`structural`), the docs' rule table (`markdown_table`),
`inspect --explain`, and the fast paths, which take a row only when every rule that could fire on it is proven
(`unproven_rules`).

>>> from trlprep.inspector.rules import RULES
>>> RULES["TP301"].name, RULES["TP301"].severity
('chosen-equals-rejected', 'error')
>>> sorted(r.id for r in RULES.values() if r.blocking)[:3]
['TP001', 'TP002', 'TP101']
"""

from __future__ import annotations

import functools
import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from trlprep.errors import UsageError

ERROR = "error"
WARNING = "warning"
# Where a rule's check runs: reading the row, its own columns, the row read as its TRL type, the whole dataset,
# the conversion for one method, the model's tokenizer, or the converted row (a guard).
STAGES = ("read", "field", "trl", "dataset", "method", "tokens", "output")
# The stages whose rules look at one row, before or after it is read as its TRL type: a fast path that skips a
# row's checks must prove each of them.
ROW_STAGES = ("read", "field", "trl", "method")


@dataclass(frozen=True)
class Example:
    """Rows as written to a JSON-lines file (objects, or raw strings for broken lines) and the line numbers the
    rule reports; the test suite runs every example."""

    rows: tuple
    flagged: tuple[int, ...]


@dataclass(frozen=True, eq=False)  # one proof may serve several rules; two proofs are never the same
class Proof:
    """How the fast paths prove, without running a rule's check, that a row they accept does not break it.

    - `structure`: the typed decode (JSON lines) or the column plan (Arrow) takes only rows of a fast shape's exact
      columns and value types, with known roles and string contents, and no such row can break the rule;
    - `value tests`: the fast shapes' turn and pair tests (`inspector.fast`, `inspector.columnar`) refuse every
      row that could;
    - `text`: `text(t)` is true of every text `t` that cannot break the rule, and `arrow(column)` is the same test
      over an Arrow string column (a numpy mask of the texts proven clean). The fast paths run it on every text
      they accept: a rule with a text proof keeps them whatever it checks;
    - `none`: nothing proves it; a shape whose rows can break it takes the full checks, row by row.
    """

    how: str
    reason: str
    text: Callable[[str], bool] | None = None
    arrow: Callable[[Any], Any] | None = None


def by_structure(reason: str) -> Proof:
    return Proof("structure", reason)


def by_value_tests(reason: str) -> Proof:
    return Proof("value tests", reason)


def by_text(reason: str, text: Callable[[str], bool], arrow: Callable[[Any], Any]) -> Proof:
    return Proof("text", reason, text, arrow)


def unproven(reason: str) -> Proof:
    return Proof("none", reason)


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: str
    summary: str  # what it catches, one line
    fix: str
    stage: str
    why: str = ""  # why it matters for training
    blocking: bool = False  # the row cannot be read as its TRL type: later checks do not run on it
    structural: bool = False  # the published JSON Schemas say it too
    types: frozenset[str] | None = None  # the TRL types it applies to; None: any
    # The methods whose conversion rejects a row this rule flags (stage "method": checked for those methods
    # only, and counted in their verdicts rather than reported as findings).
    methods: frozenset[str] | None = None
    # A check of its own: (row read as its TRL type, shape) -> a detail for each failure. Stage "trl" checks
    # run on every row of the rule's types; stage "method" checks when converting for its methods. Rules
    # without one are found by their family's pass over the row (`inspector.rules.structure.check_fields`, ...).
    check: Callable[[dict, Any], Iterable[str]] | None = field(default=None, compare=False)
    example: Example | None = None
    repairable: bool = False  # `convert` repairs the row (inspector.decision.repair) instead of rejecting it
    # The columns a row must have for the rule to fire (empty: any row): a fast path taking rows without them
    # proves the rule by their absence.
    columns: frozenset[str] = frozenset()
    proof: Proof | None = None  # how the fast paths prove it; required of every row-stage rule

    def applies_to(self, data_type: str) -> bool:
        return self.types is None or data_type in self.types

    def proven(self, columns: Iterable[str]) -> bool:
        """Whether the fast paths prove the rule on rows with exactly these columns.

        >>> from trlprep.inspector.rules import RULES
        >>> RULES["TP306"].proven(["prompt", "chosen", "rejected"]), RULES["TP306"].proven(
        ...     ["prompt", "chosen", "rejected", "score_chosen", "score_rejected"])
        (True, False)
        """
        return self.proof.how != "none" or self.lacks(columns)

    def proven_by_structure(self, columns: Iterable[str]) -> bool:
        """Whether a row with exactly these columns that decodes into a fast shape's typed structure cannot break
        the rule, whether or not it passes the value tests: the rule's proof is the structure, or it needs a column
        such rows lack.

        >>> from trlprep.inspector.rules import RULES
        >>> RULES["TP603"].proven_by_structure(["messages"]), RULES["TP205"].proven_by_structure(["messages"])
        (True, False)
        """
        return self.proof.how == "structure" or self.lacks(columns)

    def lacks(self, columns: Iterable[str]) -> bool:
        """Whether rows with exactly these columns lack one the rule needs to fire (`columns` of the entry)."""
        return not self.columns <= set(columns)

    def explain(self) -> str:
        """The rule's manual, as `inspect --explain ID` prints it."""
        lines = [f"{self.id} {self.name} ({self.severity}, {self.stage} stage)", "", self.summary + "."]
        if self.why:
            lines += ["", "Why it matters: " + self.why]
        if self.example is not None:
            lines += ["", "Example (the flagged row):"]
            lines += ["  " + (row if isinstance(row, str) else json.dumps(row, ensure_ascii=False))
                      for row in (self.example.rows[i - 1] for i in self.example.flagged or (len(self.example.rows),))]
        lines += ["", "Fix: " + self.fix]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "severity": self.severity, "stage": self.stage,
                "summary": self.summary, "why": self.why, "fix": self.fix, "blocking": self.blocking,
                "structural": self.structural, "types": sorted(self.types) if self.types else None,
                "methods": sorted(self.methods) if self.methods else None,
                "example": list(self.example.rows) if self.example else None}


RULES: dict[str, Rule] = {}


def register(rule: Rule) -> Rule:
    """Add a rule to the catalog (a family module does, for each of its rules, at import) and return it."""
    if rule.id in RULES:
        raise ValueError(f"rule {rule.id} exists already")
    if rule.stage not in STAGES:
        raise ValueError(f"rule {rule.id}: stage {rule.stage!r} is not one of {', '.join(STAGES)}")
    if rule.stage in ROW_STAGES and rule.proof is None:
        raise ValueError(f"rule {rule.id} ({rule.name}) looks at rows: say how the fast paths prove it "
                         "(by_structure, by_value_tests, by_text), or that nothing does (unproven)")
    RULES[rule.id] = rule
    _catalog_changed()
    return rule


def in_id_order() -> None:
    """The catalog in the order of its ids, TP before TC, whatever order its families were imported in: the docs'
    table and `--explain` list it so."""
    ordered = sorted(RULES.values(), key=lambda rule: (not rule.id.startswith("TP"), rule.id))
    RULES.clear()
    RULES.update((rule.id, rule) for rule in ordered)


@contextmanager
def registered(rule: Rule) -> Iterator[Rule]:
    """A rule added to the catalog for the duration of the block (for plug-ins and tests)."""
    register(rule)
    try:
        yield rule
    finally:
        del RULES[rule.id]
        _catalog_changed()


@contextmanager
def unregistered(prefix: str) -> Iterator[list[Rule]]:
    """The catalog without the rules whose ids start with `prefix` for the duration of the block: the scan as it
    runs without a family (a benchmark's baseline; `--ignore` only hides findings, the checks still run).

    >>> with unregistered("TP80") as family:
    ...     [rule.id for rule in family][:2], "TP801" in RULES
    (['TP801', 'TP802'], False)
    >>> "TP801" in RULES
    True
    """
    family = [rule for rule in RULES.values() if rule.id.startswith(prefix)]
    for rule in family:
        del RULES[rule.id]
    _catalog_changed()
    try:
        yield family
    finally:
        RULES.update((rule.id, rule) for rule in family)
        in_id_order()
        _catalog_changed()


# The catalog changes only through `register` (and the blocks above), which clear these: rows ask for them millions of times.
@functools.cache
def blocking_rules() -> frozenset[str]:
    return frozenset(r.id for r in RULES.values() if r.blocking)


@functools.cache
def declared_checks(data_type: str) -> tuple[Rule, ...]:
    """Stage "trl" rules with a check of their own, for rows of this TRL type."""
    return tuple(r for r in RULES.values() if r.check is not None and r.stage == "trl" and r.applies_to(data_type))


def error_rules(severity: dict[str, str] | None = None) -> frozenset[str]:
    """The rules whose findings are errors: the catalog's, with a config file's `severity` ({id: level}) over it.

    >>> "TP401" in error_rules(), "TP401" in error_rules({"TP401": ERROR}), "TP101" in error_rules({"TP101": WARNING})
    (False, True, False)
    """
    levels = {rule.id: rule.severity for rule in RULES.values()} | (severity or {})
    return frozenset(rule for rule, level in levels.items() if level == ERROR)


@functools.cache
def rejecting_rules(method: str) -> frozenset[str]:
    """The rules whose findings keep a row out of the conversion for `method`: every error, and the warnings
    that name the method."""
    return frozenset(r.id for r in RULES.values() if r.severity == ERROR or (r.methods and method in r.methods))


@functools.cache
def method_checks(method: str, data_type: str) -> tuple[Rule, ...]:
    """Stage "method" rules checked when converting rows of this TRL type for `method`."""
    return tuple(r for r in RULES.values()
                 if r.stage == "method" and method in r.methods and r.applies_to(data_type))


@functools.cache
def text_proofs() -> tuple[Proof, ...]:
    """The text proofs of the catalog's rules, each once: what the fast paths run on every text they accept."""
    return tuple(dict.fromkeys(r.proof for r in RULES.values() if r.proof is not None and r.proof.how == "text"))


def _catalog_changed() -> None:
    for derived in (blocking_rules, declared_checks, rejecting_rules, method_checks, text_proofs):
        derived.cache_clear()


def row_rules(data_type: str, enabled: set[str]) -> frozenset[str]:
    """The enabled row-level rules that can fire on a row of this TRL type."""
    return frozenset(r.id for r in RULES.values()
                     if r.id in enabled and r.stage in ROW_STAGES and r.applies_to(data_type))


def unproven_rules(data_type: str, columns: Iterable[str]) -> list[Rule]:
    """The row rules no fast path proves on rows of this TRL type with exactly these `columns`: while there is one,
    such rows take the full checks.

    >>> [rule.id for rule in unproven_rules("preference", ["prompt", "chosen", "rejected", "score_chosen",
    ...                                                    "score_rejected"])]
    ['TP306']
    """
    columns = tuple(columns)
    return [RULES[rule] for rule in sorted(row_rules(data_type, set(RULES))) if not RULES[rule].proven(columns)]


def names_rule(pattern: str, rule: Rule) -> bool:
    """Whether `pattern`, as `--select` and a config's `select` take it (an id, an id prefix or a name), names `rule`.

    >>> names_rule("tp3", RULES["TP301"]), names_rule("duplicate-row", RULES["TP401"]), names_rule("TP4", RULES["TP301"])
    (True, True, False)
    """
    return rule.id.startswith(pattern.upper()) or rule.name == pattern


def closest_rule(pattern: str) -> str | None:
    """The rule id or name closest to `pattern` (a typo's likely meaning), or None when none is close.

    >>> closest_rule("duplicate_row"), closest_rule("TP4O1"), closest_rule("xyzzy")
    ('duplicate-row', 'TP401', None)
    """
    import difflib

    names = [*RULES, *(rule.name for rule in RULES.values())]
    close = difflib.get_close_matches(pattern.upper(), list(RULES), n=1) if pattern[:2].upper() == "TP" else []
    return (close or difflib.get_close_matches(pattern, names, n=1) or [None])[0]


def select_rules(select: tuple[str, ...] = (), ignore: tuple[str, ...] = ()) -> set[str]:
    """Rule ids kept by `--select` / `--ignore`, each given as an id, an id prefix or a name. A pattern naming no
    rule, or an `--ignore` that leaves none of the rules `--select` asks for, is refused: the scan would check
    nothing and the report say "no errors".

    >>> sorted(select_rules(select=("TP30",)))
    ['TP301', 'TP302', 'TP303', 'TP304', 'TP305', 'TP306', 'TP307', 'TP308']
    >>> "TP401" in select_rules(ignore=("duplicate-row",))
    False
    >>> select_rules(select=("duplicate_row",))
    Traceback (most recent call last):
    trlprep.errors.UsageError: --select duplicate_row: no rule has this id, id prefix or name; the closest is duplicate-row
    >>> select_rules(select=("TP401,TP999",))
    Traceback (most recent call last):
    trlprep.errors.UsageError: --select TP999: no rule has this id, id prefix or name; the closest is TP709
    """
    # Comma-separated, as ruff takes them (`--select TP401,TP402`), or the option repeated.
    select, ignore = (tuple(part.strip() for pattern in patterns for part in pattern.split(","))
                      for patterns in (select, ignore))

    def matches(rule: Rule, patterns: tuple[str, ...]) -> bool:
        return any(names_rule(p, rule) for p in patterns)

    for option, patterns in (("--select", select), ("--ignore", ignore)):
        if any(not p.strip() for p in patterns):  # an empty prefix would match every rule
            raise UsageError(f"{option}: an empty rule; give an id (TP301), an id prefix (TP3) or a name")
        unknown = [p for p in patterns if not any(matches(rule, (p,)) for rule in RULES.values())]
        if unknown:  # a typo would select nothing, and the report would say "no errors"
            closest = closest_rule(unknown[0])
            raise UsageError(f"{option} {unknown[0]}: no rule has this id, id prefix or name; " + (
                f"the closest is {closest}" if closest else "`inspect --explain ID` shows one"))

    kept = {r.id for r in RULES.values() if not select or matches(r, select)}
    enabled = {rule_id for rule_id in kept if not matches(RULES[rule_id], ignore)}
    if select and not enabled:
        raise UsageError(f"--select {' '.join(select)} with --ignore {' '.join(ignore)}: every rule selected is "
                         f"ignored, so nothing would be checked")
    return enabled


def markdown_table() -> str:
    """The rule table (the docs' rules page links each id to its page: docs/hooks.py).

    >>> markdown_table().splitlines()[2]
    '| TP001 | invalid-json | error | read | the row is not valid JSON |'
    """
    lines = ["| id | name | severity | stage | what it catches |", "| --- | --- | --- | --- | --- |"]
    for rule in RULES.values():
        summary = rule.summary.replace("|", "\\|")
        lines.append(f"| {rule.id} | {rule.name} | {rule.severity} | {rule.stage} | {summary} |")
    return "\n".join(lines) + "\n"
