"""trlprep's converters: rewrite any detected dataset into what each TRL method needs, accounting for every row."""

from trlprep.converters.api import convert
from trlprep.converters.result import ConversionResult
from trlprep.errors import DataRefused, OutputError

__all__ = ["convert", "ConversionResult", "DataRefused", "OutputError"]
