"""The report for CI: GitHub Actions workflow commands (`inspect --format github`), which put each finding on the
line of the pull request's diff it is about, and SARIF 2.1.0 (`inspect --format sarif`) for code-scanning tools.

Both say the same annotations (`annotations`): each finding's example rows at their file, relative to the working
directory, and, in a file read line by line (JSON lines, CSV), at their physical line (`physical_lines`); a
finding's other rows in one annotation with their count; and, when no trainer can use the data, why.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Mapping
from urllib.parse import quote

from trlprep.inspector.summary import visible

# GitHub shows 10 error and 10 warning annotations per step: a few rows of each rule, then the rule's count.
SHOWN_PER_RULE = 3
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


@dataclass(frozen=True)
class Annotation:
    """One thing to say in CI: `level` error or warning, at `file` (relative to the working directory; None for
    data that is no local file) and `line` (None where the file has no lines, or the annotation is about the whole
    file); `rule` is the catalog id (None for the verdict)."""

    rule: str | None
    level: str
    title: str
    message: str
    file: str | None = None
    line: int | None = None


def physical_lines(report, encoding: str | None = None) -> dict[str, int]:
    """The physical line of each example row the report names (`where`, `file:number`), in the files read line by
    line: a JSON-lines file's numbers are its lines; a CSV file's are its records, whose lines are read again (a
    quoted cell may hold newlines), in the file's `encoding`. Parquet, Arrow and Hub data have none."""
    from trlprep.inspector.sources import csv_record_lines, is_csv

    lines: dict[str, int] = {}
    records: dict[str, set[int]] = {}
    for finding in report.findings:
        for example in finding.examples:
            name, number = example["where"].rsplit(":", 1)
            if name in report.line_numbered:
                lines[example["where"]] = int(number)
            elif name in report.files and is_csv(Path(name)):
                records.setdefault(name, set()).add(int(number))
    for name, wanted in records.items():
        starts = islice(csv_record_lines(Path(name), encoding), max(wanted))
        lines.update((f"{name}:{record}", line) for record, line in enumerate(starts, 1) if record in wanted)
    return lines


def annotations(report, lines: Mapping[str, int], *, per_rule: int | None = None) -> list[Annotation]:
    """What the report says in CI: for each finding, its first `per_rule` example rows (all with None) at their
    place, then, when it flags more rows, one annotation with its count; a dataset-level finding once; and the
    verdict, when it alone fails the data (no trainer, or not the one asked for, can use it). `lines` are the rows'
    physical lines (`physical_lines`).

    >>> from trlprep.inspector import inspect_dataset
    >>> rows = [{"prompt": "Hi", "completion": "Hello"}, {"prompt": "Hi", "completion": " "}, {"prompt": "Yo", "completion": ""}]
    >>> for a in annotations(inspect_dataset(rows), {}, per_rule=1):
    ...     print(a.level, a.title, "|", a.message.replace("\\n", " / "))
    error TP201 empty-content | row 2: completion is whitespace only / fix: fill it or drop the row
    error TP201 empty-content | 2 rows break this rule (1 shown one by one): a text field or message content is empty or whitespace only / fix: fill it or drop the row
    >>> [(a.title, a.message) for a in annotations(inspect_dataset(rows[:1], method="dpo"), {})]
    [('DPOTrainer cannot use the data', 'DPO needs chosen/rejected pairs; this is prompt-completion data')]
    """
    only_file = _relative(report.files[0]) if len(report.files) == 1 else None
    found = []
    for finding in report.findings:
        title = f"{finding.rule} {finding.name}"
        fix = f"\nfix: {finding.fix}"
        shown = finding.examples[:per_rule]
        files = set()
        for example in shown:
            name, number = example["where"].rsplit(":", 1)
            file = _relative(name) if name in report.files else None
            line = lines.get(example["where"])
            files.add(file)
            place = f"line {line}" if line is not None else f"row {number}"
            found.append(Annotation(finding.rule, finding.severity, title, f"{place}: {example['detail']}{fix}",
                                    file, line))
        if finding.count > len(shown) or not finding.examples:
            rows = f"{finding.count} row{'s' if finding.count != 1 else ''}"
            said = f"{rows} break this rule ({len(shown)} shown one by one): " if shown else ""
            found.append(Annotation(finding.rule, finding.severity, title, f"{said}{finding.message}{fix}",
                                    files.pop() if len(files) == 1 else only_file))
    if report.valid and not report.usable:  # the verdict alone fails the data: say why
        reasons = dict.fromkeys(v["reason"] for v in report.methods.values())
        asked = next(iter(report.methods.values()))
        title = "no trainer can use the data" if len(report.methods) > 1 else f"{asked['trainer']} cannot use the data"
        found.append(Annotation(None, "error", title, "\n".join(reasons), only_file))
    for gate in report.gates:  # the config's gates (`inspector.settings`): a failed one fails the data too
        if gate["passed"] is not True:
            level = "error" if gate["passed"] is False else "warning"
            found.append(Annotation(None, level, gate["gate"], gate["line"], only_file))
    return found


