"""`train`: the command-line face of `train.api.train`, option for option."""

from __future__ import annotations

import contextlib
import json
import sys

import click

from trlprep.inspector.cli import (COMMAND_SETTINGS, COUNT, METHOD_CHOICE, UsageFailure, checked_option,
                                   command_settings, print_settings, settings_options, source_options, user_errors,
                                   was_given)
from trlprep.options import MAX_DROPPED
from trlprep.train.launch import ACCELERATE_PRESETS
from trlprep.train.options import RunOptions

# The options `train --recipe` itself takes; the recipe file gives everything else (its model and output_dir, and
# each stage's method, dataset and options as keys), so any other option given would silently do nothing.
RECIPE_RUN_OPTIONS = ("recipe", "dry_run", "resume", "launcher", "export_trl_config", "accelerate_config",
                      "output_format", "show_settings", "isolated", "debug")


@click.command(**COMMAND_SETTINGS)
@source_options(config_alias=False, required=False)
@click.option("--method", "-m", type=METHOD_CHOICE, help="The TRL trainer to run (required without --recipe).")
@click.option("--model", metavar="M", help="A local model folder or a Hub model id (required without --recipe).")
@click.option("--recipe", metavar="RECIPE.YAML",
              help="Train the stages of a recipe (model, output_dir, stages: each with method, dataset and this "
                   "command's options as keys) one after another; every stage's data is checked first. Its "
                   "relative paths are read from the recipe file's folder.")
@click.option("--output-dir", metavar="DIR", help="Where the model, checkpoints, converted data and "
                                                  "trlprep-run.json go (default: runs/<method>).")
@click.option("--max-steps", type=COUNT, help="Stop after N optimizer steps.")
@click.option("--epochs", type=checked_option(RunOptions, "epochs", "X"), help="Number of epochs (num_train_epochs).")
@click.option("--learning-rate", type=checked_option(RunOptions, "learning_rate", "LR"), help="Peak learning rate.")
@click.option("--batch-size", type=COUNT, help="Per-device train batch size.")
@click.option("--max-length", type=COUNT,
              help="Token budget per row (max_length; GRPO: max_completion_length).")
