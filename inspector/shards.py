"""`inspect` (and `convert`, `converters.shards`) over many shards on datatrove: each shard read by the task that
takes it, one merged result.

The single pass splits into datatrove steps chained by `depends`, a step per shard taking `shards[rank::world_size]`:
1. `ShardHeads` reads each shard's first rows (remote shards, `hf://`, `s3://`, `gs://`..., are copied into the
   work folder first, through fsspec);
2. `ShardJudge`, one task, decides from every shard's first rows what each shard is read against, as one pass
   decides it (`inspector.scan.judge`);
3. `ShardScan` scans its shards and writes each one's partial result;
4. `ShardMerge`, one task, merges the partials in shard order (`inspector.scan.merge`: counts summed, row
   numbers shifted, row hashes joined so that duplicates across shards are found) and builds the report.
The report is the one a single pass over the same files gives, row numbers and `file:line` included. Each step
writes its files atomically and datatrove records finished tasks, so a rerun with the same `work_dir` skips them,
and the report exists only once every shard was scanned. `executor="slurm"` submits the same steps as Slurm job
arrays. Needs the `distributed` extra (datatrove).

The work folder holds data, never code: every result a task leaves for another is a msgpack record (`save_record`)
of plain values and byte arrays, stamped with the run's random id and the job's digest, and one that another run,
another job or anyone else wrote is refused (`ForeignWork`), never unpickled. Run locally, the tasks run in a
process group of their own, which Ctrl-C or SIGTERM stops whole (`_run_locally`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import decimal
import functools
import glob
import hashlib
import json
import multiprocessing
import multiprocessing.connection
import os
import secrets
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import msgspec
from datatrove.pipeline.base import PipelineStep
from loguru import logger

from trlprep.errors import DataRefused, OutputError, SourceError, TrlprepError, UsageError
from trlprep.files import staged_beside, write_atomically
from trlprep.inspector.options import InspectOptions
from trlprep.inspector.sources import DuplicateKeys, UnreadableRow, url_filesystem
from trlprep.interrupts import terminating_cleanly
from trlprep.options import Executor

JOB_FILE = "job.json"
REPORT_FILE = "report.json"
RECORD_SUFFIX = ".msgpack"  # a task's result for another task (`save_record`)
WORK_FORMAT = 1  # the records' layout: a record of another layout is refused, never guessed at
# Python salts its string hashes per interpreter; rows are compared across shards by these hashes, so every task
# must hash as the others do (datatrove's local workers are forks of one server; Slurm tasks get PYTHONHASHSEED),
# and hashes rows stably (`inspector.fast.hash_rows_stably`).
HASH_PROBE = b"trlprep row hashes"
TASK_HASH_SEED = "0"
RETRIES = 1  # tries after the first: a shard read from object storage may fail once and then be read


class ShardFailed(TrlprepError):
    """A shard could not be read; nothing was merged or published."""

    kind = "unreadable_input"


class ForeignWork(TrlprepError):
    """A file of the work folder that this run's tasks did not write (another run's or job's, cut short, or no
    record at all): refused, never read as a result."""

    kind = "unreadable_input"


def shard_urls(pattern: str) -> list[str]:
    """The shards a pattern names, sorted: a local folder (the files one pass reads from it), a local glob
    (`data/*.jsonl`, `**` recursive), or an fsspec URL with a glob (`hf://datasets/org/name/**/*.parquet`,
    `s3://bucket/prefix/*.jsonl.gz`)."""
    if "://" in pattern:
        filesystem, path = url_filesystem(pattern)
        return [filesystem.unstrip_protocol(found) for found in sorted(filesystem.glob(path))
                if filesystem.isfile(found)]
    if Path(pattern).is_dir():
        from trlprep.inspector.sources import folder_files

        return [str(path) for path in folder_files(Path(pattern))]
    from trlprep.inspector.sources import glob_files

    return [str(path) for path in glob_files(pattern)]


def dataset_folder(pattern: str) -> Path | None:
    """The local folder a pattern reads shards from: the folder itself, or a glob's folders up to its first
    wildcard; None for one file or a URL. A work folder there would be read as rows by the next run over it.

    >>> dataset_folder("data/*.jsonl"), dataset_folder("data/**/x-*.jsonl"), dataset_folder("s3://b/*.jsonl")
    (PosixPath('data'), PosixPath('data'), None)
    """
    if "://" in pattern:
        return None
    parts = Path(pattern).parts
    fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), None)
    if fixed is not None:
        return Path(*parts[:fixed]) if fixed else Path(".")
    return Path(pattern) if Path(pattern).is_dir() else None


def local_path(url: str, index: int, work: Path) -> Path:
    """A shard as a local file: itself, or its copy in `<work>/shards/` (copied once, atomically)."""
    if "://" not in url or url.startswith("file://"):
        return Path(url.removeprefix("file://"))
    target = work_folder(work, "shards") / f"{index:06d}-{url.rsplit('/', 1)[-1]}"
    if not target.exists():
        filesystem, path = url_filesystem(url)
        with staged_beside(target) as staged:
            filesystem.get_file(path, str(staged))
    return target


def job_digest(job: dict) -> str:
    """What identifies a job (its shards and options), the run's id and whether it may replace its output aside
    (a rerun with --overwrite takes up the same tasks): each record names the job it is of."""
    identity = {key: value for key, value in job.items() if key not in ("run", "overwrite")}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def save_record(work: Path, job: dict, name: str, data: Any) -> None:
    """A task's result for another task, `<work>/<name>.msgpack`, written atomically (a task killed midway leaves
    none): plain values, stamped with the run's id and the job's digest, which `load_record` requires."""
    record = {"format": WORK_FORMAT, "run": job["run"], "job": job_digest(job), "name": name, "data": data}
    with staged_beside(work_folder(work, str(Path(name).parent)) / f"{Path(name).name}{RECORD_SUFFIX}") as staged:
        staged.write_bytes(_ENCODE(record))


def load_record(work: Path, job: dict, name: str, read: Callable[[Any], Any] = lambda data: data) -> Any:
    """The result `save_record` wrote as `name` in this run, through `read`; a missing file, or one that is no
    record of this run's job, is refused (`ForeignWork`) naming it."""
    path = work / f"{name}{RECORD_SUFFIX}"
    try:
        record = _DECODE(path.read_bytes())
    except FileNotFoundError:
        raise _foreign(path, "missing, though the task that writes it is recorded as done") from None
    except (msgspec.DecodeError, ValueError, TypeError, OSError) as error:
        raise _foreign(path, f"not a work record of trlprep ({error})") from None
    if not isinstance(record, dict) or record.get("format") != WORK_FORMAT:
        raise _foreign(path, "not a work record of trlprep")
    if record.get("run") != job["run"] or record.get("job") != job_digest(job) or record.get("name") != name:
        raise _foreign(path, "written by another run or for another job")
    try:
        return read(record["data"])
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        raise _foreign(path, f"malformed ({type(error).__name__}: {error})") from None


