"""The TRL config of a run: sensible defaults, a YAML file, the command's options and `--set key=value`,
checked against the method's config class so an unknown key fails with the closest valid names.

The keys are checked against `trl_fields.json`, the fields of each config class of the TRL version it names, so
that a typo is answered before TRL (12 s to import) is loaded; with another TRL version installed, against the
installed classes. Regenerate the table with `uv run --extra train python -m trlprep.train.config`; a test holds it to the
installed TRL.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
from importlib import metadata
from pathlib import Path
from typing import Any

from trlprep.errors import UsageError
from trlprep.files import write_atomically
from trlprep.inspector.methods import METHOD

FIELDS_FILE = Path(__file__).with_name("trl_fields.json")

# Each trainer's config class is named after it (SFTTrainer takes an SFTConfig) and kept beside it.
CONFIG_CLASSES = {name: method.config for name, method in METHOD.items()}
SECRET_FIELDS = ("hub_token",)


def config_class(method: str):
    import importlib

    return getattr(importlib.import_module(METHOD[method].module), CONFIG_CLASSES[method])


def parse_value(text: str) -> Any:
    """A `--set` value as YAML reads it, with numbers like 1e-5 read as numbers too.

    >>> parse_value("1e-5"), parse_value("true"), parse_value("[q_proj, v_proj]"), parse_value("cosine")
    (1e-05, True, ['q_proj', 'v_proj'], 'cosine')
    """
    import yaml

    value = yaml.safe_load(text) if text.strip() else ""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_overrides(pairs: tuple[str, ...]) -> dict[str, Any]:
    from trlprep.inspector.mapping import parse_pairs

    return {key: parse_value(value) for key, value in parse_pairs(pairs, "--set", form="key=value").items()}


def read_yaml(path: str | Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"--config {path}: no such file") from None
    except yaml.YAMLError as error:
        raise UsageError(f"--config {path}: invalid YAML ({str(error).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: expected a mapping of config keys")
    return data


def installed_fields() -> dict[str, list[str]]:
    """The fields of each method's config class in the installed TRL; a method whose trainer it lacks (removed,
    or not yet there) is left out."""
    fields = {}
    for method in CONFIG_CLASSES:
        try:
            fields[method] = sorted(f.name for f in dataclasses.fields(config_class(method)) if f.init)
        except (ImportError, AttributeError):
            continue
    return fields


def installed_trl_version() -> str | None:
    try:
        return metadata.version("trl")
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def config_fields(method: str) -> frozenset[str]:
    """The fields of the method's config class: from the table when it is of the installed TRL version (or no
    TRL is installed), else from the installed classes."""
    table = json.loads(FIELDS_FILE.read_text())
    installed = installed_trl_version()
    fields = table["fields"] if installed is None or installed == table["trl_version"] else installed_fields()
    if method not in fields:
        raise UsageError(f"{METHOD[method].trainer} is not in TRL {installed or table['trl_version']}: "
                         f"install the TRL version that has it")
    return frozenset(fields[method])


def check_keys(method: str, settings: dict[str, Any], origin: str) -> None:
    """Every key must be a field of the method's TRL config; otherwise name the closest ones."""
    fields = config_fields(method)
    for key in settings:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UsageError(f"{origin}: {key!r} is not a field of {CONFIG_CLASSES[method]}{hint}")


def device_defaults() -> dict[str, Any]:
    """bf16 on a GPU that has it, fp32 on CPU."""
    import torch

    if torch.cuda.is_available():
        return {"bf16": torch.cuda.is_bf16_supported(), "fp16": False}
    return {"use_cpu": True, "bf16": False, "fp16": False}


def group_size(default: int | None, completions: int) -> int | None:
    """The generations per prompt of a trainer that compares them (GRPO, RLOO, ...) when its config's default
    does not divide the completions of a generation (TRL requires it): the largest size below the default, down to
    2, that does; None when the default does.

    >>> group_size(8, 6), group_size(8, 4), group_size(8, 8), group_size(1, 3)
    (6, 4, None, None)
    """
    if default is None or default < 2 or completions % default == 0:
        return None
    for size in range(default, 1, -1):
        if completions % size == 0:
            return size
    raise UsageError(f"the trainer compares at least 2 generations per prompt: use an even --batch-size, or an "
                     f"even gradient_accumulation_steps (a generation has {completions} completions)")


def checked_settings(method: str, yaml_path: str | None, overrides: tuple[str, ...]) -> tuple[dict, dict]:
    """The YAML file's settings and the `--set` ones, every key checked: (from YAML, from --set)."""
    from_yaml = read_yaml(yaml_path) if yaml_path else {}
    check_keys(method, from_yaml, f"--config {yaml_path}")
    from_set = parse_overrides(overrides)
    check_keys(method, from_set, "--set")
    return from_yaml, from_set


def resolve(method: str, *, output_dir: str, options: dict[str, Any], yaml_path: str | None,
            overrides: tuple[str, ...]) -> dict[str, Any]:
    """The config keyword arguments: defaults < YAML < the command's options < `--set`."""
    from_yaml, from_set = checked_settings(method, yaml_path, overrides)
    settings: dict[str, Any] = {"output_dir": output_dir, "report_to": "none", "logging_steps": 1,
                                "save_strategy": "steps", "save_steps": 500, "seed": 42, **device_defaults()}
    settings.update(from_yaml)
    settings.update({k: v for k, v in options.items() if v is not None})
    settings.update(from_set)
    if "num_generations" in config_fields(method) and "num_generations" not in settings:
        # TRL divides a generation's completions (a batch on each device for each accumulation step) into groups.
        defaults = config_class(method).__dataclass_fields__
        completions = settings.get("per_device_train_batch_size", defaults["per_device_train_batch_size"].default) \
            * settings.get("gradient_accumulation_steps", defaults["gradient_accumulation_steps"].default)
        size = group_size(defaults["num_generations"].default, completions)
        if size is not None:
            settings["num_generations"] = size
    return settings


def build(method: str, settings: dict[str, Any]):
    try:
        return config_class(method)(**settings)
    except (TypeError, ValueError) as error:
        raise UsageError(f"{CONFIG_CLASSES[method]}: {error}") from None


def public(config) -> dict[str, Any]:
    """The config as JSON-ready values, secrets left out."""
    data = config.to_dict()
    return {k: (v if isinstance(v, (str, int, float, bool, type(None), list, dict)) else str(v))
            for k, v in data.items() if k not in SECRET_FIELDS}


if __name__ == "__main__":
    table = {"trl_version": installed_trl_version(), "fields": installed_fields()}
    print(write_atomically(FIELDS_FILE, json.dumps(table, indent=1) + "\n"))
