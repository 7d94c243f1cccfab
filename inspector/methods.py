"""Which TRL trainer takes which dataset type, and what it takes to get there.

This table is the inspector's promise about `convert`: every (type or dialect, method) pair it calls
convertible has a conversion in `converters`, and a test holds the two together.

>>> sorted(READY_TYPES["kto"])
['preference', 'unpaired_preference']
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import PurePath

from trlprep.inspector.dialects import DIALECT_DESCRIPTIONS

@dataclass(frozen=True)
class Method:
    """One TRL trainer as trlprep runs it: the class and where TRL keeps it, the data it takes, and what it needs
    beside data. A trainer that takes another's data (ORPO takes DPO's pairs) names that method in `data_as`: its
    verdicts, conversions and data rules are that method's, plus what its own entry adds (`columns`, `vision`).

    >>> METHOD["orpo"].base, METHOD["orpo"].config, METHOD["orpo"].experimental
    ('dpo', 'ORPOConfig', True)
    """

    name: str
    trainer: str
    summary: str
    module: str = "trl"
    data_as: str | None = None
    needs: tuple[str, ...] = ()  # beside data: "reward" (reward functions), "teacher" (a teacher model)
    columns: tuple[str, ...] = ()  # columns the data must carry beyond its type's
    vision: bool = False  # reads `image`/`images` in TRL 1.16 (`../shared/reference/vision-feasibility.md`)
    # The SFT output style `convert` writes for it, whatever `--style` says: "messages" for a trainer that reads
    # only `messages` (so only conversations), which then takes prompt-completion data once it is merged into them.
    style: str | None = None
    length_field: str = "max_length"  # the config field `--max-length` sets: what a generating trainer generates
    note: str | None = None  # what its trainer does with usable data that a user should know before training
    # What its trainer does to rows at max_length: a key of `inspector.tokens.trainer_effects` (its base's when
    # None); and how its optimizer steps are counted (`inspector.cost.run_cost`): "sft", "rows", "generations",
    # or None where trlprep has not held a count to the trainer's.
    effect: str | None = None
    steps: str | None = "rows"
    cli: bool = False  # `trl <name>` exists, so `--export-trl-config` can write its config

    @property
    def base(self) -> str:
        """The method whose data rules and conversions this one uses."""
        return self.data_as or self.name

    @property
    def effect_key(self) -> str:
        """The key of `inspector.tokens.trainer_effects` that says what its trainer does at max_length."""
        return self.effect or self.base

    @property
    def config(self) -> str:
        return self.trainer.replace("Trainer", "Config")

    @property
    def conversational(self) -> bool:
        """Whether it reads conversations only (its rows are `messages`)."""
        return self.style == "messages"

    @property
    def experimental(self) -> bool:
        return self.module.startswith("trl.experimental")


# TRL 1.16's trainers (`../shared/reference/trl-1.16-trainers.md`), the stable ones first. A test holds the list
# to the installed TRL: every stable trainer it exports is here, and each entry's class and config import.
REGISTRY = (
    Method("sft", "SFTTrainer", "supervised fine-tuning", vision=True, cli=True, steps="sft"),
    Method("dpo", "DPOTrainer", "direct preference optimization on chosen/rejected pairs", vision=True, cli=True),
    Method("grpo", "GRPOTrainer", "online RL: completions generated from prompts, scored by reward functions",
           needs=("reward",), vision=True, length_field="max_completion_length", cli=True, steps="generations"),
    Method("reward", "RewardTrainer", "a reward model (a scalar head) trained on chosen/rejected pairs", cli=True),
    Method("kto", "KTOTrainer", "KTO on completions labelled desirable or not", vision=True, cli=True),
    Method("rloo", "RLOOTrainer", "online RL with the leave-one-out baseline, on GRPO's prompts", data_as="grpo",
           needs=("reward",), vision=True, length_field="max_completion_length", cli=True, steps="generations"),
    Method("distillation", "DistillationTrainer", "on-policy distillation: the student generates, a teacher scores "
           "each token", data_as="grpo", needs=("teacher",), vision=True, length_field="max_completion_length",
           cli=True, steps=None),
    Method("orpo", "ORPOTrainer", "odds-ratio preference optimization, no reference model", "trl.experimental.orpo",
           data_as="dpo", effect="truncates"),
    Method("cpo", "CPOTrainer", "contrastive preference optimization", "trl.experimental.cpo", data_as="dpo",
           effect="truncates"),
    Method("tpo", "TPOTrainer", "triple preference optimization: pairs with a gold `reference` completion",
           "trl.experimental.tpo", data_as="dpo", columns=("reference",), effect="truncates"),
    # Its training step reads one `image` a row, not the `images` list TRL's other vision trainers (and `convert`) use.
    Method("online_dpo", "OnlineDPOTrainer", "DPO on pairs generated online and ranked by reward functions",
           "trl.experimental.online_dpo", data_as="grpo", needs=("reward",),
           length_field="max_new_tokens", steps=None),
    # GKD's collator renders `messages` (its last turn the completion), so conversations are written as messages.
    Method("gkd", "GKDTrainer", "generalized knowledge distillation from a teacher, on conversations",
           "trl.experimental.gkd", data_as="sft", needs=("teacher",), style="messages",
           note="GKDTrainer trains the last turn of each conversation only; `convert --to gkd` ends each at its "
                "last assistant turn"),
    Method("gold", "GOLDTrainer", "on-policy distillation across tokenizers", "trl.experimental.gold",
           data_as="sft", needs=("teacher",), vision=True, steps=None,
           note="GOLDTrainer trains the last assistant turn of each conversation only"),
    Method("sdft", "SDFTTrainer", "self-distillation: the model, shown a `privileged_context`, teaches itself",
           "trl.experimental.sdft", data_as="grpo", columns=("privileged_context",),
           length_field="max_completion_length", steps=None),
    Method("sdpo", "SDPOTrainer", "self-distillation from scored rollouts (a `privileged_context` column is used "
           "when present)", "trl.experimental.sdpo", data_as="grpo", needs=("reward",),
           length_field="max_completion_length", steps=None),
)
METHOD = {method.name: method for method in REGISTRY}
METHODS = tuple(METHOD)
# The methods with data rules and conversions of their own; every other method takes one of theirs.
BASE_METHODS = tuple(method.name for method in REGISTRY if method.data_as is None)
TRAINERS = {method.name: method.trainer for method in REGISTRY}
# What each need is, and the option of `train` that gives it.
NEED_NAMES = {"reward": "reward functions", "teacher": "a teacher model"}
NEED_OPTIONS = {"reward": "--reward-func", "teacher": "--teacher"}

COLUMN_MEANINGS = {"reference": "the gold completion of each pair",
                   "privileged_context": "what the teacher is shown and the student is not: a demonstration or hint"}

# TRL's own dataset types each trainer accepts as they are (docs: dataset_formats.md, "Which trainer..."), for
# the methods with data of their own; a test holds each type to the installed trainer by training a step on it.
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
    # No TRL 1.16 trainer takes step labels (PRMTrainer left TRL with the type): what they can honestly become.
    ("stepwise_supervision", "sft"): "a solution whose every step is labelled correct becomes prompt-completion, "
                                     "its steps joined by newlines; a solution with a wrong step is rejected (TC106)",
    ("stepwise_supervision", "grpo"): "prompt-only, a fully correct solution's steps kept in a `reference` column "
                                      "and its last step, which states the answer, in `answer`; a solution with a "
                                      "wrong step is rejected (TC106)",
    ("stepwise_supervision", "kto"): "a fully correct solution becomes a desirable completion; a solution with a "
                                     "wrong step, cut after its first wrong step, an undesirable one",
}
# The types whose rows KTO takes with their label as it is (a stepwise row's: every step correct), which must
# hold both labels.
LABELLED_TYPES = ("unpaired_preference", "stepwise_supervision")
# Said where stepwise data has no conversion (pairs): why, and what it can become instead.
STEPS_INSTEAD = {"stepwise_supervision": " (no TRL 1.16 trainer takes step labels: PRMTrainer was removed with "
                                         "the type; a stepwise row holds one solution, and pairing two solutions "
                                         "of a problem across rows is not guessed: convert it --to sft, grpo or "
                                         "kto)"}
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


def ready_types(method: str) -> frozenset[str]:
    """The TRL types the method's trainer takes as they are: its base's, less prompt-completion for a trainer
    that reads only `messages`.

    >>> sorted(ready_types("rloo")), sorted(ready_types("gkd"))
    (['prompt_completion', 'prompt_only'], ['language_modeling'])
    """
    entry = METHOD[method]
    return READY_TYPES[entry.base] - ({"prompt_completion"} if entry.style == "messages" else set())


def conversion_target(data_type: str, method: str, fmt: str) -> str | None:
    """What `convert` does to take a TRL type to the method, or None when it cannot.

    >>> conversion_target("preference", "sft", "conversational")
    'SFT on the chosen response of each pair'
    >>> conversion_target("language_modeling", "grpo", "standard") is None
    True
    >>> conversion_target("prompt_completion", "gkd", "conversational")
    'prompt and completion written as one `messages` conversation'
    """
    if data_type == "language_modeling" and fmt != "conversational":
        return None
    entry = METHOD[method]
    if data_type in READY_TYPES[entry.base] - ready_types(method):
        return "prompt and completion written as one `messages` conversation"
    return CONVERSIONS.get((data_type, entry.base))


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


def verdict(method: str, *, data_type: str, fmt: str, dialect: str, implicit_prompt: bool, rows: int,
            rejected: dict[str, int], repaired: dict[str, int], labels: dict, source: str | None,
            local: bool = True, images: bool = False, columns: frozenset[str] | set[str] = frozenset(),
            rejected_rows: dict[str, list[int]] | None = None) -> dict:
    """`{status, reason, command, rows_kept, rows_rejected, rejected_by_rule, rejected_rows}` for one method: what
    the data is for it, and what `convert --to method` keeps and rejects (by rule, with the first rows of each rule,
    `rejected_rows`) of its `rows`; `images`: image data, read
    as TRL's vision trainers read it (`inspector.vision`); `columns`: the data's columns, for a method that needs
    one beyond its type's (TPO's `reference`). A method that takes another's data (`Method.data_as`) gets that
    method's verdict under its own trainer's name.

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
    >>> verdict("tpo", data_type="preference", fmt="standard", dialect="trl", implicit_prompt=False,
    ...         rows=10, repaired={}, rejected={}, labels={}, source="p.jsonl")["reason"][:60]
    'TPOTrainer needs a `reference` column (the gold completion o'
    """
    entry = METHOD[method]
    missing = [column for column in entry.columns if column not in columns]
    if images and not entry.vision:
        found = incompatible(f"{entry.trainer} reads text only in TRL 1.16: the images would be dropped", rows)
    elif missing:
        found = incompatible(f"{entry.trainer} needs a `{missing[0]}` column ({COLUMN_MEANINGS[missing[0]]}) "
                             f"beside {entry.base.upper()}'s data; this data has none", rows)
    elif entry.conversational and fmt != "conversational":
        found = incompatible(f"{entry.trainer} reads conversations (`messages`); this is {fmt} data", rows)
    else:
        found = _base_verdict(method, entry.base, data_type=data_type, fmt=fmt, dialect=dialect,
                              implicit_prompt=implicit_prompt, rows=rows, rejected=rejected,
                              rejected_rows=rejected_rows or {}, repaired=repaired,
                              labels=labels, command=convert_command(source, method, local=local, images=images)
                              if source else None, images=images)
    if entry.note and found["status"] != "incompatible":
        found["reason"] += f"; {entry.note}"
    return {**found, "trainer": entry.trainer, "experimental": entry.experimental, "data_as": entry.data_as}


def _base_verdict(method: str, base: str, *, data_type: str, fmt: str, dialect: str, implicit_prompt: bool,
                  rows: int, rejected: dict[str, int], rejected_rows: dict[str, list[int]],
                  repaired: dict[str, int], labels: dict, command: str | None, images: bool) -> dict:
    type_name = TYPE_NAMES.get(data_type, data_type)
    rows_rejected = sum(rejected.values())
    ledger = {"rows_kept": rows - rows_rejected, "rows_rejected": rows_rejected,
              "rejected_by_rule": dict(sorted(rejected.items())), "rejected_rows": dict(sorted(rejected_rows.items()))}
    ready = data_type in ready_types(method)
    # TRL's vision path skips dataset preparation: it neither unpairs pairs for KTO nor extracts implicit prompts.
    vision_preparation = images and ((base == "kto" and data_type == "preference")
                                     or (base == "dpo" and implicit_prompt))
    # A dialect is rewritten anyway, so it is also put in the method's own shape (GRPO prompts, KTO pairs).
    conversion = None if ready and dialect == "trl" else conversion_target(data_type, method, fmt)
    if not ready and conversion is None:
        return incompatible(_needs(method, base) + f"; this is {type_name} data" + STEPS_INSTEAD.get(data_type, ""),
                            rows)
    if rows == 0 or rows_rejected >= rows:
        return {**incompatible(f"no row is usable for {method} ({_rejections(rejected, rows)})", rows), **ledger}
    if base == "kto" and data_type in LABELLED_TYPES and (not labels.get(True) or not labels.get(False)):
        return {**incompatible("KTO needs both desirable and undesirable examples; every label has one value",
                                rows), **ledger}
    steps = reading_steps(dialect, images)
    if vision_preparation and conversion is None:
        steps.append(CONVERSIONS[(data_type, base)] if base == "kto" else "the implicit prompt extracted")
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


def _needs(method: str, base: str) -> str:
    """What the method needs, said as its base's need (`NEEDS`), under the method's trainer when it is another."""
    return NEEDS[base] if method == base else f"{TRAINERS[method]} takes {base.upper()}'s data: {NEEDS[base]}"


def _rejections(rejected: dict[str, int], rows: int) -> str:
    counts = ", ".join(f"{rule} x{count}" for rule, count in sorted(rejected.items()))
    return f"{sum(rejected.values())} of {rows} rows are rejected ({counts})"


def incompatible(reason: str, rows: int) -> dict:
    """Nothing is converted: `convert --to` refuses the data before reading a row."""
    return {"status": "incompatible", "reason": reason, "command": None, "rows_kept": 0, "rows_rejected": 0,
            "rejected_by_rule": {}, "rejected_rows": {}}


def _ready_reason(method: str, data_type: str, fmt: str, implicit_prompt: bool) -> str:
    reason = f"{TRAINERS[method]} takes {fmt} {TYPE_NAMES[data_type]} data as it is"
    if implicit_prompt and METHOD[method].base in ("dpo", "kto"):
        reason += " (it extracts the prompt from chosen/rejected; `convert` does it message by message instead)"
    if METHOD[method].base == "kto" and data_type == "preference":
        reason += " and unpairs each pair into a desirable and an undesirable example"
    if METHOD[method].base == "sft" and data_type == "prompt_completion":
        reason += "; the loss is on the completion only"
    return reason


def installed(method: str) -> bool | None:
    """Whether the installed TRL has the method's trainer, read without importing it (that costs torch): a
    stable trainer is among the names `trl` exports, an experimental one's module is there; None without TRL."""
    import importlib.util
    import warnings

    if importlib.util.find_spec("trl") is None:
        return None
    entry = METHOD[method]
    if not entry.experimental:
        import trl

        return entry.trainer in dir(trl)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TRL warns on every look into trl.experimental
        return importlib.util.find_spec(entry.module) is not None


def method_table() -> list[dict]:
    """Every method: its trainer and where TRL keeps it, the TRL dataset types it takes as they are and those
    `convert` rewrites for it, what it needs beside data, whether it reads images, its config class, whether
    `trl <method>` runs it, and whether the installed TRL has it.

    >>> row = next(r for r in method_table() if r["method"] == "rloo")
    >>> row["takes"], row["needs"], row["data_as"]
    (['prompt_completion', 'prompt_only'], ['reward'], 'grpo')
    """
    rows = []
    for entry in REGISTRY:
        converts = sorted({data_type for data_type, base in CONVERSIONS if base == entry.base}
                          | set(READY_TYPES[entry.base]) - ready_types(entry.name))
        rows.append({"method": entry.name, "trainer": entry.trainer, "module": entry.module,
                     "status": "experimental" if entry.experimental else "stable", "summary": entry.summary,
                     "takes": sorted(ready_types(entry.name)), "converts_from": converts,
                     "conversational_only": entry.conversational, "needs": list(entry.needs),
                     "columns": list(entry.columns), "data_as": entry.data_as, "vision": entry.vision,
                     "config": entry.config, "length_field": entry.length_field, "trl_cli": entry.cli,
                     "installed": installed(entry.name)})
    return rows