def _foreign(path: Path, why: str) -> ForeignWork:
    return ForeignWork(f"{path}: {why}; it is no result of this run: run again with a fresh --work-dir")


def work_folder(work: Path, name: str) -> Path:
    """The folder `<work>/<name>`, created where missing, each part of it a folder of its own: a symlink planted in
    the work folder (which may be shared) is refused (`ForeignWork`), never followed, so nothing is written outside
    it and no link is published as an output.

    >>> import tempfile
    >>> work = Path(tempfile.mkdtemp())
    >>> work_folder(work, "converted").is_dir(), work_folder(work, ".") == work
    (True, True)
    >>> (work / "output").symlink_to(work / "converted")
    >>> try:
    ...     work_folder(work, "output")
    ... except ForeignWork as refused:
    ...     print(str(refused).removeprefix(str(work)).split(";")[0])
    /output: a symlink (to .../converted)
    """
    folder = work
    for part in Path(name).parts:
        folder = folder / part
        with contextlib.suppress(FileExistsError):
            folder.mkdir()
        _refuse_link(folder)
    return folder


def _refuse_link(path: Path) -> None:
    """Refuse `path` where it is a symlink or anything but a folder."""
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode):
        raise _foreign(path, f"a symlink (to {os.readlink(path)}); a work folder's files are never written through "
                             f"a link")
    if not stat.S_ISDIR(mode):
        raise _foreign(path, "not a folder")


def _refuse_links(work: Path) -> None:
    """Refuse, before any task runs, a work folder that holds a symlink a task could write through: one to a
    folder, or to nothing (a file would be created where it points). A link to a file is left: a result is staged
    beside its name and renamed over it, which replaces the link, never writes through it. The tasks create their
    folders with `work_folder`, which refuses a link planted later."""
    for folder, folders, files in os.walk(work):
        for name in folders + files:
            path = os.path.join(folder, name)
            if os.path.islink(path) and not os.path.isfile(path):
                _refuse_link(Path(path))


# Row values (a shard's first rows, the fast path's example row, a preview) keep their Python types through a
# record: msgpack has no tuple, date or wrapped row, so each such value is a msgpack extension of its own code.
_TUPLE, _UNREADABLE, _DUPLICATE_KEYS, _DATETIME, _DATE, _TIME, _TIMEDELTA, _DECIMAL, _BIG_INT, _PAIRS = range(1, 11)


def row_data(value: Any) -> Any:
    """A row value as a record holds it (`_ENCODE`); any other type than a JSON, CSV or Arrow reader gives is
    refused (TypeError).

    >>> from trlprep.inspector.sources import UnreadableRow
    >>> value = {"a": (1, 2**70), "b": [b"x", datetime.date(2024, 1, 2)], "c": UnreadableRow("cut", "{")}
    >>> _DECODE(_ENCODE(row_data(value))) == value
    True
    """
    kind = type(value)
    if value is None or kind in (str, bool, float, bytes):
        return value
    if kind is int:
        return value if -(2**63) <= value < 2**64 else msgspec.msgpack.Ext(_BIG_INT, str(value).encode())
    if kind is list:
        return [row_data(item) for item in value]
    if kind is dict and all(type(key) is str for key in value):
        return {key: row_data(item) for key, item in value.items()}
    if kind is dict:
        return _ext(_PAIRS, [[row_data(key), row_data(item)] for key, item in value.items()])
    if kind is tuple:
        return _ext(_TUPLE, [row_data(item) for item in value])
    if kind is UnreadableRow:
        return _ext(_UNREADABLE, [value.error, value.text])
    if kind is DuplicateKeys:
        return _ext(_DUPLICATE_KEYS, [row_data(value.row), list(value.keys)])
    if kind is datetime.timedelta:
        return _ext(_TIMEDELTA, [value.days, value.seconds, value.microseconds])
    code = {datetime.datetime: _DATETIME, datetime.date: _DATE, datetime.time: _TIME, decimal.Decimal: _DECIMAL}.get(kind)
    if code is None:
        raise TypeError(f"a value of type {kind.__module__}.{kind.__qualname__}, which a work record cannot keep")
    return msgspec.msgpack.Ext(code, (str(value) if kind is decimal.Decimal else value.isoformat()).encode())


def _ext(code: int, items: list) -> msgspec.msgpack.Ext:
    return msgspec.msgpack.Ext(code, _ENCODE(items))


def _row_value(code: int, data: memoryview) -> Any:
    """The row value of a msgpack extension `row_data` wrote."""
    if code in (_DATETIME, _DATE, _TIME, _DECIMAL, _BIG_INT):
        text = bytes(data).decode()
        return {_DATETIME: datetime.datetime.fromisoformat, _DATE: datetime.date.fromisoformat,
                _TIME: datetime.time.fromisoformat, _DECIMAL: decimal.Decimal, _BIG_INT: int}[code](text)
    items = _DECODE(data)
    if code == _TUPLE:
        return tuple(items)
    if code == _PAIRS:
        return {key: item for key, item in items}
    if code == _UNREADABLE:
        return UnreadableRow(*items)
    if code == _DUPLICATE_KEYS:
        return DuplicateKeys(items[0], tuple(items[1]))
    if code == _TIMEDELTA:
        return datetime.timedelta(*items)
    raise ValueError(f"unknown msgpack extension {code}")


_ENCODE = msgspec.msgpack.Encoder().encode
_DECODE = msgspec.msgpack.Decoder(ext_hook=_row_value).decode


def part_data(part) -> dict:
    """A `FilePart` as plain values, its source named by its path (`part_from_data` reads it back)."""
    from trlprep.inspector.scan.merge import int64s, shape_data

    return {"source": str(part.source), "head": [[number, row_data(value)] for number, value in part.head],
            "head_shapes": [shape_data(shape) for shape in part.head_shapes], "shape": shape_data(part.shape),
            "judged_as": shape_data(part.judged_as), "example": row_data(part.example), "mode": part.mode,
            "expansion": None if part.expansion is None else part.expansion.name, "lines": int64s(part.lines),
            "head_columns": sorted(part.head_columns), "first_rows": [row_data(row) for row in part.first_rows]}


