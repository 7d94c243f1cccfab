"""`train`: inspect → convert → run TRL's trainer for the method, in one call.

Data that no conversion can make usable is refused before torch, trl or the model are touched, so the answer
comes in seconds. Everything a run used (data report, ledger, resolved config, metrics) lands in
`<output_dir>/trlprep-run.json`.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from trlprep.converters import convert
from trlprep.inspector import inspect_dataset
from trlprep.errors import DataRefused, OutputError, UsageError, only_rule
from trlprep.files import copy_atomically, write_atomically
from trlprep.train.launch import (ACCELERATE_PRESETS, check_export_targets, exported_data_dir, exported_rejects,
                                  exported_run_file)
from trlprep.train.options import RunOptions
from trlprep.train.vision import (first_row, is_vision_dataset, load_training_data, maybe_vision_settings,
                                  vision_model_and_processor)
from trlprep.options import options_from
from trlprep.inspector.methods import METHOD, METHODS, NEED_NAMES, NEED_OPTIONS, TRAINERS
from trlprep.inspector.cost import RunShape, run_cost
from trlprep.inspector.summary import cost_lines, split_sum, written_sum

RUN_FILE = "trlprep-run.json"
# What each trainer drops while tokenizing (TRL 1.x), for the message when nothing is left; by the key of what
# it does at max_length (`Method.effect_key`).
DROPS = {
    "sft": "it drops rows whose completion is cut away entirely by",
    "dpo": "it drops rows whose prompt alone fills",
    "kto": "it drops rows whose prompt alone fills",
    "reward": "it drops pairs longer than",
    "grpo": "it drops nothing, yet none is left under",
    "truncates": "it drops nothing, yet none is left under",
}
DATA_STEM = "data"


@dataclass
class TrainResult:
    method: str
    model: str
    output_dir: str
    report: dict
    ledger: dict
    eval_ledger: dict | None
    config: dict
    reward_funcs: list[str]
    metrics: dict = field(default_factory=dict)
    dry_run: bool = False
    resumed_from: str | None = None
    exported: dict | None = None
    tokens: dict | None = None
    rows_trained: int | None = None  # rows the trainer kept after its own preparation (None: not trained here)
    accounting: dict | None = None  # `row_accounting`: where the rows read went, up to those trained
    job: dict | None = None
    job_url: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def to_text(self) -> str:
        """The closing summary (the ledger and the trainer's effect were announced before training)."""
        if self.job:
            return (f"job: {self.job['script']} {' '.join(self.job['script_args'])}\n"
                    f"flavor {self.job['flavor']}, timeout {self.job['timeout']}, secrets by name: "
                    f"{', '.join(self.job['secrets'])}\n"
                    + (f"submitted: {self.job_url}" if self.job_url else "dry run: not submitted") + "\n")
        if self.exported:
            return f"wrote {self.exported['config']}; run: {self.exported['command']}\n"
        if self.dry_run:
            return f"dry run: config resolved for {self.method}; nothing trained ({self.output_dir}/{RUN_FILE})\n"
        loss = self.metrics.get("train_loss")
        return (f"trained {self.method} on {self.model}: {self.metrics.get('train_steps_per_second', 0)} steps/s"
                + (f", train_loss {loss:.4f}" if loss is not None else "") + f"; saved to {self.output_dir}\n")

    def to_markdown(self) -> str:
        """The run in a few lines to paste into an issue: data, what the trainer did with it, the outcome."""
        lines = [f"**{self.method}** on `{self.model}`", ""]
        if self.ledger:
            lines.append(f"- {ledger_line(self.ledger)}")
        if self.tokens:
            lines.append(f"- {effect_line(self.method, self.tokens)}")
        if self.accounting is not None:
            lines.append(f"- {kept_line(self.method, self.accounting)}")
        lines.append(f"- {self.to_text().strip()}")
        return "\n".join(lines) + "\n"


def usable_report(method: str, dataset: Any, *, split=None, config_name=None, revision=None, encoding=None,
                  progress: bool = False):
    """The inspection report of `dataset` for `method`; `DataRefused` when no conversion can make it usable."""
    report = inspect_dataset(dataset, method=method, split=split, dataset_config=config_name, revision=revision,
                             encoding=encoding, progress=progress)
    verdict = report.methods[method]
    if verdict["status"] == "incompatible":
        raise DataRefused(f"{report.source}: not usable for {method}: {verdict['reason']}",
                          rule=only_rule(verdict["rejected_by_rule"]))
    return report


def prepare_data(method: str, dataset: Any, *, output_dir: Path, eval_dataset: Any = None,
                 test_size: float | None = None, split=None, config_name=None, revision=None, encoding=None,
                 seed: int = 42, progress: bool = False, html: str | Path | None = None, checked: list[dict] | None = None,
                 model: str | None = None) -> tuple[dict, dict, dict | None, dict[str, Path]]:
    """Inspect and convert the data into `<output_dir>/data*.jsonl`; refuse data no conversion can use.
    `dataset` is one source, or a mixture: a list of sources as `mixture_sources` reads them. `html` writes the
    converted data's page (`convert --html`). `checked`: the `usable_report`s of the sources (as dicts), when the
    caller made them already (a recipe checks every stage's data before preparing any), so they are not made twice.
    `model`: the model trained, whose chat template's form the reasoning traces are written in (`convert --model`).
    `encoding`: the text encoding of the dataset's JSON and CSV files (None: UTF-8), for one source.

    Returns (report, ledger, eval ledger, files by split: train and, when asked, test).
    """
    data_dir = output_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(dataset, (list, tuple)):
        if test_size is not None or html is not None or encoding is not None:
            raise UsageError("a mixture takes neither test_size (hold rows out with eval_dataset), html (write "
                             "each source's page with convert --html) nor encoding (convert a source in another "
                             "encoding with convert --encoding): each source is converted on its own")
        report, ledger, train_file = prepare_mixture(method, mixture_sources(dataset), data_dir=data_dir, seed=seed,
                                                     progress=progress, checked=checked, model=model)
        files = {"train": train_file}
    else:
        report = checked[0] if checked else usable_report(
            method, dataset, split=split, config_name=config_name, revision=revision, encoding=encoding,
            progress=progress).to_dict()
        result = convert(dataset, to=method, output=data_dir / f"{DATA_STEM}.jsonl", test_size=test_size,
                         overwrite=True, split=split, dataset_config=config_name, revision=revision, encoding=encoding,
                         progress=progress, html=html, model=model)
        ledger = result.to_dict()
        files = {("train" if s == "all" else s): Path(p) for s, p in result.outputs.items()}
    eval_ledger = None
    if eval_dataset is not None:
        eval_report = inspect_dataset(eval_dataset, method=method)
        if eval_report.methods[method]["status"] == "incompatible":
            raise DataRefused(f"--eval-dataset {eval_report.source}: not usable for {method}: "
                              f"{eval_report.methods[method]['reason']}")
        eval_result = convert(eval_dataset, to=method, output=data_dir / "eval.jsonl", overwrite=True, model=model)
        files["test"] = Path(eval_result.outputs["all"])
        eval_ledger = eval_result.to_dict()
    return report, ledger, eval_ledger, files


SOURCE_KEYS = ("path", "split", "dataset_config", "revision", "weight")


def mixture_sources(sources: list) -> list[dict]:
    """A mixture's sources, each a path (or Hub id) or a mapping of SOURCE_KEYS; weights on all or on none.

    >>> mixture_sources(["a.jsonl", {"path": "b.jsonl", "split": "train_sft"}])[1]
    {'path': 'b.jsonl', 'split': 'train_sft', 'dataset_config': None, 'revision': None, 'weight': None}
    >>> mixture_sources([{"path": "a.jsonl", "weight": 0.7}, {"path": "b.jsonl"}])
    Traceback (most recent call last):
    ...
    trlprep.errors.UsageError: datasets: give every source a weight, or none (all of each): b.jsonl has none
    """
    import difflib

    checked = []
    for source in sources:
        source = {"path": source} if isinstance(source, (str, Path)) else source
        if not isinstance(source, dict) or not source.get("path"):
            raise UsageError(f"datasets: each source is a path or a mapping with `path` (got {source!r})")
        for key in source:
            if key not in SOURCE_KEYS:
                close = difflib.get_close_matches(str(key), SOURCE_KEYS, n=1)
                raise UsageError(f"datasets: unknown key {key!r} in {source['path']}"
                                 + (f"; did you mean {close[0]}?" if close else f"; the keys are {', '.join(SOURCE_KEYS)}"))
        weight = source.get("weight")
        if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight <= 0):
            raise UsageError(f"datasets: the weight of {source['path']} must be a number above 0 (got {weight!r})")
        checked.append({key: source.get(key) for key in SOURCE_KEYS} | {"path": str(source["path"])})
    weighted = [source["weight"] is not None for source in checked]
    if any(weighted) and not all(weighted):
        missing = next(source["path"] for source in checked if source["weight"] is None)
        raise UsageError(f"datasets: give every source a weight, or none (all of each): {missing} has none")
    return checked


