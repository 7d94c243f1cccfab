"""`inspect_dataset`: the public entry point; the `inspect` command is a thin layer on it."""

from __future__ import annotations

from inspector.errors import UsageError

import os
import shlex
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from inspector.leakage import NGRAM
from inspector.neardup import SHINGLE_WORDS, NearDuplicates
from inspector.options import Executor, InspectOptions, executor_of, options_from, refuse_with_executor
from inspector.mapping import mapping_arguments, parse_pairs, renaming, suggest_map
from inspector.methods import METHODS, incompatible, verdict
from inspector.report import Finding, Report
from inspector.rules import RULES, select_rules
from inspector.dialects import Shape, unread_format
from inspector.scan import ScanResult, Tally, read_plan, scan
from inspector.progress import progress_bar
from inspector.sources import Source, open_source
from inspector.rules.content import CUT_OFF_RESPONSE
from inspector.rules.dataset import EVAL_CONTAMINATION, MIXED_SHAPE, NEAR_DUPLICATE_ROW

KNOWN_EXTRAS = {
    "tools": "tool schemas, passed to the chat template",
    "images": "images, which switch TRL to its vision path",
    "image": "an image, which switches TRL to its vision path",
    "margin": "a reward margin, used by RewardTrainer",
    "chat_template_kwargs": "per-row chat-template arguments",
}


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
    if executor is not None:
        from inspector.shards import inspect_shards

        refuse_with_executor(options)
        return inspect_shards(source, options, executor_of(executor))
    renames, role_map = parse_pairs(options.rename, "--map"), parse_pairs(options.roles, "--roles")
    prepare = renaming(renames, role_map)
    opened = open_source(source, split=options.split, config=options.dataset_config, revision=options.revision)
    enabled = select_rules(options.select, options.ignore)
    with progress_bar(opened, options.progress) as advance:
        started = time.perf_counter()  # the scan's own time: rows/s leaves out the bar's start-up
        result = scan(opened, enabled=enabled, max_rows=options.max_rows, sample=options.limit, advance=advance,
                      workers=options.workers, prepare=prepare)
        seconds = time.perf_counter() - started
    compared = _comparisons(opened, result, options, enabled, prepare)
    tokens, previews = None, []
    if options.model is not None:  # its findings join the scan's, before the report is built from them
        tokens, previews = _token_checks(
            opened, result, model=options.model, max_length=options.max_length, sample=options.limit,
            enabled=enabled, max_rows=options.max_rows, show_masks=options.show_masks, mask_color=options.mask_color,
            prepare=prepare)
    report = build_report(opened, result, method=options.method, sample=options.limit, seconds=seconds,
                          local=isinstance(source, (str, os.PathLike)) and os.path.exists(source),
                          mapping=mapping_arguments(renames, role_map))
    report.tokens, report.mask_previews = tokens, previews
    if compared is not None:
        report.notes += [f"{count} row(s) share {NGRAM}-word n-grams with {name} (TP405)"
                         for name, count in compared.leaked_per_set.items()]
        if compared.near is not None:
            report.near_duplicates = _clusters(compared.near, result, options.max_rows)
        report.profile = compared.profile
    if options.profile:
        report.example_rows = _rows_shown(opened, report, sample=options.limit, prepare=prepare)
    return report


# Keywords of `inspect_dataset` renamed, with the options they became (the old ones warn, for one release).
OLD_NAMES = {"sample": "limit", "config": "dataset_config"}


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
                            sample=options.limit, prepare=prepare)
    _tally_comparisons(result, compared, options.max_rows)
    return compared


def _rows_shown(opened: Source, report: Report, *, sample: int | None, prepare) -> dict[int, Any]:
    """The rows the HTML report draws for its findings, read once more, up to the last of them."""
    from inspector.html import EXAMPLES_SHOWN

    wanted = {example["row"] for finding in report.findings for example in finding.examples[:EXAMPLES_SHOWN]}
    found: dict[int, Any] = {}
    if not wanted:
        return found
    last = max(wanted)
    for number, value in read_plan(opened, limit=sample, prepare=prepare).numbered_rows():
        if number in wanted:
            found[number] = value
        if number >= last:
            break
    return found


def _token_checks(opened: Source, result: ScanResult, *, model: str, max_length: int | None, sample: int | None,
                  enabled: set[str], max_rows: int, show_masks: int, mask_color: bool,
                  prepare: Callable[[Iterator], Iterator] | None) -> tuple[dict, list]:
    """A second pass over the rows with the model's tokenizer; its findings join the report's."""
    import itertools

    from inspector.scan import Collector
    from inspector.tokens import token_preflight

    collector = Collector(enabled, max_rows)
    dataset_level: dict[str, str] = {}

    def collect(rule: str, row: int | None, detail: str) -> None:
        if row is None:
            dataset_level.setdefault(rule, detail)
        else:
            collector.add(rule, row, detail)

    rows = opened.rows() if prepare is None else prepare(opened.rows())
    tokens = token_preflight(itertools.islice(rows, sample), model=model, max_length=max_length,
                             collect=collect, show_masks=show_masks, mask_color=mask_color)
    result.tallies.update(collector.tallies)
    result.dataset_findings += [(rule, result.rows_read, detail) for rule, detail in dataset_level.items()
                                if rule in enabled]
    return tokens.to_dict(), tokens.previews


