"""`inspect_dataset`: the public entry point; the `inspect` command is a thin layer on it."""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from trlprep.inspector.comparisons import Comparisons, cluster_section, compare_rows, image_folder, tally_comparisons
from trlprep.errors import UsageError
from trlprep.inspector.findings import build_report
from trlprep.inspector.leakage import NGRAM
from trlprep.inspector.options import InspectOptions
from trlprep.options import Executor, executor_of, options_from, refuse_with_executor
from trlprep.inspector.cost import PACKING_STRATEGIES, RunShape
from trlprep.inspector.mapping import mapping_arguments, parse_pairs, renaming
from trlprep.inspector.methods import METHODS
from trlprep.inspector.report import Report
from trlprep.inspector.rules import select_rules
from trlprep.inspector.scan import ScanResult, read_plan, scan
from trlprep.inspector.settings import apply_to_report
from trlprep.progress import progress_bar
from trlprep.inspector.sources import Source, open_source
from trlprep.inspector.rules.content import CUT_OFF_RESPONSE
from trlprep.inspector.rules.dataset import EVAL_CONTAMINATION, NEAR_DUPLICATE_ROW


def inspect_dataset(source: Any, options: InspectOptions | None = None, /, *,
                    executor: Executor | str | None = None, **settings: Any) -> Report | None:
    """Detect the dataset's type and dialect from its values, check every row and give a verdict per method.

    `source` is a path (file, folder, glob, `save_to_disk` folder), a Hub id, a `datasets.Dataset` or a list
    of rows. The options are an `InspectOptions`, or its fields given as keywords (`method="dpo"`, `limit=1000`,
    ...; `sample=` and `config=` are the older names of `limit=` and `dataset_config=`). With `executor` (an
    `Executor`, or "local" / "slurm"), `source` names shards (a glob or URL) scanned as datatrove tasks: the same
    report as one pass, or None once Slurm jobs are submitted (the merge job writes it to the work folder).
    Raises `SourceError` when the source cannot be read at all.

    >>> report = inspect_dataset([{"prompt": "2+2?", "completion": "4"}])
    >>> report.type, report.methods["sft"]["status"], report.methods["dpo"]["status"]
    ('prompt_completion', 'ready', 'incompatible')
    """
    options = options_from(InspectOptions, options, settings, OLD_NAMES)
    if options.method is not None and options.method not in METHODS:
        raise UsageError(f"unknown method {options.method!r}; choose one of {', '.join(METHODS)}")
    if options.packing is not None and options.packing not in PACKING_STRATEGIES:
        raise UsageError(f"unknown packing strategy {options.packing!r}; choose one of "
                         f"{', '.join(PACKING_STRATEGIES)}")
    if executor is not None:
        refuse_with_executor(options)  # before the import: it names the extra a missing datatrove comes from
        from trlprep.inspector.shards import inspect_shards

        report = inspect_shards(source, options, executor_of(executor))
        return None if report is None else apply_to_report(report, options.severity, options.gates, options.method)
    renames, role_map = parse_pairs(options.rename, "--map"), parse_pairs(options.roles, "--roles")
    prepare = renaming(renames, role_map)
    opened = open_source(source, split=options.split, config=options.dataset_config, revision=options.revision,
                         encoding=options.encoding)
    enabled = select_rules(options.select, options.ignore)
    with progress_bar(opened, options.progress) as advance:
        started = time.perf_counter()  # the scan's own time: rows/s leaves out the bar's start-up
        result = scan(opened, enabled=enabled, max_rows=options.max_rows, sample=options.limit, advance=advance,
                      workers=options.workers, prepare=prepare, image_root=options.image_root,
                      decode_images=options.decode_images)
        seconds = time.perf_counter() - started
    compared = _comparisons(opened, result, options, enabled, prepare)
    tokens, previews = None, []
    if options.model is not None:  # its findings join the scan's, before the report is built from them
        tokens, previews = _token_checks(
            opened, result, model=options.model, max_length=options.max_length, sample=options.limit,
            enabled=enabled, max_rows=options.max_rows, show_masks=options.show_masks, mask_color=options.mask_color,
            prepare=prepare, image_root=options.image_root, run=_run_shape(options))
    report = build_report(opened, result, method=options.method, sample=options.limit, seconds=seconds,
                          local=isinstance(source, (str, os.PathLike)) and os.path.exists(source),
                          severity=options.severity,
                          mapping=" ".join(filter(None, [mapping_arguments(renames, role_map),
                                                         image_arguments(options.image_root, options.decode_images)])))
    report.tokens, report.mask_previews = tokens, previews
    if compared is not None:
        report.notes += [f"{count} {'row shares' if count == 1 else 'rows share'} {NGRAM}-word n-grams with {name} (TP405)"
                         for name, count in compared.leaked_per_set.items()]
        if compared.near is not None:
            report.near_duplicates = cluster_section(compared.near, result, options.max_rows)
        report.profile = compared.profile
    if options.profile:
        report.example_rows, report.image_folder = _rows_shown(opened, report, sample=options.limit, prepare=prepare,
                                                               image_root=options.image_root)
    return apply_to_report(report, options.severity, options.gates, options.method)


