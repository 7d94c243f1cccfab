"""`train --recipe`: stages one after another, every stage's data checked before the first trains."""

import json

import pytest
import yaml
from click.testing import CliRunner

from inspector.errors import UsageError
from tests.conftest import in_fresh_python
from train.cli import main
from train.recipe import load_recipe, run_recipe, weights_digest

FAST = {"max_steps": 2, "batch_size": 2, "max_length": 64, "max_dropped": 1.0}


def test_sft_then_dpo_trains_stage_two_from_stage_ones_weights(shared_data, tiny_model, tmp_path):
    recipe = {"model": str(tiny_model), "output_dir": str(tmp_path / "run"), "stages": [
        {"method": "sft", "dataset": str(shared_data / "alpaca_en_demo.json"), **FAST},
        {"method": "dpo", "dataset": str(shared_data / "dpo_en_demo.json"), "set": {"beta": 0.05}, **FAST}]}
    said = []
    result = run_recipe(recipe, announce=said.append)
    sft, dpo = result.stages
    assert sft["model"] == str(tiny_model) and dpo["model"] == str(tmp_path / "run" / "1-sft")
    assert sft["started_from_weights"] == weights_digest(tiny_model)
    assert dpo["started_from_weights"] == sft["saved_weights"] != sft["started_from_weights"]
    assert dpo["saved_weights"] != dpo["started_from_weights"]  # stage 2 trained
    # Each stage's ledger and what its trainer will do at max_length, all before the first stage trains.
    assert said[0].startswith("data: rows in 999 = kept 999") and said[1].startswith("SFTTrainer at max_length=64")
    assert said[2] == f"stage 1 (sft, {shared_data / 'alpaca_en_demo.json'}): checked, 999 rows ready"
    assert said[3].startswith("data: rows in 300 = kept 300") and said[4].startswith("DPOTrainer at max_length=64")
    assert said[5] == f"stage 2 (dpo, {shared_data / 'dpo_en_demo.json'}): checked, 300 rows ready"
    assert said[6] == f"stage 1 (sft): training from {tiny_model}"
    stage_two = json.loads((tmp_path / "run" / "2-dpo" / "trlprep-run.json").read_text())
    assert stage_two["model"] == str(tmp_path / "run" / "1-sft") and stage_two["config"]["beta"] == 0.05
    summary = json.loads((tmp_path / "run" / "recipe.json").read_text())
    assert [s["method"] for s in summary["stages"]] == ["sft", "dpo"]
    assert all(s["rows_trained"] for s in summary["stages"])


def test_unusable_stage_two_data_is_refused_before_stage_one_trains(shared_data, tiny_model, tmp_path):
    """c4's plain texts cannot become DPO pairs: the recipe stops naming stage 2, and stage 1 saved no model."""
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"model": str(tiny_model), "output_dir": str(tmp_path / "run"), "stages": [
        {"method": "sft", "dataset": str(shared_data / "alpaca_en_demo.json"), **FAST},
        {"method": "dpo", "dataset": str(shared_data / "c4_demo.jsonl"), **FAST}]}))
    code = ("import sys\nfrom train.recipe import DataRefused, run_recipe\n"
            "try:\n    run_recipe(sys.argv[1])\nexcept DataRefused as refused:\n    print('refused:', refused)")
    done, loaded = in_fresh_python(code, str(path))
    assert done.stdout.startswith("refused: recipe stage 2 (dpo): ") and "c4_demo.jsonl: not usable for dpo" in done.stdout
    assert loaded == []  # no model, no torch, no trl: refused in about a second (1.05 s from the command line here)
    assert not (tmp_path / "run").exists()
    refused = CliRunner().invoke(main, ["--recipe", str(path)])
    assert refused.exit_code == 1 and "recipe stage 2 (dpo)" in refused.output


def test_dry_run_checks_every_stage_and_trains_none(shared_data, tiny_model, tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"model": str(tiny_model), "output_dir": str(tmp_path / "run"), "stages": [
        {"method": "sft", "dataset": str(shared_data / "alpaca_en_demo.json"), **FAST},
        {"method": "kto", "dataset": str(shared_data / "kto_en_demo.json"), **FAST}]}))
    shown = CliRunner().invoke(main, ["--recipe", str(path), "--dry-run", "--format", "json"])
    assert shown.exit_code == 0, shown.output
    plan = json.loads(shown.stdout)
    assert plan["dry_run"] and [p["ledger"]["rows_out"] for p in plan["planned"]] == [999, 300]
    assert plan["stages"][1]["model"] == str(tmp_path / "run" / "1-sft")
    assert not (tmp_path / "run" / "1-sft" / "model.safetensors").exists()
    text = CliRunner().invoke(main, ["--recipe", str(path), "--dry-run"]).output
    assert "recipe: 2 stage(s)" in text and "2. kto on" in text


@pytest.mark.parametrize("recipe,message", [
    ({"model": "m", "stages": [{"method": "sft", "dataset": "d", "max_step": 5}]},
     "recipe stage 1 (sft): unknown key 'max_step'; did you mean max_steps?"),
    ({"model": "m", "stage": []}, "recipe: unknown key 'stage'; did you mean stages?"),
    ({"model": "m", "stages": [{"method": "ppo", "dataset": "d"}]}, "recipe stage 1: `method` must be one of"),
    ({"model": "m", "stages": [{"method": "sft"}]}, "recipe stage 1 (sft): `dataset` is required"),
    ({"model": "m", "stages": [{"method": "sft", "dataset": "d", "lora": True}, {"method": "dpo", "dataset": "d"}]},
     "a LoRA stage can only be the last one for now"),
])
def test_recipe_mistakes_are_named(recipe, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        load_recipe(recipe)


def test_a_trl_field_typo_in_a_stage_is_answered_before_any_data_is_read(tiny_model, tmp_path):
    recipe = {"model": str(tiny_model), "stages": [
        {"method": "dpo", "dataset": str(tmp_path / "nowhere.jsonl"), "set": {"betta": 0.1}}]}
    with pytest.raises(UsageError, match=r"recipe stage 1 \(dpo\): --set: 'betta' is not a field of DPOConfig; "
                                         r"did you mean beta"):
        run_recipe(recipe)


def test_recipe_and_single_run_options_do_not_mix(tmp_path):
    mixed = CliRunner().invoke(main, ["--recipe", "r.yaml", "--method", "sft"])
    assert mixed.exit_code == 2 and "drop --method, --model and --dataset" in mixed.output
    neither = CliRunner().invoke(main, ["--method", "sft"])
    assert neither.exit_code == 2 and "Missing option --model, --dataset (or give a --recipe)" in neither.output
