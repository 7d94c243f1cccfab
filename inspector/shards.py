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
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import pickle
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from datatrove.pipeline.base import PipelineStep
from loguru import logger

from trlprep.errors import DataRefused, SourceError, TrlprepError, UsageError
from trlprep.files import write_atomically
from trlprep.inspector.options import InspectOptions
from trlprep.inspector.sources import url_filesystem
from trlprep.options import Executor

JOB_FILE = "job.json"
# Python salts its string hashes per interpreter; rows are compared across shards by these hashes, so every task
# must hash as the others do (datatrove's local workers are forks of one server; Slurm tasks get PYTHONHASHSEED),
# and hashes rows stably (`inspector.fast.hash_rows_stably`).
HASH_PROBE = b"trlprep row hashes"
TASK_HASH_SEED = "0"
RETRIES = 1  # tries after the first: a shard read from object storage may fail once and then be read


class ShardFailed(TrlprepError):
    """A shard could not be read; nothing was merged or published."""

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


def local_path(url: str, index: int, work: Path) -> Path:
    """A shard as a local file: itself, or its copy in `<work>/shards/` (copied once, atomically)."""
    if "://" not in url or url.startswith("file://"):
        return Path(url.removeprefix("file://"))
    target = work / "shards" / f"{index:06d}-{url.rsplit('/', 1)[-1]}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_name(f".{target.name}.staging")
        filesystem, path = url_filesystem(url)
        filesystem.get_file(path, str(staged))
        os.replace(staged, target)
    return target


def save_result(path: Path, value: Any) -> None:
    """A task's result (any picklable value) written atomically, so a task killed midway leaves none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.staging")
    with open(staged, "wb") as handle:
        pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(staged, path)


def load_result(path: Path) -> Any:
    with open(path, "rb") as handle:
        return pickle.load(handle)


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
        return load_result(self.work / "plan.pkl")

    def run(self, data, rank: int = 0, world_size: int = 1):
        for index in range(rank, len(self.job["shards"]), world_size):
            for attempt in range(1, RETRIES + 2):
                try:
                    self.shard(index)
                    break
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
        save_result(self.work / "heads" / f"{index:06d}.pkl",
               {"path": str(path), "head": part.head, "head_shapes": part.head_shapes, "shape": part.shape,
                "mode": part.mode, "expansion": part.expansion})


class ShardJudge(ShardStep):
    name = "what each shard is read against"

    def run(self, data, rank: int = 0, world_size: int = 1):
        save_result(self.work / "plan.pkl", _judged(self.work, len(self.job["shards"])))
        return data


class ShardScan(ShardStep):
    name = "scan of each shard"

    def shard(self, index: int) -> None:
        part = self.plan[0][index]
        started = time.perf_counter()
        scanned = scan_shard(dataclasses.replace(part, source=self.open(part.source)), set(self.job["enabled"]),
                             self.job["max_rows"])
        save_result(self.work / "partials" / f"{index:06d}.pkl", scanned)
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
    path = work / "progress" / f"{index:06d}.json"
    path.parent.mkdir(exist_ok=True)
    staged = path.with_name(f".{path.name}.staging")  # whole when the progress line reads it
    staged.write_text(json.dumps({"rows": rows, "seconds": time.perf_counter() - started}))
    os.replace(staged, path)


class ShardMerge(ShardStep):
    name = "merge of the shards' partial results"

    def run(self, data, rank: int = 0, world_size: int = 1):
        save_result(self.work / "report.pkl", _merged_report(self.work, self.job))
        return data


# First rows, judgement, scan, merge: (step, whether it runs a task per shard).
INSPECTION = ((ShardHeads, True), (ShardJudge, False), (ShardScan, True), (ShardMerge, False))


def _judged(work: Path, shards: int):
    """Every shard as a `FilePart` (its path for its source) read against what one pass over all of them reads
    it as, and the dataset's shape."""
    from trlprep.inspector.scan import FilePart, judge

    parts = []
    for index in range(shards):
        head = load_result(work / "heads" / f"{index:06d}.pkl")
        parts.append(FilePart(head["path"], head["head"], head["head_shapes"], head["shape"], None, None,
                              head["mode"], None, head["expansion"]))
    return parts, judge(parts)


def _merged_report(work: Path, job: dict):
    parts, expected = load_result(work / "plan.pkl")
    found = [load_result(work / "partials" / f"{index:06d}.pkl") for index in range(len(job["shards"]))]
    first_rows = [value for _, value in load_result(work / "heads" / "000000.pkl")["head"]]
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
    work = run_job(job, INSPECTION, executor, progress=options.progress)
    if work is None:
        return None
    report = load_result(work / "report.pkl")
    seconds = time.perf_counter() - started
    shards = len(report.files)
    report.stats = {"seconds": round(seconds, 4), "rows_per_second": round(report.rows_checked / seconds, 1),
                    "shards": shards, "tasks": min(executor.tasks or shards, shards), "workers": executor.workers}
    write_atomically(work / "report.json", report.to_json())
    return report


def run_job(job: dict, steps: tuple[tuple[type[ShardStep], bool], ...], executor: Executor, *, progress: bool,
            progress_label: str = "scanned") -> Path | None:
    """Run `steps` (each a step and whether it is a task per shard, else one task) over the shards of
    `job["pattern"]`, chained on the executor; their work folder once the last has run locally, None once they are
    submitted to Slurm. `job` (with `shards` added) is what every task reads; a work folder that holds another job
    is refused, one that holds this job's finished tasks is taken up where it stopped."""
    if executor.kind == "slurm" and (executor.work_dir is None or not executor.partition):
        raise UsageError("--executor slurm needs --work-dir (a folder every node reads and writes) and "
                         "--slurm-partition")
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
    work = Path(executor.work_dir) if executor.work_dir is not None else Path(tempfile.mkdtemp(prefix="trlprep-shards-"))
    work.mkdir(parents=True, exist_ok=True)
    job = {**job, "shards": shards}
    previous = work / JOB_FILE
    if previous.exists() and json.loads(previous.read_text()) != job:
        raise UsageError(f"--work-dir {work} holds another job's tasks; give an empty folder")
    tasks = min(executor.tasks or len(shards), len(shards))
    last = _executors(work, tasks, executor.workers, executor.kind, executor.slurm, steps)
    previous.write_text(json.dumps(job))
    if executor.kind == "slurm":
        last.run()
        return None
    try:
        with _tasks_running(work / "logs" / "console.log") as terminal:
            watcher = _Progress(work, len(shards), terminal, progress_label) if progress else None
            try:
                last.run()
            finally:
                if watcher is not None:
                    watcher.stop()
    except (DataRefused, UsageError):
        raise
    except Exception as error:  # a task's failure, raised again by datatrove's pool: it names the shard
        what = str(error) if isinstance(error, TrlprepError) else f"{type(error).__name__}: {error}"
        raise ShardFailed(f"a shard task failed, nothing was merged or published: {what}; its log is under "
                          f"{work / 'logs'}; fix the shard and run again with --work-dir {work} (finished tasks "
                          f"are skipped)") from None
    return work


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
    log.parent.mkdir(parents=True, exist_ok=True)
    seed = os.environ.get("PYTHONHASHSEED")
    os.environ["PYTHONHASHSEED"] = TASK_HASH_SEED
    sys.stderr.flush()
    terminal = os.dup(2)
    with open(log, "ab") as sink:
        os.dup2(sink.fileno(), 2)
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