def build_report(source: Source, result: ScanResult, *, method: str | None, sample: int | None,
                 seconds: float, local: bool, mapping: str = "") -> Report:
    main = result.expected
    data_type = main.type if main else "unknown"
    formats = {v.shape.format for v in result.shapes if main and v.shape.type == main.type}
    fmt = "mixed" if len(formats) > 1 else (main.format if main else "unknown")
    source_name = source.name if not source.name.startswith("<") else None
    unknown = _unknown_shape(result, source.name) if main is None else None
    methods = {}
    for name in (method,) if method else METHODS:
        if unknown is not None:
            methods[name] = incompatible(unknown, result.rows_read)
            continue
        methods[name] = verdict(name, data_type=data_type, fmt=main.format, dialect=main.dialect,
                                implicit_prompt=main.implicit_prompt, rows=result.rows_read,
                                rejected=result.rejected[name], repaired=result.repaired, labels=dict(result.labels),
                                source=source_name, local=local)
        if mapping and methods[name]["command"]:
            methods[name]["command"] += " " + mapping
    read_columns = set(main.columns) if main else set()
    extra = [c for c in result.columns if c not in read_columns or c in KNOWN_EXTRAS]
    sampled = sample is not None and (source.total is None or result.rows_read < (
        source.total if source.unit == "rows" else float("inf")))
    return Report(
        source=source.name,
        files=source.files,
        rows=(source.total if source.unit == "rows" else None) if sampled else result.rows_read,
        rows_checked=result.rows_read,
        sampled=sampled,
        row_numbering=source.numbering,
        format=fmt,
        type=data_type,
        implicit_prompt=bool(main and main.implicit_prompt),
        dialect=main.dialect if main else "unknown",
        columns=[{"name": name, "rows": sum(types.values()), "types": dict(types)}
                 for name, types in result.columns.items()],
        extra_columns=extra,
        shapes=[{"dialect": v.shape.dialect, "type": v.shape.type, "format": v.shape.format,
                 "implicit_prompt": v.shape.implicit_prompt, "columns": list(v.shape.columns),
                 "rows": v.count, "first_rows": v.rows, "first_where": list(map(result.where, v.rows))}
                for v in result.shapes],
        per_file=[{"file": f.name, "rows": f.rows, **_shape_fields(f.shape),
                   "read_as": _shape_fields(f.judged_as) if f.judged_as != f.shape else None}
                  for f in result.files],
        methods=methods,
        findings=_findings(result, unknown),
        notes=_notes(result, extra, sampled),
        rows_with_errors=result.rows_with_errors,
        stats={"seconds": round(seconds, 4),
               "rows_per_second": round(result.rows_read / seconds, 1) if seconds > 0 else 0.0},
    )


@dataclass
class Comparisons:
    """What the checks that compare rows found: with evaluation sets (TP405), with each other (TP406, TP214)."""

    leaked: dict[int, str] = field(default_factory=dict)  # row -> what it shares with which evaluation row
    leaked_per_set: dict[str, int] = field(default_factory=dict)
    near: NearDuplicates | None = None
    cut_off: dict[int, str] = field(default_factory=dict)  # row -> how its answer stops (TP214)
    profile: dict | None = None  # what the HTML report plots (`inspector.profile`)


def compare_rows(opened: Source, *, against: tuple[Any, ...] = (), near_threshold: float | None = None,
                 cut_off: bool = False, profile: bool = False, sample: int | None = None,
                 prepare=None) -> Comparisons:
    """One more pass over the rows, numbered as the scan numbers them, for the checks that compare rows: n-grams
    shared with the evaluation sets of `against` (`inspector.leakage`), with a threshold near-duplicate clusters
    (`inspector.neardup`), with `cut_off` answers that stop where a length cap stops them (`inspector.cutoff`).
    What `inspect` reports and `convert` rejects; with `profile`, in the same pass, what the HTML report plots."""
    from inspector.cutoff import CutOffs
    from inspector.leakage import Leakage, eval_indexes
    from inspector.neardup import Signatures
    from inspector.profile import Profile
    from inspector.text import batches

    plan = read_plan(opened, limit=sample, prepare=prepare)
    checks = {"leakage": Leakage(eval_indexes(against)) if against else None,
              "near": Signatures(plan.expected) if near_threshold is not None else None,
              "cut_off": CutOffs(plan.expected) if cut_off else None,
              "profile": Profile(plan.expected) if profile else None}
    running = [check for check in checks.values() if check is not None]
    for numbers, values in batches(plan.numbered_rows()):
        for check in running:
            check.add(numbers, values)
    compared = Comparisons()
    if checks["leakage"] is not None:
        compared.leaked, compared.leaked_per_set = checks["leakage"].found, dict(checks["leakage"].per_set)
    if checks["near"] is not None:
        compared.near = NearDuplicates.from_signatures(checks["near"], near_threshold)
    if checks["cut_off"] is not None:
        compared.cut_off = checks["cut_off"].found()
    if checks["profile"] is not None:
        compared.profile = checks["profile"].to_dict()
    return compared


