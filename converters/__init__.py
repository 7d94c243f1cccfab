"""trlprep's converters: rewrite any detected dataset into what each TRL method needs, accounting for every row."""

from converters.api import convert
from converters.result import ConversionResult
from inspector.errors import DataRefused, OutputError

__all__ = ["convert", "ConversionResult", "DataRefused", "OutputError"]