def mixture_counts(sizes: list[int], weights: list[float] | None) -> list[int]:
    """Rows each source gives a mixture, by TRL's rule (`trl.get_dataset`): weights are shares of the mixture,
    normalised, and the mixture is as large as it can be with no source repeated; without weights, all of each.

    >>> mixture_counts([1000, 300], [0.7, 0.3]), mixture_counts([1000, 300], None)
    ([700, 300], [1000, 300])
    """
    if weights is None:
        return list(sizes)
    shares = [weight / sum(weights) for weight in weights]
    total = min(size / share for size, share in zip(sizes, shares))
    return [round(share * total) for share in shares]


def prepare_mixture(method: str, sources: list[dict], *, data_dir: Path, seed: int, progress: bool = False,
                    checked: list[dict] | None = None, model: str | None = None) -> tuple[dict, dict, Path]:
    """Each source inspected and converted on its own (`<data_dir>/sources/<n>.jsonl`, one ledger each), then
    mixed by TRL's own `get_dataset` (what `trl <method> --config` does with the same `datasets:` list) into
    `<data_dir>/data.jsonl`. With weights, each source is shuffled with `seed` as it is converted, so that the rows
    a share keeps are drawn at random, not the file's first ones in its order.

    Returns (report: each source's, ledger: the sums with each source's ledger and rows mixed, the mixed file).
    """
    import datasets
    from trl.scripts.utils import DatasetConfig, DatasetMixtureConfig, get_dataset

    datasets.disable_progress_bars()
    weighted = sources[0]["weight"] is not None
    (data_dir / "sources").mkdir(parents=True, exist_ok=True)
    reports, ledgers = [], []
    for number, source in enumerate(sources, start=1):
        options = {"split": source["split"], "config_name": source["dataset_config"], "revision": source["revision"]}
        reports.append(checked[number - 1] if checked else
                       usable_report(method, source["path"], progress=progress, **options).to_dict())
        converted = convert(source["path"], to=method, output=data_dir / "sources" / f"{number}.jsonl",
                            overwrite=True, shuffle=weighted, seed=seed, progress=progress, split=source["split"],
                            dataset_config=source["dataset_config"], revision=source["revision"], model=model)
        ledgers.append({"source": source["path"], "weight": source["weight"], **converted.to_dict()})
    empty = [ledger["source"] for ledger in ledgers if not ledger["rows_out"]]
    if empty:
        raise DataRefused(f"datasets: {', '.join(empty)} kept no row, so no mixture can draw from it")
    columns = [sorted(_columns(Path(ledger["outputs"]["all"]))) for ledger in ledgers]
    if any(names != columns[0] for names in columns):
        listed = "; ".join(f"{ledger['source']}: {', '.join(names)}" for ledger, names in zip(ledgers, columns))
        raise DataRefused(f"datasets: the sources convert to different {method} shapes ({listed}); a trainer "
                          f"takes one shape: convert them to one (convert --conversational, or --style)")
    counts = mixture_counts([ledger["rows_out"] for ledger in ledgers],
                            [source["weight"] for source in sources] if weighted else None)
    mixed = get_dataset(DatasetMixtureConfig(datasets=[
        DatasetConfig(path="json", data_files=ledger["outputs"]["all"], fraction=source["weight"])
        for source, ledger in zip(sources, ledgers)]))["train"]
    if len(mixed) != sum(counts):  # TRL's rule changed: the counts below would be wrong
        raise RuntimeError(f"trl.get_dataset mixed {len(mixed)} rows where its rule gives {sum(counts)}")
    train_file = data_dir / f"{DATA_STEM}.jsonl"
    with tempfile.NamedTemporaryFile("wb", dir=data_dir, suffix=".tmp", delete=False) as handle:
        mixed.to_json(handle, lines=True, force_ascii=False)
    Path(handle.name).replace(train_file)
    for ledger, count in zip(ledgers, counts):
        ledger["rows_mixed"] = count
    rejected: dict[str, int] = {}
    for ledger in ledgers:
        for rule, count in ledger["rejected_by_rule"].items():
            rejected[rule] = rejected.get(rule, 0) + count
    ledger = {key: sum(source[key] for source in ledgers) for key in ("rows_in", "rows_kept", "rows_rejected",
                                                                      "rows_out", "rows_added")}
    causes = {source["rows_added_by"] for source in ledgers if source["rows_added_by"]}
    ledger.update(rejected_by_rule=rejected, rows_mixed=len(mixed), sources=ledgers,
                  rows_added_by=", ".join(sorted(causes)) or None, rows_left_out=ledger["rows_out"] - len(mixed),
                  rejects=", ".join(source["rejects"] for source in ledgers if source.get("rejects")) or None)
    report = {"sources": reports, "dialect": next((r["dialect"] for r in reports if r["dialect"] == "turn_flags"),
                                                  reports[0]["dialect"])}
    return report, ledger, train_file


