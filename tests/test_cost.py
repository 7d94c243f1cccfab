"""What a run will cost, checked against TRL and transformers themselves: the sequences `trl.pack_dataset` makes of
the rows SFTTrainer tokenized, and the steps of an SFTTrainer built with a tiny real model on the same file.

Real data: the first 150 rows of GSM8K (`tests/data/cost/`, MIT), repeated past one `datasets.map` batch (1000
rows) where the per-batch packing shows, and the ShareGPT example; the GSM8K slice of `tests/data/shared/` through a real SFTTrainer.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from tests.conftest import REPO, in_fresh_python
from trlprep.converters import convert
from trlprep.inspector import inspect_dataset
from trlprep.inspector.cli import main as inspect_main
from trlprep.inspector.cost import PACKING_STRATEGIES, RunShape, packed_lengths

GSM8K_SLICE = REPO / "tests" / "data" / "cost" / "gsm8k_test_first150.jsonl"
SHAREGPT = REPO / "examples" / "sharegpt_chat.jsonl"
MAX_LENGTH = 256  # short enough that rows are cut and packed several to a sequence by the tiny tokenizer


def sft_file(source: Path, folder: Path, repeat: int = 1) -> Path:
    """`source` converted for SFT as `train` converts it (its rows `repeat` times over), the file TRL reads."""
    converted = folder / f"{source.stem}.sft.jsonl"
    convert(str(source), to="sft", output=converted, overwrite=True)
    if repeat > 1:
        lines = converted.read_text().splitlines(keepends=True)
        converted.write_text("".join(lines * repeat))
    return converted


def sft_trainer(model: Path, train_file: Path, output_dir: Path, **settings):
    """SFTTrainer on the file, built as `train` builds it (`_build_trainer`), with these SFTConfig settings."""
    from trl import SFTConfig

    from trlprep.train.api import _build_trainer

    config = SFTConfig(output_dir=str(output_dir), report_to="none", use_cpu=True, **settings)
    return _build_trainer("sft", str(model), config, {"train": train_file}, [], None, None)


def preflight_cost(model: Path, train_file: Path, shape: RunShape) -> dict:
    from trlprep.inspector.sources import open_source
    from trlprep.inspector.tokens import token_preflight

    return token_preflight(open_source(train_file).rows(), model=str(model), max_length=shape.max_length,
                           run=shape).cost


@pytest.fixture(scope="module")
def gsm8k_rows(tmp_path_factory) -> Path:
    return sft_file(GSM8K_SLICE, tmp_path_factory.mktemp("gsm8k"))


@pytest.fixture(scope="module")
def gsm8k_past_one_batch(tmp_path_factory) -> Path:
    return sft_file(GSM8K_SLICE, tmp_path_factory.mktemp("gsm8k-1200"), repeat=8)


def packing_cases():
    for strategy in PACKING_STRATEGIES:
        yield pytest.param("gsm8k_rows", strategy, False, id=f"gsm8k-150-{strategy}")
        yield pytest.param("gsm8k_past_one_batch", strategy, strategy != "bfd", id=f"gsm8k-1200-{strategy}")
        yield pytest.param("sharegpt", strategy, False, id=f"sharegpt-{strategy}")


@pytest.mark.slow
@pytest.mark.parametrize("rows,strategy,shuffle", packing_cases())
def test_packing_equals_trl_pack_dataset_on_the_rows_sft_tokenized(request, tiny_model, tmp_path, rows, strategy,
                                                                    shuffle):
    from trl import pack_dataset

    train_file = (sft_file(SHAREGPT, tmp_path) if rows == "sharegpt" else request.getfixturevalue(rows))
    # The rows as SFTTrainer tokenizes them, whole: no truncation, no packing.
    tokenized = sft_trainer(tiny_model, train_file, tmp_path / "out", max_length=None).train_dataset
    tokenized = tokenized.select_columns(["input_ids", "labels"])
    row_lengths = [len(ids) for ids in tokenized["input_ids"]]
    if shuffle:
        tokenized = tokenized.shuffle(seed=7)
    packed = pack_dataset(tokenized, MAX_LENGTH, strategy)
    lengths = [len(ids) for ids in packed["input_ids"]]

    assert packed_lengths(row_lengths, MAX_LENGTH, strategy, shuffle=shuffle, seed=7) == lengths

    cost = preflight_cost(tiny_model, train_file, RunShape(max_length=MAX_LENGTH, packing=strategy,
                                                           shuffle_dataset=shuffle, seed=7))
    kept = [labels[:MAX_LENGTH] if strategy == "bfd" else labels for labels in tokenized["labels"]]
    assert cost["rows"] == len(tokenized) and cost["sequences"] == len(packed)
    assert cost["tokens"] == sum(lengths) and cost["tokens_cut"] == sum(row_lengths) - sum(lengths)
    assert cost["fill"] == round(sum(lengths) / (len(lengths) * MAX_LENGTH), 3)
    assert cost["trained_tokens"] == sum(label != -100 for labels in packed["labels"] for label in labels)
    assert cost["rows_without_trained_tokens"] == sum(all(label == -100 for label in labels) for labels in kept)


@pytest.mark.slow
@pytest.mark.parametrize("settings", [
    {},
    {"packing": True},
    {"packing": True, "packing_strategy": "bfd_split", "dataloader_drop_last": True},
    {"packing": True, "packing_strategy": "wrapped", "shuffle_dataset": True, "seed": 3},
    {"max_length": 128, "num_train_epochs": 2},
], ids=["plain", "bfd", "bfd_split-drop_last", "wrapped-shuffled", "plain-cut"])
def test_steps_and_tokens_equal_those_of_the_sft_trainer(gsm8k_rows, tiny_model, tmp_path, settings):
    settings = {"max_length": MAX_LENGTH, "per_device_train_batch_size": 3, "gradient_accumulation_steps": 2,
                **settings}
    trainer = sft_trainer(tiny_model, gsm8k_rows, tmp_path / "out", **settings)
    dataloader = trainer.get_train_dataloader()
    _, per_epoch, *_, max_steps = trainer.set_initial_training_values(trainer.args, dataloader)
    prepared = trainer.train_dataset

    cost = preflight_cost(tiny_model, gsm8k_rows, RunShape.from_settings(settings))
    assert cost["sequences"] == len(prepared)
    assert cost["batches_per_epoch"] == len(dataloader)
    assert (cost["steps_per_epoch"], cost["steps"]) == (per_epoch, max_steps)
    assert cost["tokens"] == sum(len(ids) for ids in prepared["input_ids"])
    assert cost["trained_tokens"] == sum(label != -100 for labels in prepared["labels"] for label in labels)
    if not settings.get("packing"):
        assert cost["rows_dropped"] == cost["rows"] - len(prepared)


@pytest.mark.slow
def test_sft_over_real_gsm8k_rows_packs_as_trl_does(shared_data, tiny_model, tmp_path):
    train_file = sft_file(shared_data / "gsm8k_test.jsonl", tmp_path)
    trainer = sft_trainer(tiny_model, train_file, tmp_path / "out", max_length=MAX_LENGTH, packing=True)
    cost = preflight_cost(tiny_model, train_file, RunShape(max_length=MAX_LENGTH, packing="bfd"))
    assert cost["rows"] == 30 and cost["sequences"] == len(trainer.train_dataset)
    assert cost["batches_per_epoch"] == len(trainer.get_train_dataloader())


def test_the_run_shape_defaults_are_trl_s():
    from trl import SFTConfig

    config = SFTConfig(output_dir="unused", use_cpu=True)
    defaults = RunShape()
    # `packing` is the strategy here (a flag in SFTConfig); the devices and a generating trainer's fields are no
    # SFTConfig field.
    others = {field.name for field in fields(RunShape) if not hasattr(config, field.name)} | {"packing"}
    assert others == {"packing", "devices", "num_generations", "steps_per_generation", "num_iterations"}
    for field in fields(RunShape):
        if field.name not in others:
            assert getattr(defaults, field.name) == getattr(config, field.name), field.name
    assert RunShape.from_settings({"packing": True}).packing == config.packing_strategy


def test_inspect_prints_the_packed_cost_and_its_json_carries_it(tiny_model):
    arguments = ["-d", str(GSM8K_SLICE), "--model", str(tiny_model), "--packing", "bfd", "--batch-size", "4", "--grad-accum", "2", "--devices", "2"]
    text = CliRunner().invoke(inspect_main, arguments)
    assert text.exit_code == 0, text.output
    as_json = CliRunner().invoke(inspect_main, arguments + ["--format", "json"])
    schema = json.loads((REPO / "schemas" / "report.schema.json").read_text())
    jsonschema.validate(json.loads(as_json.output)["tokens"], {**schema["properties"]["tokens"], "$defs": schema["$defs"]})
    cost = json.loads(as_json.output)["tokens"]["cost"]
    assert cost == inspect_dataset(str(GSM8K_SLICE), model=str(tiny_model), packing="bfd", batch_size=4, grad_accum=2, devices=2).tokens["cost"]
    assert cost["packing"] == "bfd" and cost["rows"] == 150 and cost["warnings"] == []
    assert (cost["per_device_train_batch_size"], cost["gradient_accumulation_steps"], cost["devices"]) == (4, 2, 2)
    assert cost["sequences"] < cost["rows"] and cost["fill"] > 0.9
    printed = " ".join(text.output.split())  # the terminal's width wraps the line
    assert (f"SFTTrainer cost: 150 rows packed (bfd) into {cost['sequences']} sequences of 1024, fill {cost['fill']:.0%}; "
            f"{cost['trained_tokens']:,} of {cost['tokens']:,} tokens trained per epoch, {cost['tokens_cut']:,} cut; "
            f"{cost['steps_per_epoch']} optimizer steps per epoch (batch 4 x 2 accumulation x 2 devices), "
            f"{cost['steps']} in all") in printed


def test_the_cost_options_need_model():
    refused = CliRunner().invoke(inspect_main, ["-d", str(GSM8K_SLICE), "--packing", "bfd"])
    assert refused.exit_code == 2 and "need --model" in refused.output
    assert CliRunner().invoke(inspect_main, ["-d", str(GSM8K_SLICE), "--packing", "greedy"]).exit_code == 2


def test_inspect_warns_that_trl_refuses_packing_on_image_data(tiny_vlm):
    cost = inspect_dataset(str(REPO / "examples" / "vision_llamafactory.jsonl"), model=str(tiny_vlm),
                           packing="bfd").tokens["cost"]
    assert cost["packing"] is None and cost["rows_dropped"] == 0
    assert cost["warnings"] == ["packing on image data: SFTTrainer refuses it (\"Packing is not supported for vision "
                                "datasets\"); the cost is counted without packing"]


def test_wrapped_packing_is_warned_of(tiny_model):
    report = inspect_dataset(str(SHAREGPT), model=str(tiny_model), packing="wrapped")
    assert report.tokens["cost"]["warnings"][0].startswith("packing_strategy=wrapped: rows are cut mid-way")
    assert "warning: packing_strategy=wrapped" in report.to_text()


@pytest.mark.slow
def test_train_refuses_packing_on_image_data_before_the_model_loads(tiny_vlm, tmp_path):
    code = ("import sys\nfrom trlprep.train.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as done:\n    print('exit', done.code)")
    done, loaded = in_fresh_python(code, "--method", "sft", "--model", str(tiny_vlm), "--dataset",
                                   str(REPO / "examples" / "vision_llamafactory.jsonl"), "--set", "packing=true",
                                   "--output-dir", str(tmp_path / "run"))
    assert done.stdout.strip() == "exit 2"
    assert done.stderr.strip().splitlines() == [
        "error: packing=True does not work on image data (packing joins rows into one sequence, which the vision "
        "collator cannot do): drop that setting"]
    assert "trl" not in loaded  # the trainer, which loads the model, was never imported


def test_train_says_the_cost_under_its_resolved_settings_before_training(tiny_model, tmp_path):
    from trlprep.train.api import train

    said = []
    result = train(method="sft", model=str(tiny_model), dataset=GSM8K_SLICE, output_dir=tmp_path / "run",
                   batch_size=4, overrides=("packing=true", "packing_strategy=bfd_split",
                                            "gradient_accumulation_steps=2"), dry_run=True, announce=said.append)
    cost = result.tokens["cost"]
    assert (cost["packing"], cost["per_device_train_batch_size"], cost["gradient_accumulation_steps"]) == (
        "bfd_split", 4, 2)
    assert cost == preflight_cost(tiny_model, tmp_path / "run" / "data" / "data.jsonl",
                                  RunShape(packing="bfd_split", per_device_train_batch_size=4,
                                           gradient_accumulation_steps=2))
    assert [line for line in said if line.startswith("SFTTrainer cost: 150 rows packed (bfd_split)")]
