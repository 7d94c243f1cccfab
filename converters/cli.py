"""`convert`: the command-line face of `converters.convert`, option for option."""

from __future__ import annotations


import click

from trlprep.converters.options import ConvertOptions
from trlprep.inspector.cli import (COMMAND_SETTINGS, COUNT, METHOD_CHOICE, checked_option, command_settings,
                                   executor_from, executor_options, image_options, mapping_options,
                                   near_threshold_option, print_settings, settings_options, source_options,
                                   user_errors)


@click.command(**COMMAND_SETTINGS)
@source_options
@click.option("--to", "to", type=METHOD_CHOICE, required=True, help="The TRL method the data is for.")
@click.option("--output", "-o", metavar="PATH",
              help="Where to write: .jsonl, .parquet, or a folder name (save_to_disk). Rejected rows go to "
                   "<stem>.rejects.jsonl beside it. With --executor: a folder, one Parquet file per shard, the rejects "
                   "in <folder>.rejects/.")
@click.option("--style", type=click.Choice(["prompt_completion", "messages"]), default="prompt_completion",
              show_default=True, help="SFT output: prompt/completion (loss on the completion) or one `messages` list.")
@click.option("--conversational", is_flag=True,
              help="Write standard prompt/completion/preference rows as messages (prompt as user, answers as "
                   "assistant), so the model's chat template applies.")
@image_options
@mapping_options
@click.option("--system", metavar="TEXT", help="Add, or replace, the system message of every conversation.")
@click.option("--drop-system", is_flag=True, help="Remove every system message.")
@click.option("--dedup", type=click.Choice(["exact", "near"]), is_flag=False, flag_value="exact",
              help="Reject repeated rows: `--dedup` (or `--dedup exact`) those repeating an earlier row exactly "
                   "(TP401); `--dedup near` also those whose text nearly repeats a kept row's (TP406), keeping "
                   "the first row of each cluster.")
@near_threshold_option
@click.option("--fix-text", is_flag=True,
              help="Repair mojibake and remove control characters with ftfy (TP210, TP212); the summary counts the "
                   "rows changed. Entities and U+FFFD are left as they are.")
@click.option("--reasoning", type=click.Choice(["field", "inline", "drop"]),
              help="Write reasoning traces in `reasoning_content` (field), inline at the start of the content as "
                   "<think>…</think> (inline), or drop them; the summary counts the rows changed. Default: as they "
                   "came, or with --model what its chat template reads.")
@click.option("--model", metavar="M",
              help="A model (local folder or Hub id) whose chat template the output is for: reasoning traces are "
                   "written in the form it reads unless --reasoning says otherwise.")
@click.option("--drop-cut-off", is_flag=True,
              help="Reject rows whose answers stop mid-sentence where a length cap stops them (rule TP214).")
@click.option("--against", multiple=True, metavar="EVAL",
              help="An evaluation set (file, folder or Hub id) for --drop-contaminated. Repeatable.")
@click.option("--drop-contaminated", is_flag=True,
              help="Reject rows sharing 13-word n-grams with an --against set (rule TP405).")
@click.option("--shuffle", is_flag=True, help="Shuffle the output rows (with --seed).")
@click.option("--seed", type=checked_option(ConvertOptions, "seed"), default=42, show_default=True,
              help="Seed for --shuffle and --test-size.")
@click.option("--test-size", type=checked_option(ConvertOptions, "test_size", "F|N"),
              help="Also write a test split: a fraction between 0 and 1 (0.1) or a whole row count (500; 1.0 is "
                   "refused: one row or all?). Rows are shuffled first.")
@click.option("--limit", type=COUNT, help="Read only the first N rows.")
@click.option("--dry-run", is_flag=True, help="Print the plan, the ledger and the first converted rows; write nothing.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("--strict", is_flag=True, help="Fail (exit 1), writing nothing, if any row would be rejected.")
@click.option("--push-to-hub", metavar="REPO_ID", help="Also upload the output with a dataset card to this Hub repo.")
@click.option("--html", "html_path", metavar="REPORT.HTML",
              help="Also write a page of the output: its report with plots, the ledger, and the rejected rows drawn "
                   "(needs the html extra).")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, help="How to print the summary.")
@executor_options("Convert")
@settings_options
@user_errors
def main(dataset, split, config_name, revision, encoding, to, output, style, conversational, image_root, decode_images, rename,
         roles, system, drop_system,
         dedup, near_threshold, fix_text, reasoning, model, drop_cut_off, against, drop_contaminated,
         shuffle, seed, test_size, limit, dry_run, overwrite, strict, push_to_hub, html_path, output_format,
         executor, tasks, workers, work_dir, slurm_partition, slurm_time, show_settings, settings_file, isolated):
    """Rewrite a dataset into the shape TRL's trainer for --to wants. Every row is accounted for:
    rows in = rows kept + rows rejected, each rejection with its rule in the rejects file.

    Exit codes: 0 written; 1 the data cannot become --to data, --strict met a rejected row, or the output
    failed its own inspection (nothing is written then); 2 unreadable input, bad usage or a bad config file.

    --near-threshold also comes from [tool.trlprep] in pyproject.toml, or trlprep.toml, found from the data's
    folder upward (docs/configuration.md); the command line wins.

    \b
    Examples:
      uv run convert --dataset examples/sharegpt_chat.jsonl --to sft --output chat.sft.jsonl
      uv run convert --dataset examples/broken_chat.jsonl --to sft --output chat.sft.parquet --test-size 0.1
      uv run convert --dataset examples/sharegpt_chat.jsonl --to grpo --dry-run
    """
    from trlprep.converters.api import convert
    from trlprep.errors import DataRefused
    from trlprep.progress import show_progress

    settings = command_settings("convert", dataset, settings_file, isolated, near_threshold=near_threshold)
    if show_settings:
        print_settings(settings, output_format)
        return
    options = ConvertOptions(
        to=to, output=output, style=style, conversational=conversational, rename=rename, roles=roles, system=system,
        drop_system=drop_system, dedup=dedup, near_threshold=settings["near-threshold"], fix_text=fix_text,
        reasoning=reasoning, model=model,
        drop_cut_off=drop_cut_off, against=against, drop_contaminated=drop_contaminated, shuffle=shuffle, seed=seed,
        test_size=test_size, limit=limit, dry_run=dry_run, overwrite=overwrite, strict=strict,
        push_to_hub=push_to_hub, split=split, dataset_config=config_name, revision=revision, encoding=encoding,
        html=html_path,
        image_root=image_root, decode_images=decode_images, progress=show_progress())
    sharded = executor_from(executor, tasks, workers, work_dir, slurm_partition, slurm_time)
    try:
        result = convert(dataset, options, executor=sharded)
        if result is None:
            click.echo(f"submitted to Slurm; the publish job writes {output} and {work_dir}/result.json")
            return
    except DataRefused as refused:
        if refused.result is not None and output_format != "json":  # rows were read: their ledger, then the refusal
            click.echo(refused.result.render(output_format), nl=False)
        raise
    click.echo(result.render(output_format), nl=output_format == "json")