def github_annotations(report, lines: Mapping[str, int]) -> str:
    """The report as GitHub Actions workflow commands, one a line, then a plain summary line (`--format github`):
    GitHub puts each on its file's line in the pull request's diff and in the run's summary.

    >>> from trlprep.inspector import inspect_dataset
    >>> rows = [{"prompt": "Hi", "completion": "Hello"}, {"prompt": "Yo", "completion": " "}]
    >>> print(github_annotations(inspect_dataset(rows), {}), end="")
    ::error title=TP201 empty-content::row 2: completion is whitespace only%0Afix: fill it or drop the row
    trlprep inspect <rows>: 2 rows checked; 1 row(s) break error rules (1 error rule(s), 0 warning rule(s))
    """
    from trlprep.inspector.summary import validity_line

    commands = [workflow_command(a.level, {"file": a.file, "line": a.line, "title": a.title}, a.message)
                for a in annotations(report, lines, per_rule=SHOWN_PER_RULE)]
    summary = f"trlprep inspect {visible(report.source)}: {report.rows_checked} rows checked; {validity_line(report)}"
    return "".join(f"{line}\n" for line in [*commands, summary])


def workflow_command(command: str, properties: Mapping[str, object], message: str) -> str:
    """One workflow command, `::command key=value,...::message`, its properties (None ones left out) and its message
    escaped as the runner unescapes them (`%`, carriage returns and newlines; in properties `:` and `,` too).

    >>> workflow_command("warning", {"file": "data/a,b.jsonl", "line": 3, "title": "TP205 x"}, "50%: ok\\nnext")
    '::warning file=data/a%2Cb.jsonl,line=3,title=TP205 x::50%25: ok%0Anext'
    """
    said = ",".join(f"{key}={_escape_property(str(value))}" for key, value in properties.items() if value is not None)
    return f"::{command}{' ' + said if said else ''}::{_escape_data(message)}"


def _escape_data(text: str) -> str:
    """`text` as a workflow command carries it: what a terminal would act on made visible first (a CI log is drawn
    as a terminal draws it), then the runner's own escapes."""
    return visible(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def sarif_log(report, lines: Mapping[str, int]) -> str:
    """The report as a SARIF 2.1.0 log (`--format sarif`): the tool with one rule entry for each rule that fired
    (its manual from the catalog, as `--explain` prints it), a result for each example row and for each finding's
    count, and the verdict, when no trainer can use the data, as a notification of the run.

    >>> from trlprep.inspector import inspect_dataset
    >>> log = json.loads(sarif_log(inspect_dataset([{"prompt": "Hi", "completion": " "}]), {}))
    >>> run = log["runs"][0]
    >>> [rule["id"] for rule in run["tool"]["driver"]["rules"]], [(r["ruleId"], r["level"]) for r in run["results"]]
    (['TP201'], [('TP201', 'error')])
    """
    from trlprep.inspector.rules import RULES

    fired = list(dict.fromkeys(f.rule for f in report.findings))
    found = annotations(report, lines)
    results = [{"ruleId": a.rule, "ruleIndex": fired.index(a.rule), "level": a.level, "message": {"text": a.message},
                **({"locations": [_location(a)]} if a.file is not None else {})} for a in found if a.rule is not None]
    notifications = [{"level": a.level, "message": {"text": f"{a.title}: {a.message}"}} for a in found
                     if a.rule is None]
    return _log([_rule_entry(RULES[rule]) for rule in fired], True, report.exit_code, notifications, results)


def sarif_refusal(error: Exception, exit_code: int) -> str:
    """A SARIF log for a run that could not check the data (unreadable input, bad usage, a bad config file): no
    results, and the error as the invocation's notification, so that a workflow uploading the log uploads the
    reason rather than an empty file.

    >>> run = json.loads(sarif_refusal(ValueError("data.jsonl: no such file"), 2))["runs"][0]
    >>> invocation = run["invocations"][0]
    >>> invocation["executionSuccessful"], invocation["exitCode"], invocation["toolExecutionNotifications"][0]["message"]
    (False, 2, {'text': 'trlprep could not check the data: data.jsonl: no such file'})
    """
    notification = {"level": "error", "message": {"text": f"trlprep could not check the data: {error}"}}
    return _log([], False, exit_code, [notification], [])


def _log(rules: list[dict], successful: bool, exit_code: int, notifications: list[dict], results: list[dict]) -> str:
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {**_tool(), "rules": rules}},
            "invocations": [{"executionSuccessful": successful, "exitCode": exit_code,
                             "toolExecutionNotifications": notifications}],
            "results": results,
        }],
    }
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"


def _tool() -> dict:
    """The driver's name, version and home page, from the installed package's metadata."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        about = metadata("trlprep")
    except PackageNotFoundError:  # a checkout on the path, never installed
        return {"name": "trlprep"}
    urls = dict(url.split(", ", 1) for url in about.get_all("Project-URL") or [])
    home = urls.get("Homepage") or urls.get("Documentation") or about.get("Home-page")
    return {"name": "trlprep", "version": about["Version"], **({"informationUri": home} if home else {})}


def _rule_entry(rule) -> dict:
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": f"{rule.summary}. {rule.why}".strip()},
        "help": {"text": rule.explain()},
        "defaultConfiguration": {"level": rule.severity},
    }


def _location(annotation: Annotation) -> dict:
    place: dict = {"artifactLocation": {"uri": quote(annotation.file)}}
    if annotation.line is not None:
        place["region"] = {"startLine": annotation.line}
    return {"physicalLocation": place}


def _relative(name: str) -> str:
    """A file's path relative to the working directory, with forward slashes (GitHub wants the repository's)."""
    return Path(os.path.relpath(name)).as_posix()
