"""Writing files so that a reader sees the old one or the new one, never half of one, and touching nothing that
is not ours: the one place the commands' outputs are staged, published and cleaned up.

A staged file is created exclusively (never through a planted symlink) beside its target, under a hidden name
that says which output it is for and which process wrote it (`.<name>.<part>.<pid>@<host>.<token>.staging`), so a
later run writing the same output removes what a killed run left (`remove_stale_staging`). Publishing replaces
only what we could have written, a regular file or a folder `datasets` saved, and without `replace` never replaces
anything: an output that appeared meanwhile (another run's) is kept and this one refused.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import re
import secrets
import shutil
import socket
import stat
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

from trlprep.errors import OutputError, SourceError

NAME_MAX = 255  # bytes in one file name, on the file systems Linux and macOS use
STAGING_PARTS_MAX = 80  # what a staging name adds to its output's name at most: part, pid@host, token, suffixes
_HOST_MAX = 32


def _host() -> str:
    """This machine's name as a staging name carries it: letters, digits and dashes.

    >>> re.fullmatch(r"[A-Za-z0-9-]*", _host()) is not None
    True
    """
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:_HOST_MAX]


def _name_prefix(name: str) -> str:
    """The hidden prefix of `name`'s staging names: `name` cut (whole characters) so that a staging name stays
    within NAME_MAX bytes however long the output's name is.

    >>> _name_prefix("out.jsonl")
    '.out.jsonl.'
    >>> len(_name_prefix("é" * 200).encode()) <= NAME_MAX - STAGING_PARTS_MAX
    True
    """
    room = NAME_MAX - STAGING_PARTS_MAX - 2
    return f".{name.encode()[:room].decode(errors='ignore')}."


def _staging_name(name: str, part: str, suffix: str) -> str:
    """A fresh staging name for output `name`.

    >>> import re
    >>> bool(re.fullmatch(r"\\.out\\.jsonl\\.rows\\.\\d+@[A-Za-z0-9-]*\\.[0-9a-f]{8}\\.staging\\.jsonl",
    ...                   _staging_name("out.jsonl", "rows", ".jsonl")))
    True
    """
    return f"{_name_prefix(name)}{part}.{os.getpid()}@{_host()}.{secrets.token_hex(4)}.staging{suffix}"


def _staging_pattern(name: str) -> re.Pattern:
    return re.compile(re.escape(_name_prefix(name)) + r"\w+\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]*)\.[0-9a-f]{8}"
                      r"\.staging(\.\w+)?")


def create_staged_file(folder: Path, name: str, part: str, suffix: str = "") -> tuple[int, Path]:
    """A new, empty staging file for output `name` in `folder`, created exclusively (O_EXCL | O_NOFOLLOW: never
    an existing file nor through a symlink), open for writing: its descriptor and path. It gets the user's umask,
    as the published output will."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        path = folder / _staging_name(name, part, suffix)
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:  # another process's token: draw again
            continue
        except OSError as error:
            raise _unwritable(folder / name, error) from None


def create_staged_folder(folder: Path, name: str, part: str) -> Path:
    """A new, empty staging folder for output `name` in `folder` (mkdir never follows a symlink)."""
    while True:
        path = folder / _staging_name(name, part, "")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as error:
            raise _unwritable(folder / name, error) from None


def check_writable(target: Path) -> None:
    """Refuse, before any row is read, an output whose folder takes no new file (read-only, full to its last
    inode, /proc): a staging file is made there and removed."""
    fd, probe = create_staged_file(target.parent, target.name, "probe")
    os.close(fd)
    remove_quietly(probe)