def part_from_data(data: dict):
    from trlprep.inspector.scan import FilePart
    from trlprep.inspector.scan.merge import int64s_from, shape_from_data
    from trlprep.inspector.scan.plan import EXPANSIONS

    expansion = data["expansion"]
    return FilePart(data["source"], [(number, value) for number, value in data["head"]],
                    [shape_from_data(shape) for shape in data["head_shapes"]], shape_from_data(data["shape"]),
                    shape_from_data(data["judged_as"]), data["example"], data["mode"], None,
                    None if expansion is None else next(e for e in EXPANSIONS if e.name == expansion),
                    int64s_from(data["lines"]), frozenset(data["head_columns"]), data["first_rows"])


def plan_data(plan: tuple[list, Any]) -> dict:
    from trlprep.inspector.scan.merge import shape_data

    parts, expected = plan
    return {"parts": [part_data(part) for part in parts], "expected": shape_data(expected)}


def plan_from_data(data: dict) -> tuple[list, Any]:
    from trlprep.inspector.scan.merge import shape_from_data

    return [part_from_data(part) for part in data["parts"]], shape_from_data(data["expected"])


def scan_data(scanned: dict) -> dict:
    """A shard's scan (`scan_shard`) as plain values (`scan_from_data` reads it back)."""
    from trlprep.inspector.scan.merge import int64s, partial_data

    return {"partial": partial_data(scanned["partial"]), "hash_probe": scanned["hash_probe"],
            "lines": int64s(scanned["lines"])}


def scan_from_data(data: dict) -> dict:
    from trlprep.inspector.scan.merge import int64s_from, partial_from_data

    return {"partial": partial_from_data(data["partial"]), "hash_probe": data["hash_probe"],
            "lines": int64s_from(data["lines"])}


class ShardStep(PipelineStep):
    """A datatrove step of a job in the work folder `work`: a step per shard defines `shard(index)`, run for the
    task's shards (`shards[rank::world_size]`), each tried again `RETRIES` times before the task fails naming it."""

    type = "trlprep"

    def __init__(self, work: str):
        super().__init__()
        self.work = Path(work)

    @functools.cached_property
    def job(self) -> dict:
        return json.loads((self.work / JOB_FILE).read_text())

    @functools.cached_property
    def plan(self) -> tuple[list, Any]:
        """Every shard as a `FilePart` judged as one pass judges it, and the dataset's shape (`ShardJudge`)."""
        return load_record(self.work, self.job, "plan", plan_from_data)

    def save(self, name: str, data: Any) -> None:
        save_record(self.work, self.job, name, data)

    def load(self, name: str, read: Callable[[Any], Any] = lambda data: data) -> Any:
        return load_record(self.work, self.job, name, read)

    def run(self, data, rank: int = 0, world_size: int = 1):
        for index in range(rank, len(self.job["shards"]), world_size):
            for attempt in range(1, RETRIES + 2):
                try:
                    self.shard(index)
                    break
                except ForeignWork:  # reading it again gives the same file
                    raise
                except Exception as error:
                    url = self.job["shards"][index]
                    what = str(error) if isinstance(error, TrlprepError) else f"{type(error).__name__}: {error}"
                    if attempt > RETRIES:
                        raise ShardFailed(f"{url}: failed {attempt} times, last with: {what}") from error
                    logger.warning(f"{url}: {what}; trying again")  # in the task's log
        return data

    def shard(self, index: int) -> None:
        raise NotImplementedError

    def open(self, path: str | Path):
        """A shard's file opened as one pass opens the job's files (in its `--encoding`)."""
        from trlprep.inspector.sources import open_source

        return open_source(str(path), encoding=self.job["encoding"])


class ShardHeads(ShardStep):
    name = "first rows of each shard"

    def shard(self, index: int) -> None:
        from trlprep.inspector.scan import file_part, head_rows_per_file

        shards = self.job["shards"]
        path = local_path(shards[index], index, self.work)
        part = file_part(self.open(path), head_rows_per_file(len(shards)), several=len(shards) > 1,
                         columns=True)
        self.save(f"heads/{index:06d}", part_data(dataclasses.replace(part, source=path, lines=None)))


class ShardJudge(ShardStep):
    name = "what each shard is read against"

    def run(self, data, rank: int = 0, world_size: int = 1):
        self.save("plan", plan_data(_judged(self.work, self.job)))
        return data


class ShardScan(ShardStep):
    name = "scan of each shard"

    def shard(self, index: int) -> None:
        part = self.plan[0][index]
        started = time.perf_counter()
        scanned = scan_shard(dataclasses.replace(part, source=self.open(part.source)), set(self.job["enabled"]),
                             self.job["max_rows"])
        self.save(f"partials/{index:06d}", scan_data(scanned))
        done(self.work, index, scanned["partial"].rows_read, started)


