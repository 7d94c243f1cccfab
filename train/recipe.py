"""`train --recipe`: stages that train one after another (SFT, then DPO, ...), every stage's data checked first,
then, optionally, a GGUF file of the result for llama.cpp, Ollama or LM Studio.

A recipe names a model, an output folder and its stages; a training stage takes the `train` command's options as
keys, a mixture of sources under `datasets:`, and an export stage writes GGUF:

    model: Qwen/Qwen2.5-0.5B
    output_dir: runs/assistant
    stages:
      - method: sft
        datasets:                      # each source converted on its own, mixed by TRL's rule
          - {path: chats.jsonl, weight: 0.7}
          - {path: HuggingFaceH4/ultrachat_200k, split: train_sft, weight: 0.3}
        max_steps: 2000
      - method: dpo
        dataset: pairs.json
        set: {beta: 0.05}
      - export: gguf
        outtype: q8_0

Before any stage trains, every stage's data is inspected, converted and token-preflighted, once (`prepare_run`;
the stage then trains on what was checked, `run_prepared`), and an export stage's converter is tried on the
vocabulary, so that what a later stage cannot use stops the recipe in seconds, naming the stage, not after stage
1's GPU hours. Stage N starts from the model stage N-1 saved (a LoRA stage's adapter merged into it first). A
stage saves the tokenizer it loaded, so every stage is checked against the base model's; when a trained stage saves
another chat template (TRL's `chat_template_path`), the change is reported and the stages after it are checked
again against its tokenizer before they train.

A recipe file's relative paths (`output_dir`, the model, datasets, TRL configs, reward-function files) are read
from the file's folder, not from the current one (`read_from`); a recipe given as a dict reads them from the
current folder.

Each stage writes its run file in `<output_dir>/<N>-<method>/`, and the recipe a summary, `<output_dir>/recipe.json`,
after every stage, with the weights each stage started from and saved (SHA-256 of the safetensors), so that a chain
can be checked and `resume` continues at the first stage not finished.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from trlprep.errors import DataRefused, SourceError, TrlprepError, UsageError
from trlprep.files import read_small_file, write_atomically
from trlprep.inspector.methods import METHODS
from trlprep.options import checked
from trlprep.train.options import RunOptions

RECIPE_FILE = "recipe.json"
RECIPE_KEYS = ("model", "output_dir", "stages", "hf_jobs")
# A training stage's keys: `train`'s options, named as its keyword arguments (`set` holds `--set`'s TRL fields),
# `datasets` for a mixture, and `merge` for a LoRA stage.
STAGE_KEYS = ("method", "dataset", "datasets", "split", "dataset_config", "revision", "max_steps", "epochs",
              "learning_rate", "batch_size", "max_length", "seed", "config", "set", "lora", "lora_r", "lora_alpha",
              "lora_targets", "merge", "eval_dataset", "test_size", "reward_funcs", "teacher", "max_dropped")
EXPORT_KEYS = ("export", "outtype", "pre_tokenizer")
MERGED = "merged"


@dataclass
class RecipeResult:
    model: str
    output_dir: str
    stages: list[dict]
    dry_run: bool = False
    seconds: float = 0.0
    planned: list[dict] = field(default_factory=list)  # each stage's checks: ledger, what its trainer will do
    job: dict | None = None  # with --launcher hf-jobs: what is pushed and the job that runs the recipe
    job_url: str | None = None
    exported: list[dict] = field(default_factory=list)  # with export_trl_config: each stage's config and command

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def to_text(self) -> str:
        if self.exported:
            lines = [f"recipe checked; TRL's CLI runs its {len(self.exported)} training stage(s) in this order:"]
            lines += [f"  {entry['stage']}. {entry['command']}" for entry in self.exported]
            return "\n".join(lines) + "\n"
        if self.job:
            spec = self.job["spec"]
            pushed = ", ".join(sorted(self.job["uploads"]) + ["recipe.yaml", self.job["wheel"]])
            return (f"recipe checked: {len(self.planned)} training stage(s) ready\n"
                    f"push to {self.job['data_repo']} (private dataset): {pushed}\n"
                    f"job: {spec['script']} {' '.join(spec['script_args'])} with {', '.join(spec['dependencies'])}\n"
                    f"flavor {spec['flavor']}, timeout {spec['timeout']}, secrets by name: "
                    f"{', '.join(spec['secrets'])}; mounts: "
                    + ", ".join(f"{v['type']} {v['source']} at {v['mount_path']}" for v in spec["volumes"]) + "\n"
                    + (f"submitted: {self.job_url}" if self.job_url else "dry run: nothing pushed, nothing submitted")
                    + "\n")
        lines = [f"recipe: {len(self.stages)} stage(s) from {self.model} in {self.output_dir}"
                 + (" (dry run: checked, nothing trained)" if self.dry_run else "")]
        for stage in self.stages:
            lines.append(f"  {stage['stage']}. {_stage_line(stage, self.dry_run)}")
            if stage.get("quantize_command"):
                lines.append(f"     {stage['outtype']} needs llama.cpp's C++ tool: {stage['quantize_command']}")
        lines.append(f"wrote {Path(self.output_dir) / RECIPE_FILE}")
        return "\n".join(lines) + "\n"


def _stage_line(stage: dict, dry_run: bool) -> str:
    if "export" in stage:
        if dry_run:
            return f"gguf {stage['outtype']} of {stage['model']}: converter checked on its vocabulary"
        worst = max(check["logit_difference"] for check in stage["checks"])
        return (f"gguf {stage['outtype']} of {stage['model']}: {stage['path']} ({stage['bytes']:,} bytes); "
                f"read back by transformers, next-token logits on {len(stage['checks'])} prompts within "
                f"{worst:.2%} of their range (tolerance {stage['tolerance']:.1%})")
    line = f"{stage['method']} on {stage['dataset']} from {stage['model']}: {stage['rows_out']} rows"
    if not dry_run:
        line += f", trained {stage['rows_trained']} rows in {stage['seconds']} s"
    return line + (f"; merged into {stage['merged']}" if stage.get("merged") else "")


def stage_name(number: int, stage: dict) -> str:
    return f"recipe stage {number} ({'gguf export' if 'export' in stage else stage.get('method')})"


def load_recipe(recipe: str | Path | dict) -> dict:
    """The recipe as a dict, from a YAML file or given as one, every key checked (a typo gets the closest keys).

    >>> load_recipe({"model": "m", "stages": [{"method": "sft", "dataset": "d.jsonl", "max_step": 5}]})
    Traceback (most recent call last):
    ...
    trlprep.errors.UsageError: recipe stage 1 (sft): unknown key 'max_step'; did you mean max_steps?
    """
    if not isinstance(recipe, dict):
        import yaml

        path = Path(recipe)
        try:
            recipe = yaml.safe_load(read_small_file(path, "--recipe"))
        except (OSError, UnicodeDecodeError) as error:
            raise SourceError(f"--recipe {path}: cannot read it ({getattr(error, 'strerror', None) or error})") from None
        except yaml.YAMLError as error:
            raise UsageError(f"--recipe {path}: invalid YAML ({str(error).splitlines()[0]})") from None
        if not isinstance(recipe, dict):
            raise UsageError(f"--recipe {path}: expected a mapping with model, output_dir and stages")
        return read_from(checked_recipe(recipe), path.parent)
    return checked_recipe(recipe)


def checked_recipe(recipe: dict) -> dict:
    """`recipe` with every key checked."""
    _check_keys(recipe, RECIPE_KEYS, "recipe")
    if "hf_jobs" in recipe:
        from trlprep.train.launch import JOB_KEYS

        if not isinstance(recipe["hf_jobs"], dict):
            raise UsageError("recipe: `hf_jobs` is a mapping: data_repo, output_bucket, flavor, timeout")
        _check_keys(recipe["hf_jobs"], JOB_KEYS, "recipe hf_jobs")
    if not recipe.get("model"):
        raise UsageError("recipe: `model` is required (a local folder or a Hub model id)")
    stages = recipe.get("stages")
    if not isinstance(stages, list) or not stages:
        raise UsageError("recipe: `stages` must be a list of one or more stages")
    for number, stage in enumerate(stages, start=1):
        if not isinstance(stage, dict):
            raise UsageError(f"recipe stage {number}: expected a mapping of options, got {stage!r}")
        if "export" in stage:
            _check_export(number, stage, stages)
        else:
            _check_training(number, stage, stages)
    return recipe


def read_from(recipe: dict, folder: Path) -> dict:
    """A recipe file's relative paths read from the file's folder, not from the current one: `output_dir`, and
    the model, datasets, eval dataset, teacher, TRL config and reward-function files it reads. A value that may be
    a Hub id (`org/name`) stays one unless it names something in that folder; URLs and absolute paths stay.

    >>> read_from({"model": "Qwen/Qwen2.5-0.5B", "output_dir": "runs/a", "stages": [{"method": "sft",
    ...     "datasets": ["chats.jsonl", {"path": "hf://datasets/org/x"}], "reward_funcs": ["answer_match"]}]},
    ...     Path("recipes"))["stages"][0]["datasets"]
    ['recipes/chats.jsonl', {'path': 'hf://datasets/org/x'}]
    """
    recipe = {**recipe, "model": _read_from(recipe["model"], folder, hub=True)}
    if recipe.get("output_dir"):
        recipe["output_dir"] = _read_from(recipe["output_dir"], folder)
    recipe["stages"] = [stage if "export" in stage else _stage_read_from(stage, folder) for stage in recipe["stages"]]
    return recipe


def _stage_read_from(stage: dict, folder: Path) -> dict:
    stage = dict(stage)
    for key in ("dataset", "eval_dataset", "teacher"):
        if stage.get(key):
            stage[key] = _read_from(stage[key], folder, hub=True)
    if stage.get("config"):
        stage["config"] = _read_from(stage["config"], folder)
    if stage.get("datasets"):
        stage["datasets"] = [_read_from(source, folder, hub=True) if isinstance(source, (str, Path)) else
                             {**source, "path": _read_from(source.get("path"), folder, hub=True)}
                             if isinstance(source, dict) and source.get("path") else source
                             for source in stage["datasets"]]
    if stage.get("reward_funcs"):
        functions = [stage["reward_funcs"]] if isinstance(stage["reward_funcs"], str) else stage["reward_funcs"]
        stage["reward_funcs"] = [_reward_read_from(str(spec), folder) for spec in functions]
    return stage


def _reward_read_from(spec: str, folder: Path) -> str:
    """A function in a file (`rewards.py:score`) is read from the file; a module's or a built-in's names no path."""
    file, _, name = spec.rpartition(":")
    return f"{_read_from(file, folder)}:{name}" if file.endswith(".py") else spec


def _read_from(value, folder: Path, *, hub: bool = False) -> str:
    """`value` as a path read from `folder` when it is a relative path; with `hub`, a value that reads as a Hub id
    stays one unless it names something in `folder`."""
    from trlprep.inspector.sources import looks_like_hub_id

    text = str(value)
    if "://" in text or Path(text).expanduser().is_absolute():
        return text
    if hub and looks_like_hub_id(text) and not (folder / text).exists():
        return text
    return os.path.normpath(folder / text)  # `examples/../out`, said as `out`; symlinks left as named


def _check_training(number: int, stage: dict, stages: list) -> None:
    method = stage.get("method")
    if method not in METHODS:
        raise UsageError(f"recipe stage {number}: `method` must be one of {', '.join(METHODS)} (got {method!r}), "
                         f"or the stage is `export: gguf`")
    where = stage_name(number, stage)
    _check_keys(stage, STAGE_KEYS, where)
    if bool(stage.get("dataset")) == bool(stage.get("datasets")):
        raise UsageError(f"{where}: give `dataset` (one source) or `datasets` (a mixture), one of the two")
    if stage.get("datasets") is not None:
        from trlprep.train.api import mixture_sources

        if not isinstance(stage["datasets"], list):
            raise UsageError(f"{where}: `datasets` is a list of sources, e.g. - {{path: a.jsonl, weight: 0.7}}")
        with naming(number, stage):
            mixture_sources(stage["datasets"])
    if not isinstance(stage.get("set", {}), dict):
        raise UsageError(f"{where}: `set` is a mapping of TRL config fields, e.g. set: {{beta: 0.05}}")
    with naming(number, stage):  # each value as `train` reads it, so --dry-run refuses what training would
        checked(RunOptions(**_train_options(stage)))
    followed = number < len(stages)
    if method == "reward" and followed:
        raise UsageError(f"{where}: a reward stage trains a scorer (a sequence-classification head), which no "
                         f"training or export stage can start from: make it the last stage")
    if "merge" in stage and not stage.get("lora"):
        raise UsageError(f"{where}: `merge` is for a LoRA stage's adapter; this stage trains every weight")
    if stage.get("lora") and followed and stage.get("merge") is False:
        raise UsageError(f"{where}: the stages after it start from a full model, so its adapter is merged "
                         f"(merge: true, the default when a stage follows); keep `merge: false` for a last stage")


def _export_plan(stage: dict):
    """What an export stage writes (`train.export.ExportPlan`): its outtype (f16 by default), its pre-tokenizer."""
    from trlprep.train.export import plan_export

    return plan_export(str(stage.get("outtype", "f16")), stage.get("pre_tokenizer"))


def _check_export(number: int, stage: dict, stages: list) -> None:
    where = stage_name(number, stage)
    _check_keys(stage, EXPORT_KEYS, where)
    if stage["export"] != "gguf":
        raise UsageError(f"{where}: `export` can be gguf (got {stage['export']!r})")
    if any("export" not in later for later in stages[number:]):
        raise UsageError(f"{where}: export stages come after every training stage (they export the last one)")
    with naming(number, stage):
        _export_plan(stage)


def _check_keys(mapping: dict, known: tuple[str, ...], where: str) -> None:
    for key in mapping:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; the keys are {', '.join(known)}"
            raise UsageError(f"{where}: unknown key {key!r}{hint}")


def _train_options(stage: dict) -> dict:
    """A training stage's keys as `RunOptions` fields (a mixture as its list of sources)."""
    options = {key: value for key, value in stage.items() if key not in ("set", "datasets", "merge")}
    options["dataset"] = stage.get("datasets") or stage.get("dataset")
    options["overrides"] = tuple(f"{key}={value}" for key, value in stage.get("set", {}).items())
    if isinstance(options.get("reward_funcs"), str):
        options["reward_funcs"] = (options["reward_funcs"],)
    options["reward_funcs"] = tuple(options.get("reward_funcs", ()))
    if isinstance(options.get("lora_targets"), str):
        options["lora_targets"] = tuple(options["lora_targets"].split(","))
    return options


