"""Writing a file so that a reader sees the old one or the new one, never half of one."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: Path, text: str) -> Path:
    """Write `text` to a hidden file beside `path`, then rename it over `path` in one step.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "run.json"
    >>> write_atomically(target, "{}").read_text(), sorted(p.name for p in target.parent.iterdir())
    ('{}', ['run.json'])
    """
    staged = path.with_name(f".{path.name}.staging")
    try:
        staged.write_text(text, encoding="utf-8")
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
    return path


def default_mode(directory: bool = False) -> int:
    """The permissions a new file (or folder) gets under the process's umask, for files made by `tempfile`,
    which makes them private (0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask
