"""Beyond one machine: a config for TRL's own CLI (`trl <method> --config run.yaml`, which goes through
`accelerate launch`), and jobs on Hugging Face Jobs. Secrets travel by name; their values never reach a file,
a report or a log."""

from __future__ import annotations

from inspector.errors import UsageError
from inspector.files import write_atomically

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCELERATE_PRESETS = ("single_gpu", "multi_gpu", "fsdp1", "fsdp2", "zero1", "zero2", "zero3")
# Settings that describe this machine, not the one the exported run goes to.
LOCAL_ONLY = ("use_cpu", "output_dir", "report_to", "bf16", "fp16", "hub_token")
SECRET_NAMES = ("HF_TOKEN",)


def reward_import_path(spec: str) -> str:
    """A `--reward-func` as TRL's CLI wants it: a registry name or a dotted path importable from the CWD.

    >>> reward_import_path("rewards/math.py:exact"), reward_import_path("mypkg.rewards:exact")
    ('rewards.math.exact', 'mypkg.rewards.exact')
    >>> reward_import_path("answer_match")
    'train.rewards.answer_match'
    """
    from train.rewards import BUILTINS

    if spec in BUILTINS:
        return f"train.rewards.{spec}"
    target, _, name = spec.rpartition(":")
    module = target.removesuffix(".py").replace("/", ".") if target.endswith(".py") else target
    return f"{module}.{name}"


def trl_settings(settings: dict[str, Any], *, model: str, lora: dict | None,
                 reward_funcs: tuple[str, ...]) -> dict[str, Any]:
    """What TRL's script parser takes: the method config, ModelConfig and the GRPO script arguments."""
    out = {k: v for k, v in settings.items() if k not in LOCAL_ONLY}
    out["model_name_or_path"] = model
    if lora:
        out.update({"use_peft": True, "lora_r": lora["r"], "lora_alpha": lora["alpha"]})
        if lora.get("targets"):
            out["lora_target_modules"] = list(lora["targets"])
    if reward_funcs:
        out["reward_funcs"] = [reward_import_path(spec) for spec in reward_funcs]
    return out


def export_trl_config(path: Path, *, method: str, settings: dict[str, Any], files: dict[str, Path], model: str,
                      lora: dict | None, reward_funcs: tuple[str, ...], accelerate_config: str | None,
                      overwrite: bool = True) -> str:
    """Write `run.yaml` and the converted data beside it (`<stem>-data/train.jsonl`, `test.jsonl`);
    return the command that runs it."""
    import yaml

    data_dir = path.with_name(f"{path.stem}-data")
    data_dir.mkdir(parents=True, exist_ok=True)
    for split, source in files.items():
        shutil.copyfile(source, data_dir / f"{split}.jsonl")
    config = trl_settings(settings, model=model, lora=lora, reward_funcs=reward_funcs)
    config.update({"dataset_name": str(data_dir), "dataset_train_split": "train",
                   "output_dir": str(Path(settings["output_dir"]))})
    if "test" in files:
        config.update({"dataset_test_split": "test", "eval_strategy": config.get("eval_strategy", "epoch")})
    write_atomically(path, f"# trl {method} --config {path.name}   (written by trlprep)\n"
                     + yaml.safe_dump(config, sort_keys=True))
    command = f"trl {method} --config {path}"
    if accelerate_config:
        command += f" --accelerate_config {accelerate_config}"
    return command


@dataclass
class JobSpec:
    """What is submitted to Hugging Face Jobs; `secrets` holds names only."""

    script: str
    script_args: list[str]
    dependencies: list[str]
    flavor: str
    timeout: str
    secrets: list[str] = field(default_factory=lambda: list(SECRET_NAMES))
    env: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _cli_value(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value).lower() if isinstance(value, bool) else str(value)]


def job_spec(*, method: str, model: str, dataset: str, settings: dict[str, Any], lora: dict | None,
             reward_funcs: tuple[str, ...], flavor: str, timeout: str, split: str | None,
             config_name: str | None) -> JobSpec:
    """The `trl <method>` job for a Hub dataset, pushing the trained model to the Hub."""
    from train.rewards import BUILTINS

    local = [spec for spec in reward_funcs if spec in BUILTINS or ":" in spec]
    if local:
        raise UsageError(f"--launcher hf-jobs: reward functions must be importable in the job: use TRL's "
                         f"(accuracy_reward, think_format_reward, ...) or a dotted path of a published package, "
                         f"not {', '.join(local)}")
    config = trl_settings(settings, model=model, lora=lora, reward_funcs=())
    config.update({"dataset_name": dataset, "output_dir": f"{Path(model).name}-{method}", "push_to_hub": True,
                   "bf16": not flavor.startswith(("cpu", "t4"))})
    if reward_funcs:
        config["reward_funcs"] = list(reward_funcs)
    if split:
        config["dataset_train_split"] = split
    if config_name:
        config["dataset_config"] = config_name
    args = [method]
    for key, value in sorted(config.items()):
        args += [f"--{key}", *_cli_value(value)]
    dependencies = ["trl", "peft"] if lora else ["trl"]
    return JobSpec(script="trl", script_args=args, dependencies=dependencies, flavor=flavor, timeout=timeout)


def submit(spec: JobSpec) -> str:
    """Submit the job; the token is read here, from the usual places, and only handed to huggingface_hub."""
    from huggingface_hub import HfApi, get_token

    from inspector.sources import SourceError, hub_unreachable_reason

    reason = hub_unreachable_reason()
    if reason:
        raise SourceError(f"--launcher hf-jobs: {reason}; nothing was submitted")
    token = get_token()
    if not token:
        raise UsageError("--launcher hf-jobs: no Hugging Face token; set HF_TOKEN or run `hf auth login`")
    job = HfApi().run_uv_job(spec.script, script_args=spec.script_args, dependencies=spec.dependencies,
                             flavor=spec.flavor, timeout=spec.timeout, env=spec.env,
                             secrets={name: token for name in spec.secrets})
    return job.url