def remove_stale_staging(folder: Path, name: str) -> list[Path]:
    """Remove what runs writing output `name` in `folder` left when they were killed: staging files and folders
    of this machine whose process is gone. Another machine's, and a live process's, are left alone. The removed
    paths, in name order."""
    pattern, host, removed = _staging_pattern(name), _host(), []
    with suppress(OSError):
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            match = pattern.fullmatch(entry.name)
            if match and match["host"] == host and not _alive(int(match["pid"])) \
                    and (entry.is_file(follow_symlinks=False) or entry.is_dir(follow_symlinks=False)):
                remove_quietly(Path(entry.path))
                removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    """Whether process `pid` runs here (another user's counts).

    >>> _alive(os.getpid())
    True
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def remove_quietly(path: Path) -> None:
    """Remove a staging file or folder of ours; never raises (clean-up runs when a write failed, perhaps for a full
    disk, and must still remove everything)."""
    with suppress(OSError):
        if stat.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)


def _unwritable(target: Path, error: OSError) -> OutputError:
    """
    >>> _unwritable(Path("out.jsonl"), OSError(28, "No space left on device"))
    OutputError('out.jsonl: cannot be written: No space left on device')
    """
    return OutputError(f"{target}: cannot be written: {error.strerror or error}")


# A write failing for want of room, on a disk or a quota (what `running_out_of_room` looks for).
OUT_OF_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


@contextmanager
def writing(target: Path) -> Iterator[None]:
    """An OSError while we write `target` (a full disk, a read-only folder, a name too long) is the user's output
    that cannot be written (exit 2), not a bug of ours."""
    try:
        yield
    except OSError as error:
        raise _unwritable(target, error) from None


@contextmanager
def running_out_of_room(target: Path) -> Iterator[None]:
    """Where a library writes `target` and reads too (datasets loading staged rows, embedding images), only a full
    disk is the output's (exit 2), also when the library wraps it in an error of its own (datasets'
    DatasetGenerationError); another OSError may be an input's."""
    try:
        yield
    except Exception as error:
        cause = _out_of_room(error)
        if cause is None:
            raise
        raise _unwritable(target, cause) from None


def _out_of_room(error: BaseException | None) -> OSError | None:
    """The full-disk OSError among `error`'s causes, if one is.

    >>> wrapped = RuntimeError("could not generate")
    >>> wrapped.__cause__ = OSError(28, "No space left on device")
    >>> _out_of_room(wrapped).strerror, _out_of_room(RuntimeError("other"))
    ('No space left on device', None)
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in OUT_OF_ROOM:
            return error
        error = error.__cause__ or error.__context__
    return None


def check_output_name(path: Path, option: str = "--output") -> None:
    """Refuse a path that names no file, or a name longer than the file system takes.

    >>> check_output_name(Path("out.jsonl"))
    >>> check_output_name(Path(""))
    Traceback (most recent call last):
    trlprep.errors.OutputError: --output '': names no file
    >>> check_output_name(Path("x" * 300 + ".jsonl"))
    Traceback (most recent call last):
    trlprep.errors.OutputError: --output xxxxxxxxxxxxxxxxxxxx...: the name is 306 bytes; file names take at most 255
    """
    if path.name in ("", ".", ".."):
        raise OutputError(f"{option} {str(path) if str(path) != '.' else ''!r}: names no file")
    size = len(os.fsencode(path.name))
    if size > NAME_MAX:
        raise OutputError(f"{option} {path.name[:20]}...: the name is {size} bytes; file names take "
                          f"at most {NAME_MAX}")


# What a dataset folder we write holds: `save_to_disk`'s data, info and state files and the cache files `map`
# adds; a sharded convert's Parquet shards and rejects files, named as the Hub names a split's shards.
DATASET_FILES = re.compile(r"data-\d{5}-of-\d{5}\.arrow|dataset_info\.json|state\.json|cache-[0-9a-f]+\.arrow"
                           r"|train-\d{5}-of-\d{5}\.(parquet|jsonl)")


def foreign_file(folder: Path) -> Path | None:
    """A file in `folder` that is none of DATASET_FILES (a DatasetDict's `dataset_dict.json` and split folders
    aside), or None: only then may `--overwrite` replace the folder.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ("train-00000-of-00002.parquet", "train-00001-of-00002.parquet"):
    ...     _ = (folder / name).write_bytes(b"")
    >>> foreign_file(folder)
    >>> _ = (folder / "notes.txt").write_text("mine")
    >>> foreign_file(folder).name
    'notes.txt'
    """
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_dir(follow_symlinks=False) and (folder / "dataset_dict.json").is_file():
            inner = foreign_file(Path(entry.path))
            if inner is not None:
                return inner
        elif not (entry.is_file(follow_symlinks=False)
                  and (DATASET_FILES.fullmatch(entry.name) or entry.name == "dataset_dict.json")):
            return Path(entry.path)
    return None


def check_replaceable(path: Path, replace: bool) -> None:
    """Refuse, before anything is written, to replace what is at `path` unless `replace` and it is ours to
    replace: a regular file, or a folder holding only a saved dataset. Symlinks, devices, FIFOs and sockets are
    never replaced (as root, replacing /dev/null would remove the device)."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # nothing there (its folder's absence is said where it is made)
        return
    except OSError as error:
        raise _unwritable(path, error) from None
    if stat.S_ISLNK(mode):
        raise OutputError(f"{path}: is a symlink (to {os.readlink(path)}); write to a path of its own, not through "
                          f"a link")
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise OutputError(f"{path}: is a {_kind(mode)}, not a file; it is never replaced")
    if not replace:
        raise OutputError(f"{path}: exists; pass --overwrite to replace it")
    if stat.S_ISDIR(mode):
        foreign = foreign_file(path)
        if foreign is not None:
            raise OutputError(f"{path}: is a folder that holds {foreign.relative_to(path)}, which is not a saved "
                              f"dataset; --overwrite replaces only a dataset folder")