def _sources(stage: dict) -> list[dict]:
    """A training stage's data as sources (one, or a mixture's), for the check that needs no model."""
    from trlprep.train.api import mixture_sources

    if stage.get("datasets"):
        return mixture_sources(stage["datasets"])
    return [{"path": stage["dataset"], "split": stage.get("split"), "dataset_config": stage.get("dataset_config"),
             "revision": stage.get("revision")}]


def _data_name(stage: dict) -> str:
    if stage.get("datasets"):
        return " + ".join(source["path"] for source in _sources(stage))
    return str(stage["dataset"])


@contextlib.contextmanager
def naming(number: int, stage: dict) -> Iterator[None]:
    """A refusal or usage error raised inside, with the stage it belongs to in front."""
    try:
        yield
    except (DataRefused, UsageError, SourceError) as error:
        raise type(error)(f"{stage_name(number, stage)}: {error}") from None
    except TrlprepError as error:
        error.args = (f"{stage_name(number, stage)}: {error}",)
        raise


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


def _local_model(model: str) -> Path:
    """A model as a folder: itself, or its Hub snapshot without the weights (what a vocabulary check reads)."""
    if Path(model).is_dir():
        return Path(model)
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(model, ignore_patterns=["*.safetensors", "*.bin", "*.pt", "*.gguf"]))


