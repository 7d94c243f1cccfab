"""From a scan's result to the report: its findings, its notes, and each method's verdict."""

from __future__ import annotations

import shlex

from trlprep.inspector.dialects import Shape, classify_row, unread_format
from trlprep.inspector.mapping import Proposal, propose_map, renamed_columns, set_aside
from trlprep.inspector.methods import METHOD, METHODS, convert_command, incompatible, verdict
from trlprep.inspector.report import Finding, Report
from trlprep.inspector.rules import RULES, error_rules
from trlprep.inspector.rules.dataset import MIXED_SHAPE
from trlprep.inspector.rules.structure import CLASHING_COLUMN, clashing_columns
from trlprep.inspector.scan import ScanResult
from trlprep.inspector.sources import Source
from trlprep.inspector.instances import read_with

KNOWN_EXTRAS = {
    "tools": "tool schemas, passed to the chat template",
    "images": "images, which switch TRL to its vision path",
    "image": "an image, which switches TRL to its vision path",
    "margin": "a reward margin, used by RewardTrainer",
    "chat_template_kwargs": "per-row chat-template arguments",
}


def build_report(source: Source, result: ScanResult, *, method: str | None, sample: int | None,
                 seconds: float, local: bool, mapping: str = "", severity: dict[str, str] | None = None) -> Report:
    """The report of a scan; `severity`: a config file's rule severities, which decide the rows that break error
    rules."""
    main = result.expected
    data_type = main.type if main else "unknown"
    formats = {v.shape.format for v in result.shapes if main and v.shape.type == main.type}
    fmt = "mixed" if len(formats) > 1 else (main.format if main else "unknown")
    source_name = source.name if not source.name.startswith("<") else None
    proposal = propose_map(result.first_rows) if not mapping else None
    if proposal is not None and main is not None and {proposal.prompt, proposal.answer} <= set(main.columns):
        proposal = None  # the data's own shape reads both already (Math-Shepherd's steps and tags, query/response)
    unknown = _unknown_shape(result, source.name, proposal) if main is None else None
    methods = {}
    for name in (method,) if method else METHODS:
        if unknown is not None:
            methods[name] = incompatible(unknown, result.rows_read)
            continue
        rejected = result.rejected.get(name, result.rejected[METHOD[name].base])
        methods[name] = verdict(name, data_type=data_type, fmt=main.format, dialect=main.dialect,
                                implicit_prompt=main.implicit_prompt, rows=result.rows_read,
                                rejected={rule: tally.count for rule, tally in rejected.items()},
                                rejected_rows={rule: tally.rows for rule, tally in rejected.items()},
                                repaired=result.repaired,
                                labels=dict(result.labels), source=source_name, local=local,
                                images=main.reads_images, columns=set(result.columns))
        if mapping:
            methods[name] = _through(methods[name], mapping, name, source_name, local)
        if source_name is not None:
            methods[name]["reason"] += _renamed_for(name, methods[name]["status"], proposal, result, source_name,
                                                    local)
    read_columns = read_with(set(main.columns)) if main else set()
    extra = [c for c in result.columns if c not in read_columns or c in KNOWN_EXTRAS]
    sampled = sample is not None and (source.total is None or result.rows_read < (
        source.total if source.unit == "rows" else float("inf")))
    return Report(
        source=source.name,
        files=source.files,
        rows=(source.total if source.unit == "rows" else None) if sampled else result.rows_read,
        rows_checked=result.rows_read,
        sampled=sampled,
        # A file whose lines hold several rows numbers them in order; each `where` names the line (`plan.Expansion`).
        row_numbering="row" if any(f.lines is not None for f in result.files) else source.numbering,
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
        findings=_findings(result, unknown, _fixes(result, main, proposal, source_name, local)),
        notes=source.notes + _notes(result, extra, sampled),
        rows_with_errors=result.rows_breaking(error_rules(severity)),
        stats={"seconds": round(seconds, 4),
               "rows_per_second": round(result.rows_read / seconds, 1) if seconds > 0 else 0.0},
        line_numbered=[name for part in source.parts or [source] if part.numbering == "line" for name in part.files],
    )


def _through(found: dict, mapping: str, method: str, source: str | None, local: bool) -> dict:
    """A verdict on the data read through `--map`/`--roles` (`mapping`): the file as written is not ready, so
    data ready once renamed is convertible, and the command renames it."""
    if found["status"] == "ready":
        found = {**found, "status": "convertible", "reason": f"read through {mapping}, in TRL's own columns",
                 "command": convert_command(source, method, local=local) if source else None}
    if found["command"]:
        found = {**found, "command": f"{found['command']} {mapping}"}
    return found


