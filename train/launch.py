"""Beyond one machine: a config for TRL's own CLI (`trl <method> --config run.yaml`, which goes through
`accelerate launch`), and jobs on Hugging Face Jobs. Secrets travel by name; their values never reach a file,
a report or a log."""

from __future__ import annotations

from trlprep.errors import OutputError, UsageError
from trlprep.files import check_replaceable, copy_atomically, write_atomically

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCELERATE_PRESETS = ("single_gpu", "multi_gpu", "fsdp1", "fsdp2", "zero1", "zero2", "zero3")
# Settings that describe this machine, not the one the exported run goes to.
LOCAL_ONLY = ("use_cpu", "output_dir", "report_to", "bf16", "fp16", "hub_token")
SECRET_NAMES = ("HF_TOKEN",)
# An exported config's first line (the command that runs it): what tells a config this export wrote, which a later
# export replaces, from any other file of that name, which it refuses.
CONFIG_HEADER = "# trl {method} --config {name}   (written by trlprep)"
WRITTEN_HEADER = re.compile(r"# trl [\w-]+ --config .*\(written by trlprep\)")
# What the export writes into `<stem>-data`: a folder holding anything else is not replaced into.
EXPORTED_DATA = re.compile(r"(train|test|source-\d+)\.jsonl")


def reward_import_path(spec: str) -> str:
    """A `--reward-func` as TRL's CLI wants it: a registry name or a dotted path importable from the CWD.

    >>> reward_import_path("rewards/math.py:exact"), reward_import_path("mypkg.rewards:exact")
    ('rewards.math.exact', 'mypkg.rewards.exact')
    >>> reward_import_path("answer_match")
    'trlprep.train.rewards.answer_match'
    """
    from trlprep.train.rewards import BUILTINS

    if spec in BUILTINS:
        return f"trlprep.train.rewards.{spec}"
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
                      mixture: list[dict] | None = None) -> str:
    """Write `run.yaml` and the converted data beside it (`<stem>-data/train.jsonl`, `test.jsonl`); a mixture as
    TRL's `datasets:` list, each source's converted file with its weight as `fraction` (TRL mixes them as the
    local run did). Return the command that runs it."""
    import yaml

    data_dir = exported_data_dir(path)
    data_dir.mkdir(parents=True, exist_ok=True)
    written = []
    config = trl_settings(settings, model=model, lora=lora, reward_funcs=reward_funcs)
    config["output_dir"] = str(Path(settings["output_dir"]))
    if mixture:
        if "test" in files:
            raise UsageError("TRL's CLI holds rows out of a `datasets:` mixture only by test_split_size, not from "
                             "a file: export the mixture without eval_dataset")
        sources = []
        for number, source in enumerate(mixture, start=1):
            copied = copy_atomically(source["outputs"]["all"], data_dir / f"source-{number}.jsonl")
            written.append(copied)
            sources.append({"path": "json", "data_files": str(copied), "split": "train"}
                           | ({"fraction": source["weight"]} if source["weight"] is not None else {}))
        config["datasets"] = sources
        files = {split: file for split, file in files.items() if split != "train"}
    else:
        config.update({"dataset_name": str(data_dir), "dataset_train_split": "train"})
    for split, source in files.items():
        written.append(copy_atomically(source, data_dir / f"{split}.jsonl"))
    for stale in sorted(data_dir.iterdir()):  # an earlier export's, which TRL would load into the train split
        if EXPORTED_DATA.fullmatch(stale.name) and stale not in written:
            stale.unlink()
    if "test" in files:
        config.update({"dataset_test_split": "test", "eval_strategy": config.get("eval_strategy", "epoch")})
    write_atomically(path, CONFIG_HEADER.format(method=method, name=path.name) + "\n"
                     + yaml.safe_dump(config, sort_keys=True))
    command = f"trl {method} --config {path}"
    if accelerate_config:
        command += f" --accelerate_config {accelerate_config}"
    return command


def exported_data_dir(path: Path) -> Path:
    """Where the export of config `path` puts its data.

    >>> exported_data_dir(Path("runs/run.yaml"))
    PosixPath('runs/run-data')
    """
    return path.with_name(f"{path.stem}-data")