def _chat_template(model: str) -> str | None:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model).chat_template


def _merge_adapter(adapter: Path, into: Path) -> None:
    """A LoRA stage's adapter merged into the model it was trained on (named in its adapter config), saved with
    the stage's tokenizer as a full model the next stage can start from."""
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    merged = AutoPeftModelForCausalLM.from_pretrained(str(adapter)).merge_and_unload()
    merged.save_pretrained(str(into))
    AutoTokenizer.from_pretrained(str(adapter)).save_pretrained(str(into))


def _finished(previous: dict, number: int, folder: Path) -> dict | None:
    """The entry of stage `number` in an earlier run's recipe.json, if it finished and its output is still there
    as it was saved."""
    entries = [entry for entry in previous.get("stages", []) if entry.get("stage") == number]
    if not entries or not entries[0].get("finished"):
        return None
    entry = entries[0]
    if "export" in entry:
        return entry if Path(entry["path"]).is_file() else None
    saved = Path(entry["merged"]) if entry.get("merged") else folder
    return entry if weights_digest(saved) == entry.get("merged_weights", entry.get("saved_weights")) else None


def run_recipe(recipe: str | Path | dict, *, dry_run: bool = False, resume: bool = False, launcher: str = "local",
               export_trl_config: str | Path | None = None, accelerate_config: str | None = None,
               progress: bool = False, announce: Callable[[str], None] | None = None) -> RecipeResult:
    """Check every stage, then run the stages in order, each from the model the one before saved.

    `resume` skips the stages an earlier run of the same recipe finished (their saved weights unchanged) and
    continues a stage from its last checkpoint. Raises `UsageError` for a recipe that names no stage, an unknown key
    or a method it cannot run, and `DataRefused` (naming the stage) for data a stage cannot use, before any stage
    trains. `launcher="hf-jobs"` checks every stage here, then pushes the checked data and runs the recipe as one
    Hugging Face job (`train.launch.recipe_job`; with `dry_run`, the job is only described).
    `export_trl_config` (a folder) writes, once every stage is checked, one config per training stage for
    `trl <method> --config`, each stage's model the folder the stage before writes, a mixture as TRL's
    `datasets:` list; nothing trains here.
    """
    from trlprep.train.api import prepare_run

    announce = announce or (lambda line: None)
    started = time.perf_counter()
    if launcher not in ("local", "hf-jobs"):
        raise UsageError(f"--launcher {launcher!r}: choose local or hf-jobs")
    if launcher == "hf-jobs" and resume:
        raise UsageError("--resume continues a recipe in its output folder here; a job starts from its own")
    if export_trl_config is not None and (resume or launcher != "local"):
        raise UsageError("--export-trl-config writes the recipe for TRL's CLI: drop --resume and --launcher")
    recipe = load_recipe(recipe)
    if export_trl_config is not None:
        _exportable(recipe)
    if launcher == "hf-jobs":
        from trlprep.train.launch import job_settings

        job_settings(recipe)
    model = str(recipe["model"])
    root = Path(recipe.get("output_dir") or "runs/recipe")
    stages = recipe["stages"]
    folders = [root / f"{number}-{stage.get('method') or 'gguf'}" for number, stage in enumerate(stages, start=1)]
    done: dict[int, dict] = {}
    if resume:
        previous_file = root / RECIPE_FILE
        if not previous_file.is_file():
            raise UsageError(f"--resume: {previous_file} does not exist; run the recipe without --resume first")
        previous = json.loads(previous_file.read_text())
        for number, folder in enumerate(folders, start=1):
            entry = _finished(previous, number, folder)
            if entry is None:
                break
            done[number] = entry
        announce(f"resume: stage(s) {', '.join(map(str, done)) or 'none'} finished; continuing at stage "
                 f"{len(done) + 1}")
    todo = [(number, stage, folder) for number, (stage, folder) in enumerate(zip(stages, folders), start=1)
            if number not in done]
    training = [(number, stage, folder) for number, stage, folder in todo if "export" not in stage]
    if export_trl_config is not None:
        _check_export_stages(training, Path(export_trl_config))
    # The model the first stage left to do starts from, and the tokenizer every stage is checked against.
    start_from = model
    for entry in done.values():
        start_from = _stage_output(entry) or start_from
    reports = _check_cheapest_first(todo, start_from)  # each stage's data, checked
    prepared: dict[int, object] = {}

    def prepare(number: int, stage: dict, folder: Path, tokenizer_from: str) -> None:
        with naming(number, stage):
            options = checked(RunOptions(**{**_train_options(stage), "model": tokenizer_from, "output_dir": folder,
                                            "resume": resume and _has_checkpoint(folder), "progress": progress,
                                            "announce": announce}))
            prepared[number] = prepare_run(options, checked=reports[number])
        ledger = prepared[number].result.ledger
        announce(f"stage {number} ({stage['method']}, {_data_name(stage)}): checked, "
                 f"{ledger.get('rows_mixed', ledger['rows_out'])} rows ready")

    for number, stage, folder in training:
        prepare(number, stage, folder, start_from)
    result = RecipeResult(model=model, output_dir=str(root), stages=[done[number] for number in sorted(done)],
                          dry_run=dry_run)
    result.planned = [{"stage": number, "method": stage["method"], "dataset": _data_name(stage),
                       "output_dir": str(folder), "ledger": prepared[number].result.ledger,
                       "tokens": prepared[number].result.tokens} for number, stage, folder in training]
    if export_trl_config is not None:
        _export_stages(result, training, prepared, model, Path(export_trl_config), accelerate_config, announce)
        _write_summary(root, result, started)
        return result
    if launcher == "hf-jobs":
        from trlprep.train.launch import recipe_job, submit_recipe_job

        job = recipe_job(recipe, {number: prepared[number].files for number, _, _ in training})
        result.job = job.to_dict()
        if not dry_run:
            result.job_url = submit_recipe_job(job)
        _write_summary(root, result, started)
        return result
    template = _chat_template(start_from) if training and not dry_run else None
    for number, stage, folder in todo:
        if "export" in stage:
            entry = _export_stage(number, stage, folder, start_from, dry_run, announce)
        else:
            entry = _training_stage(number, stage, folder, start_from, prepared[number],
                                    followed=number < len(stages), dry_run=dry_run, announce=announce)
            if not dry_run:
                saved_template = _chat_template(_stage_output(entry))
                entry["chat_template_changed"] = saved_template != template
                later = [(n, s, f) for n, s, f in training if n > number]
                if entry["chat_template_changed"] and later:
                    announce(f"stage {number} saved another chat template: stages "
                             f"{', '.join(str(n) for n, _, _ in later)} are checked again against its tokenizer")
                    for later_number, later_stage, later_folder in later:
                        prepare(later_number, later_stage, later_folder, _stage_output(entry))
                template = saved_template
        result.stages.append(entry)
        start_from = _stage_output(entry) or start_from
        if not dry_run:
            _write_summary(root, result, started)
    _write_summary(root, result, started)
    return result