def token_preflight_or_refuse(method: str, model: str, train_file: Path, settings: dict,
                              max_dropped: float) -> dict:
    """Tokenize the converted rows with the model's tokenizer (its processor, for image data: image paths are
    relative to the file's folder); refuse when the trainer would drop more than `max_dropped` of them (or cut
    away their whole completion); for image data, when the model would not see the images or max_length cuts
    inside one (TRL stops mid-training); for tool calls, when the template leaves them out, encodes their arguments
    twice or fails on them. For SFT, the report's `cost` holds the sequences it makes of the rows (packed or not),
    its steps counted on one device (`run_cost` counts them for the run)."""
    from trlprep.inspector.rules.tokens import (IMAGE_CUT_BY_MAX_LENGTH, IMAGES_NOT_RENDERED, TEMPLATE_WITHOUT_TOOLS,
                                                TOOL_CALL_DOUBLE_ENCODED, TOOL_CALL_TEMPLATE_ERROR)
    from trlprep.inspector.sources import open_source
    from trlprep.inspector.tokens import token_preflight

    findings: dict[str, int] = {}
    first_detail: dict[str, tuple[int | None, str]] = {}

    def collect(rule, row, detail):
        findings[rule] = findings.get(rule, 0) + 1
        first_detail.setdefault(rule, (row, detail))

    report = token_preflight(open_source(train_file).rows(), model=model, max_length=settings.get("max_length"),
                             collect=collect, image_root=train_file.parent,
                             run=RunShape.from_settings(settings) if method == "sft" else None)
    # What the model would never see (images, calls, tools), or would learn wrong, and rows TRL would stop at.
    for rule in (IMAGES_NOT_RENDERED, TEMPLATE_WITHOUT_TOOLS, TOOL_CALL_DOUBLE_ENCODED, TOOL_CALL_TEMPLATE_ERROR):
        if rule.id in findings:
            raise DataRefused(f"{rule.id}: {_first(first_detail[rule.id])}; {rule.fix}", rule=rule.id)
    if IMAGE_CUT_BY_MAX_LENGTH.id in findings:
        raise DataRefused(
            f"{IMAGE_CUT_BY_MAX_LENGTH.id}: max_length={report.max_length} cuts inside the images of "
            f"{findings[IMAGE_CUT_BY_MAX_LENGTH.id]} row(s) ({_first(first_detail[IMAGE_CUT_BY_MAX_LENGTH.id])}), "
            f"and TRL would stop mid-training with \"Mismatch in image token count\": try --max-length "
            f"{report.recommended_max_length}, or leave it unset", rule=IMAGE_CUT_BY_MAX_LENGTH.id)
    effect = report.trainer_effects[METHOD[method].effect_key]
    if effect.get("empty_answers"):
        # An answer cut away entirely averages its log-probabilities over no token (0/0): the loss, then every
        # weight, turns NaN, and the run still ends with exit 0. Seen with ORPO and CPO on LLaMA-Factory's pairs.
        raise DataRefused(
            f"{TRAINERS[method]} keeps rows whose prompt alone fills max_length={report.max_length} "
            f"({effect['empty_answers']} of {report.rows}) with an empty answer, whose loss is NaN and turns the "
            f"weights NaN: try --max-length {report.recommended_max_length}, or drop the long prompts")
    # Packed, SFT drops no row: one that trains no token takes its place in a sequence (the cost line counts them).
    dropped = 0 if METHOD[method].base == "sft" and settings.get("packing") else effect["dropped"]
    if report.rows and dropped / report.rows > max_dropped:
        raise DataRefused(
            f"{TRAINERS[method]} would drop {effect['dropped']} of {report.rows} rows at max_length="
            f"{report.max_length} ({effect['note']}), more than --max-dropped {max_dropped:.0%}; rows are "
            f"p50 {report.p50} / p99 {report.p99} / max {report.max} tokens: try --max-length "
            f"{report.recommended_max_length}")
    return {**report.to_dict(), "findings": findings}


