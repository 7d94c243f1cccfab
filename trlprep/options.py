"""What the options dataclasses of the commands share (`InspectOptions`, `ConvertOptions` and `RunOptions`, one in
each stage, each used by the command line, the Python API and the shard steps); and `Executor`, which says where
a sharded run's work runs.

Each option is a field made by `option`, which says its command-line flag and whether `--executor` takes it: what a
sharded run refuses is derived from the fields (`refused_with_executor`), never listed again.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Options:
...     select: tuple = option((), flag="--select", shards=True)
...     limit: int | None = option(None, flag="--limit")
>>> refused_with_executor(Options(select=("TP2",), limit=10))
['--limit']

An option that takes a number says which in its field (`value=`, a reader such as `number_from(0.5, 1.0)`), and
`checked` reads every such field of the options given, so the command line (`inspector.cli.Checked`), the Python
API, a config file and a recipe's stages refuse the same values with the same words, before any work.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, TypeVar

from trlprep.errors import UsageError

OptionsT = TypeVar("OptionsT")
# How similar two rows must be to count as near-duplicates (`inspector.neardup`): the estimated Jaccard similarity
# of their 3-word shingle sets, which both their prompts and their answers must reach.
NEAR_THRESHOLD = 0.8
# The share of rows `train` lets its trainer drop at max_length before it refuses the run (`--max-dropped`).
MAX_DROPPED = 0.05


class BadValue(ValueError):
    """What is wrong with a value, said by a reader (`number_from`, `count`, `fraction`, `test_split_size`); who called
    the reader adds the option, the config key or the recipe stage."""


# --- Readers: a value as the Python API, a config file, YAML or the command line gives it -> the option's value ---

def shown(value: Any) -> str:
    """A value as an error shows it: as JSON writes it (a string quoted), NaN and the infinities as Python does."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return json.dumps(value) if isinstance(value, (str, int, float, bool)) else repr(value)


def _number(value: Any) -> Any:
    """`value`, or the number a string writes (as the command line and YAML's quoted or `1e-5` values give one):
    an int when it is written whole, else a float; a string that is no number stays one.

    >>> _number("3"), _number("0.5"), _number("1e-5"), _number("nan"), _number("5%")
    (3, 0.5, 1e-05, nan, '5%')
    """
    if not isinstance(value, str):
        return value
    for kind in (int, float):
        try:
            return kind(value.strip())
        except ValueError:
            continue
    return value


