"""`convert`: rewrite a dataset into the shape a TRL method wants, accounting for every row.

rows in = rows kept + rows rejected, always. Each rejected row goes with its row number, rule and original
content to `<output stem>.rejects.jsonl`. The output is inspected before it is moved into place: it must be
`ready` for the method. The row-by-row machinery is `converters.conversion`'s, shared with the shard steps.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from trlprep.converters.conversion import (Ledger, RowConverter, conversion_plan, convert_part, every_row_rejected,
                                   option_steps, refuse_unconvertible, strict_refusal, verify)
from trlprep.converters.options import ConvertOptions
from trlprep.converters.output import (Staging, guard_paths, materialize, output_kind, publish_all, rejects_path,
                                       remove_stale_rejects, split_paths, split_sizes)
from trlprep.converters.result import ConversionResult
from trlprep.inspector.comparisons import Comparisons, compare_rows
from trlprep.errors import UsageError
from trlprep.files import check_output_name, staged_text
from trlprep.interrupts import terminating_cleanly
from trlprep.inspector.mapping import parse_pairs, renaming
from trlprep.options import Executor, executor_of, options_from, refuse_with_executor
from trlprep.progress import progress_bar
from trlprep.inspector.scan import read_plan
from trlprep.inspector.sources import Source, open_source


def convert(source: Any, options: ConvertOptions | None = None, /, *, executor: Executor | str | None = None,
            **settings: Any) -> ConversionResult | None:
    """Convert `source` for the TRL method `to` and write it to `output` (.jsonl, .parquet or a folder).

    The options are a `ConvertOptions`, or its fields given as keywords (`to="dpo"`, `output=...`; `config=` is the
    older name of `dataset_config=`). `dedup` rejects rows that repeat an earlier row: `"exact"` (or True) exact
    repeats (TP401), `"near"` also rows whose text is at least `near_threshold` similar to a kept row's (TP406, as
    `inspect --near-duplicates` clusters them; each cluster keeps its first row that converts). `fix_text` repairs
    mojibake and removes control characters with ftfy (TP210, TP212), counted in `repaired`; so are the rows whose
    reasoning traces `reasoning` rewrites ("field", "inline" or "drop"; by default, with `model`, the form its chat
    template reads). `drop_cut_off` rejects
    rows whose answers a length cap cut off (TP214, as `inspect --cut-off` finds them). `drop_contaminated` rejects
    the rows that share 13-word n-grams with an evaluation set of `against` (TP405, as `inspect --against` reports
    them). `html` writes the output's report as a page with plots, the ledger and the rejected rows drawn
    (`inspector.html`). With `executor` (an `Executor`, or "local" / "slurm"), `source` names shards converted as
    datatrove tasks into one Parquet file each (`converters.shards`); None once Slurm jobs are submitted.

    Raises `SourceError` or `OutputError` (exit 2) when the input cannot be read or the output not written as
    asked, and `DataRefused` (exit 1) when the data cannot become `to` data, when `strict` meets a
    rejected row, or when the written data would not be ready.
    """
    started = time.perf_counter()
    options = options_from(ConvertOptions, options, settings, {"config": "dataset_config"})
    options.check()
    if options.model is not None and options.reasoning is None:
        options = replace(options, reasoning=_template_reasoning(options.model), reasoning_from_model=True)
    if executor is not None:
        refuse_with_executor(options)  # before the import: it names the extra a missing datatrove comes from
        from trlprep.converters.shards import convert_shards

        return convert_shards(source, options, executor_of(executor))
    if options.output is None and not options.dry_run:
        raise UsageError("--output is required (or --dry-run)")
    if options.html is not None:
        from trlprep.inspector.html import check_page_path, require_html_extra

        if options.dry_run:
            raise UsageError("--html draws the written output: drop --dry-run")
        require_html_extra()
        check_page_path(str(options.html), source, options.overwrite)
    opened = open_source(source, split=options.split, config=options.dataset_config, revision=options.revision,
                         encoding=options.encoding)
    output_path = Path(options.output) if options.output is not None else None
    if output_path is not None:
        check_output_name(output_path)
    targets: dict[str, Path] = {}
    if output_path is not None and not options.dry_run:
        targets = split_paths(output_path, ("train", "test") if options.test_size else ("all",))
        guard_paths(list(dict.fromkeys(targets.values())) + [rejects_path(output_path)], opened.files,
                    options.overwrite, source)
    result, expected, inspected = _converted(opened, options, output_path, targets)
    if options.push_to_hub and not options.dry_run:
        from trlprep.converters.hub import push

        if expected is not None and expected.reads_images and output_path.suffix == ".jsonl":
            raise UsageError(f"--push-to-hub {options.push_to_hub}: image data goes to the Hub as Parquet (--output "
                             f"{output_path.with_suffix('.parquet').name}), which embeds the images, so that they "
                             f"load and the viewer shows them; the JSON-lines output's image paths would not resolve "
                             f"there; the local output is written: {output_path}")

        result.pushed_to = push(result, options.push_to_hub, expected)
    result.seconds = round(time.perf_counter() - started, 4)
    return result


def _template_reasoning(model: str) -> str | None:
    """The form `model`'s chat template reads reasoning traces in (`inspector.tokens.probe_reasoning`): None when it
    has no template or raises on the probe, so the traces stay as they came."""
    from trlprep.inspector.tokens import load_tokenizer, probe_reasoning

    tokenizer = load_tokenizer(model)
    if not isinstance(tokenizer.chat_template, str):
        return None
    probed = probe_reasoning(tokenizer)
    return probed.form if probed is not None else None


def _converted(opened: Source, options: ConvertOptions, output_path: Path | None, targets: dict[str, Path]):
    """Every row read, converted or rejected into staging files, then published to `targets` once the output is
    ready: the result, the data's shape and the output's report (None on a dry run)."""
    renames, role_map = parse_pairs(options.rename, "--map"), parse_pairs(options.roles, "--roles")
    prepare = renaming(renames, role_map)
    dedup, test_size = options.dedup_kind, options.test_size
    # Near-duplicate clusters serve --dedup near, and keep a --test-size split from holding near-copies of train rows.
    near = options.near_threshold if dedup == "near" or test_size else None
    compares = bool(options.against) or near is not None or options.drop_cut_off
    compared = compare_rows(opened, against=options.against, near_threshold=near, cut_off=options.drop_cut_off,
                            sample=options.limit, prepare=prepare) if compares else Comparisons()
    inspected = None
    with progress_bar(opened, options.progress and not options.dry_run, label="converting") as advance, \
            terminating_cleanly():
        plan = read_plan(opened, limit=options.limit, prepare=prepare, advance=advance)
        refuse_unconvertible(plan.expected, options.to, opened.name, plan.head_columns())
        converter = RowConverter(options)
        # Rows compared with others are looked up one by one; without that clean JSON lines convert as lines.
        line_conversion = not (converter.changes_rows or compares)
        folder = output_path.parent if output_path is not None else Path(".")
        staging = rejects_handle = None
        try:
            if not options.dry_run:
                staging = Staging(folder, output_path.name, grouped=bool(test_size))
                rejects_handle = staging.open_file("rejects")
            ledger = Ledger(converter, staging, rejects_handle, compared)
            for part in plan.parts:
                convert_part(plan, part, ledger, line_conversion=line_conversion, advance=advance)
            ledger = ledger.summary()
            if rejects_handle:
                rejects_handle.close()
            if options.strict and ledger["rejected"]:
                raise strict_refusal(ledger["rejected"])
            result = ConversionResult(
                source=opened.name, to=options.to, rows_in=ledger["rows_in"], rows_kept=ledger["kept"],
                rows_rejected=sum(ledger["rejected"].values()), rows_out=ledger["rows_out"],
                rejected_by_rule=dict(ledger["rejected"]), repaired=dict(converter.repaired),
                output=str(output_path) if output_path else None, outputs={}, rejects=None,
                plan=conversion_plan(plan, options.to, options.style, option_steps(options, renames, role_map)),
                preview=ledger["preview"], dry_run=options.dry_run)
            if not options.dry_run:
                inspected = _finish(result, staging, targets, output_kind(output_path),
                                    options.shuffle or bool(test_size), options.seed, test_size,
                                    {rejects_handle.path: rejects_path(output_path)}, opened, options.overwrite,
                                    page=Path(options.html) if options.html is not None else None)
        finally:
            if staging:  # closes the rejects file too
                staging.cleanup()
    return result, plan.expected, inspected


def _first_rejects(result: ConversionResult, rejects: Path, per_rule: int = 3) -> list[dict]:
    """The first rejected rows of each rule, from the (staged) rejects file, for the page to draw; read only as far
    as the last of them (the ledger says how many each rule has)."""
    if not result.rows_rejected:
        return []
    wanted = {rule: min(per_rule, count) for rule, count in result.rejected_by_rule.items()}
    shown: list[dict] = []
    with open(rejects, "rb") as handle:
        for line in handle:
            if not any(wanted.values()):
                break
            record = orjson.loads(line)
            if wanted.get(record["rule"]):
                wanted[record["rule"]] -= 1
                shown.append(record)
    return shown


def _finish(result: ConversionResult, staging: Staging, targets: dict[str, Path], kind: str, shuffle: bool,
            seed: int, test_size, rejects: dict[Path, Path], opened, overwrite: bool, page: Path | None = None):
    """Inspect the staged output, publish it when ready, with the rejects file (`rejects`: staged to target) when
    a row was rejected and the `page` (`--html`) drawing it: all staged first, so that a page that cannot be
    written (a full disk) leaves no data published; the inspection report of its train (or only) split."""
    from trlprep.inspector.api import inspect_dataset

    [rejects_target] = rejects.values()
    if result.rows_kept == 0:
        publish_all(rejects, overwrite)
        result.rejects = str(rejects_target)
        raise every_row_rejected(opened.name, rejects_target, result)
    sizes = split_sizes(staging.blocks, test_size)
    split_files = staging.write_splits(sizes, shuffle, seed)
    result.split = staging.grouping
    finals = materialize(split_files, kind, staging)
    reports = {}
    for split, staged in finals.items():
        report = reports[split] = inspect_dataset(
            staged, method=result.to, split=split if kind == "folder" and split != "all" else None,
            profile=page is not None and split in ("all", "train"))
        verify(report, result)
    moves = {staged: targets[split] for split, staged in finals.items()} | (rejects if result.rows_rejected else {})
    for split, staged in finals.items():  # the names the page and the result give: the published ones
        result.outputs[split] = str(targets[split])
        reports[split].moved(str(staged), str(targets[split]))
    if result.rows_rejected:
        result.rejects = str(rejects_target)
    inspected = reports.get("all") or reports.get("train")
    if page is not None:
        from trlprep.inspector.html import render

        [staged_rejects] = rejects
        document = render(inspected, inspected.example_rows, conversion=result.to_dict(),
                          rejects=_first_rejects(result, staged_rejects))
        staged_page = staged_text(page, document)
        staging.paths.append(staged_page)  # removed with the rest when publishing fails
        moves = {staged_page: page} | moves  # first: the page's folder may be another, and full
    publish_all(moves, overwrite)
    if not result.rows_rejected and overwrite:  # no stale rejects file from an earlier run beside the replaced output
        remove_stale_rejects(rejects_target)
    return inspected
