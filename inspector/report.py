"""The inspection report: one object, rendered as JSON (for machines), rich text (terminals) or markdown."""

from __future__ import annotations

import dataclasses
import io
from dataclasses import asdict, dataclass, field
from typing import Any

from trlprep.inspector.summary import (EXPERIMENTAL_NOTE, cost_lines, near_duplicates_line, shape_lines,
                                      shown_method, summary_line, tokens_line, validity_line, visible)


@dataclass
class Finding:
    rule: str
    name: str
    severity: str
    count: int
    rows: list[int]
    examples: list[dict]  # [{"row": n, "where": "file:line", "detail": "..."}]
    message: str
    fix: str
    where: list[str] = field(default_factory=list)  # the rows as `file:line`


@dataclass
class Report:
    source: str
    files: list[str]
    rows: int | None
    rows_checked: int
    sampled: bool
    row_numbering: str
    format: str
    type: str
    implicit_prompt: bool
    dialect: str
    columns: list[dict]
    extra_columns: list[str]
    shapes: list[dict]
    per_file: list[dict]  # each file's rows, its own shape, and the shape its rows were read against
    methods: dict[str, dict]
    findings: list[Finding]
    notes: list[str]
    rows_with_errors: int
    stats: dict[str, Any] = field(default_factory=dict)
    tokens: dict | None = None  # with --model: token lengths, trainer effects, template facts
    mask_previews: list[dict] = field(default_factory=list)
    near_duplicates: dict | None = None  # with --near-duplicates: the clusters, largest first
    profile: dict | None = None  # with --html: lengths, turns, roles, labels (`inspector.profile`)
    example_rows: dict[int, Any] = field(default_factory=dict)  # with --html: the rows its findings show
    image_folder: str | None = None  # with --html: the folder the shown rows' relative image paths are read against
    # The local files whose rows' `where` numbers are their physical lines (JSON lines), which the CI formats
    # (`inspector.annotations`) point at; kept out of the JSON, whose `row_numbering` says it for the whole dataset.
    line_numbered: list[str] = field(default_factory=list)
    gates: list[dict] = field(default_factory=list)  # the config's gates for --method, checked (`inspector.settings`)

    @property
    def valid(self) -> bool:
        """No row breaks an error-severity rule."""
        return not any(f.severity == "error" for f in self.findings)

    @property
    def usable(self) -> bool:
        return any(v["status"] != "incompatible" for v in self.methods.values())

    @property
    def exit_code(self) -> int:
        """0 when valid, usable (for the methods asked) and no gate failed, 1 otherwise."""
        return 0 if self.valid and self.usable and not self.failed_gates else 1

    @property
    def failed_gates(self) -> list[dict]:
        return [gate for gate in self.gates if gate["passed"] is False]

    def to_dict(self) -> dict:
        data = asdict(self)
        del data["example_rows"]  # the data's own rows: drawn in the HTML page, not repeated in the JSON
        del data["image_folder"]  # where the page reads the rows' images from, no finding of the data
        del data["line_numbered"]
        if not self.gates:  # a config's gates, checked only for --method: absent when none is
            del data["gates"]
        data["valid"] = self.valid
        data["exit_code"] = self.exit_code
        return data

    def to_json(self) -> str:
        import orjson

        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2).decode()

    def moved(self, old: str, new: str) -> None:
        """The report of a file since moved from `old` to `new` (a staged output, published): names the new path."""
        self.source = self.source.replace(old, new)
        self.files = [name.replace(old, new) for name in self.files]
        self.line_numbered = [name.replace(old, new) for name in self.line_numbered]
        for finding in self.findings:
            finding.where = [where.replace(old, new) for where in finding.where]
            for example in finding.examples:
                example["where"] = example["where"].replace(old, new)

    def shown_reason(self, method: str) -> str:
        """A verdict's reason as the text and Markdown reports say it: a method that takes another's data, with
        the same verdict, points at that method's reason rather than repeating it."""
        v = self.methods[method]
        base = self.methods.get(v.get("data_as") or method)
        if base is not None and base is not v and (base["status"], base["reason"]) == (v["status"], v["reason"]):
            return f"{v['trainer']}: as for {v['data_as']}"
        return v["reason"]

    def to_html(self) -> str:
        """One self-contained page: verdicts, findings with their rows drawn, plots (`inspector.html`)."""
        from trlprep.inspector.html import render

        return render(self, self.example_rows)

    def shown(self) -> Report:
        """The report as the text and Markdown forms print it: every text from the data (column names, values, file
        names, messages quoting them) with its control characters made visible (`summary.visible`). The mask
        previews keep their own colour codes; the HTML page's data is escaped by the page."""
        kept = ("mask_previews", "example_rows", "profile")
        return dataclasses.replace(self, **{f.name: _visible_strings(getattr(self, f.name))
                                            for f in dataclasses.fields(self) if f.name not in kept})

    def to_markdown(self) -> str:
        shown = self.shown()
        lines = [f"**trlprep inspect** `{shown.source}`", "",
                 f"- {summary_line(shown)}", f"- {validity_line(shown)}"]
        lines += [f"- {note}" for note in shown.notes]
        if shown.near_duplicates is not None:
            lines.append(f"- {near_duplicates_line(shown.near_duplicates)}")
        if shown.tokens:
            lines.append(f"- {tokens_line(shown.tokens)}")
            lines += [f"- {line}" for line in cost_lines(shown.tokens)]
        lines += ["", "| method | status | reason |", "| --- | --- | --- |"]
        for method, v in shown.methods.items():
            reason = shown.shown_reason(method) + (f" — `{v['command']}`" if v["command"] else "")
            lines.append(f"| {shown_method(method, v)} | {v['status']} | {_md_cell(reason)} |")
        if shown.findings:
            lines += ["", "| rule | severity | rows | first rows | example |", "| --- | --- | --- | --- | --- |"]
            for f in shown.findings:
                example = f.examples[0]["detail"] if f.examples else f.message
                lines.append(f"| {f.rule} {f.name} | {f.severity} | {f.count} | "
                             f"{', '.join(map(str, f.rows)) or '—'} | {_md_cell(example)} |")
        return "\n".join(lines) + "\n"

    def to_text(self, *, color: bool = False, width: int = 110) -> str:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        shown = self.shown()
        buffer = io.StringIO()
        console = Console(file=buffer, force_terminal=color, color_system="standard" if color else None,
                          width=width, highlight=False, soft_wrap=False)
        # Names and values come from the data: never read as rich markup (`c4[v2].jsonl` stays as it is).
        console.print(Text(shown.source, style="bold"))
        console.print(summary_line(shown), markup=False)
        console.print(validity_line(shown), markup=False)
        for line in shape_lines(shown):
            console.print(line, markup=False)
        for note in shown.notes:
            console.print(f"• {note}", markup=False)
        if shown.near_duplicates is not None:
            console.print(f"• {near_duplicates_line(shown.near_duplicates)}", markup=False)
        if shown.tokens:
            console.print(tokens_line(shown.tokens), markup=False)
            effects = "; ".join(f"{m}: {e['dropped']} dropped, {e['truncated']} truncated"
                                for m, e in shown.tokens["trainer_effects"].items() if m in shown.methods)
            console.print(f"at max_length={shown.tokens['max_length']}: {effects}", markup=False)
            for line in cost_lines(shown.tokens):
                console.print(line, markup=False)
        verdicts = Table(show_header=True, header_style="bold", box=None, padding=(0, 1))
        verdicts.add_column("method")
        verdicts.add_column("status")
        verdicts.add_column("why / how", overflow="fold")
        styles = {"ready": "green", "convertible": "yellow", "incompatible": "red"}
        for method, v in shown.methods.items():
            text = shown.shown_reason(method) + (f"\n$ {v['command']}" if v["command"] else "")
            verdicts.add_row(shown_method(method, v), f"[{styles[v['status']]}]{v['status']}[/]", _escape(text))
        console.print()
        console.print(verdicts)
        if any(v.get("experimental") for v in shown.methods.values()):
            console.print(EXPERIMENTAL_NOTE, markup=False)
        if shown.findings:
            table = Table(show_header=True, header_style="bold", box=None, padding=(0, 1))
            for name in ("rule", "severity", "rows", "first rows", "example"):
                table.add_column(name, overflow="fold")
            for f in shown.findings:
                example = f.examples[0] if f.examples else None
                several = len(shown.files) > 1
                detail = f"{example['where'] if several else 'row ' + str(example['row'])}: {example['detail']}" \
                    if example else f.message
                severity = f"[red]{f.severity}[/]" if f.severity == "error" else f"[yellow]{f.severity}[/]"
                table.add_row(f"{f.rule} {f.name}", severity, str(f.count),
                              ", ".join(map(str, (f.where if several else f.rows)[:8])) or "—", _escape(detail))
            console.print()
            console.print(table)
            fixes = [f"{f.rule}: {f.fix}" for f in shown.findings]
            console.print()
            for fix in fixes:
                console.print(f"fix {fix}", markup=False)
        for preview in shown.mask_previews:
            console.print()
            console.print(f"row {preview['row']} (trained tokens marked):", markup=False)
            console.print(Text.from_ansi(preview["text"]))
        return buffer.getvalue()


def _visible_strings(value: Any) -> Any:
    r"""`value` with every string in it, however deep (dict keys too), made visible (`summary.visible`).

    >>> print(_visible_strings({"\x1b[2J": ["\x07", 3]}))
    {'\\x1b[2J': ['\\x07', 3]}
    """
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_visible_strings(item) for item in value)
    if isinstance(value, dict):
        return {_visible_strings(key): _visible_strings(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: _visible_strings(getattr(value, f.name))
                                            for f in dataclasses.fields(value)})
    return value


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