SMALL_FILE_BYTES = 16 << 20  # a config file or a recipe holds kilobytes


def read_small_file(path: str | Path, option: str) -> str:
    """The UTF-8 text of a small file the user names (`--settings`, `--config`, `--recipe`), refused (SourceError)
    unopened when it is no regular file (a FIFO would block the read, a device never end it) and unread past
    SMALL_FILE_BYTES. FileNotFoundError and UnicodeDecodeError are left to the caller to word.

    >>> read_small_file("/dev/zero", "--settings")
    Traceback (most recent call last):
    trlprep.errors.SourceError: --settings /dev/zero: is a character device, not a file
    """
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise SourceError(f"{option} {path}: is a {'folder' if stat.S_ISDIR(mode) else _kind(mode)}, not a file")
    with open(path, "rb") as handle:
        data = handle.read(SMALL_FILE_BYTES + 1)
    if len(data) > SMALL_FILE_BYTES:
        raise SourceError(f"{option} {path}: is over {SMALL_FILE_BYTES:,} bytes, too large for a config file")
    return data.decode("utf-8-sig")  # a byte-order mark, as some editors write


def _kind(mode: int) -> str:
    """
    >>> _kind(stat.S_IFCHR), _kind(stat.S_IFIFO)
    ('character device', 'FIFO')
    """
    kinds = {stat.S_ISCHR: "character device", stat.S_ISBLK: "block device", stat.S_ISFIFO: "FIFO",
             stat.S_ISSOCK: "socket"}
    return next((kind for test, kind in kinds.items() if test(mode)), "special file")


@functools.cache
def _renameat2():
    """libc's renameat2 (glibc 2.28 and later), or None."""
    return getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)


