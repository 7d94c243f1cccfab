"""trlprep's inspector: detect TRL dataset types and dialects from values, validate every row, give verdicts.

Importing this package costs nothing until a name is used (`inspect --help` must answer at once), and never
pulls in `datasets`, torch or trl.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "inspect_dataset": "trlprep.inspector.api",
    "Report": "trlprep.inspector.report",
    "Finding": "trlprep.inspector.report",
    "SourceError": "trlprep.inspector.sources",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'inspector' has no attribute {name!r}")