# Keywords of `inspect_dataset` renamed, with the options they became (the old ones warn, for one release).
OLD_NAMES = {"sample": "limit", "config": "dataset_config"}



def image_arguments(image_root: str | Path | None, decode_images: bool) -> str:
    """The command-line options that read images as this inspection did, for the verdicts' `convert` commands: the
    ledger is the same only if `convert` finds the same images and the same faults.

    >>> image_arguments("imgs/my set", True)
    "--image-root 'imgs/my set' --decode-images"
    """
    return " ".join(([f"--image-root {shlex.quote(str(image_root))}"] if image_root is not None else [])
                    + (["--decode-images"] if decode_images else []))

def _comparisons(opened: Source, result: ScanResult, options: InspectOptions, enabled: set[str],
                 prepare: Callable | None) -> Comparisons | None:
    """The opt-in checks that read the rows a second time (evaluation leakage, near-duplicates, cut-off answers,
    the page's profile), their findings tallied into `result`; None when none is asked."""
    against = options.against if EVAL_CONTAMINATION.id in enabled else ()
    near = options.near_threshold if options.near_duplicates and NEAR_DUPLICATE_ROW.id in enabled else None
    cut_off = options.cut_off and CUT_OFF_RESPONSE.id in enabled
    if not (against or near is not None or cut_off or options.profile):
        return None
    compared = compare_rows(opened, against=against, near_threshold=near, cut_off=cut_off, profile=options.profile,
                            sample=options.limit, prepare=prepare, image_root=options.image_root)
    tally_comparisons(result, compared, options.max_rows)
    return compared


def _rows_shown(opened: Source, report: Report, *, sample: int | None, prepare,
                image_root: str | os.PathLike | None) -> tuple[dict[int, Any], str | None]:
    """The rows the HTML report draws for its findings, read once more, up to the last of them, and the folder
    their image paths are read against (`image_folder`)."""
    from trlprep.inspector.html import EXAMPLES_SHOWN

    wanted = {example["row"] for finding in report.findings for example in finding.examples[:EXAMPLES_SHOWN]}
    found: dict[int, Any] = {}
    if not wanted:
        return found, None
    last = max(wanted)
    plan = read_plan(opened, limit=sample, prepare=prepare)
    for number, value in plan.numbered_rows():
        if number in wanted:
            found[number] = value
        if number >= last:
            break
    folder = image_folder(plan, image_root)
    return found, str(folder) if folder is not None else None


def _run_shape(options: InspectOptions) -> RunShape:
    """The SFT run whose cost `--model` reports: TRL's defaults, with the options' max_length, packing strategy,
    batch size, gradient accumulation and devices."""
    from trlprep.inspector.tokens import TRL_MAX_LENGTH

    return RunShape(max_length=options.max_length or TRL_MAX_LENGTH, packing=options.packing,
                    per_device_train_batch_size=options.batch_size, gradient_accumulation_steps=options.grad_accum,
                    devices=options.devices)


def _token_checks(opened: Source, result: ScanResult, *, model: str, max_length: int | None, sample: int | None,
                  enabled: set[str], max_rows: int, show_masks: int, mask_color: bool,
                  prepare: Callable[[Iterator], Iterator] | None, image_root: str | None,
                  run: RunShape) -> tuple[dict, list]:
    """A second pass over the rows with the model's tokenizer (its processor, for image data: image paths read
    against `image_root`, else the dataset's folder, as the scan reads them); its findings join the report's."""
    import itertools
    from pathlib import Path

    from trlprep.inspector.scan import Collector
    from trlprep.inspector.scan.plan import source_folder
    from trlprep.inspector.tokens import token_preflight

    collector = Collector(enabled, max_rows)
    dataset_level: dict[str, str] = {}

    def collect(rule: str, row: int | None, detail: str) -> None:
        if row is None:
            dataset_level.setdefault(rule, detail)
        else:
            collector.add(rule, row, detail)

    rows = opened.rows() if prepare is None else prepare(opened.rows())
    tokens = token_preflight(itertools.islice(rows, sample), model=model, max_length=max_length,
                             collect=collect, show_masks=show_masks, mask_color=mask_color,
                             image_root=Path(image_root) if image_root is not None else source_folder(opened),
                             run=run)
    result.tallies.update(collector.tallies)
    result.dataset_findings += [(rule, result.rows_read, detail) for rule, detail in dataset_level.items()
                                if rule in enabled]
    return tokens.to_dict(), tokens.previews