def training_devices() -> int:
    """The data-parallel devices the Trainer splits batches over: the launcher's processes (WORLD_SIZE, set by
    accelerate and torchrun), else the GPUs one process sees (DataParallel), else 1."""
    import os

    if os.environ.get("WORLD_SIZE"):
        return int(os.environ["WORLD_SIZE"])
    import torch

    return torch.cuda.device_count() or 1


def _first(found: tuple[int | None, str]) -> str:
    row, detail = found
    return detail if row is None else f"row {row}: {detail}"


def ledger_line(ledger: dict) -> str:
    """The conversion's ledger in one line: rows in = kept + rejected, the rows written (and why they are more
    than those kept), a --test-size split and a mixture's draw, each adding up.

    >>> ledger_line({"rows_in": 10, "rows_kept": 8, "rows_rejected": 2, "rows_out": 8,
    ...              "rejected_by_rule": {"TP201": 2}, "rejects": "runs/sft/data/data.rejects.jsonl"})
    'data: rows in 10 = kept 8 + rejected 2 (TP201 x2); rows written 8; rejects: runs/sft/data/data.rejects.jsonl'

    A mixture's ledger adds the rows each source gave it, and those its weights left out:

    >>> ledger_line({"rows_in": 5, "rows_kept": 5, "rows_rejected": 0, "rows_out": 5, "rejected_by_rule": {},
    ...              "rows_mixed": 4, "rows_left_out": 1,
    ...              "sources": [{"source": "a.jsonl", "rows_out": 3, "rows_mixed": 3},
    ...                          {"source": "b.jsonl", "rows_out": 2, "rows_mixed": 1}]})
    'data: rows in 5 = kept 5 + rejected 0; rows written 5; mixed 4 = 3 of 3 from a.jsonl + 1 of 2 from b.jsonl (1 left out by the weights)'
    """
    rules = ", ".join(f"{rule} x{count}" for rule, count in sorted(ledger["rejected_by_rule"].items()))
    line = (f"data: rows in {ledger['rows_in']} = kept {ledger['rows_kept']} + rejected {ledger['rows_rejected']}"
            + (f" ({rules})" if rules else "") + f"; rows written {written_sum(ledger)}"
            + (f"; {split_sum(ledger['split'])}" if ledger.get("split") else "")
            + (f"; rejects: {ledger['rejects']}" if ledger["rows_rejected"] else ""))
    if "rows_mixed" in ledger:
        shares = " + ".join(f"{source['rows_mixed']} of {source['rows_out']} from {source['source']}"
                            for source in ledger["sources"])
        line += f"; mixed {ledger['rows_mixed']} = {shares}"
        if ledger["rows_left_out"]:
            line += f" ({ledger['rows_left_out']} left out by the weights)"
    return line


def effect_line(method: str, preflight: dict) -> str:
    """What the trainer will do to the written rows at max_length, from the token preflight.

    >>> effect_line("sft", {"rows": 999, "max_length": 1024, "trainer_effects": {"sft": {
    ...     "truncated": 221, "dropped": 0, "note": "truncates rows over max_length"}}})
    'SFTTrainer at max_length=1024: truncates 221 of 999 rows, drops 0 (truncates rows over max_length)'
    """
    effect = preflight["trainer_effects"][METHOD[method].effect_key]
    return (f"{TRAINERS[method]} at max_length={preflight['max_length']}: truncates {effect['truncated']} of "
            f"{preflight['rows']} rows, drops {effect['dropped']} ({effect['note']})")


