"""`inspect`: the command-line face of `inspector.inspect_dataset`, option for option.

Only click is imported at start-up, so `inspect --help` answers at once.
"""

from __future__ import annotations

import functools
import json
import sys
import traceback
from pathlib import Path

import click

from trlprep.errors import INTERNAL_ERROR_EXIT, TrlprepError, UsageError, refusal
from trlprep.files import write_atomically
from trlprep.inspector.cost import PACKING_STRATEGIES
from trlprep.inspector.methods import METHODS
from trlprep.inspector.options import InspectOptions
from trlprep.interrupts import terminating_cleanly
from trlprep.options import NEAR_THRESHOLD, NEAR_THRESHOLDS, BadValue, Executor, count, value_reader

METHOD_CHOICE = click.Choice(METHODS)


class Checked(click.ParamType):
    """An option's value read by the reader its options field declares (`trlprep.options.checked`), so the command
    line refuses what the Python API and a config file refuse, in the same words: NaN, the infinities and values
    out of range ("Invalid value for '--near-threshold': expected a number from 0.5 to 1.0, got nan")."""

    def __init__(self, read, metavar: str = "N"):
        self.read, self.metavar, self.name = read, metavar, read.wanted

    def get_metavar(self, param, ctx=None) -> str:
        return self.metavar

    def convert(self, value, param, ctx):
        if not isinstance(value, str):  # a default, already the option's value
            return value
        try:
            return self.read(value)
        except BadValue as error:
            self.fail(str(error), param, ctx)


def checked_option(options_type: type, name: str, metavar: str = "N") -> Checked:
    """The click type of the options dataclass's field `name`: its declared reader."""
    return Checked(value_reader(options_type, name), metavar)


COUNT = Checked(count)
REPORT_FORMATS = ["text", "json", "markdown", "html", "github", "sarif"]


