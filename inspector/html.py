"""The report as one HTML page a person looks at: verdicts, findings with their rows drawn as chats, and plots.

The plots are Vega-Lite charts built with Altair; Vega, Vega-Lite and vega-embed come inlined from vl-convert's
bundle (0.9 MB), so the page opens with no network. Every histogram counts every row; the one scatter plot
shows a random sample of at most 2,000 rows. Needs the `html` extra (altair, vl-convert-python).
"""

from __future__ import annotations

import html
import io
import json
import re
from typing import Any

from trlprep.errors import OutputError, UsageError
from trlprep.inspector.summary import EXPERIMENTAL_NOTE, shown_method, summary_line, validity_line, written_sum
from trlprep.inspector.thumbnails import is_image_part

INSTALL = "the HTML report needs the html extra: uv run --extra html inspect ... (or pip install 'trlprep[html]')"
TEXT_LIMIT = 1200  # characters of one turn shown; the rest is counted
EXAMPLES_SHOWN = 3  # rows drawn per finding
STATUS_COLORS = {"ready": "#1a7f37", "convertible": "#9a6700", "incompatible": "#cf222e"}
# `messages[3].content ...`, `chosen[1]...`, `prompt: ...`: the column and turn a finding's detail points at.
_PATH = re.compile(r"^(?P<column>[A-Za-z_][\w.-]*?)(?:\[(?P<index>\d+)\])?(?=[.\s:\[]|$)")
_QUOTED = re.compile(r"'([^']{2,80})'")
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #1f2328; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #d0d7de; }
.source { font-family: ui-monospace, monospace; color: #57606a; }
table { border-collapse: collapse; width: 100%; } td, th { border-bottom: 1px solid #d0d7de; padding: 6px 8px;
text-align: left; vertical-align: top; }
.status { font-weight: 600; } code, pre { font-family: ui-monospace, monospace; font-size: 12.5px; }
pre { white-space: pre-wrap; word-break: break-word; margin: 0; }
.command { background: #f6f8fa; padding: 2px 6px; border-radius: 4px; display: inline-block; margin-top: 4px; }
details { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 12px; margin: 10px 0; }
summary { cursor: pointer; font-weight: 600; } .error { color: #cf222e; } .warning { color: #9a6700; }
.row { margin: 10px 0; } .row-title { color: #57606a; font-size: 12.5px; margin-bottom: 4px; }
.chat { display: flex; flex-direction: column; gap: 6px; } .pair { display: flex; gap: 12px; }
.pair > div { flex: 1; min-width: 0; } .side { font-size: 12px; font-weight: 600; color: #57606a; }
.turn { border-radius: 8px; padding: 6px 10px; background: #f6f8fa; border: 1px solid #eaeef2; }
.turn.user { background: #ddf4ff; } .turn.assistant { background: #f0fff4; } .turn.system { background: #fff8c5; }
.turn.tool { background: #fbefff; } .role { font-size: 11.5px; font-weight: 600; color: #57606a; }
.offending { outline: 2px solid #cf222e; } mark { background: #ffd8b5; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 16px; }
.call { margin-top: 4px; padding: 4px 8px; background: #fff; border-left: 3px solid #8250df; border-radius: 4px; }
.call-name { font-family: ui-monospace, monospace; font-size: 12.5px; font-weight: 600; color: #8250df; }
.not-json { color: #cf222e; } .ref { font-weight: 400; font-family: ui-monospace, monospace; }
details.reasoning { margin: 2px 0 6px; padding: 4px 8px; background: #fff; border-style: dashed; }
details.reasoning summary { font-weight: 400; font-size: 12px; color: #57606a; }
.masks pre { background: #f6f8fa; padding: 8px; border-radius: 6px; }
.thumb { display: inline-block; margin: 4px 6px 4px 0; vertical-align: top; }
.thumb img { display: block; max-width: 96px; max-height: 96px; border: 1px solid #d0d7de; border-radius: 4px; }
.thumb.broken { width: 180px; padding: 6px 8px; border: 2px dashed #cf222e; border-radius: 4px; background: #fff;
font-size: 11.5px; color: #cf222e; word-break: break-all; } .thumb.left-out { border-color: #d0d7de; color: #57606a; }
"""


def require_html_extra() -> None:
    import importlib.util

    if importlib.util.find_spec("altair") is None or importlib.util.find_spec("vl_convert") is None:
        raise UsageError(INSTALL)


def check_page_path(path: str, dataset: Any, overwrite: bool = False) -> None:
    """Refuse, before any row is read, a page that could not be written, would replace the input, or, without
    `overwrite`, anything at all (`files.check_replaceable`).

    >>> check_page_path("nowhere/report.html", "data.jsonl")
    Traceback (most recent call last):
    ...
    trlprep.errors.OutputError: --html nowhere/report.html: no such folder nowhere
    """
    import os
    from pathlib import Path

    from trlprep.files import check_output_name, check_replaceable, check_writable

    page = Path(path)
    check_output_name(page, "--html")
    if page.suffix.lower() not in (".html", ".htm"):
        raise OutputError(f"--html {path}: the page's name must end in .html")
    if not page.parent.is_dir():
        raise OutputError(f"--html {path}: no such folder {page.parent}")
    if isinstance(dataset, (str, os.PathLike)) and Path(dataset).exists() and page.exists() \
            and os.path.samefile(page, dataset):
        raise OutputError(f"--html {path} is the input; the page is written beside it, never over it")
    check_replaceable(page, overwrite)
    check_writable(page)


def render(report, rows: dict[int, Any], *, conversion: dict | None = None, rejects: list[dict] = ()) -> str:
    """The page for `report` (an `inspector.report.Report` with its profile), drawing `rows` (row number: value)
    where its findings point, their images as thumbnails (`inspector.thumbnails`); for a conversion's output, its
    ledger (`conversion`, a `ConversionResult` as a dict) and the rejected rows of `rejects` (records of the
    rejects file) first."""
    from trlprep.inspector.thumbnails import Thumbnails

    require_html_extra()
    charts = plots(report)
    title = f"trlprep convert → {conversion['to']}" if conversion else "trlprep inspect"
    parts = [f"<header><h1>{_e(title)}</h1><div class='source'>{_e(report.source)}</div>",
             f"<p>{_e(_summary(report))}</p></header>"]
    if conversion:
        parts.append(_ledger(conversion, rejects))
    parts += [_verdicts(report), _findings(report, rows, Thumbnails(report.image_folder))]
    if charts:
        parts.append("<section><h2>Plots</h2><div class='plots'>"
                     + "".join(f"<div id='plot-{n}'></div>" for n in range(len(charts))) + "</div></section>")
    if report.mask_previews:
        parts.append(_masks(report.mask_previews))
    specs = _script_json({f"plot-{n}": chart for n, chart in enumerate(charts)})
    bundle = _javascript_bundle()
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>trlprep: {_e(report.source)}</title><style>{STYLE}</style>"
            f"<script>{bundle}</script></head><body>{''.join(parts)}"
            f"<script>const specs = {specs};\n"
            "for (const [id, spec] of Object.entries(specs)) {\n"
            "  vegaEmbed('#' + id, spec, {actions: false}).catch(error => console.error(error));\n}\n"
            "</script></body></html>\n")


def _javascript_bundle() -> str:
    """Vega, Vega-Lite and vega-embed as one script, from vl-convert, for the Vega-Lite version Altair writes. vl-convert
    bundles it anew on each call (2 s), so it is kept in the user's cache, one file per version pair."""
    import os
    from pathlib import Path

    import vl_convert
    from altair.utils._importers import vl_version_for_vl_convert

    from trlprep.files import write_atomically

    version = vl_version_for_vl_convert()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "trlprep"
    path = cache / f"vega-embed-{version}-vl-convert-{vl_convert.__version__}.js"
    if path.is_file():
        return path.read_text(encoding="utf-8")
    bundle = vl_convert.javascript_bundle(vl_version=version)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        write_atomically(path, bundle)
    except (OSError, OutputError):  # a read-only home: the page is still written, the bundle made again next time
        pass
    return bundle


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _script_json(value: Any) -> str:
    """JSON to place inside a <script>: no `</script>` or `<!--` from the data can end it."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _summary(report) -> str:
    return f"{summary_line(report)}. {validity_line(report)}"


def _ledger(conversion: dict, rejects: list[dict]) -> str:
    """Rows in = kept + rejected, the rejects by rule, and the first rejected rows of each rule drawn."""
    from trlprep.inspector.rules import RULES

    lines = [f"<p>From <span class='source'>{_e(conversion['source'])}</span>: rows in "
             f"{conversion['rows_in']:,} = kept {conversion['rows_kept']:,} + rejected "
             f"{conversion['rows_rejected']:,}; rows written {_e(written_sum(conversion))}"
             + (f"; rejects in <span class='source'>{_e(conversion['rejects'])}</span>" if conversion["rejects"]
                else "") + "</p>"]
    if conversion["rejected_by_rule"]:
        lines.append("<table><thead><tr><th>rule</th><th>rows rejected</th><th>why</th></tr></thead><tbody>"
                     + "".join(f"<tr><td>{_e(rule)} {_e(RULES[rule].name if rule in RULES else '')}</td>"
                               f"<td>{count:,}</td><td>{_e(RULES[rule].summary if rule in RULES else '')}</td></tr>"
                               for rule, count in sorted(conversion["rejected_by_rule"].items())) + "</tbody></table>")
    for record in rejects:
        lines.append(f"<div class='row'><div class='row-title'>rejected: row {record['row']} ({_e(record['where'])})"
                     f", {_e(record['rule'])}: {_e(record['reason'])}</div>"
                     f"{draw_row(record.get('content'), record['reason'])}</div>")
    return f"<section id='ledger'><h2>Conversion: every row accounted for</h2>{''.join(lines)}</section>"


def _verdicts(report) -> str:
    body = []
    for method, verdict in report.methods.items():
        command = (f"<br><code class='command'>{_e(verdict['command'])}</code>" if verdict.get("command") else "")
        body.append(f"<tr><td>{_e(shown_method(method, verdict))}</td><td class='status' "
                    f"style='color:{STATUS_COLORS[verdict['status']]}'>{_e(verdict['status'])}</td>"
                    f"<td>{_e(report.shown_reason(method))}{command}</td></tr>")
    note = f"<p>{_e(EXPERIMENTAL_NOTE)}</p>" if any(v.get("experimental") for v in report.methods.values()) else ""
    return ("<section id='verdicts'><h2>Verdict per method</h2><table><thead><tr><th>method</th><th>status</th>"
            f"<th>why / how</th></tr></thead><tbody>{''.join(body)}</tbody></table>{note}</section>")


def _findings(report, rows: dict[int, Any], pictures) -> str:
    if not report.findings:
        return "<section id='findings'><h2>Findings</h2><p>No rule finds anything in these rows.</p></section>"
    blocks = []
    for number, finding in enumerate(report.findings):
        examples = []
        for example in finding.examples[:EXAMPLES_SHOWN]:
            value = rows.get(example["row"])
            drawn = draw_row(value, example["detail"], pictures) if value is not None else ""
            examples.append(f"<div class='row'><div class='row-title'>row {example['row']} "
                            f"({_e(example['where'])}): {_e(example['detail'])}</div>{drawn}</div>")
        rows_text = ", ".join(map(str, finding.rows[:12])) + (" …" if finding.count > len(finding.rows[:12]) else "")
        opened = finding.severity == "error" or number == 0
        blocks.append(f"<details{' open' if opened else ''}><summary>"
                      f"<span class='{_e(finding.severity)}'>{_e(finding.rule)} {_e(finding.name)}</span> · "
                      f"{finding.count:,} row(s) · {_e(finding.severity)}</summary>"
                      f"<p>{_e(finding.message)}</p><p><b>Fix:</b> {_e(finding.fix)}</p>"
                      f"<p class='row-title'>rows {_e(rows_text)}</p>{''.join(examples)}</details>")
    return f"<section id='findings'><h2>Findings</h2>{''.join(blocks)}{pictures.note()}</section>"


def _pointed(detail: str) -> tuple[str | None, int | None, list[str]]:
    """The column and turn a finding's detail names, and the values it quotes.

    >>> _pointed("messages[7].content contains '<|user|>'")
    ('messages', 7, ['<|user|>'])
    >>> _pointed("chosen: empty")
    ('chosen', None, [])
    """
    match = _PATH.match(detail)
    column = match.group("column").split(".")[0] if match else None
    index = int(match.group("index")) if match and match.group("index") is not None else None
    return column, index, _QUOTED.findall(detail)


def draw_row(value: Any, detail: str = "", pictures=None) -> str:
    """A row as a person reads it: turns as chat bubbles, chosen beside rejected, other columns as labelled blocks;
    the column or turn the detail names outlined, the values it quotes marked. With `pictures` (a
    `thumbnails.Thumbnails`), a row of image data is drawn as TRL reads it, each image where it stands in its turn.

    >>> print(draw_row({"prompt": "Hi", "completion": "Hello"}, "completion: ends mid-word 'Hel'"))
    <div class='chat'><div class='turn'><div class='role'>prompt</div><pre>Hi</pre></div><div class='turn offending'><div class='role'>completion</div><pre><mark>Hel</mark>lo</pre></div></div>
    """
    from trlprep.inspector.sources import UnreadableRow, row_value
    from trlprep.inspector.thumbnails import images_in_place
    from trlprep.inspector.vision import holds_images

    if isinstance(value, UnreadableRow):  # the line as it is in the file
        return f"<pre class='offending'>{_e(_shorten(value.text, []))}</pre>"
    value = row_value(value)
    if pictures is not None and holds_images(value):
        value = images_in_place(value)
    column, index, quoted = _pointed(detail)
    if isinstance(value, dict) and column == "messages" and column not in value:
        # The detail reads the row as TRL does; a dialect keeps the turns under its own name (conversations, ...).
        turns = [key for key, part in value.items() if _holds_turns(key, part)]
        column = turns[0] if len(turns) == 1 else column
    if not isinstance(value, dict):
        return f"<pre class='offending'>{_mark(_shorten(_json(value), quoted), quoted)}</pre>"
    if "chosen" in value and "rejected" in value:
        others = {key: part for key, part in value.items() if key not in ("chosen", "rejected")}
        sides = "".join(f"<div><div class='side'>{side}</div>"
                        f"{_blocks({side: value[side]}, column, index, quoted, pictures)}</div>"
                        for side in ("chosen", "rejected"))
        return (f"<div class='chat'>{_blocks(others, column, index, quoted, pictures)}"
                f"<div class='pair'>{sides}</div></div>")
    return f"<div class='chat'>{_blocks(value, column, index, quoted, pictures)}</div>"


def _holds_turns(key: str, part: Any) -> bool:
    """Whether a column holds a conversation: a list of objects, and not the `tools` (drawn as their JSON)."""
    return key != "tools" and isinstance(part, list) and bool(part) and all(isinstance(turn, dict) for turn in part)


def _blocks(value: dict, column: str | None, index: int | None, quoted: list[str], pictures=None) -> str:
    out = []
    for key, part in value.items():
        if _holds_turns(key, part):
            for number, turn in enumerate(part):
                offending = key == column and (index is None or index == number)
                out.append(_turn(turn, offending, quoted, pictures))
        else:
            text = part if isinstance(part, str) else _json(part)
            outlined = " offending" if key == column else ""
            out.append(f"<div class='turn{outlined}'><div class='role'>{_e(key)}</div>"
                       f"<pre>{_mark(_shorten(text, quoted), quoted)}</pre></div>")
    return "".join(out)


def _turn(turn: dict, offending: bool, quoted: list[str], pictures=None) -> str:
    """One message, in any of the dialects' spellings (role/content, from/value, tool calls); its reasoning folded
    above its answer, its tool calls as blocks below it, a tool result labelled with the call it answers; with
    `pictures`, its image parts drawn as images between its texts."""
    role = str(turn.get("role", turn.get("from", "?")))
    trace, content = _reasoning(turn, turn.get("content", turn.get("value", "")))
    pieces = content if isinstance(content, list) else [content if isinstance(content, str) else _json(content)]
    segments: list[list[str]] = [[]]  # the texts before, between and after the images, each one <pre>
    images: list[str] = []
    for part in pieces:
        if pictures is not None and is_image_part(part):
            images.append(pictures.draw(part.get("image")))
            segments.append([])
        else:  # typed parts: their texts, one a line
            segments[-1].append(str(part.get("text", _json(part))) if isinstance(part, dict) else str(part))
    texts = ["\n".join(segment) for segment in segments]
    calls = turn.get("tool_calls") or []
    drawn_calls = "".join(_call(call, quoted) for call in (calls if isinstance(calls, list) else [calls]))
    css = role if role in ("user", "assistant", "system", "tool") else {"human": "user", "gpt": "assistant"}.get(
        role, "")
    # A call-only turn's empty content is not drawn; an empty turn otherwise is (it may be what a finding names).
    body = "".join((f"<pre>{_mark(_shorten(text, quoted), quoted)}</pre>" if text or not (images or drawn_calls)
                    else "") + (images[n] if n < len(images) else "") for n, text in enumerate(texts))
    # Folded, unless the finding quotes a value inside the trace: then it is open, the value marked.
    folded = "" if trace is None else (
        f"<details class='reasoning'{' open' if any(value in trace for value in quoted) else ''}>"
        f"<summary>reasoning · {len(trace):,} characters</summary>"
        f"<pre>{_mark(_shorten(trace, quoted), quoted)}</pre></details>")
    answered = " · ".join(_e(turn[key]) for key in ("name", "tool_call_id") if isinstance(turn.get(key), str))
    label = _e(role) + (f" <span class='ref'>{answered}</span>" if answered else "")
    return (f"<div class='turn {css}{' offending' if offending else ''}'><div class='role'>{label}</div>"
            f"{folded}{body}{drawn_calls}</div>")


def _reasoning(turn: dict, content: Any) -> tuple[str | None, Any]:
    """A turn's reasoning trace and its answer: `reasoning_content`, or a `<think>…</think>` opening the content
    (the answer is what follows it). An unclosed `<think>` stays in the text, as a template would read it.

    >>> _reasoning({}, "<think>2 + 2 is 4</think>\\nIt is 4.")
    ('2 + 2 is 4', 'It is 4.')
    >>> _reasoning({"reasoning_content": "add them"}, "It is 4."), _reasoning({}, "<think>cut off")
    (('add them', 'It is 4.'), (None, '<think>cut off'))
    """
    if isinstance(turn.get("reasoning_content"), str):
        return turn["reasoning_content"], content
    opened = content.lstrip() if isinstance(content, str) else ""
    if opened.startswith(THINK_OPEN) and THINK_CLOSE in opened:
        trace, _, answer = opened[len(THINK_OPEN):].partition(THINK_CLOSE)
        return trace.strip(), answer.lstrip()
    return None, content


def _call(call: Any, quoted: list[str]) -> str:
    """A tool call as a block: its function's name (and id) over its arguments as a pretty-printed JSON object; a
    JSON string is parsed for display, one that is not JSON is shown as it is, marked so."""
    function = call.get("function", call) if isinstance(call, dict) else None
    if not isinstance(function, dict):  # not a call object: shown as it is
        function = {"arguments": _json(call)}
    arguments = function.get("arguments", {})
    not_json = ""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            not_json = " <span class='not-json'>arguments not JSON</span>"
    text = arguments if not_json else json.dumps(arguments, indent=2, ensure_ascii=False, default=str)
    name = function.get("name", "?")
    ident = f" · {_e(call['id'])}" if isinstance(call, dict) and isinstance(call.get("id"), str) else ""
    return (f"<div class='call'><div class='call-name'>call {_e(name)}{ident}{not_json}</div>"
            f"<pre>{_mark(_shorten(text, quoted), quoted)}</pre></div>")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _shorten(text: str, quoted: list[str]) -> str:
    """At most TEXT_LIMIT characters, around the first quoted value when the text holds it."""
    if len(text) <= TEXT_LIMIT:
        return text
    at = next((text.find(q) for q in quoted if q in text), 0)
    start = max(0, min(at - TEXT_LIMIT // 2, len(text) - TEXT_LIMIT))
    cut = text[start:start + TEXT_LIMIT]
    return (f"… ({start:,} characters) " if start else "") + cut + \
        (f" … ({len(text) - start - TEXT_LIMIT:,} more characters)" if start + TEXT_LIMIT < len(text) else "")


def _mark(text: str, quoted: list[str]) -> str:
    escaped = _e(text)
    for value in quoted:
        escaped = escaped.replace(_e(value), f"<mark>{_e(value)}</mark>")
    return escaped


def _masks(previews: list[dict]) -> str:
    """--show-masks' rows, their trained tokens highlighted, from the terminal's colours."""
    from rich.console import Console
    from rich.text import Text

    blocks = []
    for preview in previews:
        console = Console(record=True, width=120, file=io.StringIO(), color_system="standard")
        console.print(Text.from_ansi(preview["text"]))
        body = console.export_html(inline_styles=True, code_format="{code}")
        blocks.append(f"<p class='row-title'>row {preview['row']}, trained tokens highlighted</p><pre>{body}</pre>")
    return f"<section class='masks'><h2>What the trainer learns</h2>{''.join(blocks)}</section>"


def plots(report) -> list[dict]:
    """The report's plots as Vega-Lite specs."""
    import altair as alt
    import pandas as pd

    charts = []
    width = 420

    def bars(frame, x, y, title, subtitle="", horizontal=False):
        encoding = ({"y": alt.Y(f"{x}:N", sort="-x", title=None, axis=alt.Axis(labelLimit=200)),
                     "x": alt.X(f"{y}:Q", title=y)} if horizontal
                    else {"x": alt.X(f"{x}:O", title=x, sort=None), "y": alt.Y(f"{y}:Q", title=y)})
        return alt.Chart(frame, title=alt.Title(title, subtitle=subtitle)).mark_bar().encode(
            **encoding, tooltip=list(frame.columns)).properties(width=width - 200 if horizontal else width)

    def histogram_chart(found, title, unit, lines=None):
        edges = found["edges"]
        frame = pd.DataFrame({"from": edges[:-1], "to": edges[1:], "rows": found["counts"]})
        over = f"; {found['overflow']:,} row(s) past {edges[-1]:,.0f} (max {found['max']:,.0f}) not drawn" \
            if found["overflow"] else ""
        chart = alt.Chart(frame).mark_bar().encode(
            x=alt.X("from:Q", bin="binned", title=unit), x2="to:Q", y=alt.Y("rows:Q", title="rows"),
            tooltip=["from", "to", "rows"])
        marks = {f"p{q}": found[f"p{q}"] for q in (50, 95, 99)} | (lines or {})
        rules = pd.DataFrame({"mark": list(marks), "at": list(marks.values())})
        rule = alt.Chart(rules).mark_rule(strokeDash=[4, 3]).encode(
            x="at:Q", color=alt.Color("mark:N", title=None), tooltip=["mark", "at"])
        return alt.layer(chart, rule, title=alt.Title(
            title, subtitle=f"{found['rows']:,} rows; p50 {found['p50']:,.0f}, p95 {found['p95']:,.0f}, "
                            f"p99 {found['p99']:,.0f}{over}")).properties(width=width)

    shapes = pd.DataFrame([{"shape": f"{s['dialect']} · {s['type'].replace('_', ' ')} · {s['format']}",
                            "rows": s["rows"]} for s in report.shapes])
    if len(shapes):
        charts.append(bars(shapes, "shape", "rows", "Rows by shape and dialect", horizontal=True))
    profile = report.profile or {}
    for part in ("prompt", "completion", "total"):
        found = (profile.get("characters") or {}).get(part)
        if found and found["rows"]:
            charts.append(histogram_chart(found, f"Characters: {part}", "characters"))
    if report.tokens and report.tokens.get("histogram"):
        found = report.tokens["histogram"]
        limit = report.tokens["max_length"]
        charts.append(histogram_chart(found, f"Tokens per row ({report.tokens['over_max_length']:,} over "
                                             f"max_length {limit:,})", "tokens", {"max_length": limit}))
    if profile.get("turns"):
        frame = pd.DataFrame({"turns": list(profile["turns"]), "rows": list(profile["turns"].values())})
        charts.append(bars(frame, "turns", "rows", "Turns per conversation"))
    if profile.get("roles"):
        frame = pd.DataFrame({"role": list(profile["roles"]), "messages": list(profile["roles"].values())})
        charts.append(bars(frame, "role", "messages", "Messages by role", horizontal=True))
    if profile.get("labels"):
        frame = pd.DataFrame({"label": list(profile["labels"]), "rows": list(profile["labels"].values())})
        charts.append(bars(frame, "label", "rows", "KTO labels (desirable / undesirable)"))
    if profile.get("pair_difference"):
        charts.append(histogram_chart(profile["pair_difference"], "Chosen minus rejected, in characters",
                                      "characters", {"equal": 0}))
    charts += _image_charts(profile.get("images"), bars, width)
    sizes = (report.near_duplicates or {}).get("cluster_sizes")
    if sizes:
        frame = pd.DataFrame({"cluster size": list(sizes), "clusters": list(sizes.values())})
        charts.append(bars(frame, "cluster size", "clusters", "Near-duplicate clusters by size",
                           f"{report.near_duplicates['clusters']:,} clusters at similarity "
                           f"{report.near_duplicates['threshold']}"))
    scatter = profile.get("scatter")
    if scatter and scatter["shown"]:
        frame = pd.DataFrame({"prompt": scatter["prompt"], "completion": scatter["completion"]})
        charts.append(alt.Chart(frame, title=alt.Title(
            "Prompt against completion, in characters",
            subtitle=f"{scatter['shown']:,} of {scatter['of']:,} rows, a random sample (the histograms count all)"))
            .mark_circle(size=14, opacity=0.5).encode(x="prompt:Q", y="completion:Q", tooltip=["prompt", "completion"])
            .properties(width=width))
    return [chart.to_dict() for chart in charts]


def _image_charts(images: dict | None, bars, width: int) -> list:
    """Of image data: images per row (every row), and each image's width against its height (a sample of rows)."""
    import altair as alt
    import pandas as pd

    if not images:
        return []
    per_row = pd.DataFrame({"images": list(images["per_row"]), "rows": list(images["per_row"].values())})
    charts = [bars(per_row, "images", "rows", "Images per row")]
    if images["width"]:
        # One point per size, as large as its images are many: photos share a few sizes, and the page stays small.
        sizes = pd.DataFrame({"width": images["width"], "height": images["height"]}).value_counts().reset_index(
            name="images")
        sizes["megapixels"] = (sizes["width"] * sizes["height"] / 1e6).round(2)
        unreadable = f"; {images['unreadable']:,} unreadable, not drawn" if images["unreadable"] else ""
        charts.append(alt.Chart(sizes, title=alt.Title(
            "Image sizes, width against height in pixels",
            subtitle=f"{len(images['width']):,} images of {images['sampled_rows']:,} of {images['image_rows']:,} "
                     f"image rows, a random sample{unreadable}"))
            .mark_circle(opacity=0.6).encode(x="width:Q", y="height:Q", size=alt.Size("images:Q", title="images"),
                                             tooltip=["width", "height", "megapixels", "images"])
            .properties(width=width))
    return charts
