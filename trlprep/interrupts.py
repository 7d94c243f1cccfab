"""Stopping on a signal: SIGTERM made to stop a command as Ctrl-C does, so that its clean-up runs on either."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def terminating_cleanly() -> Iterator[None]:
    """SIGTERM raises like Ctrl-C does (KeyboardInterrupt), so staging files are removed and workers stopped on
    either."""
    def raise_interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, raise_interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