def row_accounting(ledger: dict, trained: int) -> dict:
    """Where the rows read went, up to the `trained` rows the trainer kept, from the conversion's ledger:
    rows_in - rejected + added (one kept row written as several: KTO unpairing) - held_out_for_test
    - left_out_by_weights (a mixture's) - dropped_by_trainer = trained. `train_rows` are the rows the trainer
    was given (the train file's), `base` what they are.

    >>> row_accounting({"rows_in": 300, "rows_rejected": 0, "rows_out": 600, "rows_added": 300,
    ...                 "rows_added_by": "KTO unpairing", "split": {"train": 540, "test": 60}}, 538)["dropped_by_trainer"]
    2
    """
    held_out = ledger["split"]["test"] if ledger.get("split") else 0
    left_out = ledger.get("rows_left_out", 0)
    train_rows = ledger["rows_out"] - held_out - left_out
    base = "train rows" if held_out else "rows mixed" if "rows_mixed" in ledger else "rows written"
    return {"rows_in": ledger["rows_in"], "rejected": ledger["rows_rejected"],
            "added": ledger.get("rows_added", 0), "added_by": ledger.get("rows_added_by"),
            "held_out_for_test": held_out, "left_out_by_weights": left_out, "train_rows": train_rows,
            "base": base, "dropped_by_trainer": train_rows - trained, "trained": trained}


def kept_line(method: str, accounting: dict) -> str:
    """The rows the trainer kept of those it was given, from its own dataset (`row_accounting`); when other
    causes stand between the rows read and those, the sum from the rows read.

    >>> kept_line("sft", {"rows_in": 999, "rejected": 0, "added": 0, "held_out_for_test": 0,
    ...                   "left_out_by_weights": 0, "train_rows": 999, "base": "rows written",
    ...                   "dropped_by_trainer": 71, "trained": 928})
    'SFTTrainer kept 928 of the 999 rows written (71 dropped while tokenizing)'
    >>> kept_line("dpo", {"rows_in": 300, "rejected": 0, "added": 0, "held_out_for_test": 15,
    ...                   "left_out_by_weights": 0, "train_rows": 285, "base": "train rows",
    ...                   "dropped_by_trainer": 2, "trained": 283})
    'DPOTrainer kept 283 of the 285 train rows (2 dropped while tokenizing): rows in 300 - 15 held out for the test split - 2 dropped while tokenizing = 283'
    """
    counts = accounting
    line = (f"{TRAINERS[method]} kept {counts['trained']} of the {counts['train_rows']} {counts['base']}"
            + (f" ({counts['dropped_by_trainer']} dropped while tokenizing)" if counts["dropped_by_trainer"] else ""))
    terms = [f"- rejected {counts['rejected']}" if counts["rejected"] else "",
             f"+ {counts['added']} from {counts['added_by']}" if counts["added"] else "",
             f"- {counts['held_out_for_test']} held out for the test split" if counts["held_out_for_test"] else "",
             f"- {counts['left_out_by_weights']} left out by the mixture weights" if counts["left_out_by_weights"]
             else ""]
    if not any(terms):  # the rows given are the rows read: the line above adds up already
        return line
    terms.append(f"- {counts['dropped_by_trainer']} dropped while tokenizing" if counts["dropped_by_trainer"] else "")
    return f"{line}: rows in {counts['rows_in']} " + " ".join(term for term in terms if term) + f" = {counts['trained']}"


def load_rewards(method: str, specs: tuple[str, ...]) -> list:
    """The reward functions of a method that scores what it generates (GRPO, RLOO, ...), loaded; at least one is
    needed."""
    from trlprep.train.rewards import load_reward

    if not specs:
        raise UsageError(f"{TRAINERS[method]} needs at least one --reward-func (built-ins: answer_match, think_format, "
                         "length_penalty; or path/to/file.py:function, module:function)")
    return [load_reward(spec) for spec in specs]


def check_reward_columns(specs: tuple[str, ...], functions: list, columns: list[str]) -> None:
    """Refuse a reward function that needs a column the converted data lacks."""
    from trlprep.train.rewards import missing_columns

    for spec, function in zip(specs, functions):
        missing = missing_columns(function, columns)
        if missing:
            raise UsageError(f"--reward-func {spec}: needs column(s) {', '.join(missing)}, which the data lacks "
                             f"(columns: {', '.join(columns)})")


TRAINING_STACK = ("trl", "torch")


def require_training_stack() -> None:
    """Refuse, in one line with the command that fixes it, when the training extra is not installed."""
    import importlib.util

    missing = [name for name in TRAINING_STACK if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"train needs the training extra ({', '.join(missing)} not installed; inspect and convert "
                         "do without it): uv sync --extra train, then uv run --extra train train ... "
                         "(or pip install 'trlprep[train]')")


def _columns(path: Path) -> list[str]:
    return list(first_row(path))


def _peft_config(method: str, lora: dict | None):
    """The peft LoRA config of `_lora_settings`, or None without LoRA."""
    if not lora:
        return None
    from peft import LoraConfig

    return LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=0.05, bias="none",
                      target_modules=list(lora["targets"]) if lora["targets"] else "all-linear",
                      task_type="SEQ_CLS" if method == "reward" else "CAUSAL_LM")


def _last_checkpoint(output_dir: Path) -> str:
    from transformers.trainer_utils import get_last_checkpoint

    checkpoint = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    if checkpoint is None:
        raise UsageError(f"--resume: no checkpoint-* folder in {output_dir}")
    return checkpoint


def write_run_file(output_dir: Path, result: TrainResult) -> Path:
    """`trlprep-run.json`, written atomically."""
    return write_atomically(output_dir / RUN_FILE, json.dumps(result.to_dict(), indent=2, default=str))


