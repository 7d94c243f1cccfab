"""`train --recipe`: stages that train one after another (SFT, then DPO, ...), every stage's data checked first.

A recipe names a model, an output folder and its stages; a stage takes the `train` command's options as keys:

    model: Qwen/Qwen2.5-0.5B
    output_dir: runs/assistant
    stages:
      - method: sft
        dataset: chats.jsonl
        max_steps: 2000
      - method: dpo
        dataset: pairs.json
        set: {beta: 0.05}

Before any stage trains, every stage's data is inspected, converted and token-preflighted, once (`prepare_run`;
the stage then trains on what was checked, `run_prepared`), so that data stage 2 cannot use stops the recipe in
seconds, naming the stage, not after stage 1's GPU hours. Stage N starts from stage N-1's saved model (its tokenizer is the base model's: a stage saves the
tokenizer it loaded). Each stage writes its run file in `<output_dir>/<N>-<method>/`, and the recipe a summary,
`<output_dir>/recipe.json`, with the weights each stage started from and saved (SHA-256 of the safetensors), so a
chain can be checked.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from inspector.errors import DataRefused, SourceError, UsageError
from inspector.files import write_atomically
from inspector.methods import METHODS

RECIPE_FILE = "recipe.json"
RECIPE_KEYS = ("model", "output_dir", "stages")
# A stage's keys: `train`'s options, named as its keyword arguments (`set` holds `--set`'s TRL fields).
STAGE_KEYS = ("method", "dataset", "split", "dataset_config", "revision", "max_steps", "epochs", "learning_rate",
              "batch_size", "max_length", "seed", "config", "set", "lora", "lora_r", "lora_alpha", "lora_targets",
              "eval_dataset", "test_size", "reward_funcs", "max_dropped")


@dataclass
class RecipeResult:
    model: str
    output_dir: str
    stages: list[dict]
    dry_run: bool = False
    seconds: float = 0.0
    planned: list[dict] = field(default_factory=list)  # each stage's checks: ledger, what its trainer will do

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def to_text(self) -> str:
        lines = [f"recipe: {len(self.stages)} stage(s) from {self.model} in {self.output_dir}"
                 + (" (dry run: checked, nothing trained)" if self.dry_run else "")]
        for stage in self.stages:
            lines.append(f"  {stage['stage']}. {stage['method']} on {stage['dataset']} from {stage['model']}: "
                         f"{stage['rows_out']} rows" + (f", trained {stage['rows_trained']} rows in "
                                                        f"{stage['seconds']} s" if not self.dry_run else ""))
        lines.append(f"wrote {Path(self.output_dir) / RECIPE_FILE}")
        return "\n".join(lines) + "\n"


def load_recipe(recipe: str | Path | dict) -> dict:
    """The recipe as a dict, from a YAML file or given as one, every key checked (a typo gets the closest keys).

    >>> load_recipe({"model": "m", "stages": [{"method": "sft", "dataset": "d.jsonl", "max_step": 5}]})
    Traceback (most recent call last):
    ...
    inspector.errors.UsageError: recipe stage 1 (sft): unknown key 'max_step'; did you mean max_steps?
    """
    if not isinstance(recipe, dict):
        import yaml

        path = Path(recipe)
        try:
            recipe = yaml.safe_load(path.read_text())
        except OSError as error:
            raise SourceError(f"--recipe {path}: cannot read it ({error.strerror or error})") from None
        except yaml.YAMLError as error:
            raise UsageError(f"--recipe {path}: invalid YAML ({str(error).splitlines()[0]})") from None
        if not isinstance(recipe, dict):
            raise UsageError(f"--recipe {path}: expected a mapping with model, output_dir and stages")
    _check_keys(recipe, RECIPE_KEYS, "recipe")
    if not recipe.get("model"):
        raise UsageError("recipe: `model` is required (a local folder or a Hub model id)")
    stages = recipe.get("stages")
    if not isinstance(stages, list) or not stages:
        raise UsageError("recipe: `stages` must be a list of one or more stages")
    for number, stage in enumerate(stages, start=1):
        if not isinstance(stage, dict):
            raise UsageError(f"recipe stage {number}: expected a mapping of options, got {stage!r}")
        method = stage.get("method")
        if method not in METHODS:
            raise UsageError(f"recipe stage {number}: `method` must be one of {', '.join(METHODS)} (got {method!r})")
        where = f"recipe stage {number} ({method})"
        _check_keys(stage, STAGE_KEYS, where)
        if not stage.get("dataset"):
            raise UsageError(f"{where}: `dataset` is required")
        if stage.get("lora") and number < len(stages):
            raise UsageError(f"{where}: a LoRA stage can only be the last one for now: the next stage would start "
                             f"from its adapter, and merging it first is not built yet")
        if not isinstance(stage.get("set", {}), dict):
            raise UsageError(f"{where}: `set` is a mapping of TRL config fields, e.g. set: {{beta: 0.05}}")
    return recipe


def _check_keys(mapping: dict, known: tuple[str, ...], where: str) -> None:
    for key in mapping:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; the keys are {', '.join(known)}"
            raise UsageError(f"{where}: unknown key {key!r}{hint}")


def _train_options(stage: dict) -> dict:
    """A stage's keys as `train`'s keyword arguments."""
    options = {key: value for key, value in stage.items() if key not in ("set", "dataset_config")}
    options["overrides"] = tuple(f"{key}={value}" for key, value in stage.get("set", {}).items())
    options["config_name"] = stage.get("dataset_config")
    if isinstance(options.get("reward_funcs"), str):
        options["reward_funcs"] = (options["reward_funcs"],)
    options["reward_funcs"] = tuple(options.get("reward_funcs", ()))
    if isinstance(options.get("lora_targets"), str):
        options["lora_targets"] = tuple(options["lora_targets"].split(","))
    return options


@contextlib.contextmanager
def _naming(number: int, stage: dict) -> Iterator[None]:
    """A refusal or usage error raised inside, with the stage it belongs to in front."""
    try:
        yield
    except (DataRefused, UsageError, SourceError) as error:
        raise type(error)(f"recipe stage {number} ({stage['method']}): {error}") from None


def weights_digest(folder: str | Path) -> str | None:
    """SHA-256 of a model folder's safetensors files (None when it has none: a Hub id, or another format)."""
    files = sorted(Path(folder).glob("*.safetensors")) if Path(folder).is_dir() else []
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def run_recipe(recipe: str | Path | dict, *, dry_run: bool = False, progress: bool = False,
               announce: Callable[[str], None] | None = None) -> RecipeResult:
    """Check every stage's data, then train the stages in order, each from the model the one before saved.

    Raises `UsageError` for a recipe that names no stage, an unknown key or a method it cannot run, and
    `DataRefused` (naming the stage) for data a stage cannot use, before any stage trains.
    """
    from train.api import checked_usage, prepare_run, run_prepared, usable_report, write_run_file

    announce = announce or (lambda line: None)
    started = time.perf_counter()
    recipe = load_recipe(recipe)
    model = str(recipe["model"])
    root = Path(recipe.get("output_dir") or "runs/recipe")
    stages = recipe["stages"]
    folders = [root / f"{number}-{stage['method']}" for number, stage in enumerate(stages, start=1)]
    # Cheapest first, for every stage: its TRL fields and reward functions (a typo in the last stage is answered
    # before any data is read), then whether its data can be used at all (no model, no torch), then its
    # conversion and token preflight against the tokenizer every stage trains with, the base model's.
    for number, stage in enumerate(stages, start=1):
        options = _train_options(stage)
        with _naming(number, stage):
            checked_usage(stage["method"], options.get("config"), options["overrides"], options["reward_funcs"])
    for number, stage in enumerate(stages, start=1):
        with _naming(number, stage):
            usable_report(stage["method"], stage["dataset"], split=stage.get("split"),
                          config_name=stage.get("dataset_config"), revision=stage.get("revision"))
    prepared = []
    for number, (stage, folder) in enumerate(zip(stages, folders), start=1):
        with _naming(number, stage):
            prepared.append(prepare_run(**_train_options(stage), model=model, output_dir=folder, progress=progress,
                                        announce=announce))
        announce(f"stage {number} ({stage['method']}, {stage['dataset']}): checked, "
                 f"{prepared[-1].result.ledger['rows_out']} rows ready")
    planned = [{"stage": number, "method": stage["method"], "dataset": str(stage["dataset"]),
                "output_dir": str(folder), "ledger": run.result.ledger, "tokens": run.result.tokens}
               for number, (stage, folder, run) in enumerate(zip(stages, folders, prepared), start=1)]
    result = RecipeResult(model=model, output_dir=str(root), stages=[], dry_run=dry_run, planned=planned)
    start_from = model
    for number, (stage, folder, run) in enumerate(zip(stages, folders, prepared), start=1):
        entry = {"stage": number, "method": stage["method"], "dataset": str(stage["dataset"]), "model": start_from,
                 "started_from_weights": weights_digest(start_from), "output_dir": str(folder),
                 "rows_out": run.result.ledger["rows_out"]}
        if dry_run:
            run.result.dry_run = True
            write_run_file(folder, run.result)
        else:
            announce(f"stage {number} ({stage['method']}): training from {start_from}")
            stage_started = time.perf_counter()
            trained = run_prepared(run, model=start_from, announce=announce)
            entry.update(rows_trained=trained.rows_trained, metrics=trained.metrics,
                         seconds=round(time.perf_counter() - stage_started, 3),
                         saved_weights=weights_digest(folder))
        result.stages.append(entry)
        start_from = str(folder)
    result.seconds = round(time.perf_counter() - started, 3)
    root.mkdir(parents=True, exist_ok=True)
    write_atomically(root / RECIPE_FILE, json.dumps(result.to_dict(), indent=2, default=str))
    return result