def scan_shard(part, enabled: set[str], max_rows: int) -> dict:
    """One shard's partial result (`part`, read against what it was judged to be), its rows hashed as every task
    hashes them, so that the merge finds duplicates across shards: {"partial", "hash_probe", "lines"} (`lines`:
    each row's line, of a shard whose lines hold several rows)."""
    from trlprep.inspector.fast import hash_rows_stably
    from trlprep.inspector.scan import ReadPlan, scan_part

    hash_rows_stably()
    partial = scan_part(ReadPlan(part.source, [part], part.judged_as), part, enabled=enabled, max_rows=max_rows,
                        advance=lambda n: None, workers=1)
    return {"partial": partial, "hash_probe": hash(HASH_PROBE), "lines": part.lines}


def done(work: Path, index: int, rows: int, started: float) -> None:
    """Shard `index` is done, `rows` rows since `started`: what the progress line counts."""
    with staged_beside(work_folder(work, "progress") / f"{index:06d}.json") as staged:  # whole when the progress line reads it
        staged.write_text(json.dumps({"rows": rows, "seconds": time.perf_counter() - started}))


class ShardMerge(ShardStep):
    """The merge as a Slurm job, which writes the report as `<work>/report.json`; run locally, the merge is the
    calling process's (`inspect_shards`), whose report object is what `inspect` returns."""

    name = "merge of the shards' partial results"

    def run(self, data, rank: int = 0, world_size: int = 1):
        write_atomically(self.work / REPORT_FILE, _merged_report(self.work, self.job).to_json())
        return data


# First rows, judgement, scan, merge: (step, whether it runs a task per shard).
INSPECTION = ((ShardHeads, True), (ShardJudge, False), (ShardScan, True), (ShardMerge, False))


def _judged(work: Path, job: dict):
    """Every shard as a `FilePart` (its path for its source) read against what one pass over all of them reads
    it as, and the dataset's shape."""
    from trlprep.inspector.scan import judge

    parts = [load_record(work, job, f"heads/{index:06d}", part_from_data) for index in range(len(job["shards"]))]
    return parts, judge(parts)


def _merged_report(work: Path, job: dict):
    parts, expected = load_record(work, job, "plan", plan_from_data)
    found = [load_record(work, job, f"partials/{index:06d}", scan_from_data) for index in range(len(job["shards"]))]
    first_rows = [value for _, value in load_record(work, job, "heads/000000", part_from_data).head]
    return merged_report(job["pattern"], job["shards"], parts, expected, found, first_rows=first_rows,
                         enabled=set(job["enabled"]), max_rows=job["max_rows"], method=job["method"],
                         encoding=job["encoding"], severity=job["severity"])


def merged_report(pattern: str, urls: list[str], parts: list, expected, found: list[dict], *, first_rows: list,
                  enabled: set[str], max_rows: int, method: str | None, encoding: str | None = None,
                  severity: dict[str, str] | None = None):
    """The report of one pass over the shards `urls` (read as `parts`, against `expected`, their text in
    `encoding`), from each shard's partial result (`found`: {"partial", "hash_probe", "lines"}, in shard order);
    `first_rows`: the first shard's first rows, which a proposed `--map` is checked on."""
    from trlprep.inspector.findings import build_report
    from trlprep.inspector.scan import SUGGESTION_ROWS, FileSummary, finish, merge
    from trlprep.inspector.sources import open_source, row_value

    if len({shard["hash_probe"] for shard in found}) > 1:
        raise ShardFailed("the tasks hashed rows differently, so duplicates across shards cannot be found: give "
                          f"every task PYTHONHASHSEED={TASK_HASH_SEED} (a worker server started before this run "
                          f"without it passes its own on: run again in a new process)")
    partials = [(shard["partial"], shard["partial"].last_row) for shard in found]
    merged = partials[0][0] if len(partials) == 1 else merge(partials, max_rows)
    if merged.rows_read == 0:
        raise SourceError(f"{pattern}: no rows")
    result = finish(merged, enabled, max_rows, expected)
    offset = 0
    for url, part, shard, (partial, last_row) in zip(urls, parts, found, partials):
        result.files.append(FileSummary(url, offset, partial.rows_read, part.shape, part.judged_as, shard["lines"]))
        offset += last_row
    result.first_rows = [row_value(value) for value in first_rows[:SUGGESTION_ROWS]]
    paths = [str(part.source) for part in parts]
    source = open_source(pattern if paths == urls else os.path.commonpath(paths) + "/*", encoding=encoding)
    report = build_report(source, result, method=method, sample=None, seconds=0.0,
                          local=os.path.exists(pattern), severity=severity)
    for path, url in zip(paths, urls):
        report.moved(path, url)
    report.source = pattern
    return report


