"""MkDocs hooks: one page per rule of the catalog, and the rules page's table, written at build time from the
entries in inspector/rules/ (the fields `inspect --explain` prints), so the site cannot drift from the catalog."""

from __future__ import annotations

import json
import re

from trlprep.inspector.rules import RULES, markdown_table

# Where the rules page (docs/rules/index.md) takes the catalog's table.
TABLE_MARKER = "<!-- the catalog's table -->"


def sentence(text: str) -> str:
    """A catalog field (written to follow "Fix: " and the like) as a sentence of its own."""
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def rule_page(rule) -> str:
    """A rule's page: the fields of its catalog entry, as `inspect --explain ID` prints them, in Markdown."""
    lines = [f"# {rule.id} {rule.name}", "",
             f"**Severity** {rule.severity} · **stage** {rule.stage}"
             + (" · **blocking**: the row is not read as its TRL type" if rule.blocking else "")
             + (" · said by the JSON Schemas too" if rule.structural else ""), "",
             sentence(rule.summary)]
    if rule.types:
        lines += ["", "Applies to: " + ", ".join(f"`{name}`" for name in sorted(rule.types)) + " data."]
    if rule.methods:
        lines += ["", "Rejects the row when converting for: " + ", ".join(f"`{name}`" for name in sorted(rule.methods))
                  + "."]
    if rule.why:
        lines += ["", "## Why it matters", "", sentence(rule.why)]
    if rule.example is not None:
        flagged = ", ".join(str(line) for line in rule.example.flagged)
        lines += ["", "## Example", "", f"As lines of a JSON-lines file; the rule flags line {flagged}:", "",
                  "```json"]
        lines += [row if isinstance(row, str) else json.dumps(row, ensure_ascii=False) for row in rule.example.rows]
        lines += ["```"]
    lines += ["", "## Fix", "", sentence(rule.fix), "",
              f"`uv run inspect --explain {rule.id}` prints this manual in a terminal; `--select {rule.id}` and "
              f"`--ignore {rule.id}` (or `{rule.name}`) run only or skip the rule. [All rules](index.md)", ""]
    return "\n".join(lines)


def linked_table() -> str:
    """The catalog's table (`python -m trlprep.inspector.rules`), each id linked to its page."""
    return re.sub(r"^\| (T[PC]\d{3}) \|", r"| [\1](\1.md) |", markdown_table(), flags=re.M)


def on_files(files, config):
    from mkdocs.structure.files import File  # here, so that the tests read the pages without the docs group

    for rule in RULES.values():
        files.append(File.generated(config, f"rules/{rule.id}.md", content=rule_page(rule)))
    return files


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == "rules/index.md":
        assert TABLE_MARKER in markdown, f"docs/rules/index.md lost the line {TABLE_MARKER}"
        return markdown.replace(TABLE_MARKER, linked_table())
    return markdown