def train(options: RunOptions | None = None, /, **settings: Any) -> TrainResult:
    """Validate, convert when needed, and train `model` on `dataset` with TRL's trainer for `method`.

    The options are a `RunOptions`, or its fields given as keywords (`method="sft"`, `model=...`, `dataset=...`;
    `config_name=` is the older name of `dataset_config=`). `export_trl_config` writes a config for
    `trl <method> --config` instead of training here; `launcher="hf-jobs"` submits the run to Hugging Face Jobs
    (the data must be a Hub dataset, ready as it is). `html` writes the page of the converted data (its report,
    plots, ledger and rejects) before training. `announce` receives a line at each step before the trainer runs
    (the ledger, what the trainer will do to the rows at max_length, the rows it kept), so that a person sees them
    before GPU time is spent.
    """
    options = options_from(RunOptions, options, settings, {"config_name": "dataset_config"})
    if options.launcher not in ("local", "hf-jobs"):
        raise UsageError(f"--launcher {options.launcher!r}: choose local or hf-jobs")
    if options.accelerate_config is not None and options.accelerate_config not in ACCELERATE_PRESETS:
        raise UsageError(f"--accelerate-config {options.accelerate_config!r}: choose one of "
                         f"{', '.join(ACCELERATE_PRESETS)}")
    entry = METHOD.get(options.method)
    if entry is not None and not entry.cli and (options.export_trl_config or options.launcher == "hf-jobs"):
        raise UsageError(f"TRL's command line has no `trl {entry.name}` ({entry.trainer} is in trl.experimental), "
                         f"so neither --export-trl-config nor --launcher hf-jobs can run it: train it here")
    if options.launcher == "hf-jobs":
        return _hf_job(options)
    if options.export_trl_config:
        exported = Path(options.export_trl_config)
        # Exported, the data goes beside the YAML only: converted in a temporary folder that the export copies from.
        with data_removed_on_failure(exported_data_dir(exported)), \
                tempfile.TemporaryDirectory(prefix="trlprep-") as data_root:
            check_export(options, exported)
            return _export(prepare_run(options, data_root=Path(data_root)), exported, options.accelerate_config)
    with data_removed_on_failure(run_folder(options) / "data"):
        prepared = prepare_run(options)
        if options.dry_run:
            prepared.result.dry_run = True
            write_run_file(Path(prepared.result.output_dir), prepared.result)
            return prepared.result
        return run_prepared(prepared, announce=options.announce)


def run_folder(options: RunOptions) -> Path:
    """The run's output folder: `output_dir`, by default `runs/<method>`; refused when it, or a folder it would
    be made in, is a file (before anything is converted into it)."""
    out = Path(options.output_dir or Path("runs") / options.method)
    in_the_way = next((path for path in (out, *out.parents) if path.exists() and not path.is_dir()), None)
    if in_the_way is not None:
        where = "is a file" if in_the_way == out else f"is in {in_the_way}, which is a file"
        raise OutputError(f"--output-dir {out}: {where}, not a folder; give a folder (made if missing)")
    return out


def local_inputs(options: RunOptions) -> list[str]:
    """The paths a run reads that an output must never be written onto: its dataset (each source of a
    mixture), its eval dataset and its --config (a Hub id among them names no file here, and matches none)."""
    datasets = options.dataset if isinstance(options.dataset, (list, tuple)) else [options.dataset]
    paths = [source.get("path") if isinstance(source, dict) else source for source in datasets]
    return [str(path) for path in (*paths, options.eval_dataset, options.config) if isinstance(path, (str, Path))]


def check_export(options: RunOptions, exported: Path) -> None:
    """Refuse an export of this run to config `exported` that would write onto what the run reads or replace
    what an export did not write (`launch.check_export_targets`)."""
    mixture = isinstance(options.dataset, (list, tuple))
    check_export_targets(exported, inputs=local_inputs(options), source=options.dataset,
                         sources=len(options.dataset) if mixture else 0)


@contextlib.contextmanager
def data_removed_on_failure(data: Path) -> Iterator[None]:
    """A failed run (a refusal, a trainer's error) or export leaves no converted data behind: the files it wrote
    under `data` (a run's `<out>/data`, an export's `<stem>-data`) are removed, with the folders it made for them
    (`data` and those above it that did not exist). Kept: what was there before, and the files the
    error names (a rejects file that says why every row was rejected). Checkpoints are not touched: --resume
    continues from them."""
    before = set(data.rglob("*")) if data.is_dir() else set()
    made = [folder for folder in (*reversed(data.parents), data) if not folder.exists()]  # outermost first
    try:
        yield
    except BaseException as error:
        named = str(error)
        written = set(data.rglob("*")) - before if data.is_dir() else set()
        for path in sorted(written, key=lambda path: len(path.parts), reverse=True):  # a folder after its files
            if path.is_dir():
                if not any(path.iterdir()):
                    path.rmdir()
            elif str(path) not in named:
                path.unlink()
        for folder in reversed(made):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise


@dataclass
class PreparedRun:
    """A run checked, its data converted and token-preflighted, its TRL config built: what `run_prepared` trains."""

    result: TrainResult
    settings: dict
    trl_config: Any
    files: dict[str, Path]
    functions: list
    lora: dict | None


