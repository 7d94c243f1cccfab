"""Which TRL trainer takes which dataset type, and what it takes to get there.

This table is the inspector's promise about `convert`: every (type or dialect, method) pair it calls
convertible has a conversion in `converters`, and a test holds the two together.

>>> sorted(READY_TYPES["kto"])
['preference', 'unpaired_preference']
"""

from __future__ import annotations

import shlex
from pathlib import PurePath

from trlprep.inspector.dialects import DIALECT_DESCRIPTIONS

METHODS = ("sft", "dpo", "grpo", "reward", "kto")
TRAINERS = {"sft": "SFTTrainer", "dpo": "DPOTrainer", "grpo": "GRPOTrainer", "reward": "RewardTrainer",
            "kto": "KTOTrainer"}

# TRL's own dataset types each trainer accepts as they are (docs: dataset_formats.md, "Which trainer...").
READY_TYPES = {
    "sft": frozenset({"language_modeling", "prompt_completion"}),
    "dpo": frozenset({"preference"}),
    "grpo": frozenset({"prompt_only", "prompt_completion"}),
    "reward": frozenset({"preference"}),
    "kto": frozenset({"unpaired_preference", "preference"}),
}
# (type, method) -> what `convert` does; only conversions TRL's documented recipes call well defined.
CONVERSIONS = {
    ("preference", "sft"): "SFT on the chosen response of each pair",
    ("unpaired_preference", "sft"): "SFT on the rows labelled true (desirable)",
    ("language_modeling", "grpo"): "prompts are the turns before the last assistant turn, which is kept in a "
                                   "`reference` column for reward functions",
    ("prompt_completion", "grpo"): "prompt-only, the completion kept in a `reference` column for reward functions",
    ("preference", "grpo"): "prompt-only, the chosen response kept in a `reference` column",
    ("unpaired_preference", "grpo"): "prompt-only, the completion kept in a `reference` column and the label in "
                                     "`desirable`",
    ("preference", "kto"): "each pair becomes a desirable and an undesirable example",
}
# What reading each dialect does, said by the dialect's own object (`inspector.dialects`): a dialect added there
# is described here too.
DIALECTS = DIALECT_DESCRIPTIONS
TYPE_NAMES = {
    "language_modeling": "language modeling",
    "prompt_only": "prompt-only",
    "prompt_completion": "prompt-completion",
    "preference": "preference",
    "unpaired_preference": "unpaired preference",
    "stepwise_supervision": "stepwise supervision",
    "unknown": "unknown",
}
NEEDS = {
    "sft": "SFT needs text, messages, or prompt/completion",
    "dpo": "DPO needs chosen/rejected pairs",
    "grpo": "GRPO needs prompts",
    "reward": "Reward modeling needs chosen/rejected pairs",
    "kto": "KTO needs completions labelled true/false, or chosen/rejected pairs",
}


def conversion_target(data_type: str, method: str, fmt: str) -> str | None:
    """What `convert` does to take a TRL type to the method, or None when it cannot.

    >>> conversion_target("preference", "sft", "conversational")
    'SFT on the chosen response of each pair'
    >>> conversion_target("language_modeling", "grpo", "standard") is None
    True
    """
    if data_type == "language_modeling" and fmt != "conversational":
        return None
    return CONVERSIONS.get((data_type, method))


def convert_command(source: str, method: str, *, local: bool = True, images: bool = False) -> str:
    """The exact `convert` command for a source and a method; a local file's output goes beside it, as Parquet for
    image data (the images embedded: they load wherever the file goes), else as JSON lines.

    >>> convert_command("data/my set.json", "dpo")
    "uv run convert --dataset 'data/my set.json' --to dpo --output 'data/my set.dpo.jsonl'"
    >>> convert_command("trl-lib/ultrafeedback_binarized", "kto", local=False)
    'uv run convert --dataset trl-lib/ultrafeedback_binarized --to kto --output ultrafeedback_binarized.kto.jsonl'
    """
    path = PurePath(source.rstrip("/"))
    stem = path.name.replace("*", "all")
    for suffix in (".gz", ".jsonl", ".ndjson", ".json", ".parquet", ".csv", ".arrow"):
        stem = stem.removesuffix(suffix)
    name = f"{stem}.{method}.{'parquet' if images else 'jsonl'}"
    output = str(path.with_name(name)) if local and "*" not in source else name
    return f"uv run convert --dataset {shlex.quote(source)} --to {method} --output {shlex.quote(output)}"


def reading_steps(dialect: str, images: bool) -> list[str]:
    """How rows of a dialect are read into their TRL type, as verdicts and conversion plans say it: nothing for
    TRL's own columns, nor for image rows' typed parts (`inspector.vision`), which stay as they are.

    >>> reading_steps("trl", False), reading_steps("typed_content", True), reading_steps("sharegpt", True)[0][:16]
    ([], [], 'ShareGPT from/va')
    """
    return [] if dialect == "trl" or (images and dialect == "typed_content") else [DIALECTS[dialect]]