def _rename_noreplace(source: Path, target: Path) -> bool:
    """Rename `source` to `target` unless `target` exists, in one step (Linux's renameat2 RENAME_NOREPLACE):
    False where the system or file system cannot, so the caller falls back. FileExistsError when it exists."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    at_fdcwd, rename_noreplace = -100, 1
    if renameat2(at_fdcwd, os.fsencode(source), at_fdcwd, os.fsencode(target), rename_noreplace) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(target))


def _publish_new(staged: Path, target: Path) -> None:
    """Move `staged` to `target` only if nothing is there; FileExistsError if something is. Where renameat2 is
    missing, a file is hard-linked (link never replaces) and a folder renamed onto an empty folder made for it
    (rename replaces an empty folder only, so anything put there meanwhile stops it)."""
    if _rename_noreplace(staged, target):
        return
    if not staged.is_dir():
        try:
            os.link(staged, target)
        except (FileExistsError, FileNotFoundError):
            raise
        except OSError:  # a file system without hard links: the check and the rename are two steps there
            if os.path.lexists(target):
                raise FileExistsError(errno.EEXIST, "exists", str(target)) from None
            os.rename(staged, target)
            return
        os.unlink(staged)
        return
    target.mkdir()
    try:
        os.rename(staged, target)
    except OSError as error:
        with suppress(OSError):
            target.rmdir()
        raise FileExistsError(errno.EEXIST, "appeared meanwhile", str(target)) from error


def publish(staged: Path, target: Path, *, replace: bool = True) -> None:
    """Move a finished staged file or folder to `target` in one rename. Without `replace`, nothing there is
    replaced: an output that appeared since the run began (another run's) is an OutputError and `staged` stays for
    the caller's clean-up. With it, only what `check_replaceable` allows is (a folder through a hidden name beside
    it, removed once the new one is in place). A `staged` on another file system (a distributed run's work folder)
    is copied beside the target first, under a staging name of its own."""
    with writing(target):
        if os.stat(staged).st_dev == os.stat(target.parent).st_dev:
            _publish_here(staged, target, replace)
            return
        copy = _copy_beside(staged, target)
        try:
            _publish_here(copy, target, replace)
        finally:
            remove_quietly(copy)  # gone once published; left when not, unless removed here


def _publish_here(staged: Path, target: Path, replace: bool) -> None:
    """`publish` from a `staged` path on `target`'s file system."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        mode = None
    if mode is None or not replace:
        try:
            _publish_new(staged, target)
        except FileExistsError:
            raise OutputError(f"{target}: appeared while this run wrote it; nothing written") from None
        return
    check_replaceable(target, replace)
    if stat.S_ISREG(mode) and not staged.is_dir():
        os.replace(staged, target)
        return
    aside = target.parent / _staging_name(target.name, "old", "")
    os.rename(target, aside)
    try:
        _publish_new(staged, target)
    except BaseException:
        os.rename(aside, target)
        raise
    remove_quietly(aside)


def _copy_beside(staged: Path, target: Path) -> Path:
    """A copy of `staged` in `target`'s folder, under a new staging name; `staged` is removed."""
    if staged.is_dir():
        copy = create_staged_folder(target.parent, target.name, "copy")
        shutil.copytree(staged, copy, dirs_exist_ok=True)
    else:
        fd, copy = create_staged_file(target.parent, target.name, "copy")
        with open(fd, "wb") as sink, open(staged, "rb") as source:
            shutil.copyfileobj(source, sink)
    remove_quietly(staged)
    return copy


@contextmanager
def staged_beside(path: Path) -> Iterator[Path]:
    """A new staging file beside `path` (created as `create_staged_file` creates it: no planted link is written
    through), moved over `path` once the caller wrote it, removed if the writing fails. For a run's own files (a
    work folder's records and progress), which replace their last version; an output goes through `publish`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, staged = create_staged_file(path.parent, path.name, "work")
    os.close(fd)
    try:
        yield staged
        os.replace(staged, path)
    finally:
        remove_quietly(staged)


def write_atomically(path: Path, text: str, *, replace: bool = True) -> Path:
    """Write `text` to a staging file beside `path`, then publish it (`publish`): a reader sees the old file or
    the new one. Without `replace`, an existing `path` is refused.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "run.json"
    >>> write_atomically(target, "{}").read_text(), sorted(p.name for p in target.parent.iterdir())
    ('{}', ['run.json'])
    """
    return _staged_then_published(path, replace, lambda sink: sink.write(text.encode("utf-8")))


def copy_atomically(source: Path, path: Path, *, replace: bool = True) -> Path:
    """Copy `source` to `path` as `write_atomically` writes: never through a link, a device or half a file."""
    with open(source, "rb") as handle:
        return _staged_then_published(path, replace, lambda sink: shutil.copyfileobj(handle, sink))


def staged_text(path: Path, text: str) -> Path:
    """`text` written to a new staging file beside `path`, to be published with others (`publish`), or removed;
    a write that fails (a full disk) removes it and is the output's error."""
    return _staged(path, lambda sink: sink.write(text.encode("utf-8")))


def _staged(path: Path, fill: Callable[[BinaryIO], Any]) -> Path:
    remove_stale_staging(path.parent, path.name)
    fd, staged = create_staged_file(path.parent, path.name, "text")
    try:
        with writing(path), open(fd, "wb") as sink:
            fill(sink)
    except BaseException:
        remove_quietly(staged)
        raise
    return staged


def _staged_then_published(path: Path, replace: bool, fill: Callable[[BinaryIO], Any]) -> Path:
    check_replaceable(path, replace)
    staged = _staged(path, fill)
    try:
        publish(staged, path, replace=replace)
    finally:
        remove_quietly(staged)
    return path
