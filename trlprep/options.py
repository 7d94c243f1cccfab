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
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from trlprep.errors import UsageError

OptionsT = TypeVar("OptionsT")
# How similar two rows must be to count as near-duplicates (`inspector.neardup`): the estimated Jaccard similarity
# of their 3-word shingle sets, which both their prompts and their answers must reach.
NEAR_THRESHOLD = 0.8
# The share of rows `train` lets its trainer drop at max_length before it refuses the run (`--max-dropped`).
MAX_DROPPED = 0.05


def option(default: Any = None, *, flag: str | None, shards: bool = False) -> Any:
    """A field of an options dataclass: its default, its command-line `flag` (None: the Python API's alone, such as
    a progress callback), and whether `--executor` takes it."""
    return field(default=default, metadata={"flag": flag, "shards": shards})


def refused_with_executor(options: Any) -> list[str]:
    """The flags of the options given (set to anything but their default) that a sharded run does not take."""
    return [f.metadata["flag"] for f in fields(options)
            if not f.metadata.get("shards") and getattr(options, f.name) not in (f.default, (), None, False)]


def options_from(options_type: type[OptionsT], options: OptionsT | None, settings: dict[str, Any],
                 renamed: dict[str, str] | None = None) -> OptionsT:
    """`options`, or the options of that type made from keyword `settings` (the Python API's way to call a
    command); a keyword `renamed` maps an older name to its option's, with a DeprecationWarning.

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
        return dataclasses.replace(options, **settings) if settings else options
    known = {f.name for f in fields(options_type)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise UsageError(f"unknown option {unknown[0]!r} (options: {', '.join(sorted(known))})")
    return options_type(**settings)


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