def _unknown_shape(result: ScanResult, name: str, proposal: Proposal | None) -> str:
    """Why no method can use data of no known shape, and the `--map` that gives it one when the first rows show
    one (checked on them)."""
    columns = ", ".join(map(str, result.columns)) or "(none)"
    recognized = next((unread_format(row) for row in result.first_rows[:1] if isinstance(row, dict)), None)
    if recognized:
        return f"{recognized} (columns {columns})"
    reason = f"no known dataset shape in columns {columns}"
    if proposal is not None:
        reason += (f"; renamed, the first rows fit one ({proposal.meaning()}): uv run inspect --dataset "
                   f"{shlex.quote(name)} {proposal.arguments}")
    return reason


def _renamed_for(method: str, status: str, proposal: Proposal | None, result: ScanResult, source: str,
                 local: bool) -> str:
    """What a checked `--map` (`proposal`) changes for a method, or nothing: for a method that cannot use the
    data as its columns are named, the `--map` under which its first rows read as data the method takes; for a
    method that trains on documents, the answer beside them that it would never train (a `summary` beside
    `text`). Each with what the rows then mean, and the command."""
    if proposal is None or proposal.prompt is None or result.expected is None:
        return ""
    command = f"{proposal.meaning()}: {convert_command(source, method, local=local)} {proposal.arguments}"
    if status != "incompatible":
        if result.expected.type != "language_modeling" or proposal.answer in result.expected.columns:
            return ""
        return f"; `{proposal.answer}` holds text beside it and is never trained: if it is the answer, {command}"
    first = renamed_columns(result.first_rows[0], proposal.renames)
    shape = classify_row(first)
    if shape is None:
        return ""
    found = verdict(method, data_type=shape.type, fmt=shape.format, dialect=shape.dialect,
                    implicit_prompt=shape.implicit_prompt, rows=proposal.rows, rejected={}, repaired={},
                    labels=dict(result.labels), source=source, images=shape.reads_images, columns=set(first))
    return "" if found["status"] == "incompatible" else f"; renamed, {command}"


def _fixes(result: ScanResult, main: Shape | None, proposal: Proposal | None, source: str | None,
           local: bool) -> dict[str, str]:
    """Fixes written for this data, by rule, where the catalog's own would be a guess: a column that clashes
    with TRL's (TP112) is mapped onto a prompt and completion when its first rows read so, else set aside under a
    name TRL does not read; either mapping named with this file's columns and checked on its first rows."""
    if CLASHING_COLUMN.id not in result.tallies or main is None or source is None:
        return {}
    if proposal is not None and proposal.prompt is not None:
        return {CLASHING_COLUMN.id: f"{proposal.meaning()}: {convert_command(source, 'sft', local=local)} "
                                    f"{proposal.arguments}"}
    clashing = sorted({column for row in result.first_rows if isinstance(row, dict)
                       for column in clashing_columns(row, main)})
    aside = set_aside(result.first_rows, clashing)
    if aside is None:
        return {}
    return {CLASHING_COLUMN.id: f"rename the column, {aside.meaning()}, which TRL does not read: "
                                f"uv run inspect --dataset {shlex.quote(source)} {aside.arguments}"}


def _shape_fields(shape: Shape | None) -> dict:
    if shape is None:
        return {"dialect": "unknown", "type": "unknown", "format": "unknown"}
    return {"dialect": shape.dialect, "type": shape.type, "format": shape.format}


def _findings(result: ScanResult, unknown: str | None, fixes: dict[str, str]) -> list[Finding]:
    """The findings of the scan; `unknown`, when the data has no known shape, is its one TP404 finding; `fixes`
    replace the catalog's fix of their rules for this data."""
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
                                rule.summary, fixes.get(rule_id, rule.fix), where))
    for rule_id, count, detail in result.dataset_findings:
        rule = RULES[rule_id]
        findings.append(Finding(rule_id, rule.name, rule.severity, count, [], [], detail, rule.fix))
    order = {"error": 0, "warning": 1}
    return sorted(findings, key=lambda f: (order[f.severity], f.rule))


def _notes(result: ScanResult, extra: list[str], sampled: bool) -> list[str]:
    notes = []
    if sampled:
        notes.append(f"only the first {result.rows_read} rows were checked (--limit); counts cover those rows")
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