def _tally_comparisons(result: ScanResult, compared: Comparisons, max_rows: int) -> None:
    """The rows the comparing checks found, as the scan's tallies of TP214, TP405 and TP406."""
    found = {CUT_OFF_RESPONSE.id: compared.cut_off, EVAL_CONTAMINATION.id: compared.leaked}
    if compared.near is not None:
        found[NEAR_DUPLICATE_ROW.id] = {row: compared.near.detail(row, kept) for row, kept in compared.near.repeats().items()}
    for rule, details in found.items():
        if details:
            first = sorted(details)[:max_rows]
            result.tallies[rule] = Tally(count=len(details), rows=first, details=[details[row] for row in first])


def _clusters(near: NearDuplicates, result: ScanResult, max_rows: int) -> dict:
    """The report's near-duplicate section: the cluster count and the largest clusters with their rows."""
    clusters = near.clusters()
    sizes = Counter(1 + len(rows) for _, rows in clusters)
    return {"threshold": near.threshold, "shingle_words": SHINGLE_WORDS, "clusters": len(clusters),
            "rows_repeating": sum(len(rows) for _, rows in clusters),
            "cluster_sizes": {str(size): sizes[size] for size in sorted(sizes)},
            "largest": [{"kept": kept, "kept_where": result.where(kept), "size": 1 + len(rows),
                         "rows": [{"row": row, "where": result.where(row),
                                   "similarity": round(near.similarity(row, kept), 3)} for row in rows[:max_rows]]}
                        for kept, rows in clusters[:max_rows]]}


def _unknown_shape(result: ScanResult, name: str) -> str:
    """Why no method can use data of no known shape, and the `--map` that gives it one when the first rows show
    one (checked on them)."""
    columns = ", ".join(map(str, result.columns)) or "(none)"
    recognized = next((unread_format(row) for row in result.first_rows[:1] if isinstance(row, dict)), None)
    if recognized:
        return f"{recognized} (columns {columns})"
    reason = f"no known dataset shape in columns {columns}"
    suggestion = suggest_map(result.first_rows)
    if suggestion:
        reason += (f"; renamed, the first rows fit one: uv run inspect --dataset {shlex.quote(name)} "
                   + mapping_arguments(suggestion, {}))
    return reason


def _shape_fields(shape: Shape | None) -> dict:
    if shape is None:
        return {"dialect": "unknown", "type": "unknown", "format": "unknown"}
    return {"dialect": shape.dialect, "type": shape.type, "format": shape.format}


def _findings(result: ScanResult, unknown: str | None) -> list[Finding]:
    """The findings of the scan; `unknown`, when the data has no known shape, is its one TP404 finding."""
    findings = []
    for rule_id, tally in sorted(result.tallies.items()):
        rule = RULES[rule_id]
        if rule_id == MIXED_SHAPE.id and unknown is not None:  # one finding for the data, not one for each row
            findings.append(Finding(rule_id, rule.name, rule.severity, tally.count, [], [], unknown, rule.fix))
            continue
        where = list(map(result.where, tally.rows))
        findings.append(Finding(rule_id, rule.name, rule.severity, tally.count, tally.rows,
                                [{"row": r, "where": w, "detail": d}
                                 for r, w, d in zip(tally.rows, where, tally.details)],
                                rule.summary, rule.fix, where))
    for rule_id, count, detail in result.dataset_findings:
        rule = RULES[rule_id]
        findings.append(Finding(rule_id, rule.name, rule.severity, count, [], [], detail, rule.fix))
    order = {"error": 0, "warning": 1}
    return sorted(findings, key=lambda f: (order[f.severity], f.rule))


def _notes(result: ScanResult, extra: list[str], sampled: bool) -> list[str]:
    notes = []
    if sampled:
        notes.append(f"only the first {result.rows_read} rows were checked (--sample); counts cover those rows")
    if result.labels:
        notes.append(f"labels: {result.labels.get(True, 0)} true (desirable), "
                     f"{result.labels.get(False, 0)} false (undesirable)")
    if result.final_answers:
        notes.append(f"{result.final_answers} answers end with a final-answer marker (#### <answer>); "
                     f"`convert --to grpo` keeps the final answer in an `answer` column for reward functions")
    known = [f"{c} ({KNOWN_EXTRAS[c]})" for c in extra if c in KNOWN_EXTRAS]
    other = [c for c in extra if c not in KNOWN_EXTRAS]
    if known:
        notes.append("extra columns: " + ", ".join(known))
    if other:
        notes.append("other columns: " + ", ".join(other) + " (kept; GRPO passes them to reward functions)")
    return notes
