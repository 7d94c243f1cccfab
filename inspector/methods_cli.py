"""`trlprep methods`: every TRL trainer trlprep runs, the dataset types it takes, and what it needs beside data
(`inspector.methods.method_table`, the same table as JSON for tools that wrap trlprep)."""

from __future__ import annotations

import json

import click

from trlprep.inspector.methods import NEED_NAMES, NEED_OPTIONS, TYPE_NAMES, method_table


def table_text(rows: list[dict]) -> str:
    """The table as a terminal shows it: one method a line, experimental ones marked."""
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, padding=(0, 1), header_style="bold")
    for name in ("method", "trainer", "takes", "converts from", "needs"):
        table.add_column(name, overflow="fold")
    for row in rows:
        takes = ", ".join(TYPE_NAMES[t] for t in row["takes"]) + (" (conversational)" if row["conversational_only"]
                                                                    else "")
        needs = [f"{NEED_NAMES[need]} ({NEED_OPTIONS[need]})" for need in row["needs"]] + [
            f"a `{column}` column" for column in row["columns"]]
        marks = [mark for mark, on in (("experimental", row["status"] == "experimental"),
                                       ("not in the installed TRL", row["installed"] is False)) if on]
        table.add_row(row["method"], row["trainer"] + (f" ({', '.join(marks)})" if marks else ""), takes,
                      ", ".join(TYPE_NAMES[t] for t in row["converts_from"]) or "—", "; ".join(needs) or "—")
    buffer = StringIO()
    Console(file=buffer, width=140, color_system=None, highlight=False).print(table)
    return buffer.getvalue()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one object per method (method, trainer, module, status, takes, converts_from, needs, "
                   "columns, vision, config, trl_cli, installed).")
def main(output_format):
    """List every TRL trainer trlprep checks data for and runs: the dataset types it takes as they are, those
    `convert --to METHOD` rewrites for it, and what it needs beside data.

    \b
    Example:
      uv run trlprep methods --format json
    """
    rows = method_table()
    click.echo(json.dumps(rows, indent=2) if output_format == "json" else table_text(rows), nl=False)