def _check_cheapest_first(todo: list, start_from: str) -> dict[int, list[dict]]:
    """What can stop the stages still to run, before any of them trains, cheapest first for every stage: its TRL
    fields and reward functions (a typo in the last stage is answered before any data is read), then whether its
    data can be used at all (no model, no torch), then an export's converter on the vocabulary. The conversions
    and token preflights come after, in `prepare_run`, which takes the data's reports made here (by stage)."""
    from trlprep.train.api import checked_usage, usable_report
    from trlprep.train.export import check_vocab

    training = [(number, stage) for number, stage, _ in todo if "export" not in stage]
    for number, stage in training:
        options = _train_options(stage)
        with naming(number, stage):
            checked_usage(stage["method"], options.get("config"), options["overrides"], options["reward_funcs"],
                          options.get("teacher"))
    reports: dict[int, list[dict]] = {}
    for number, stage in training:
        with naming(number, stage):
            reports[number] = [usable_report(stage["method"], source["path"], split=source["split"],
                                             config_name=source["dataset_config"],
                                             revision=source["revision"]).to_dict() for source in _sources(stage)]
    for number, stage, _ in todo:
        if "export" in stage:
            with naming(number, stage):
                check_vocab(_local_model(start_from), _export_plan(stage))
    return reports


def _exportable(recipe: dict) -> None:
    """What TRL's CLI cannot do between stages: merge a LoRA adapter, or write GGUF."""
    for number, stage in enumerate(recipe["stages"], start=1):
        if "export" in stage:
            raise UsageError(f"{stage_name(number, stage)}: TRL's CLI writes no GGUF; export the recipe without "
                             f"its export stages, and run them with train --recipe once the models are trained")
        if stage.get("lora") and number < len(recipe["stages"]):
            raise UsageError(f"{stage_name(number, stage)}: TRL's CLI does not merge a LoRA adapter into the model "
                             f"the next stage starts from; train this recipe with train --recipe")


