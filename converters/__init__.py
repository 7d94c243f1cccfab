"""trlprep's converters: rewrite any detected dataset into what each TRL method needs, accounting for every row."""

from converters.api import ConversionRefused, ConversionResult, convert
from converters.output import OutputError

__all__ = ["convert", "ConversionResult", "ConversionRefused", "OutputError"]