def exported_paths(path: Path, sources: int) -> list[Path]:
    """Every file an export of config `path` may write, a mixture having `sources` sources: the config, its data,
    the rejects and the run file beside it.

    >>> [p.name for p in exported_paths(Path("run.yaml"), 1)]  # doctest: +NORMALIZE_WHITESPACE
    ['run.yaml', 'train.jsonl', 'test.jsonl', 'source-1.jsonl', 'run.rejects.jsonl', 'run.source-1.rejects.jsonl',
     'run.trlprep-run.json']
    """
    data_dir, numbers = exported_data_dir(path), range(1, sources + 1)
    return [path, data_dir / "train.jsonl", data_dir / "test.jsonl",
            *(data_dir / f"source-{number}.jsonl" for number in numbers), exported_rejects(path, None),
            *(exported_rejects(path, number) for number in numbers), exported_run_file(path)]


def exported_rejects(path: Path, source: int | None) -> Path:
    """The rejects beside config `path`: of its data, or of a mixture's `source` (numbered from 1).

    >>> exported_rejects(Path("run.yaml"), None).name, exported_rejects(Path("run.yaml"), 2).name
    ('run.rejects.jsonl', 'run.source-2.rejects.jsonl')
    """
    return path.with_suffix(".rejects.jsonl" if source is None else f".source-{source}.rejects.jsonl")


def exported_run_file(path: Path) -> Path:
    """The run file beside config `path` (the `trlprep-run.json` a run here writes in its output folder)."""
    return path.with_suffix(".trlprep-run.json")


def check_export_targets(path: Path, *, inputs: list[str], source: Any, sources: int) -> None:
    """Refuse, before any data is converted, an export that would write onto an input (the dataset, the eval
    dataset, the --config file) or into the dataset's folder, or replace what it did not write: an existing
    config must begin with the line an export writes (`CONFIG_HEADER`), an existing data folder hold only
    `EXPORTED_DATA` files. The rejects and run file beside the config are named for it alone: replaced, unless
    they are links or devices (`guard_paths`)."""
    from trlprep.converters.output import guard_paths

    data_dir = exported_data_dir(path)
    if os.path.isfile(path) and not os.path.islink(path):
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                first = handle.readline(1000).rstrip("\n")
        except OSError as error:
            raise OutputError(f"{path}: exists and cannot be read to tell whether an export wrote it: "
                              f"{error.strerror or error}") from None
        if not WRITTEN_HEADER.fullmatch(first):
            raise OutputError(f"{path}: exists; it is not a config an export wrote (its first line is not "
                              f"`{CONFIG_HEADER.format(method='<method>', name=path.name)}`): remove it or "
                              f"export to another name")
    if data_dir.is_dir() and not data_dir.is_symlink():
        for entry in sorted(os.scandir(data_dir), key=lambda e: e.name):
            if not (entry.is_file(follow_symlinks=False) and EXPORTED_DATA.fullmatch(entry.name)):
                raise OutputError(f"{data_dir}: exists and holds {entry.name}, which an export does not write: "
                                  f"remove it or export to another name")
    else:  # never written into through a link, nor onto a device (a file there is said where the folder is made)
        check_replaceable(data_dir, replace=True)
    guard_paths(exported_paths(path, sources), inputs, overwrite=True, source=source)


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
    volumes: list[dict] = field(default_factory=list)  # huggingface_hub.Volume's fields

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
    from trlprep.train.rewards import BUILTINS

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
    token = _hub_token()
    return _run(spec, token)


def _hub_token() -> str:
    """The Hub token, from the usual places, once the Hub answers; it is only ever handed to huggingface_hub."""
    from huggingface_hub import get_token

    from trlprep.inspector.sources import SourceError, hub_unreachable_reason

    reason = hub_unreachable_reason()
    if reason:
        raise SourceError(f"--launcher hf-jobs: {reason}; nothing was submitted")
    token = get_token()
    if not token:
        raise UsageError("--launcher hf-jobs: no Hugging Face token; set HF_TOKEN or run `hf auth login`")
    return token


def _run(spec: JobSpec, token: str) -> str:
    from huggingface_hub import HfApi, Volume

    job = HfApi().run_uv_job(spec.script, script_args=spec.script_args, dependencies=spec.dependencies,
                             flavor=spec.flavor, timeout=spec.timeout, env=spec.env,
                             secrets={name: token for name in spec.secrets},
                             volumes=[Volume(**volume) for volume in spec.volumes] or None)
    return job.url


# A recipe job: the data and the recipe in a dataset repo mounted read-only, the outputs in a bucket.
JOB_DATA, JOB_OUTPUTS = "/data", "/outputs"
JOB_KEYS = ("data_repo", "output_bucket", "flavor", "timeout")


