"""`convert` over many shards on datatrove: one Parquet output shard per input shard, published whole or not at all.

After `inspector.shards`' first rows and judgement (each shard read against what one pass reads it as):
3. `ShardConvert` converts each shard row by row as one pass does (`converters.conversion.convert_part`, the same
   decision per row), writes its kept rows as a Parquet file and its rejects as JSON lines in the work folder,
   and scans the Parquet file for the output's own inspection. A shard that fails is tried again
   (`inspector.shards.RETRIES`), then its task fails naming it.
4. `ShardTypes`, one task, gives each column the type one pass would have written for all shards' rows
   (`merged_feature`), and `ShardRetype` rewrites each output shard whose own types differ, so that `datasets` loads
   the shards as one split.
5. `ShardPublish`, one task, sums the ledgers, requires the output's report (merged from the shards' scans) to be
   `ready` for the method, numbers the rejected rows as one pass numbers them, and only then moves the rejects
   folder and the output folder into place. Until then the output does not exist: a failed or killed run leaves
   its work folder, which a rerun with the same `work_dir` takes up where it stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import orjson

from trlprep.converters.options import ConvertOptions
from trlprep.options import Executor
from trlprep.converters.conversion import (Ledger, RowConverter, conversion_plan, convert_part, every_row_rejected, option_steps,
                            refuse_unconvertible, strict_refusal, verify)
from trlprep.converters.output import Staging, dumps, guard_paths, materialize, output_kind, publish_all
from trlprep.converters.result import ConversionResult
from trlprep.errors import DataRefused, OutputError, UsageError
from trlprep.files import check_replaceable, publish, remove_quietly, staged_beside, write_atomically
from trlprep.inspector.scan.plan import head_columns
from trlprep.inspector.shards import (ShardHeads, ShardJudge, ShardStep, done, load_record, merged_report, part_data,
                              part_from_data, plan_from_data, row_data, run_job, scan_data, scan_from_data, scan_shard,
                              work_folder)

RESULT_FILE = "result.json"
REFUSED_FILE = "refused.txt"


def output_name(index: int, shards: int, suffix: str = ".parquet") -> str:
    """The output shard of input shard `index`, named as the Hub names a split's shards (its rejects: `.jsonl`).

    >>> output_name(3, 12), output_name(3, 12, ".jsonl")
    ('train-00003-of-00012.parquet', 'train-00003-of-00012.jsonl')
    """
    return f"train-{index:05d}-of-{shards:05d}{suffix}"


def rejects_folder(output: Path) -> Path:
    """Where each shard's rejected rows go: `<output>.rejects/`, one JSON-lines file per shard that has any.

    >>> rejects_folder(Path("out/chat"))
    PosixPath('out/chat.rejects')
    """
    return output.with_name(f"{output.name}.rejects")


class ShardConvert(ShardStep):
    name = "conversion of each shard"

    def run(self, data, rank: int = 0, world_size: int = 1):
        with _refusals_kept(self.work):  # data that cannot become the method's: no shard is converted
            refuse_unconvertible(self.plan[1], job_options(self.job).to, self.job["pattern"],
                                 head_columns(self.plan[0]))
        return super().run(data, rank, world_size)

    def shard(self, index: int) -> None:
        started = time.perf_counter()
        converted = _convert_shard(self.work, self.job, self.plan[0][index], index)
        self.save(f"converted/{index:06d}", converted_data(converted))
        done(self.work, index, converted["ledger"]["rows_in"], started)


def _convert_shard(work: Path, job: dict, part, index: int) -> dict:
    """One shard converted: its output written as `<work>/output/<output_name>` (when it keeps a row) and scanned,
    its rejects as `<work>/rejects/NNNNNN.jsonl` (rows numbered in the shard); its ledger."""
    from trlprep.inspector.comparisons import Comparisons
    from trlprep.inspector.scan import ReadPlan, file_part, head_rows_per_file, judge
    from trlprep.inspector.sources import open_source

    part = dataclasses.replace(part, source=open_source(part.source, encoding=job["encoding"]))
    staging = Staging(work_folder(work, "staging"), f"{index:06d}")
    try:
        rejects = staging.new_path("rejects", ".jsonl")
        converter = RowConverter(job_options(job))
        with open(rejects, "wb") as handle:
            ledger = Ledger(converter, staging, handle, Comparisons())
            convert_part(ReadPlan(part.source, [part], part.judged_as), part, ledger,
                         line_conversion=not converter.changes_rows)
        staging.close()
        summary = ledger.summary()
        converted = {"ledger": {**summary, "rejected": dict(summary["rejected"])},
                     "repaired": dict(converter.repaired), "output_shape": converter.output_shape,
                     "path": part.name, "url": job["shards"][index], "output": None}
        if summary["rejected"]:
            os.replace(rejects, work_folder(work, "rejects") / f"{index:06d}.jsonl")
        if summary["kept"]:
            target = work_folder(work, "output") / output_name(index, len(job["shards"]))
            os.replace(materialize({"all": staging.main}, "parquet", staging)["all"], target)
            written = file_part(open_source(str(target)), head_rows_per_file(len(job["shards"])), several=True,
                                columns=True)
            judge([written])
            converted.update(output=target.name,
                             scan=scan_shard(written, set(job["enabled"]), job["max_rows"]),
                             written=dataclasses.replace(written, source=str(target), head=[], rest=None))
        return converted
    finally:
        staging.cleanup()


class ShardPublish(ShardStep):
    name = "publication of the converted shards"

    def run(self, data, rank: int = 0, world_size: int = 1):
        with _refusals_kept(self.work):
            result = _published(self.work, self.job)
        write_atomically(self.work / RESULT_FILE, result.to_json())
        return data


@contextlib.contextmanager
def _refusals_kept(work: Path) -> Iterator[None]:
    """A refusal raised inside also written to `<work>/refused.txt`: on Slurm nobody waits for the exception."""
    try:
        yield
    except DataRefused as refused:
        write_atomically(work / REFUSED_FILE, f"{refused}\n")
        raise


def converted_data(converted: dict) -> dict:
    """A shard's conversion (`_convert_shard`) as plain values (`converted_from_data` reads it back)."""
    from trlprep.inspector.scan.merge import shape_data

    data = {**converted, "ledger": {**converted["ledger"], "preview": row_data(converted["ledger"]["preview"])},
            "output_shape": shape_data(converted["output_shape"])}
    if converted["output"] is not None:
        data.update(scan=scan_data(converted["scan"]), written=part_data(converted["written"]))
    return data