def checked_usage(method: str, config: str | None, overrides: tuple[str, ...], reward_funcs: tuple[str, ...],
                  teacher: str | None = None) -> list:
    """Every usage mistake answered before any data is read or the training stack imported: the method, the TRL
    fields of the YAML and of `--set`, what the method needs beside data (reward functions, returned loaded; a
    teacher) and the training extra."""
    if method not in METHODS:
        raise UsageError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    from trlprep.train import config as run_config

    run_config.checked_settings(method, config, overrides)
    needs = METHOD[method].needs
    for need, given in (("reward", reward_funcs), ("teacher", teacher)):
        if given and need not in needs:
            takers = ", ".join(name for name, entry in METHOD.items() if need in entry.needs)
            raise UsageError(f"{NEED_OPTIONS[need]} is for methods that take {NEED_NAMES[need]} ({takers}); "
                             f"{method} takes none")
    if "teacher" in needs and not teacher:
        raise UsageError(f"{method} learns from {NEED_NAMES['teacher']} ({NEED_OPTIONS['teacher']}): give the "
                         "teacher's folder or Hub id")
    if teacher and not Path(teacher).is_dir():
        from trlprep.inspector.sources import hub_unreachable_reason

        reason = hub_unreachable_reason()
        if reason:
            raise UsageError(f"--teacher {teacher}: no such folder, and {reason}")
    functions = load_rewards(method, reward_funcs) if "reward" in needs else []
    require_training_stack()
    return functions


def _lora_settings(options: RunOptions) -> dict | None:
    return {"r": options.lora_r, "alpha": options.lora_alpha, "targets": options.lora_targets} if options.lora else None


def prepare_run(options: RunOptions, *, data_root: Path | None = None,
                checked: list[dict] | None = None) -> PreparedRun:
    """Everything `train` does before it loads the model, with the same options: the usage checks, the data
    inspected and converted into `<data_root>/data` (the output folder by default), the token preflight against
    `model`'s tokenizer, the resolved TRL config. `run_prepared` trains it, from `model` or from another model
    with the same tokenizer (a recipe's stage from the stage before). `checked`: as `prepare_data` takes it."""
    method = options.method
    functions = checked_usage(method, options.config, options.overrides, options.reward_funcs, options.teacher)
    from trlprep.train import config as run_config

    out = run_folder(options)
    report, ledger, eval_ledger, files = prepare_data(
        method, options.dataset, output_dir=data_root or out, eval_dataset=options.eval_dataset,
        test_size=options.test_size, split=options.split, config_name=options.dataset_config,
        revision=options.revision, encoding=options.encoding, seed=options.seed, progress=options.progress,
        html=options.html, checked=checked, model=options.model)
    settings = run_config.resolve(method, output_dir=str(out), options=_named_settings(options),
                                  yaml_path=options.config, overrides=options.overrides)
    settings = maybe_vision_settings(method, settings, files["train"], say=options.said)
    if report["dialect"] == "turn_flags" and method == "sft" and settings.get("completion_only_loss") is False:
        raise UsageError("the data's per-turn training flags are carried as one completion per trained turn, "
                         "which completion_only_loss=False would train whole: drop that setting")
    options.said(ledger_line(ledger))
    preflight = token_preflight_or_refuse(method, options.model, files["train"], settings, options.max_dropped)
    options.said(effect_line(method, preflight))
    check_reward_columns(options.reward_funcs, functions, _columns(files["train"]))
    trl_config = run_config.build(method, settings)
    # Counted under the built config, every default of the method's own (RLOO's group size is not GRPO's); its
    # devices once the data has passed (counting GPUs imports torch, which a refusal does not wait for).
    preflight["cost"] = run_cost(method, preflight, RunShape.from_settings(run_config.public(trl_config),
                                                                           training_devices()))
    for line in cost_lines(preflight, TRAINERS[method]):
        options.said(line)
    result = TrainResult(method=method, model=options.model, output_dir=str(out), report=report, ledger=ledger,
                         eval_ledger=eval_ledger, config=run_config.public(trl_config),
                         reward_funcs=list(options.reward_funcs),
                         resumed_from=_last_checkpoint(out) if options.resume else None, tokens=preflight)
    return PreparedRun(result, settings, trl_config, files, functions, _lora_settings(options))


def _named_settings(options: RunOptions) -> dict:
    """The TRL config fields the run's named options set (a generating trainer's length is that of what it
    generates; its teacher is named in the config, as `trl <method>` reads it)."""
    from trlprep.train.config import config_fields

    method = METHOD[options.method]
    settings = {"max_steps": options.max_steps, "num_train_epochs": options.epochs,
                "learning_rate": options.learning_rate, "per_device_train_batch_size": options.batch_size,
                method.length_field: options.max_length, "seed": options.seed}
    if "teacher_model_name_or_path" in config_fields(method.name):
        settings["teacher_model_name_or_path"] = options.teacher
    return settings


def _export(prepared: PreparedRun, exported: Path, accelerate_config: str | None) -> TrainResult:
    """The prepared run as a config for `trl <method> --config`, its data and rejects beside it."""
    from trlprep.train.launch import export_trl_config as export

    result, ledger = prepared.result, prepared.result.ledger
    command = export(exported, method=result.method, settings=prepared.settings, files=prepared.files,
                     model=result.model, lora=prepared.lora, reward_funcs=tuple(result.reward_funcs),
                     accelerate_config=accelerate_config, mixture=ledger.get("sources"))
    result.exported = {"config": str(exported), "command": command}
    # The rejects go beside the YAML, not into the data folder TRL loads whole; a mixture's, one file per source.
    for number, part in enumerate(ledger.get("sources") or [ledger], start=1):
        if part["rows_rejected"]:
            rejects = exported_rejects(exported, number if "sources" in ledger else None)
            part["rejects"] = str(copy_atomically(part["rejects"], rejects))
    write_atomically(exported_run_file(exported), json.dumps(result.to_dict(), indent=2, default=str))
    return result


