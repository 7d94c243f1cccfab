"""Progress on a terminal (speed and time left), silence when piped."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Protocol


class Measured(Protocol):
    """What a progress bar measures: a source's `total` in its `unit` ("bytes" or "rows"), when known."""

    unit: str
    total: int | None


@contextmanager
def progress_bar(source: Measured, enabled: bool, label: str = "checking") -> Iterator[Callable[[int], None]]:
    """An `advance(n)` callback drawing speed and time left on a terminal; a no-op when not enabled."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, ProgressColumn,
                               TaskProgressColumn, TextColumn, TimeRemainingColumn, TransferSpeedColumn)
    from rich.text import Text

    class RowsPerSecond(ProgressColumn):
        def render(self, task) -> Text:
            return Text(f"{task.speed or 0:,.0f} rows/s")

    by_bytes = source.unit == "bytes"
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
               DownloadColumn() if by_bytes else MofNCompleteColumn(),
               TransferSpeedColumn() if by_bytes else RowsPerSecond(), TimeRemainingColumn()]
    # Drawn from this thread, not rich's refresh thread: the parallel scan forks, and a child forked while
    # another thread holds stderr's lock would hang flushing it on exit.
    with Progress(*columns, transient=True, console=_stderr_console(), auto_refresh=False) as progress:
        task = progress.add_task(label, total=source.total)
        pending = 0
        last = time.monotonic()

        def advance(n: int) -> None:
            # Redrawing per row would cost more than checking it: batch the updates.
            nonlocal pending, last
            pending += n
            now = time.monotonic()
            if now - last > 0.1:
                progress.advance(task, pending)
                progress.refresh()
                pending, last = 0, now

        yield advance


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def show_progress() -> bool:
    """Progress is drawn only on an interactive terminal, never when piped or in CI."""
    return sys.stderr.isatty() and not os.environ.get("CI")