def converted_from_data(data: dict) -> dict:
    from trlprep.inspector.scan.merge import shape_from_data

    converted = {**data, "output_shape": shape_from_data(data["output_shape"])}
    if data["output"] is not None:
        converted.update(scan=scan_from_data(data["scan"]), written=part_from_data(data["written"]))
    return converted


def _converted(work: Path, job: dict) -> list[dict]:
    """Every shard's conversion, in shard order, as its task recorded it."""
    return [load_record(work, job, f"converted/{index:06d}", converted_from_data)
            for index in range(len(job["shards"]))]


def _published(work: Path, job: dict) -> ConversionResult:
    parts, expected = load_record(work, job, "plan", plan_from_data)
    urls = job["shards"]
    shards = _converted(work, job)
    ledgers = [shard["ledger"] for shard in shards]
    rejected = sum((Counter(ledger["rejected"]) for ledger in ledgers), Counter())
    options = job_options(job)
    output, rejects = Path(options.output), rejects_folder(Path(options.output))
    result = ConversionResult(
        source=job["pattern"], to=options.to, rows_in=sum(ledger["rows_in"] for ledger in ledgers),
        rows_kept=sum(ledger["kept"] for ledger in ledgers), rows_rejected=sum(rejected.values()),
        rows_out=sum(ledger["rows_out"] for ledger in ledgers), rejected_by_rule=dict(rejected),
        repaired=dict(sum((Counter(shard["repaired"]) for shard in shards), Counter())), output=str(output),
        outputs={}, rejects=None, plan=_plan(job, parts, expected, urls),
        preview=[row for ledger in ledgers for row in ledger["preview"]][:3], dry_run=False,
        shards=[{"input": url, "output": shard["output"], "rows_in": shard["ledger"]["rows_in"],
                 "kept": shard["ledger"]["kept"], "rejected": sum(shard["ledger"]["rejected"].values())}
                for url, shard in zip(urls, shards)])
    if options.strict and rejected:
        raise strict_refusal(rejected, result)
    numbered = _number_rejects(work, urls, shards)
    overwrite = job["overwrite"]
    if not result.rows_kept:
        publish(numbered, rejects, replace=overwrite)
        result.rejects = str(rejects)
        raise every_row_rejected(job["pattern"], rejects, result)
    written = [shard for shard in shards if shard["output"] is not None]
    _one_shape(written)
    report = merged_report(str(work / "output"), [str(work / "output" / shard["output"]) for shard in written],
                           [shard["written"] for shard in written], written[0]["written"].judged_as,
                           [shard["scan"] for shard in written], first_rows=[], enabled=set(job["enabled"]),
                           max_rows=job["max_rows"], method=options.to)
    verify(report, result)
    # As one pass publishes: what appeared at the output's or the rejects' name while the tasks ran is replaced
    # only with --overwrite, and only where it is ours to replace; an earlier run's rejects beside an output
    # that now has none are removed on the same terms.
    check_replaceable(rejects, overwrite)
    moves = {work_folder(work, "output"): output}
    publish_all({numbered: rejects, **moves} if rejected else moves, overwrite)
    if rejected:
        result.rejects = str(rejects)
    else:
        remove_quietly(rejects)
    result.outputs = {"all": str(output)}
    return result


