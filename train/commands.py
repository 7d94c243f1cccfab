"""`trlprep inspect|convert|train`: the three commands under one name, each loaded only when it runs (so
`trlprep inspect` costs what `inspect` does). Outside `uv run`, prefer it to the bare names: `convert` is
ImageMagick's on many machines."""

from __future__ import annotations

import importlib

import click

COMMANDS = {
    "inspect": ("trlprep.inspector.cli", "Check a dataset for each TRL trainer."),
    "convert": ("trlprep.converters.cli", "Rewrite a dataset into the shape a trainer wants."),
    "train": ("trlprep.train.cli", "Check, convert, then run TRL's trainer."),
    "methods": ("trlprep.inspector.methods_cli", "List the TRL trainers and the dataset types each takes."),
    "inspect-files": ("trlprep.inspector.files_cli", "Check each file as a dataset of its own (pre-commit's hook)."),
}


class Commands(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        return importlib.import_module(COMMANDS[name][0]).main

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary) for name, (_, summary) in COMMANDS.items()])


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Get datasets right for fine-tuning with TRL: inspect, convert, train."""