def _export_stages(result: RecipeResult, training: list, prepared: dict, model: str, folder: Path,
                   accelerate_config: str | None, announce: Callable[[str], None]) -> None:
    """Each training stage as `<folder>/<N>-<method>.yaml` with its data beside it, from the model the stage
    before writes (its TRL output_dir)."""
    from trlprep.train.api import _export

    folder.mkdir(parents=True, exist_ok=True)
    start_from = model
    for number, stage, stage_folder in training:
        run = prepared[number]
        run.result.model = start_from
        exported = _export(run, _exported_config(folder, number, stage), accelerate_config)
        result.exported.append({"stage": number, **exported.exported})
        announce(f"stage {number} ({stage['method']}): wrote {exported.exported['config']}")
        start_from = str(stage_folder)


def _exported_config(folder: Path, number: int, stage: dict) -> Path:
    return folder / f"{number}-{stage['method']}.yaml"


def _check_export_stages(training: list, folder: Path) -> None:
    """Every stage's exported files checked (`api.check_export`) before any stage's data is converted."""
    from trlprep.train.api import check_export

    for number, stage, _ in training:
        check_export(RunOptions(**_train_options(stage)), _exported_config(folder, number, stage))


def _has_checkpoint(folder: Path) -> bool:
    return any(folder.glob("checkpoint-*"))