# The methods whose TRL 1.16 trainer reads images (`../shared/reference/vision-feasibility.md`).
VISION_METHODS = ("sft", "dpo", "grpo", "kto")


def verdict(method: str, *, data_type: str, fmt: str, dialect: str, implicit_prompt: bool, rows: int,
            rejected: dict[str, int], repaired: dict[str, int], labels: dict, source: str | None,
            local: bool = True, images: bool = False) -> dict:
    """`{status, reason, command, rows_kept, rows_rejected, rejected_by_rule}` for one method: what the data is
    for it, and what `convert --to method` keeps and rejects (by rule) of its `rows`; `images`: image data, read
    as TRL's vision trainers read it (`inspector.vision`).

    >>> verdict("dpo", data_type="preference", fmt="conversational", dialect="trl", implicit_prompt=False,
    ...         rows=10, repaired={}, rejected={}, labels={}, source="p.jsonl")["status"]
    'ready'
    >>> v = verdict("sft", data_type="unpaired_preference", fmt="standard", dialect="trl", implicit_prompt=False,
    ...             rows=10, repaired={}, rejected={"TC101": 4}, labels={}, source="p.jsonl")
    >>> v["status"], v["rows_kept"], v["reason"]
    ('convertible', 6, 'SFT on the rows labelled true (desirable); 4 of 10 rows are rejected (TC101 x4)')
    >>> verdict("dpo", data_type="language_modeling", fmt="standard", dialect="trl", implicit_prompt=False,
    ...         rows=10, repaired={}, rejected={}, labels={}, source="p.jsonl")["reason"]
    'DPO needs chosen/rejected pairs; this is language modeling data'
    """
    command = convert_command(source, method, local=local, images=images) if source else None
    type_name = TYPE_NAMES.get(data_type, data_type)
    rows_rejected = sum(rejected.values())
    ledger = {"rows_kept": rows - rows_rejected, "rows_rejected": rows_rejected,
              "rejected_by_rule": dict(sorted(rejected.items()))}
    ready = data_type in READY_TYPES[method]
    # TRL's vision path skips dataset preparation: it neither unpairs pairs for KTO nor extracts implicit prompts.
    vision_preparation = images and ((method == "kto" and data_type == "preference")
                                     or (method == "dpo" and implicit_prompt))
    # A dialect is rewritten anyway, so it is also put in the method's own shape (GRPO prompts, KTO pairs).
    conversion = None if ready and dialect == "trl" else conversion_target(data_type, method, fmt)
    if images and method not in VISION_METHODS:
        return incompatible(f"{TRAINERS[method]} reads text only in TRL 1.16: the images would be dropped", rows)
    if not ready and conversion is None:
        extra = " (TRL's experimental PRMTrainer takes it)" if data_type == "stepwise_supervision" else ""
        return incompatible(f"{NEEDS[method]}; this is {type_name} data{extra}", rows)
    if rows == 0 or rows_rejected >= rows:
        return {**incompatible(f"no row is usable for {method} ({_rejections(rejected, rows)})", rows), **ledger}
    if method == "kto" and data_type == "unpaired_preference" and (not labels.get(True) or not labels.get(False)):
        return {**incompatible("KTO needs both desirable and undesirable examples; every label has one value",
                                rows), **ledger}
    steps = reading_steps(dialect, images)
    if vision_preparation and conversion is None:
        steps.append(CONVERSIONS[(data_type, method)] if method == "kto" else "the implicit prompt extracted")
    if conversion:
        steps.append(conversion)
    if repaired:
        steps.append("repaired: " + ", ".join(f"{rule} x{count}" for rule, count in sorted(repaired.items())))
    if rows_rejected:
        steps.append(_rejections(rejected, rows))
    if steps:
        return {"status": "convertible", "reason": "; ".join(steps), "command": command, **ledger}
    return {"status": "ready", "reason": _ready_reason(method, data_type, fmt, implicit_prompt), "command": None,
            **ledger}


def _rejections(rejected: dict[str, int], rows: int) -> str:
    counts = ", ".join(f"{rule} x{count}" for rule, count in sorted(rejected.items()))
    return f"{sum(rejected.values())} of {rows} rows are rejected ({counts})"


def incompatible(reason: str, rows: int) -> dict:
    """Nothing is converted: `convert --to` refuses the data before reading a row."""
    return {"status": "incompatible", "reason": reason, "command": None, "rows_kept": 0, "rows_rejected": 0,
            "rejected_by_rule": {}}


def _ready_reason(method: str, data_type: str, fmt: str, implicit_prompt: bool) -> str:
    reason = f"{TRAINERS[method]} takes {fmt} {TYPE_NAMES[data_type]} data as it is"
    if implicit_prompt and method in ("dpo", "kto"):
        reason += " (it extracts the prompt from chosen/rejected; `convert` does it message by message instead)"
    if method == "kto" and data_type == "preference":
        reason += " and unpairs each pair into a desirable and an undesirable example"
    if method == "sft" and data_type == "prompt_completion":
        reason += "; the loss is on the completion only"
    return reason