def _is_number(value: Any) -> bool:
    """A finite int or float (a bool is no number here, nor are NaN and the infinities)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def number_from(low: float, high: float | None = None, *, above: bool = False) -> Callable[[Any], float]:
    """A reader of a finite number from `low` to `high` (None: unbounded above; `above`: `low` excluded).

    >>> number_from(0.5, 1.0)("0.9"), number_from(0, above=True)(1e-5)
    (0.9, 1e-05)
    >>> number_from(0.5, 1.0)("nan")
    Traceback (most recent call last):
    trlprep.options.BadValue: expected a number from 0.5 to 1.0, got nan
    """
    if high is not None:
        wanted = f"a number from {low} to {high}"
    else:
        wanted = f"a number above {low}" if above else f"a number of at least {low}"

    def read(value: Any) -> float:
        number = _number(value)
        if (not _is_number(number) or (number <= low if above else number < low)
                or (high is not None and number > high)):
            raise BadValue(f"expected {wanted}, got {shown(number)}")
        return float(number)

    read.wanted = wanted
    return read


def whole_from(low: int) -> Callable[[Any], int]:
    """A reader of a whole number of at least `low` (written whole: 3, not 3.0).

    >>> whole_from(1)("3"), whole_from(0)(0)
    (3, 0)
    >>> whole_from(1)(2.5)
    Traceback (most recent call last):
    trlprep.options.BadValue: expected a whole number of at least 1, got 2.5
    """
    wanted = f"a whole number of at least {low}"

    def read(value: Any) -> int:
        number = _number(value)
        if isinstance(number, bool) or not isinstance(number, int) or number < low:
            raise BadValue(f"expected {wanted}, got {shown(number)}")
        return number

    read.wanted = wanted
    return read


count = whole_from(1)


def fraction(value: Any) -> float:
    """A share of rows: a number from 0 to 1, or a percentage as a string ("5%").

    >>> fraction("5%"), fraction(0.25), fraction("0.5")
    (0.05, 0.25, 0.5)
    """
    written = value  # what errors show: "1e400%" read as a number is infinite
    wanted = "expected a share of rows such as \"5%\" or 0.05"
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            value = float(value.strip()[:-1]) / 100
        except ValueError:
            raise BadValue(f"{wanted}, got {shown(written)}") from None
    else:
        value = written = _number(value)
    if not _is_number(value) or not 0 <= value <= 1:
        raise BadValue(f"{wanted} (0 to 1), got {shown(written)}")
    return float(value) + 0.0  # "-0%" is 0


fraction.wanted = "a share of rows (5% or 0.05)"


def test_split_size(value: Any) -> int | float:
    """The rows held out for a test split: a fraction strictly between 0 and 1 (0.1), or a whole row count of at
    least 1 written as one (500). A whole number written with a point (1.0, 2.0) is refused: 1.0 could mean all
    rows or one row.

    >>> test_split_size("0.1"), test_split_size("500"), test_split_size(3)
    (0.1, 500, 3)
    >>> test_split_size("1.0")
    Traceback (most recent call last):
    trlprep.options.BadValue: expected a fraction between 0 and 1 (0.1) or a whole row count (500), got 1.0
    """
    number = _number(value)
    if isinstance(number, int) and not isinstance(number, bool) and number >= 1:
        return number
    if isinstance(number, float) and math.isfinite(number) and 0 < number < 1:
        return number
    raise BadValue(f"expected {test_split_size.wanted}, got {shown(number)}")


test_split_size.wanted = "a fraction between 0 and 1 (0.1) or a whole row count (500)"

NEAR_THRESHOLDS = number_from(0.5, 1.0)  # below half the shingles shared, "near" means little


def option(default: Any = None, *, flag: str | None, shards: bool = False,
           value: Callable[[Any], Any] | None = None) -> Any:
    """A field of an options dataclass: its default, its command-line `flag` (None: the Python API's alone, such as
    a progress callback), whether `--executor` takes it, and the reader of its `value` (`checked` applies it)."""
    return field(default=default, metadata={"flag": flag, "shards": shards, "value": value})


def value_reader(options_type: type, name: str) -> Callable[[Any], Any]:
    """The reader an options dataclass declares for its field `name`."""
    return next(f.metadata["value"] for f in fields(options_type) if f.name == name)


def checked(options: OptionsT) -> OptionsT:
    """`options` with every field that declares a reader read (None: not given, left as it is): a value the reader
    refuses is a UsageError naming the field (as the Python API and a recipe write it; the command line's values
    were read by the same reader, naming the flag), what it takes and what it got.

    >>> @dataclass(frozen=True)
    ... class Options:
    ...     near_threshold: float = option(0.8, flag="--near-threshold", value=number_from(0.5, 1.0))
    >>> checked(Options(near_threshold=float("nan")))
    Traceback (most recent call last):
    trlprep.errors.UsageError: near_threshold: expected a number from 0.5 to 1.0, got nan
    """
    read = {}
    for f in fields(options):
        given = getattr(options, f.name)
        if f.metadata.get("value") is not None and given is not None:
            try:
                read[f.name] = f.metadata["value"](given)
            except BadValue as error:
                raise UsageError(f"{f.name}: {error}") from None
    return dataclasses.replace(options, **read)


def refused_with_executor(options: Any) -> list[str]:
    """The flags of the options given (set to anything but their default) that a sharded run does not take."""
    return [f.metadata["flag"] for f in fields(options)
            if not f.metadata.get("shards") and getattr(options, f.name) not in (f.default, (), None, False)]


def options_from(options_type: type[OptionsT], options: OptionsT | None, settings: dict[str, Any],
                 renamed: dict[str, str] | None = None) -> OptionsT:
    """`options`, or the options of that type made from keyword `settings` (the Python API's way to call a
    command), every value `checked`; a keyword `renamed` maps an older name to its option's, with a
    DeprecationWarning.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Options:
    ...     limit: int | None = option(None, flag="--limit")
    >>> options_from(Options, None, {"limit": 3}).limit
    3
    >>> options_from(Options, None, {"size": 3})
    Traceback (most recent call last):
    trlprep.errors.UsageError: unknown option 'size' (options: limit)
    """
    for old, new in (renamed or {}).items():
        if old in settings:
            warnings.warn(f"{old}= is deprecated; use {new}=", DeprecationWarning, stacklevel=3)
            settings[new] = settings.pop(old)
    if options is not None:
        return checked(dataclasses.replace(options, **settings) if settings else options)
    known = {f.name for f in fields(options_type)}
    unknown = sorted(set(settings) - known)
    placed = [name for name in unknown if name in {f.name for f in fields(Executor)} - {"kind"}]
    if placed:  # an `Executor`'s, such as work_dir: never ignored, since it means a sharded run
        raise UsageError(f"{placed[0]} needs executor: pass executor=Executor(\"local\", {placed[0]}=...)")
    if unknown:
        raise UsageError(f"unknown option {unknown[0]!r} (options: {', '.join(sorted(known))})")
    return checked(options_type(**settings))


@dataclass(frozen=True)
class Executor:
    """Where a sharded run's datatrove tasks run: `kind` local (processes here) or slurm (array jobs); `tasks` per
    step (default: one per shard), `workers` at once, their `work_dir` (a rerun takes it up where it stopped), and
    Slurm's `partition` and `time` limit per task."""

    kind: str = "local"
    tasks: int | None = None
    workers: int = 2
    work_dir: str | Path | None = None
    partition: str | None = None
    time: str = "10:00:00"

    def __post_init__(self) -> None:
        if self.kind not in ("local", "slurm"):
            raise UsageError(f"--executor {self.kind!r}: choose local or slurm")

    @property
    def slurm(self) -> dict:
        return {"partition": self.partition, "time": self.time}


def executor_of(executor: Executor | str | None) -> Executor | None:
    """An `Executor` from what the API takes: one, a kind's name, or None (one pass here)."""
    return Executor(executor) if isinstance(executor, str) else executor


def refuse_with_executor(options: Any) -> None:
    """The options a sharded run does not take, refused together; and the extra it needs."""
    import importlib.util

    given = refused_with_executor(options)
    if given:
        raise UsageError(f"{', '.join(given)}: not with --executor yet")
    if importlib.util.find_spec("datatrove") is None:
        raise UsageError("--executor needs the distributed extra: uv run --extra distributed ... "
                         "(or pip install 'trlprep[distributed]')")
