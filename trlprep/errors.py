"""The errors trlprep raises for a user's mistake or data, each with the exit code the commands give it.

2: unreadable input, an output that cannot be written, or bad usage; 1: data that cannot be used as asked.
Anything else that escapes is a bug of ours: the commands say "internal error" and exit with 3.

>>> issubclass(SourceError, TrlprepError), SourceError.exit_code, DataRefused.exit_code
(True, 2, 1)
"""

from __future__ import annotations

from typing import Any

INTERNAL_ERROR_EXIT = 3


class TrlprepError(Exception):
    exit_code = 2


class UsageError(TrlprepError, ValueError):
    """An option or argument that cannot work (a ValueError too, for callers of the Python API)."""


class SourceError(TrlprepError):
    """The dataset cannot be read at all: a missing path, an unknown format, an unreachable Hub."""


class OutputError(UsageError):
    """The output cannot be written as asked (exists, equals the input, unknown extension)."""


class DataRefused(TrlprepError):
    """The data cannot be used for what was asked; `result` holds what was done before (a ledger), if anything."""

    exit_code = 1

    def __init__(self, message: str, result: Any = None):
        super().__init__(message)
        self.result = result
