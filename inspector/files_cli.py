"""`trlprep inspect-files FILE...`: each file checked as a dataset of its own, as a pre-commit hook passes the
staged files (`.pre-commit-hooks.yaml`); `inspect` checks one dataset, which may span many files."""

from __future__ import annotations

import sys

import click

from trlprep.errors import TrlprepError
from trlprep.inspector.cli import (COMMAND_SETTINGS, METHOD_CHOICE, command_settings, print_gates, print_refusal,
                                   print_settings, rendered, settings_options, user_errors)


@click.command(**COMMAND_SETTINGS)
@click.argument("files", nargs=-1, metavar="FILE...")
@click.option("--method", "-m", type=METHOD_CHOICE,
              help="Only give the verdict for this method; a file fails when the method cannot use it.")
@click.option("--format", "output_format", type=click.Choice(["text", "github"]), default="text",
              show_default=True, help="text for people, github for GitHub Actions annotations on the files' lines.")
@click.option("--select", multiple=True, metavar="RULE",
              help="Run only these rules: an id (TP301), an id prefix (TP3) or a name; repeatable or comma-separated.")
@click.option("--ignore", multiple=True, metavar="RULE", help="Skip these rules (same forms as --select).")
@click.option("--encoding", metavar="NAME", help="The text encoding of the JSON and CSV files (default: UTF-8).")
@click.option("--debug", is_flag=True, help="Show the full traceback when something fails.")
@settings_options
@user_errors
def main(files, method, output_format, select, ignore, encoding, show_settings, settings_file, isolated):
    """Inspect each FILE as a dataset of its own, every one even after one fails: the report of each, then the
    worst exit code. Exit codes: 0 every file usable with no error-severity findings; 1 a file has error findings,
    is unusable or fails a config file's gate (for --method); 2 a file cannot be read or its config file is bad.

    Each file is inspected with the settings `inspect` would use on it: those of the trlprep.toml or
    pyproject.toml [tool.trlprep] nearest its folder (docs/configuration.md), the command line over them.

    \b
    Example:
      uv run trlprep inspect-files examples/sharegpt_chat.jsonl examples/broken_chat.jsonl
    """
    from trlprep.inspector.api import inspect_dataset

    worst = 0
    for file in files:
        try:
            settings = command_settings("inspect", file, settings_file, isolated, select=select, ignore=ignore)
            if show_settings:
                print_settings(settings, "text")
                continue
            report = inspect_dataset(file, method=method, select=settings["select"], ignore=settings["ignore"],
                                     max_rows=settings["max-rows"], encoding=encoding, severity=settings.severity,
                                     gates=settings.gates)
        except TrlprepError as error:  # an unreadable file fails, and the others are still checked
            print_refusal(error, output_format)
            click.echo(f"error: {error}", err=True)
            worst = max(worst, error.exit_code)
            continue
        print_gates(report)
        click.echo(rendered(report, output_format, encoding), nl=False)
        worst = max(worst, report.exit_code)
    sys.exit(worst)