def inspect_shards(pattern: str, options: InspectOptions, executor: Executor):
    """`inspect_dataset(pattern, options, executor=...)`: the shards scanned on datatrove's executors, the same
    report as one pass over the same files. Returns the `Report` (local executor) or None once the Slurm jobs are
    submitted (the report is then written to `<work_dir>/report.json` by the merge job)."""
    from trlprep.inspector.rules import select_rules

    started = time.perf_counter()
    job = {"pattern": pattern, "enabled": sorted(select_rules(options.select, options.ignore)),
           "max_rows": options.max_rows, "method": options.method, "encoding": options.encoding,
           "severity": options.severity}
    # Locally, this process merges: the report it returns is built here, never read back from the work folder.
    steps = INSPECTION if executor.kind == "slurm" else INSPECTION[:-1]
    ran = run_job(job, steps, executor, progress=options.progress)
    if ran is None:
        return None
    work, job = ran
    report = _merged_report(work, job)
    seconds = time.perf_counter() - started
    shards = len(report.files)
    report.stats = {"seconds": round(seconds, 4), "rows_per_second": round(report.rows_checked / seconds, 1),
                    "shards": shards, "tasks": min(executor.tasks or shards, shards), "workers": executor.workers}
    write_atomically(work / REPORT_FILE, report.to_json())
    return report


def run_job(job: dict, steps: tuple[tuple[type[ShardStep], bool], ...], executor: Executor, *, progress: bool,
            progress_label: str = "scanned") -> tuple[Path, dict] | None:
    """Run `steps` (each a step and whether it is a task per shard, else one task) over the shards of
    `job["pattern"]`, chained on the executor; their work folder and the job as the tasks read it once the last
    has run locally, None once they are submitted to Slurm. `job` (with `shards` and the run's random id, `run`,
    added) is what every task reads; a work folder that holds another job is refused, one that holds this job's
    finished tasks is taken up where it stopped (its run id kept, so that its records are read)."""
    if executor.kind == "slurm" and (executor.work_dir is None or not executor.partition):
        raise UsageError("--executor slurm needs --work-dir (a folder every node reads and writes) and "
                         "--slurm-partition")
    if executor.kind == "slurm":
        _refuse_writable_by_others(Path(executor.work_dir))
    if executor.kind == "slurm" and shutil.which("sbatch") is None:
        raise UsageError("--executor slurm submits its tasks with Slurm's sbatch, which is not on this machine's "
                         "PATH: run it on a Slurm login node, or use --executor local")
    pattern = job["pattern"]
    shards = shard_urls(pattern)
    if not shards:
        raise SourceError(f"{pattern}: no file matches")
    if "://" not in pattern:  # what one pass refuses (files of several formats, ...), refused before any task
        from trlprep.inspector.sources import open_source

        open_source(pattern, encoding=job["encoding"])
    folder = dataset_folder(pattern)
    if executor.work_dir is not None and folder is not None \
            and folder.resolve() in (Path(executor.work_dir).resolve(), *Path(executor.work_dir).resolve().parents):
        raise UsageError(f"--work-dir {executor.work_dir}: is in the dataset's folder {folder}, whose next read would "
                         f"take its files in as rows; give a folder outside it")
    work = Path(executor.work_dir) if executor.work_dir is not None else Path(tempfile.mkdtemp(prefix="trlprep-shards-"))
    work.mkdir(mode=0o755 if executor.kind == "slurm" else 0o777, parents=True, exist_ok=True)
    _refuse_links(work)
    job = {**job, "shards": shards}
    previous = _previous_job(work)
    if previous is not None and job_digest(previous) != job_digest(job):
        raise UsageError(f"--work-dir {work} holds another job's tasks; give an empty folder")
    job["run"] = previous["run"] if previous is not None else secrets.token_hex(16)
    tasks = min(executor.tasks or len(shards), len(shards))
    if executor.kind == "slurm":
        last = _executors(work, tasks, executor.workers, executor.kind, executor.slurm, steps)
        write_atomically(work / JOB_FILE, json.dumps(job))
        mask = os.umask(0)
        os.umask(mask | 0o022)  # the pickles datatrove writes for its jobs: writable by this user alone
        try:
            last.run()
        finally:
            os.umask(mask)
        return None
    write_atomically(work / JOB_FILE, json.dumps(job))
    with _tasks_running(work_folder(work, "logs") / "console.log") as terminal:
        watcher = _Progress(work, len(shards), terminal, progress_label) if progress else None
        try:
            _run_locally(work, tasks, executor.workers, steps)
        finally:
            if watcher is not None:
                watcher.stop()
    return work, job


