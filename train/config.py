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
import math
from importlib import metadata
from pathlib import Path
from typing import Any

from trlprep.errors import UsageError
from trlprep.files import read_small_file, write_atomically
from trlprep.inspector.methods import METHOD
from trlprep.options import BadValue, count, value_reader, whole_from
from trlprep.train.options import RunOptions

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
    >>> parse_value("[q_proj")
    Traceback (most recent call last):
    trlprep.errors.UsageError: --set value '[q_proj' is not valid YAML (while parsing a flow sequence)
    """
    import yaml

    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as error:
        raise UsageError(f"--set value {text!r} is not valid YAML ({str(error).splitlines()[0]})") from None
    return yaml_number(value)


def yaml_number(value: Any) -> Any:
    """A value as YAML read it, a string that writes a number (YAML 1.1 reads `1e-5` as one) read as that number.

    >>> yaml_number("1e-5"), yaml_number("cosine"), yaml_number(3)
    (1e-05, 'cosine', 3)
    """
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
        data = yaml.safe_load(read_small_file(path, "--config"))
    except FileNotFoundError:
        raise UsageError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"--config {path}: cannot read it ({getattr(error, 'strerror', None) or error})") from None
    except yaml.YAMLError as error:
        raise UsageError(f"--config {path}: invalid YAML ({str(error).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: expected a mapping of config keys")
    return {key: yaml_number(value) for key, value in data.items()}


# The JSON kinds of the Python types a config field is annotated with (`kinds`).
KINDS = {type(None): "null", bool: "bool", int: "int", float: "float", str: "str", list: "list", tuple: "list",
         dict: "dict"}


def kinds(annotation: Any) -> list[str] | None:
    """The kinds of value a field annotated so takes (`KINDS`; an enum's members are named by strings), or None
    when one of its types is a class of its own (TRL checks those).

    >>> import enum, typing
    >>> class Strategy(enum.Enum):
    ...     STEPS = "steps"
    >>> kinds(float), kinds(int | None), kinds(Strategy | str), kinds(typing.Literal[False] | str), kinds(Path)
    (['float'], ['int', 'null'], ['str'], ['bool', 'str'], None)
    """
    import enum
    import types
    import typing

    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    found = set()
    for member in typing.get_args(annotation) if union else (annotation,):
        origin = typing.get_origin(member) or member
        if origin is typing.Literal:
            found |= {KINDS.get(type(value), "str") for value in typing.get_args(member)}
        elif origin in KINDS:
            found.add(KINDS[origin])
        elif isinstance(origin, type) and issubclass(origin, enum.Enum):
            found.add("str")
        else:
            return None
    return sorted(found)


def installed_fields() -> dict[str, dict[str, list[str] | None]]:
    """The fields of each method's config class in the installed TRL, with the kinds of value each takes; a method
    whose trainer it lacks (removed, or not yet there) is left out."""
    import typing

    fields = {}
    for method in CONFIG_CLASSES:
        try:
            config = config_class(method)
        except (ImportError, AttributeError):
            continue
        hints = typing.get_type_hints(config)
        fields[method] = {f.name: kinds(hints.get(f.name)) for f in sorted(dataclasses.fields(config),
                                                                           key=lambda f: f.name) if f.init}
    return fields


def installed_trl_version() -> str | None:
    try:
        return metadata.version("trl")
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def config_field_kinds(method: str) -> dict[str, list[str] | None]:
    """The fields of the method's config class with the kinds of value each takes: from the table when it is of the
    installed TRL version (or no TRL is installed), else from the installed classes."""
    table = json.loads(FIELDS_FILE.read_text())
    installed = installed_trl_version()
    fields = table["fields"] if installed is None or installed == table["trl_version"] else installed_fields()
    if method not in fields:
        raise UsageError(f"{METHOD[method].trainer} is not in TRL {installed or table['trl_version']}: "
                         f"install the TRL version that has it")
    return fields[method]


def config_fields(method: str) -> frozenset[str]:
    """The names of the fields of the method's config class."""
    return frozenset(config_field_kinds(method))


def kind_of(value: Any) -> str:
    """The kind (`KINDS`) of a value as YAML reads it.

    >>> kind_of(True), kind_of(3), kind_of("cosine"), kind_of([1])
    ('bool', 'int', 'str', 'list')
    """
    return next((kind for python, kind in KINDS.items() if type(value) is python), type(value).__name__)


def fits(value: Any, accepted: list[str] | None) -> bool:
    """Whether a value can go in a field taking the `accepted` kinds (None: any, TRL checks it). A float must be
    finite; a whole number fits a float field; a number fits a string field (`--set hub_model_id=2024` reads it
    as one).

    >>> fits(0.1, ["float"]), fits(3, ["float"]), fits("banana", ["float"]), fits(float("nan"), ["float"])
    (True, True, False, False)
    >>> fits(2.5, ["int"]), fits(1.0, ["int", "null"]), fits(None, ["int", "null"]), fits(5, ["str"])
    (False, False, True, True)
    """
    kind = kind_of(value)
    if kind == "float" and not math.isfinite(value):
        return False
    if accepted is None or kind in accepted:
        return True
    return (kind == "int" and "float" in accepted) or (kind in ("int", "float") and "str" in accepted)


# The TRL fields whose range TRL leaves unchecked (a batch of 0 divides by zero, a negative learning rate trains
# backwards), read by the reader of the command-line flag that sets the field (`--batch-size` sets
# per_device_train_batch_size), or by the same kind of reader where no flag sets it. Not here: max_steps, whose
# -1 is TRL's own "train by epochs".
FIELD_VALUES = {
    "learning_rate": value_reader(RunOptions, "learning_rate"),
    "num_train_epochs": value_reader(RunOptions, "epochs"),
    "per_device_train_batch_size": value_reader(RunOptions, "batch_size"),
    "per_device_eval_batch_size": value_reader(RunOptions, "batch_size"),
    "gradient_accumulation_steps": count,
    "seed": value_reader(RunOptions, "seed"),
    "data_seed": whole_from(0),
    **{field: value_reader(RunOptions, "max_length") for field in
       ("max_length", "max_prompt_length", "max_completion_length", "max_new_tokens")},
}


def check_keys(method: str, settings: dict[str, Any], origin: str) -> None:
    """Every key must be a field of the method's TRL config, and its value of the field's type (a float finite)
    and, for a field of FIELD_VALUES, in its range; otherwise name the closest fields, the type the field takes or
    what its reader wants."""
    fields = config_field_kinds(method)
    for key, value in settings.items():
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UsageError(f"{origin}: {key!r} is not a field of {CONFIG_CLASSES[method]}{hint}")
        if not fits(value, fields[key]):
            wanted = " or ".join("a finite number" if kind == "float" else KIND_WORDS[kind] for kind in fields[key])
            raise UsageError(f"{origin}: {key}={value!r}: {CONFIG_CLASSES[method]}.{key} takes {wanted}")
        if key in FIELD_VALUES and value is not None:
            try:
                FIELD_VALUES[key](value)
            except BadValue as error:
                raise UsageError(f"{origin}: {key}: {error}") from None


KIND_WORDS = {"null": "null", "bool": "true or false", "int": "a whole number", "str": "a string",
              "list": "a list", "dict": "a mapping"}


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


def table_text(version: str | None, fields: dict[str, dict[str, list[str] | None]]) -> str:
    """The fields table as JSON, a field a line (its kinds on it), so a TRL upgrade's diff reads field by field."""
    methods = [f"  {json.dumps(method)}: {{\n" + ",\n".join(f"   {json.dumps(name)}: {json.dumps(accepted)}"
                                                         for name, accepted in names.items()) + "\n  }"
               for method, names in fields.items()]
    return f'{{\n "trl_version": {json.dumps(version)},\n "fields": {{\n' + ",\n".join(methods) + "\n }\n}\n"


if __name__ == "__main__":
    print(write_atomically(FIELDS_FILE, table_text(installed_trl_version(), installed_fields())))
