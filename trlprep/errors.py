"""The errors trlprep raises for a user's mistake or data, each with the exit code the commands give it.

2: unreadable input, an output that cannot be written, or bad usage; 1: data that cannot be used as asked.
Anything else that escapes is a bug of ours: the commands say "internal error" and exit with 3.

Each error also has a `kind` (what a program reading `--format json` branches on) and, where one rule of the
catalog is what refused the data, that rule's id (`rule`); `refusal` is the document the commands print for it.

>>> issubclass(SourceError, TrlprepError), SourceError.exit_code, DataRefused.exit_code
(True, 2, 1)
>>> refusal(DataRefused("data.jsonl: no known dataset shape", rule="TP404"))
{'kind': 'data_refused', 'reason': 'data.jsonl: no known dataset shape', 'rule': 'TP404', 'exit_code': 1}
"""

from __future__ import annotations

from typing import Any

INTERNAL_ERROR_EXIT = 3


class TrlprepError(Exception):
    exit_code = 2
    kind = "error"

    def __init__(self, message: str, *, rule: str | None = None):
        super().__init__(message)
        self.rule = rule


class UsageError(TrlprepError, ValueError):
    """An option or argument that cannot work (a ValueError too, for callers of the Python API)."""

    kind = "usage"


class SourceError(TrlprepError):
    """The dataset cannot be read at all: a missing path, an unknown format, an unreachable Hub."""

    kind = "unreadable_input"


class OutputError(UsageError):
    """The output cannot be written as asked (exists, equals the input, unknown extension)."""

    kind = "output"


class DataRefused(TrlprepError):
    """The data cannot be used for what was asked; `result` holds what was done before (a ledger), if anything."""

    exit_code = 1
    kind = "data_refused"

    def __init__(self, message: str, result: Any = None, *, rule: str | None = None):
        super().__init__(message, rule=rule)
        self.result = result


def only_rule(rejected: dict[str, int]) -> str | None:
    """The rule that rejected every rejected row (`rejected`: rows by rule), when one did.

    >>> only_rule({"TP112": 20}), only_rule({"TP112": 2, "TP201": 1})
    ('TP112', None)
    """
    return next(iter(rejected)) if len(rejected) == 1 else None


def refusal(error: Exception, exit_code: int | None = None) -> dict:
    """What `--format json` prints on stdout when a command refuses: the kind of refusal, its one-line reason, the
    rule that refused it (None when no one rule did) and the exit code; any other exception is an internal error
    (exit 3)."""
    if isinstance(error, TrlprepError):
        return {"kind": error.kind, "reason": str(error), "rule": error.rule,
                "exit_code": error.exit_code if exit_code is None else exit_code}
    return {"kind": "internal_error", "reason": f"{type(error).__name__}: {error}", "rule": None,
            "exit_code": INTERNAL_ERROR_EXIT if exit_code is None else exit_code}