def _refuse_writable_by_others(work: Path) -> None:
    """Refuse a Slurm work folder that another user can write to: datatrove's job script loads each step from the
    pickle it writes there at submission (`logs/<step>/executor.pik`), and a pickle replaced there runs its code on
    every node. A folder this run creates is its user's alone."""
    try:
        status = work.stat()
    except FileNotFoundError:
        return
    if status.st_uid != os.getuid() or status.st_mode & 0o022:
        raise UsageError(f"--work-dir {work}: another user can write to it, and datatrove's Slurm jobs run the steps "
                         f"it pickles there (logs/<step>/executor.pik): give a folder of yours that only you can "
                         f"write to (chmod go-w {work})")


def _previous_job(work: Path) -> dict | None:
    """The job a work folder's tasks were run for (`job.json`), None in a new folder; a file there that is no
    job of trlprep's is refused."""
    path = work / JOB_FILE
    if not path.exists():
        return None
    try:
        job = json.loads(path.read_bytes())
    except (ValueError, OSError) as error:
        raise _foreign(path, f"not a job file of trlprep ({error})") from None
    if not isinstance(job, dict) or not isinstance(job.get("run"), str):
        raise _foreign(path, "not a job file of trlprep")
    return job


def _run_locally(work: Path, tasks: int, workers: int, steps: tuple[tuple[type[ShardStep], bool], ...]) -> None:
    """The steps on datatrove's local executor, in a process of their own that leads a process group of its own:
    its worker pool, the pool's manager and fork server are all in that group. Ctrl-C (or SIGTERM, made one)
    stops the whole group at once: datatrove's own clean-up would wait forever on a pool whose worker was lost
    holding the pool's queue lock. If this process dies, the group kills itself. A task's failure comes back as
    data and is raised here as its own error."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of this process's threads
    outcome, outcome_sent = context.Pipe(duplex=False)
    alive, alive_held = context.Pipe(duplex=False)  # closed when this process ends, however it ends
    runner = context.Process(target=_run_group, args=(str(work), tasks, workers, steps, outcome_sent, alive),
                             name="trlprep-shards")
    with terminating_cleanly():
        runner.start()
        outcome_sent.close()
        alive.close()
        failure = None
        try:
            # How the tasks ended, read as soon as it comes (a long one would fill the pipe before the runner ends).
            ready = multiprocessing.connection.wait([outcome, runner.sentinel])
            with contextlib.suppress(EOFError):
                failure = json.loads(outcome.recv_bytes()) if outcome in ready or outcome.poll() else None
            runner.join()
        except KeyboardInterrupt:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(runner.pid, signal.SIGKILL)
            runner.kill()  # interrupted before it led its group, it has started nothing yet
            runner.join()
            raise
        finally:
            alive_held.close()
    if failure is None:
        failure = {"error": "ShardFailed", "message": f"the process running the tasks ended with exit code "
                                                      f"{runner.exitcode}"}
    if failure:
        raise _raised(failure, work)


def _run_group(work: str, tasks: int, workers: int, steps, outcome, alive) -> None:
    """In the process `_run_locally` starts: lead a process group, run the steps, send back how they ended
    (`_failure`), and kill the group if the parent goes."""
    os.setpgid(0, 0)

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            alive.recv_bytes()
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, daemon=True).start()
    try:
        _executors(Path(work), tasks, workers, "local", {}, steps).run()
        failure = {}
    except Exception as error:
        failure = _failure(error)
    outcome.send_bytes(json.dumps(failure, default=str).encode())


# The errors of a task that reach the user as they are (the most derived first); any other is a failed shard.
_RAISED_AS_THEY_ARE = {cls.__name__: cls for cls in (DataRefused, ForeignWork, OutputError, UsageError)}


def _failure(error: Exception) -> dict:
    """A task's error as data: its class among those the tasks raise, its line, the rule, and the result before
    it (a refused conversion's ledger) as a dict."""
    result = getattr(error, "result", None)
    kind = next((name for name, cls in _RAISED_AS_THEY_ARE.items() if isinstance(error, cls)), "ShardFailed")
    message = str(error) if isinstance(error, TrlprepError) else f"{type(error).__name__}: {error}"
    return {"error": kind, "message": message, "rule": getattr(error, "rule", None),
            "result": result.to_dict() if hasattr(result, "to_dict") else None}


def _raised(failure: dict, work: Path) -> TrlprepError:
    """The error a task's failure (`_failure`) is raised as here: a refusal and a foreign work file as they are
    (a refusal's ledger as a dict), any other failure as one of a shard, named with where its log is."""
    if failure["error"] == "DataRefused":
        return DataRefused(failure["message"], failure["result"], rule=failure["rule"])
    if failure["error"] in _RAISED_AS_THEY_ARE:
        return _RAISED_AS_THEY_ARE[failure["error"]](failure["message"])
    return ShardFailed(f"a shard task failed, nothing was merged or published: {failure['message']}; its log is "
                       f"under {work / 'logs'}; fix the shard and run again with --work-dir {work} (finished tasks "
                       f"are skipped)")


def _executors(work: Path, tasks: int, workers: int, executor: str, slurm: dict,
               steps: tuple[tuple[type[ShardStep], bool], ...]):
    """The steps chained by `depends`, `tasks` tasks each (one for a step that is not per shard); running the
    last runs them all."""
    if executor == "local":
        from datatrove.executor import LocalPipelineExecutor as Executor

        options = {}
    else:
        from datatrove.executor import SlurmPipelineExecutor as Executor

        options = {"partition": slurm["partition"], "time": slurm.get("time", "10:00:00"), "cpus_per_task": 1,
                   "env_command": f"export PYTHONHASHSEED={TASK_HASH_SEED}",
                   "sbatch_args": slurm.get("sbatch_args") or {}}
    chain = None
    for step, many in steps:
        name = step.__name__.removeprefix("Shard").lower()
        chain = Executor([step(str(work))], tasks=tasks if many else 1, workers=workers if many else 1,
                         logging_dir=str(work / "logs" / name), depends=chain, **options,
                         **({"job_name": f"trlprep-{name}"} if executor == "slurm" else {}))
    return chain


@contextlib.contextmanager
def _tasks_running(log: Path) -> Iterator[int]:
    """What datatrove's local tasks inherit from the worker server started here: PYTHONHASHSEED, so that a rerun
    after a crash hashes rows as the first run's finished tasks did, and this process's stderr, sent to `log`
    while they run (they log every step to the console through loguru). Yields the terminal's stderr, for the
    progress line."""
    try:  # appended to, so never through a link planted at its name
        sink = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    except OSError as error:
        raise _foreign(log, f"cannot be written ({error.strerror or error})") from None
    seed = os.environ.get("PYTHONHASHSEED")
    os.environ["PYTHONHASHSEED"] = TASK_HASH_SEED
    sys.stderr.flush()
    terminal = os.dup(2)
    os.dup2(sink, 2)
    os.close(sink)
    logger.disable("datatrove")
    try:
        yield terminal
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)
        os.close(terminal)
        logger.enable("datatrove")
        if seed is None:
            os.environ.pop("PYTHONHASHSEED")
        else:
            os.environ["PYTHONHASHSEED"] = seed


class _Progress:
    """Shards done and rows/s across workers, redrawn on stderr while the tasks run (a terminal only)."""

    def __init__(self, work: Path, shards: int, terminal: int, label: str):
        self.work, self.shards, self.terminal, self.label = work, shards, terminal, label
        self.started = time.perf_counter()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._draw, daemon=True)
        self.thread.start()

    def _draw(self) -> None:
        while not self.done.wait(0.5):
            finished = list((self.work / "progress").glob("*.json")) if (self.work / "progress").is_dir() else []
            rows = sum(json.loads(path.read_text())["rows"] for path in finished)
            elapsed = time.perf_counter() - self.started
            left = (elapsed / len(finished) * (self.shards - len(finished))) if finished else None
            line = f"\rshards {len(finished)}/{self.shards} {self.label}, {rows:,} rows" + (
                "; finishing" if len(finished) == self.shards else
                f", {rows / elapsed:,.0f} rows/s" + (f", about {left:.0f} s left" if left else "")) + "   "
            os.write(self.terminal, line.encode())

    def stop(self) -> None:
        self.done.set()
        self.thread.join()
        os.write(self.terminal, b"\r" + b" " * 80 + b"\r")