def run_prepared(prepared: PreparedRun, *, model: str | None = None,
                 announce: Callable[[str], None] | None = None) -> TrainResult:
    """Train a prepared run, from `model` when given (its tokenizer must be the one the run was preflighted with),
    and save the model, the tokenizer and `trlprep-run.json` in its output folder."""
    announce = announce or (lambda line: None)
    result, files, settings = prepared.result, prepared.files, prepared.settings
    _require_vllm(settings)
    method, out = result.method, Path(result.output_dir)
    result.model = model or result.model
    trainer = _build_trainer(method, result.model, prepared.trl_config, files, prepared.functions,
                             _peft_config(method, prepared.lora), settings.get("teacher_model_name_or_path"))
    kept = len(trainer.train_dataset) if hasattr(trainer.train_dataset, "__len__") else None
    result.rows_trained = kept
    if kept is not None:
        result.accounting = row_accounting(result.ledger, kept)
        announce(kept_line(method, result.accounting))
    if kept == 0:
        raise DataRefused(f"{TRAINERS[method]} dropped every row while preparing the data: "
                          f"{DROPS[METHOD[method].effect_key]} max_length={settings.get('max_length')}; raise --max-length")
    started = time.perf_counter()
    outcome = trainer.train(resume_from_checkpoint=result.resumed_from)
    metrics = dict(outcome.metrics)
    metrics["wall_seconds"] = round(time.perf_counter() - started, 3)
    if "test" in files:
        metrics.update(trainer.evaluate())
    trainer.save_model(str(out))
    # The trainer's tokenizer: TRL's chat_template_path changes its template, or swaps it for another model's.
    trainer.processing_class.save_pretrained(str(out))
    result.metrics = metrics
    write_run_file(out, result)
    return result


def _require_vllm(settings: dict) -> None:
    """Refuse, before the model loads, a run that generates with vLLM where vLLM is not installed (it needs a
    CUDA machine): `--dry-run` checks everything else of such a run anywhere."""
    import importlib.util

    if settings.get("use_vllm") and importlib.util.find_spec("vllm") is None:
        raise UsageError("use_vllm=true needs the vllm package, on a CUDA machine (pip install vllm); without it "
                         "TRL generates with transformers: drop the setting, or check the rest with --dry-run")


def _hf_job(options: RunOptions) -> TrainResult:
    from trlprep.train import config as run_config
    from trlprep.train.launch import job_spec, submit

    method, dataset = options.method, options.dataset
    checked_usage(method, options.config, options.overrides, options.reward_funcs, options.teacher)
    if not isinstance(dataset, str) or Path(dataset).exists():
        raise UsageError("--launcher hf-jobs trains on a Hub dataset: push yours with "
                         "`uv run convert ... --push-to-hub ID`, then pass --dataset ID")
    report = inspect_dataset(dataset, method=method, split=options.split, dataset_config=options.dataset_config,
                             revision=options.revision, limit=1000)
    if report.methods[method]["status"] != "ready":
        raise DataRefused(f"{dataset}: not ready for {method} as it is ({report.methods[method]['reason']}); "
                          f"convert it with --push-to-hub, then pass the new id")
    settings = run_config.resolve(method, output_dir=".", options=_named_settings(options), yaml_path=options.config,
                                  overrides=options.overrides)
    spec = job_spec(method=method, model=options.model, dataset=dataset, settings=settings,
                    lora=_lora_settings(options), reward_funcs=options.reward_funcs, flavor=options.flavor,
                    timeout=options.timeout, split=options.split, config_name=options.dataset_config)
    result = TrainResult(method=method, model=options.model, output_dir="", report=report.to_dict(), ledger={},
                         eval_ledger=None, config=settings, reward_funcs=list(options.reward_funcs),
                         dry_run=options.dry_run, job=spec.to_dict())
    if not options.dry_run:
        result.job_url = submit(spec)
    return result


def _build_trainer(method: str, model: str, trl_config, files: dict[str, Path], reward_functions: list,
                   peft_config, teacher: str | None = None):
    """The method's TRL trainer, built as TRL's own scripts build it: with the reward functions or the teacher
    its method needs."""
    import importlib

    import datasets

    datasets.disable_progress_bars()
    loaded = {split: load_training_data(path) for split, path in files.items()}
    if is_vision_dataset(loaded["train"]):
        model_arg, processing_class = vision_model_and_processor(method, model)
    else:
        model_arg, processing_class = _text_model_and_tokenizer(method, model)
    kwargs = {"model": model_arg, "args": trl_config, "train_dataset": loaded["train"],
              "eval_dataset": loaded.get("test"), "processing_class": processing_class, "peft_config": peft_config}
    entry = METHOD[method]
    if "reward" in entry.needs:
        kwargs["reward_funcs"] = reward_functions
    if "teacher" in entry.needs:
        kwargs["teacher_model"] = teacher
    return getattr(importlib.import_module(entry.module), entry.trainer)(**kwargs)


def _text_model_and_tokenizer(method: str, model: str) -> tuple[Any, Any]:
    """The model for TRL (its id; a sequence classifier, loaded, for Reward) and its tokenizer."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if method != "reward":
        return model, tokenizer
    from transformers import AutoModelForSequenceClassification

    classifier = AutoModelForSequenceClassification.from_pretrained(model, num_labels=1)
    classifier.config.pad_token_id = tokenizer.pad_token_id
    return classifier, tokenizer