@click.option("--seed", type=checked_option(RunOptions, "seed"), default=42, show_default=True, help="Random seed.")
@click.option("--config", "config_file", metavar="RUN.YAML", help="Any field of the method's TRL config, as YAML.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="One field of the method's TRL config, e.g. --set warmup_ratio=0.1. Repeatable; wins over all.")
@click.option("--lora", is_flag=True, help="Train a LoRA adapter (peft) instead of every weight.")
@click.option("--lora-r", type=COUNT, default=16, show_default=True, help="LoRA rank.")
@click.option("--lora-alpha", type=COUNT, default=32, show_default=True, help="LoRA alpha.")
@click.option("--lora-targets", metavar="a,b", help="Comma-separated module names (default: all linear layers).")
@click.option("--eval-dataset", metavar="X", help="Evaluation data, checked and converted like --dataset.")
@click.option("--test-size", type=checked_option(RunOptions, "test_size", "F|N"),
              help="Hold out rows for evaluation: a fraction between 0 and 1 (0.1) or a whole row count (500).")
@click.option("--reward-func", "reward_funcs", multiple=True, metavar="F",
              help="A reward for the methods that score what they generate (grpo, rloo, online_dpo, sdpo): "
                   "answer_match, think_format, length_penalty, path/to/file.py:function or module:function. "
                   "Repeatable.")
@click.option("--teacher", metavar="M", help="The model distillation, gkd and gold learn from (a folder or Hub id).")
@click.option("--resume", is_flag=True, help="Resume from the last checkpoint in --output-dir (with --recipe: skip the "
                                            "stages finished, continue the next from its last checkpoint).")
@click.option("--max-dropped", type=checked_option(RunOptions, "max_dropped", "SHARE"), default=MAX_DROPPED,
              show_default=True,
              help="Refuse to train when the trainer would drop more than this share of rows at max_length "
                   "(5% or 0.05).")
@click.option("--dry-run", is_flag=True, help="Check, convert and resolve the config; do not train.")
@click.option("--html", "html_path", metavar="REPORT.HTML",
              help="Write the page of the converted data (report, plots, ledger, rejected rows) before training "
                   "(needs the html extra).")
@click.option("--export-trl-config", metavar="RUN.YAML",
              help="Write a config for `trl <method> --config RUN.YAML` (data beside it) instead of training here; "
                   "with --recipe, a folder: one config per training stage.")
@click.option("--accelerate-config", type=click.Choice(ACCELERATE_PRESETS),
              help="With --export-trl-config: the accelerate preset the printed command uses.")
@click.option("--launcher", type=click.Choice(["local", "hf-jobs"]), default="local", show_default=True,
              help="hf-jobs: submit to Hugging Face Jobs (the data must be a Hub dataset ready for the method).")
@click.option("--flavor", default="a10g-large", show_default=True, help="Hugging Face Jobs hardware flavor.")
@click.option("--timeout", default="4h", show_default=True, help="Hugging Face Jobs time limit.")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, help="How to print the summary.")
@settings_options
@user_errors
def main(dataset, split, config_name, revision, encoding, method, model, recipe, output_dir, max_steps, epochs, learning_rate,
         batch_size, max_length, seed, config_file, overrides, lora, lora_r, lora_alpha, lora_targets, eval_dataset,
         test_size, reward_funcs, teacher, resume, max_dropped, dry_run, html_path, export_trl_config, accelerate_config,
         launcher, flavor, timeout, output_format, show_settings, settings_file, isolated):
    """Check the data for the method, convert it when needed, then run TRL's trainer for it (`trlprep methods`
    lists them) on a GPU when there is one. Data no conversion can make usable is refused (exit 1) before any model
    is loaded.

    --max-length and --max-dropped also come from [tool.trlprep] in pyproject.toml, or trlprep.toml, found from
    the data's folder upward (docs/configuration.md); the command line wins. A --recipe's stages read none.

    \b
    Examples:
      uv run --extra train train --method sft --model Qwen/Qwen2.5-0.5B --dataset examples/sharegpt_chat.jsonl
      uv run --extra train train --method grpo --model M --dataset gsm8k.jsonl --reward-func answer_match
      uv run --extra train train --method dpo --model M --dataset pairs.json --export-trl-config run.yaml --accelerate-config zero3
      uv run --extra train train --recipe recipe.yaml --dry-run
    """
    from trlprep.progress import show_progress
    from trlprep.train.api import train

    as_json = output_format == "json"
    document = output_format != "text"
    settings = command_settings("train", dataset, settings_file, isolated, max_length=max_length,
                                max_dropped=max_dropped)
    if show_settings:
        print_settings(settings, output_format)
        return
    if recipe is not None:
        refuse_options_a_recipe_sets()
        from trlprep.train.recipe import run_recipe

        with contextlib.redirect_stdout(sys.stderr) if document else contextlib.nullcontext():
            outcome = run_recipe(recipe, dry_run=dry_run, resume=resume, launcher=launcher,
                                 export_trl_config=export_trl_config, accelerate_config=accelerate_config,
                                 progress=show_progress(),
                                 announce=lambda line: click.echo(line, err=document))
        click.echo(json.dumps(outcome.to_dict(), indent=2, default=str) if document else outcome.to_text(),
                   nl=not document or as_json)
        return
    missing = [name for name, value in (("--method", method), ("--model", model), ("--dataset", dataset))
               if not value]
    if missing:
        raise UsageFailure(f"Missing option {', '.join(missing)} (or give a --recipe)")
    # With --format json or markdown, stdout holds the one document: the announcements and whatever the trainer
    # prints (TRL's per-step log dicts) go to stderr.
    with contextlib.redirect_stdout(sys.stderr) if document else contextlib.nullcontext():
        result = train(RunOptions(
            method=method, model=model, dataset=dataset, output_dir=output_dir, max_steps=max_steps, epochs=epochs,
            learning_rate=learning_rate, batch_size=batch_size, max_length=settings["max-length"], seed=seed, config=config_file,
            overrides=overrides, lora=lora, lora_r=lora_r, lora_alpha=lora_alpha,
            lora_targets=tuple(lora_targets.split(",")) if lora_targets else None, eval_dataset=eval_dataset,
            test_size=test_size, reward_funcs=reward_funcs, teacher=teacher, resume=resume, max_dropped=settings["max-dropped"],
            dry_run=dry_run,
            export_trl_config=export_trl_config, accelerate_config=accelerate_config, launcher=launcher,
            flavor=flavor, timeout=timeout, split=split, dataset_config=config_name, revision=revision,
            encoding=encoding, progress=show_progress(), announce=lambda line: click.echo(line, err=document), html=html_path))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        click.echo(result.to_markdown() if output_format == "markdown" else result.to_text(), nl=False)


def refuse_options_a_recipe_sets():
    """With --recipe, refuse every option given on the command line (or by environment) that the recipe file sets."""
    given = [max(parameter.opts, key=len) for parameter in click.get_current_context().command.params
             if parameter.name not in RECIPE_RUN_OPTIONS and was_given(parameter.name)]
    if given:
        raise UsageFailure(f"--recipe reads the model, output_dir and each stage's method, dataset and options from "
                           f"the recipe file: drop {', '.join(given)} and set them there as keys (docs/recipes.md)")