def _plan(job: dict, parts: list, expected, urls: list[str]) -> list[str]:
    """The plan one pass prints, shards named by their URLs, and how they were run."""
    from trlprep.inspector.scan import ReadPlan
    from trlprep.inspector.sources import open_source

    opened = [dataclasses.replace(part, source=open_source(part.source, encoding=job["encoding"])) for part in parts]
    options = job_options(job)
    steps = conversion_plan(ReadPlan(None, opened, expected), options.to, options.style, option_steps(options))
    for part, url in zip(opened, urls):
        steps = [step.replace(part.name, url) for step in steps]
    return steps + [f"{len(urls)} shards converted as datatrove tasks, one Parquet output shard each"]


def _number_rejects(work: Path, urls: list[str], shards: list[dict]) -> Path:
    """Each shard's rejects in `<work>/rejects.numbered/`, named after its output shard, its rows numbered as one
    pass over all shards numbers them (a shard's rows go on from the last row number of the shard before) and
    placed by URL; that folder."""
    folder = work_folder(work, "rejects.numbered")  # an earlier try's, emptied: refused where it is a link
    shutil.rmtree(folder)
    folder.mkdir()
    offset = 0
    for index, (url, shard) in enumerate(zip(urls, shards)):
        if shard["ledger"]["rejected"]:
            local = f"{shard['path']}:"
            with open(work / "rejects" / f"{index:06d}.jsonl", "rb") as source, \
                    open(folder / output_name(index, len(urls), ".jsonl"), "wb") as sink:
                for line in source:
                    record = orjson.loads(line)
                    record["row"] += offset
                    record["where"] = url + ":" + record["where"].removeprefix(local)
                    sink.write(dumps(record))
        offset += shard["ledger"]["last_row"]
    return folder


def _one_shape(written: list[dict]) -> None:
    """Every output shard holds rows of one shape. One pass rejects the rows that convert to another shape than
    its first row's (TC103); shards converted apart each take their own first row, so shapes that differ are
    refused rather than published."""
    from trlprep.inspector.dialects import shape_key

    first = written[0]
    for shard in written[1:]:
        if shape_key(shard["output_shape"]) != shape_key(first["output_shape"]):
            raise DataRefused(f"{first['url']} converts to {first['output_shape'].type} rows and {shard['url']} to "
                              f"{shard['output_shape'].type} rows; nothing was written: convert without --executor "
                              f"to reject the rows of the other shape (TC103)")


class ShardTypes(ShardStep):
    name = "column types of the output"

    def run(self, data, rank: int = 0, world_size: int = 1):
        import datasets
        import pyarrow.parquet as parquet

        # Each output shard's own types, read from its Parquet file (the shards are retyped after this step).
        features = [datasets.Features.from_arrow_schema(parquet.read_schema(self.work / "output" / shard["output"]))
                    for shard in _converted(self.work, self.job) if shard["output"] is not None]
        self.save("types", datasets.Features({
            column: merged_feature([one[column] for one in features if column in one])
            for column in dict.fromkeys(name for one in features for name in one)}).to_dict())
        return data


class ShardRetype(ShardStep):
    name = "output shards given the output's column types"

    def shard(self, index: int) -> None:
        path = self.work / "output" / output_name(index, len(self.job["shards"]))
        if path.exists():  # the shard kept a row
            import datasets

            _retype(path, self.load("types", datasets.Features.from_dict))


def _retype(path: Path, types) -> None:
    """An output shard rewritten with the column types one pass writes for all shards' rows (`ShardTypes`), when
    its own differ, so that `datasets` loads the shards as one split."""
    import tempfile

    import datasets
    import pyarrow.parquet as parquet

    own = datasets.Features.from_arrow_schema(parquet.read_schema(path))
    if own == types:
        return
    with tempfile.TemporaryDirectory(dir=path.parent) as cache:
        table = datasets.Dataset.from_parquet(str(path), cache_dir=cache)
        for column in types:
            if column not in own:
                table = table.add_column(column, [None] * len(table))
        # Written by pyarrow: `Dataset.to_parquet` sizes its row groups by flattening every column, which pyarrow
        # cannot do to a list of JSON values (`extension<arrow.json>`: typed parts with loss weights, merged as JSON).
        with staged_beside(path) as staged:
            parquet.write_table(table.select_columns(list(types)).cast(types).data.table, staged)