def _stage_output(entry: dict) -> str | None:
    """The model the next stage starts from: a training stage's folder, or its merged model (an export stage
    leaves the model as it was: None)."""
    if "export" in entry:
        return None
    return entry.get("merged") or entry["output_dir"]


def _write_summary(root: Path, result: RecipeResult, started: float) -> None:
    result.seconds = round(time.perf_counter() - started, 3)
    root.mkdir(parents=True, exist_ok=True)
    write_atomically(root / RECIPE_FILE, json.dumps(result.to_dict(), indent=2, default=str))


def _training_stage(number: int, stage: dict, folder: Path, start_from: str, prepared, *, followed: bool,
                    dry_run: bool, announce: Callable[[str], None]) -> dict:
    from trlprep.train.api import run_prepared, write_run_file

    entry = {"stage": number, "method": stage["method"], "dataset": _data_name(stage), "model": start_from,
             "started_from_weights": weights_digest(start_from), "output_dir": str(folder),
             "rows_out": prepared.result.ledger.get("rows_mixed", prepared.result.ledger["rows_out"])}
    if "rows_mixed" in prepared.result.ledger:
        entry["rows_mixed"] = {source["source"]: source["rows_mixed"] for source in prepared.result.ledger["sources"]}
    if dry_run:
        prepared.result.dry_run = True
        write_run_file(folder, prepared.result)
        return entry
    announce(f"stage {number} ({stage['method']}): training from {start_from}")
    stage_started = time.perf_counter()
    trained = run_prepared(prepared, model=start_from, announce=announce)
    entry.update(rows_trained=trained.rows_trained, metrics=trained.metrics,
                 seconds=round(time.perf_counter() - stage_started, 3), saved_weights=weights_digest(folder))
    if stage.get("lora"):
        entry["adapter_of"] = start_from
        if stage.get("merge", followed):
            merged = folder / MERGED
            announce(f"stage {number} ({stage['method']}): merging its LoRA adapter into {start_from}")
            _merge_adapter(folder, merged)
            entry.update(merged=str(merged), merged_weights=weights_digest(merged))
    entry["finished"] = True
    return entry


def _export_stage(number: int, stage: dict, folder: Path, start_from: str, dry_run: bool,
                  announce: Callable[[str], None]) -> dict:
    from trlprep.train.export import export_gguf

    plan = _export_plan(stage)
    entry = {"stage": number, "export": "gguf", "outtype": plan.outtype, "model": start_from,
             "output_dir": str(folder)}
    if dry_run:
        return entry
    announce(f"stage {number} (gguf export): writing {plan.written_type} from {start_from}")
    with naming(number, stage):
        exported = export_gguf(_local_model(start_from), folder, plan)
    entry.update(exported.to_dict(), outtype=plan.outtype,
                 tolerance=max(check["tolerance"] for check in exported.checks), finished=True)
    return entry