class UsageFailure(click.ClickException):
    """A failure as one line on stderr, with its exit code (2 unless told: unreadable input or bad usage)."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None) -> None:
        from trlprep.inspector.summary import visible  # a column or file name in the line is the data's

        click.echo(f"error: {visible(self.format_message())}", err=True)


class Command(click.Command):
    """A command whose usage errors (an unknown option, a bad value, a missing one) are one line on stderr, as its
    other refusals are, not click's usage banner; asked for `--format json`, also a refusal document on stdout
    (`user_errors`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        asked = next((b if a == "--format" else a.removeprefix("--format=") for a, b in zip(args, args[1:] + [""])
                      if a == "--format" or a.startswith("--format=")), None)
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:
            line = " ".join(error.format_message().split())  # click lists a choice's values one a line
            print_refusal(UsageError(line), asked, error.exit_code)
            raise UsageFailure(line, error.exit_code) from None


COMMAND_SETTINGS = {"cls": Command, "context_settings": {"help_option_names": ["-h", "--help"]}}


def source_options(command=None, *, config_alias: bool = True, required: bool = True):
    """The options that say where a dataset is and how its files are read, shared by every command. The Hub
    configuration is `--dataset-config` everywhere; `inspect` and `convert` still take their older `--config`, with a
    warning (in `train`, `--config` is the run's YAML, and `--dataset` is not required of a `--recipe`)."""
    options = [
        click.option("--dataset", "-d", required=required, metavar="X",
                     help="A local file (.jsonl .json .parquet .csv .arrow, optionally .gz), a folder, a glob, "
                          "a save_to_disk folder, or a Hub dataset id."),
        click.option("--split", help="Split to read from a Hub dataset or a DatasetDict folder (default: train)."),
        click.option("--dataset-config", "config_name", metavar="NAME", help="Hub dataset configuration (subset)."),
        *([deprecated_alias("--config", "--dataset-config", "config_name", metavar="NAME")] if config_alias else []),
        click.option("--revision", help="Hub dataset revision: a branch, tag or commit."),
        click.option("--encoding", metavar="NAME",
                     help="The text encoding of the dataset's JSON and CSV files (default: UTF-8), e.g. cp1252 or "
                          "mac_roman; a file that is not UTF-8 is refused with the encoding it reads as."),
        click.option("--debug", is_flag=True, help="Show the full traceback when something fails."),
    ]
    return stacked(options)(command) if command is not None else stacked(options)


def deprecated_alias(old: str, new: str, destination: str, **settings):
    """A hidden option `old` that sets what `new` sets, saying on stderr that it is deprecated (kept one release)."""
    def redirect(context: click.Context, parameter: click.Parameter, value):
        if value is not None:
            click.echo(f"warning: {old} is deprecated; use {new}", err=True)
            context.params[destination] = value  # `new`, given no value, keeps this one (click's arbitration)

    return click.option(old, hidden=True, expose_value=False, callback=redirect, **settings)


def stacked(options: list):
    """A decorator applying click `options` in the order listed (the order `--help` shows)."""

    def decorate(function):
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


def terminal_width() -> int:
    """The width to draw tables in: the terminal's (or `COLUMNS`), 110 when piped."""
    import shutil

    return shutil.get_terminal_size(fallback=(110, 24)).columns


def user_errors(command):
    """Turn failures into one-line messages with their exit code (`inspector.errors`); `--debug` keeps the
    traceback. With `--format json`, stdout also gets the refusal as a JSON document (`errors.refusal`), inside
    the ledger or report of what was done before it when there is one, so a program always has one to parse; with
    `--format github`, an error annotation (`print_refusal`)."""

    @functools.wraps(command)
    def wrapper(*args, debug: bool = False, **kwargs):
        output_format = kwargs.get("output_format")
        try:
            return command(*args, **kwargs)
        except TrlprepError as error:
            if debug:
                traceback.print_exc()
            print_refusal(error, output_format)
            raise UsageFailure(str(error), error.exit_code) from None
        except UsageFailure as failure:
            print_refusal(UsageError(failure.format_message()), output_format, failure.exit_code)
            raise
        except (click.exceptions.Exit, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as error:  # a bug of ours: still one line, with the way to see more
            if debug:
                traceback.print_exc()
            print_refusal(error, output_format)
            raise UsageFailure(f"internal error: {type(error).__name__}: {error} (run with --debug for details)",
                               INTERNAL_ERROR_EXIT) from None

    return wrapper


def print_refusal(error: Exception, output_format: str | None, exit_code: int | None = None) -> None:
    """A refusal where the asked format's reader looks: a JSON document, a SARIF log whose invocation failed, or a
    GitHub Actions error annotation (the one line on stderr is printed in every format)."""
    if output_format == "sarif":
        from trlprep.inspector.annotations import sarif_refusal

        click.echo(sarif_refusal(error, exit_code or getattr(error, "exit_code", 2)), nl=False)
    if output_format == "github":
        from trlprep.inspector.annotations import workflow_command

        click.echo(workflow_command("error", {"title": "trlprep could not check the data"}, str(error)))
    if output_format != "json":
        return
    before = getattr(error, "result", None)
    document = before.to_dict() if hasattr(before, "to_dict") else {}
    click.echo(json.dumps({**document, "refusal": refusal(error, exit_code)}, indent=2, default=str))


def _explain(context: click.Context, _param, rule_id: str | None) -> None:
    """`--explain ID`: the rule's manual from the catalog, then exit (no dataset needed)."""
    if rule_id is None or context.resilient_parsing:
        return
    from trlprep.inspector.rules import RULES

    rule = RULES.get(rule_id.upper()) or next((r for r in RULES.values() if r.name == rule_id), None)
    if rule is None:
        raise UsageFailure(f"--explain {rule_id}: no such rule (ids: {', '.join(RULES)})")
    click.echo(rule.explain(), nl=False)
    context.exit(0)


near_threshold_option = click.option(
    "--near-threshold", type=Checked(NEAR_THRESHOLDS, "J"), default=NEAR_THRESHOLD, show_default=True,
    help="How similar two rows must be to count as near-duplicates: the estimated Jaccard similarity of their "
         "3-word shingle sets, which both the prompts and the answers must reach.")


def mapping_options(command):
    """`--map` and `--roles`, which `inspect` (to preview) and `convert` share."""
    command = click.option("--roles", multiple=True, metavar="OLD=NEW",
                           help="Rename a message role, e.g. bot=assistant. Repeatable.")(command)
    return click.option("--map", "rename", multiple=True, metavar="OLD=NEW",
                        help="Rename a column before detection, e.g. 'Best Answer=answer'. Repeatable.")(command)


def image_options(command):
    """`--image-root` and `--decode-images`, which `inspect` and `convert` share."""
    command = click.option("--decode-images", is_flag=True,
                           help="Decode every image in full (finds a truncated or garbled file); by default each "
                                "image's header is read and its bytes checked for truncation.")(command)
    return click.option("--image-root", type=click.Path(file_okay=False), metavar="DIR",
                        help="The folder relative image paths are read against (default: the dataset file's "
                             "own).")(command)


PAGE_MASKS = 3


def executor_options(verb: str):
    """`--executor` and the options that size and place its tasks, which `inspect` and `convert` share."""
    options = [
        click.option("--executor", type=click.Choice(["local", "slurm"]),
                     help=f"{verb} the shards --dataset names (a folder, a glob, or an hf://, s3://, gs:// URL with "
                          f"one) as datatrove tasks (needs the distributed extra)."),
        click.option("--tasks", type=COUNT,
                     help="With --executor: tasks (default: one per shard)."),
        click.option("--workers", type=COUNT, default=2, show_default=True,
                     help="With --executor: tasks run at once (local processes, or Slurm array tasks)."),
        click.option("--work-dir", metavar="DIR",
                     help="With --executor: where tasks write their results and logs (a rerun skips finished "
                          "tasks; Slurm: a folder every node shares)."),
        click.option("--slurm-partition", metavar="P", help="With --executor slurm: the partition."),
        click.option("--slurm-time", metavar="HH:MM:SS", default="10:00:00", show_default=True,
                     help="With --executor slurm: each task's time limit."),
    ]
    return stacked(options)


def executor_from(kind: str | None, tasks: int | None, workers: int, work_dir: str | None, slurm_partition: str | None,
                  slurm_time: str) -> Executor | None:
    """The `--executor` options as the API's `Executor`, or None without `--executor`; a `--work-dir` without it
    is refused (it would be ignored, and its user expect the run's files there)."""
    if kind is None:
        if work_dir is not None:
            raise UsageError("--work-dir needs --executor: only a sharded run writes a work folder")
        return None
    return Executor(kind, tasks, workers, work_dir, slurm_partition, slurm_time)


def settings_options(command):
    """`--show-settings`, `--settings FILE` and `--isolated`, which every command takes (`inspector.settings`)."""
    return stacked([
        click.option("--show-settings", is_flag=True,
                     help="Print the settings in force and where each came from (default, a config file, the "
                          "command line), then exit without reading the data. With --format json, as JSON."),
        click.option("--settings", "settings_file", metavar="FILE",
                     help="Use this config file (a trlprep.toml, or a pyproject.toml with [tool.trlprep]) instead "
                          "of the one found from the data's folder upward."),
        click.option("--isolated", is_flag=True, help="Read no config file: the defaults and the command line only."),
    ])(command)


def was_given(option: str) -> bool:
    """Whether the running command's `option` (its parameter name) was set on the command line or by the
    environment, rather than left at its default: a value equal to the default, typed, still counts."""
    from click.core import ParameterSource

    source = click.get_current_context().get_parameter_source(option)
    return source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def command_settings(command: str, dataset, settings_file: str | None, isolated: bool, **values):
    """The settings `command` runs with (`inspector.settings.resolve_settings`): of the option `values`, those
    the command line set win over the config file's; those left at their default give way to it."""
    from trlprep.inspector.settings import resolve_settings

    given = {name: value for name, value in values.items() if was_given(name)}
    return resolve_settings(command, dataset, given, config=settings_file, isolated=isolated)


def print_settings(settings, output_format: str) -> None:
    """`--show-settings`: the settings and their origins, as text or JSON."""
    if output_format == "json":
        click.echo(json.dumps(settings.to_dict(), indent=2, default=str))
    else:
        click.echo(settings.to_text(), nl=False)


def print_gates(report) -> None:
    """On stderr, each gate of the config that failed or could not be measured, in one line naming its limit,
    the value measured and the file it came from."""
    for gate in report.gates:
        if gate["passed"] is not True:
            click.echo(f"{'error' if gate['passed'] is False else 'warning'}: {gate['line']}", err=True)


def print_report(report, output_format: str, encoding: str | None = None) -> None:
    """The report on stdout in the asked form, then the exit code it gives."""
    print_gates(report)
    click.echo(rendered(report, output_format, encoding), nl=False)
    sys.exit(report.exit_code)


def rendered(report, output_format: str, encoding: str | None = None) -> str:
    """The report in the asked form. The CI forms point at the rows' lines (a CSV file's read again in its
    `encoding`)."""
    if output_format in ("github", "sarif"):
        from trlprep.inspector.annotations import github_annotations, physical_lines, sarif_log

        render = github_annotations if output_format == "github" else sarif_log
        return render(report, physical_lines(report, encoding))
    if output_format == "json":
        return report.to_json() + "\n"
    if output_format == "markdown":
        return report.to_markdown()
    return report.to_text(color=sys.stdout.isatty(), width=terminal_width())


@click.command(**COMMAND_SETTINGS)
@click.option("--explain", metavar="RULE", expose_value=False, is_eager=True, callback=_explain,
              help="Print what a rule (an id such as TP302, or its name) catches, why it matters for training, an "
                   "example and the fix, then exit.")
@source_options
@click.option("--method", "-m", type=METHOD_CHOICE,
              help="Only give the verdict for this method; the exit code then says whether it can use the data.")
@click.option("--format", "output_format", type=click.Choice(REPORT_FORMATS), default="text",
              show_default=True, help="text for people, json for machines, markdown for pasting into an issue, "
                                      "html for the page --html writes, github for GitHub Actions annotations "
                                      "on the data's lines, sarif for code scanning (SARIF 2.1.0).")
@click.option("--html", "html_path", metavar="REPORT.HTML",
              help="Also write the report as one self-contained HTML page with plots and the findings' rows drawn "
                   "as chats (needs the html extra). Reads the rows again to measure them.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --html page.")
@click.option("--limit", type=COUNT,
              help="Check only the first N rows (the report says so). Default: every row.")
@deprecated_alias("--sample", "--limit", "limit", type=COUNT)
@click.option("--select", multiple=True, metavar="RULE",
              help="Run only these rules: an id (TP301), an id prefix (TP3) or a name; repeatable or comma-separated.")
@click.option("--ignore", multiple=True, metavar="RULE", help="Skip these rules (same forms as --select).")
@click.option("--max-rows", type=COUNT, default=5, show_default=True,
              help="Example rows kept per rule (counts are always exact).")
@click.option("--model", metavar="M",
              help="Also check the data against this model's tokenizer and chat template (a local folder, or a "
                   "Hub id): token lengths, what each trainer truncates or drops, template problems.")
@click.option("--max-length", type=COUNT,
              help="With --model: the token budget to check against (default: TRL's 1024).")
@click.option("--show-masks", type=checked_option(InspectOptions, "show_masks"), default=0,
              help="With --model: print N rows token by token, trained tokens marked (colour on a terminal, "
                   "[[brackets]] when piped).")
@click.option("--packing", type=click.Choice(PACKING_STRATEGIES),
              help="With --model: count the SFT run's sequences as TRL packs them with this strategy "
                   "(packing_strategy; bfd truncates rows, bfd_split splits them, wrapped cuts across them).")
@click.option("--batch-size", type=COUNT, default=InspectOptions.batch_size, show_default=True,
              metavar="N",
              help="With --model: per_device_train_batch_size, for the optimizer steps the cost reports.")
@click.option("--grad-accum", type=COUNT, default=InspectOptions.grad_accum, show_default=True,
              metavar="N",
              help="With --model: gradient_accumulation_steps, for the optimizer steps the cost reports.")
@click.option("--devices", type=COUNT, default=InspectOptions.devices, show_default=True,
              metavar="N",
              help="With --model: data-parallel devices (GPUs), for the optimizer steps the cost reports.")
@click.option("--against", multiple=True, metavar="EVAL",
              help="An evaluation set (file, folder or Hub id): report rows sharing 13-word n-grams with it "
                   "(TP405). Repeatable.")
@click.option("--near-duplicates", is_flag=True,
              help="Also cluster rows whose prompts and answers nearly repeat each other's (TP406; MinHash). "
                   "Off by default: it reads the rows again, at about a twentieth of the scan's speed.")
@near_threshold_option
@click.option("--cut-off", is_flag=True,
              help="Also look for answers cut off by a length cap: stopping mid-sentence where the longest answers "
                   "stop, or at one exact length (TP214). Off by default: it reads the rows again.")
@executor_options("Scan")
@image_options
@mapping_options
@settings_options
@user_errors
@terminating_cleanly()  # SIGTERM stops it as Ctrl-C does: workers killed, "interrupted", exit 130
def main(dataset, split, config_name, revision, encoding, method, output_format, html_path, overwrite, limit, select,
         ignore, max_rows,
         model, max_length, show_masks, packing, batch_size, grad_accum, devices, against, near_duplicates, near_threshold, cut_off, executor, tasks, workers,
         work_dir, slurm_partition, slurm_time, image_root, decode_images, rename, roles, show_settings, settings_file,
         isolated):
    """Detect a dataset's type and dialect from its values, validate every row, and say for each TRL
    trainer (`trlprep methods` lists them) whether the data is ready, convertible or unusable.

    Exit codes: 0 usable and no error-severity findings; 1 error findings, unusable (for --method) or a
    config file's gate failed (for --method); 2 unreadable input, bad usage or a bad config file.

    Settings also come from [tool.trlprep] in pyproject.toml, or trlprep.toml, found from the data's folder
    upward (docs/configuration.md); the command line wins.

    \b
    Examples:
      uv run inspect --dataset examples/sharegpt_chat.jsonl
      uv run inspect --dataset examples/broken_chat.jsonl --method sft --format json
      uv run inspect --dataset trl-lib/Capybara --split train --limit 1000
    """
    from trlprep.inspector.api import inspect_dataset
    from trlprep.progress import show_progress

    if (max_length or show_masks or packing or (batch_size, grad_accum, devices) != (
            InspectOptions.batch_size, InspectOptions.grad_accum, InspectOptions.devices)) and not model:
        raise UsageFailure("--max-length, --show-masks, --packing, --batch-size, --grad-accum and --devices need "
                           "--model")
    settings = command_settings("inspect", dataset, settings_file, isolated, select=select, ignore=ignore,
                                max_rows=max_rows, near_threshold=near_threshold, max_length=max_length)
    if show_settings:
        print_settings(settings, output_format)
        return
    page = html_path is not None or output_format == "html"
    # The page draws a few rows' masks with --model; the other formats only those --show-masks asks for.
    options = InspectOptions(
        method=method, split=split, dataset_config=config_name, revision=revision, encoding=encoding, limit=limit,
        select=settings["select"], ignore=settings["ignore"], max_rows=settings["max-rows"], rename=rename,
        roles=roles, model=model, max_length=settings["max-length"] if model else None,
        show_masks=show_masks or (PAGE_MASKS if page and model else 0), packing=packing, batch_size=batch_size,
        grad_accum=grad_accum, devices=devices,
        mask_color=page or (sys.stdout.isatty() and output_format == "text"), against=against,
        near_duplicates=near_duplicates, near_threshold=settings["near-threshold"], cut_off=cut_off, profile=page,
        image_root=image_root, decode_images=decode_images, progress=show_progress(), severity=settings.severity,
        gates=settings.gates, overwrite=overwrite)
    sharded = executor_from(executor, tasks, workers, work_dir, slurm_partition, slurm_time)
    if sharded is not None:
        report = inspect_dataset(dataset, options, executor=sharded)
        if report is None:
            click.echo(f"submitted to Slurm; the merge job writes {work_dir}/report.json")
            return
        print_report(report, output_format, encoding)
    if page:
        from trlprep.inspector.html import check_page_path, require_html_extra

        require_html_extra()
        if html_path is not None:
            check_page_path(html_path, dataset, options.overwrite)
    report = inspect_dataset(dataset, options)
    if page:
        document = report.to_html()
        if html_path is not None:
            write_atomically(Path(html_path), document, replace=options.overwrite)
            click.echo(f"wrote {html_path} ({len(document.encode()) / 1e6:.1f} MB)", err=True)
        if not show_masks:
            report.mask_previews = []
    if output_format == "html":
        click.echo(document, nl=False)
        print_gates(report)
        sys.exit(report.exit_code)
    print_report(report, output_format, encoding)
