"""trlprep's inspector: detect TRL dataset types and dialects from values, validate every row, give verdicts.

Importing this package is cheap (no `datasets`, torch or trl): the inspect command must answer in a second.
"""

from inspector.api import inspect_dataset
from inspector.report import Finding, Report
from inspector.sources import SourceError

__all__ = ["inspect_dataset", "Report", "Finding", "SourceError"]