@dataclass
class RecipeJob:
    """What `--launcher hf-jobs` uploads (path in the data repo: local file) and the job that runs the recipe."""

    spec: JobSpec
    data_repo: str
    recipe: dict                 # the recipe as the job runs it, on the uploaded data
    uploads: dict[str, str]
    wheel: str

    def to_dict(self) -> dict:
        return {"spec": self.spec.to_dict(), "data_repo": self.data_repo, "recipe": self.recipe,
                "uploads": self.uploads, "wheel": self.wheel}


def job_settings(recipe: dict) -> dict:
    """A recipe's `hf_jobs` mapping, with the repo and bucket a job needs."""
    settings = recipe.get("hf_jobs") or {}
    for key in ("data_repo", "output_bucket"):
        if not settings.get(key):
            raise UsageError(f"recipe: --launcher hf-jobs needs hf_jobs.{key} (the dataset repo the checked data "
                             f"is pushed to, and the bucket the job writes the models into)")
    return settings


def recipe_job(recipe: dict, data_files: dict[int, dict[str, Path]]) -> RecipeJob:
    """The Hugging Face job that runs `recipe` on the data converted here (`data_files`: each training stage's
    checked files by split, a mixture's mixed one as its train split): each goes to `stage-<N>/<split>.jsonl` of
    the recipe's `hf_jobs.data_repo`,
    with the recipe rewritten to read it there and to write into `hf_jobs.output_bucket`, and trlprep's own wheel,
    which the job installs with the training and GGUF extras."""
    from importlib.metadata import version

    settings = job_settings(recipe)
    wheel = f"trlprep-{version('trlprep')}-py3-none-any.whl"
    stages, uploads = [], {}
    for number, stage in enumerate(recipe["stages"], start=1):
        stage = {key: value for key, value in stage.items() if key not in (
            "dataset", "datasets", "split", "dataset_config", "revision", "test_size", "eval_dataset")}
        for split, path in data_files.get(number, {}).items():
            uploads[f"stage-{number}/{split}.jsonl"] = str(path)
            stage["dataset" if split == "train" else "eval_dataset"] = f"{JOB_DATA}/stage-{number}/{split}.jsonl"
        stages.append(stage)
    job_recipe = {"model": recipe["model"], "output_dir": f"{JOB_OUTPUTS}/{Path(recipe.get('output_dir') or 'recipe').name}",
                  "stages": stages}
    spec = JobSpec(script="trlprep", script_args=["train", "--recipe", f"{JOB_DATA}/recipe.yaml"],
                   dependencies=[f"trlprep[train,gguf] @ file://{JOB_DATA}/{wheel}"],
                   flavor=settings.get("flavor", "a10g-large"), timeout=settings.get("timeout", "4h"),
                   volumes=[{"type": "dataset", "source": settings["data_repo"], "mount_path": JOB_DATA},
                            {"type": "bucket", "source": settings["output_bucket"], "mount_path": JOB_OUTPUTS}])
    return RecipeJob(spec=spec, data_repo=settings["data_repo"], recipe=job_recipe, uploads=uploads, wheel=wheel)


def submit_recipe_job(job: RecipeJob) -> str:
    """Push the checked data, the job's recipe and trlprep's wheel (built from this checkout) to the data repo,
    private, then submit the job; nothing is pushed when the Hub or the token is missing."""
    import subprocess
    import tempfile

    import yaml
    from huggingface_hub import HfApi

    token = _hub_token()
    project = Path(__file__).resolve().parent.parent
    if not (project / "pyproject.toml").is_file():
        raise UsageError("--launcher hf-jobs ships trlprep itself to the job, built from a checkout of it: run it "
                         "from one")
    with tempfile.TemporaryDirectory(prefix="trlprep-job-") as staging:
        folder = Path(staging)
        built = subprocess.run(["uv", "build", "--wheel", "--out-dir", str(folder), str(project)],
                               capture_output=True, text=True)
        if built.returncode != 0 or not (folder / job.wheel).is_file():
            raise UsageError(f"--launcher hf-jobs: building trlprep's wheel failed: {built.stderr.strip()[-300:]}")
        for target, source in job.uploads.items():
            (folder / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, folder / target)
        (folder / "recipe.yaml").write_text(yaml.safe_dump(job.recipe, sort_keys=False))
        api = HfApi(token=token)
        api.create_repo(job.data_repo, repo_type="dataset", private=True, exist_ok=True)
        api.upload_folder(repo_id=job.data_repo, repo_type="dataset", folder_path=str(folder),
                          commit_message="trlprep: checked data and recipe for a Hugging Face job")
    return _run(job.spec, token)
