"""`train`'s options as one dataclass, shared by the command line, `train.train`, `train.prepare_run` and a
recipe's stages (`inspector.options` says how an option declares its flag)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from trlprep.options import MAX_DROPPED, count, fraction, number_from, option, test_split_size, whole_from


@dataclass(frozen=True)
class RunOptions:
    """One training run: `method`'s TRL trainer on `model` and `dataset` (a file, folder, Hub id, or a mixture's
    sources), written to `output_dir` (`runs/<method>` by default). The TRL config comes from the method's defaults,
    then `config` (a YAML of the config's fields), then the named options (`max_steps`, `epochs`,
    `learning_rate`, `batch_size`, `max_length`, `seed`), then `overrides` (`field=value`). `lora` trains a LoRA
    adapter; `eval_dataset` or `test_size` gives an evaluation split; `reward_funcs` score what GRPO, RLOO, online
    DPO and SDPO generate; `teacher` is the model distillation, GKD and GOLD learn from; `max_dropped` is the share
    of rows the trainer may drop at max_length before the run is refused. `dry_run` checks and converts
    but does not train; `export_trl_config` writes a config for `trl <method> --config` instead (with the
    `accelerate_config` preset); `launcher="hf-jobs"` submits to Hugging Face Jobs (`flavor`, `timeout`).
    `announce` receives a line at each step before the trainer runs; `html` writes the converted data's page;
    `encoding` is the text encoding of the dataset's JSON and CSV files (None: UTF-8)."""

    method: str | None = option(None, flag="--method")
    model: str | None = option(None, flag="--model")
    dataset: Any = option(None, flag="--dataset")
    output_dir: str | Path | None = option(None, flag="--output-dir")
    max_steps: int | None = option(None, flag="--max-steps", value=count)
    epochs: float | None = option(None, flag="--epochs", value=number_from(0, above=True))
    learning_rate: float | None = option(None, flag="--learning-rate", value=number_from(0, above=True))
    batch_size: int | None = option(None, flag="--batch-size", value=count)
    max_length: int | None = option(None, flag="--max-length", value=count)
    seed: int = option(42, flag="--seed", value=whole_from(0))
    config: str | None = option(None, flag="--config")
    overrides: tuple[str, ...] = option((), flag="--set")
    lora: bool = option(False, flag="--lora")
    lora_r: int = option(16, flag="--lora-r", value=count)
    lora_alpha: int = option(32, flag="--lora-alpha", value=count)
    lora_targets: tuple[str, ...] | None = option(None, flag="--lora-targets")
    eval_dataset: Any = option(None, flag="--eval-dataset")
    test_size: float | None = option(None, flag="--test-size", value=test_split_size)
    reward_funcs: tuple[str, ...] = option((), flag="--reward-funcs")
    teacher: str | None = option(None, flag="--teacher")
    resume: bool = option(False, flag="--resume")
    max_dropped: float = option(MAX_DROPPED, flag="--max-dropped", value=fraction)
    split: str | None = option(None, flag="--split")
    dataset_config: str | None = option(None, flag="--dataset-config")
    revision: str | None = option(None, flag="--revision")
    encoding: str | None = option(None, flag="--encoding")
    progress: bool = option(False, flag=None)
    announce: Callable[[str], None] | None = option(None, flag=None)
    html: str | Path | None = option(None, flag="--html")
    dry_run: bool = option(False, flag="--dry-run")
    export_trl_config: str | Path | None = option(None, flag="--export-trl-config")
    accelerate_config: str | None = option(None, flag="--accelerate-config")
    launcher: str = option("local", flag="--launcher")
    flavor: str = option("a10g-large", flag="--flavor")
    timeout: str = option("4h", flag="--timeout")

    def said(self, line: str) -> None:
        """A line for the person running this, before GPU time is spent (nowhere without `announce`)."""
        if self.announce is not None:
            self.announce(line)
