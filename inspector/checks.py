"""Row checks: every rule family's pass over one row, each finding a `(rule_id, detail)` pair; none raises on
malformed input.

`check_fields` looks at a row's own columns as its shape reads them (`inspector.rules.structure`); `check_trl_row`
looks at the row once read as TRL's type: its conversations (`inspector.rules.content`), its preference pair
(`inspector.rules.preference`), the texts as read from another dialect, and every rule with a check of its own.

>>> row = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"},
...                     {"role": "user", "content": "Bye"}]}
>>> check_row(row, classify_row(row))[0]
[('TP205', "messages: ends with a 'user' turn")]
"""

from __future__ import annotations

from typing import Any, Iterator

from trlprep.inspector.dialects import Shape, classify_row, read_trl
from trlprep.inspector.rules import Rule, blocking_rules, declared_checks
from trlprep.inspector.rules.content import Issue, check_turns
from trlprep.inspector.rules.preference import check_pair
from trlprep.inspector.rules.structure import check_fields, check_read_contents
from trlprep.inspector.rules.tools import TOOL_CALLS_NOT_CANONICAL
from trlprep.inspector.vision import read_images


def check_trl_row(trl_row: dict, shape: Shape, declared: tuple[Rule, ...] | None = None,
                  texts: bool = True) -> Iterator[Issue]:
    """Checks on a row read as its TRL type: turn order, an assistant answer, preference pairs, the texts as read
    from another dialect (unless `texts` is False: the fast path's text proofs hold of them), and the rules with
    checks of their own (`declared`, when only some of them can fire on the row: see `inspector.decision.TypedChecks`;
    else every one for its type)."""
    if shape.type == "preference":
        yield from check_pair(trl_row, shape)
    else:
        yield from check_turns(trl_row, shape)
    if shape.dialect != "trl" and texts:
        yield from check_read_contents(trl_row)
    for rule in declared_checks(shape.type) if declared is None else declared:
        for detail in rule.check(trl_row, shape):
            yield rule.id, detail


def check_row(row: Any, shape: Shape, declared: tuple[Rule, ...] | None = None,
              texts: bool = True) -> tuple[list[Issue], dict | None]:
    """All checks of one row (of the rules with checks of their own, `declared` when given; of its texts, unless
    `texts` is False); returns the issues and the row read as its TRL type (None if it cannot be).

    >>> shape = classify_row({"chosen": "A", "rejected": "A"})
    >>> check_row({"chosen": "A", "rejected": "A"}, shape)
    ([('TP301', 'chosen and rejected are identical')], {'chosen': 'A', 'rejected': 'A'})
    """
    if shape.reads_images:
        row = read_images(row).row
    issues = check_fields(row, shape, texts)
    blocking = blocking_rules()
    if any(rule in blocking for rule, _ in issues):
        return issues, None
    trl_row, rewritten = read_trl(row, shape)
    if rewritten and shape.dialect == "trl":  # TRL would read the row as it is written; other dialects are rewritten
        issues.append((TOOL_CALLS_NOT_CANONICAL.id, "; ".join(rewritten)))
    issues.extend(check_trl_row(trl_row, shape, declared, texts))
    return issues, trl_row


__all__ = ["check_row", "check_fields", "check_trl_row", "classify_row", "Issue"]