def merged_feature(features: list[Any]):
    """The type `datasets` gives a column whose values have these types in different rows (what one pass over every
    row writes): nulls take the other type, integers and floats make floats, lists merge their items, and values of
    any other mix are stored as JSON.

    >>> from datasets import Json, List, Value
    >>> merged_feature([Value("null"), Value("string")]), merged_feature([Value("int64"), Value("float64")])
    (Value('string'), Value('float64'))
    >>> merged_feature([List(Value("null")), List({"role": Value("string")})])
    List({'role': Value('string')})
    >>> merged_feature([List({"role": Value("string")}), List({"role": Value("string"), "name": Value("string")})])
    List(Json(decode=True))
    """
    from datasets import Json, List, Value

    distinct = []
    for feature in features:
        if feature != Value("null") and feature not in distinct:
            distinct.append(feature)
    if not distinct:
        return Value("null")
    if len(distinct) == 1:
        return distinct[0]
    if all(isinstance(feature, Value) and feature.dtype.startswith(("int", "float")) for feature in distinct):
        return Value("float64")
    if all(isinstance(feature, List) for feature in distinct):
        return List(merged_feature([feature.feature for feature in distinct]))
    return Json()


# First rows, judgement, conversion, column types, shards retyped, publication: (step, whether it runs a task per
# shard).
CONVERSION = ((ShardHeads, True), (ShardJudge, False), (ShardConvert, True), (ShardTypes, False), (ShardRetype, True),
              (ShardPublish, False))


def job_options(job: dict) -> ConvertOptions:
    """The options a shard task converts with, as the job file holds them (those `--executor` takes)."""
    return ConvertOptions(**job["options"])


def convert_shards(pattern: str, options: ConvertOptions, executor: Executor) -> ConversionResult | None:
    """`converters.convert(pattern, options, executor=...)`: the rows one pass converts, one Parquet file per input
    shard in the folder `output` (`train-00000-of-00012.parquet`, ...), the rejected rows in `<output>.rejects/`,
    published only once every shard is converted and the output is ready for `to`. Returns the
    `ConversionResult` (local executor), or None once the Slurm jobs are submitted (the result is then in
    `<work_dir>/result.json`, a refusal in `<work_dir>/refused.txt`).
    """
    from trlprep.inspector.rules import select_rules
    from trlprep.inspector.shards import shard_urls

    started = time.perf_counter()
    if options.output is None:
        raise UsageError("--output is required: the folder the output shards go to")
    output = Path(options.output)
    if output_kind(output) != "folder":
        raise OutputError(f"{output}: --executor writes one Parquet file per shard into a folder; give a folder "
                          f"name without extension")
    inputs = [url for url in shard_urls(pattern) if "://" not in url]
    guard_paths([output, rejects_folder(output)], inputs, options.overwrite, pattern)
    if executor.work_dir is not None and (Path(executor.work_dir) / RESULT_FILE).exists():
        raise UsageError(f"--work-dir {executor.work_dir} holds a finished conversion; give an empty folder")
    # What the tasks convert with: the options --executor takes, but those that change no row (a rerun with them
    # is the same job) and the encoding, which every step reads the shards in (the job's own `encoding`).
    taken = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)
             if f.metadata["shards"] and f.name not in ("overwrite", "progress", "encoding")}
    job = {"pattern": pattern, "options": {**taken, "output": str(output.resolve())},
           "enabled": sorted(select_rules((), ())), "max_rows": 5, "encoding": options.encoding,
           "overwrite": options.overwrite}
    try:
        ran = run_job(job, CONVERSION, executor, progress=options.progress, progress_label="converted")
    except DataRefused as refused:  # its ledger came back from the tasks as data
        if isinstance(refused.result, dict):
            refused.result = ConversionResult(**refused.result)
        raise
    if ran is None:
        return None
    work, _ = ran
    result = ConversionResult(**json.loads((work / RESULT_FILE).read_text()))
    result.output = result.outputs["all"] = str(output)
    if result.rejects is not None:
        result.rejects = str(rejects_folder(output))
    result.seconds = round(time.perf_counter() - started, 4)
    return result
