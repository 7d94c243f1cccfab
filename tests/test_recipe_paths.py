"""A recipe file's relative paths are read from the recipe's own folder, wherever `train --recipe` runs."""

import json
import shutil

import pytest
import yaml
from click.testing import CliRunner

from trlprep.train.cli import main

FAST = {"max_steps": 1, "batch_size": 2, "max_length": 64, "max_dropped": 1.0}


def test_a_recipe_reads_and_writes_beside_itself_from_any_working_directory(shared_data, tiny_model, tmp_path,
                                                                           monkeypatch):
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    shutil.copytree(tiny_model, project / "model")
    shutil.copy(shared_data / "alpaca_en_demo.json", project / "data" / "chats.json")
    shutil.copy(shared_data / "kto_en_demo.json", project / "data" / "kto.json")
    (project / "trl.yaml").write_text("learning_rate: 0.0003\n")
    (project / "recipe.yaml").write_text(yaml.safe_dump({"model": "model", "output_dir": "runs/assistant", "stages": [
        {"method": "sft", "datasets": [{"path": "data/chats.json"}], "config": "trl.yaml", **FAST},
        {"method": "kto", "dataset": "data/kto.json", **FAST}]}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    shown = CliRunner().invoke(main, ["--recipe", "../project/recipe.yaml", "--dry-run"])
    assert shown.exit_code == 0, shown.output
    assert "recipe: 2 stage(s) from ../project/model in ../project/runs/assistant" in shown.output
    assert "1. sft on ../project/data/chats.json from ../project/model" in shown.output
    assert (project / "runs" / "assistant" / "recipe.json").is_file()
    assert (project / "runs" / "assistant" / "1-sft" / "trlprep-run.json").is_file()
    run = json.loads((project / "runs" / "assistant" / "1-sft" / "trlprep-run.json").read_text())
    assert run["config"]["learning_rate"] == 0.0003  # from the stage's TRL config beside the recipe
    assert list(elsewhere.iterdir()) == []  # nothing read or written from the working directory


@pytest.mark.slow
def test_paths_read_from_the_recipes_folder_are_said_normalised(shared_data, tiny_model, tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "recipes").mkdir(parents=True)
    shutil.copytree(tiny_model, project / "model")
    shutil.copy(shared_data / "alpaca_en_demo.json", project / "chats.json")
    (project / "recipes" / "recipe.yaml").write_text(yaml.safe_dump({
        "model": "../model", "output_dir": "../runs/assistant",
        "stages": [{"method": "sft", "dataset": "../chats.json", **FAST}]}))
    monkeypatch.chdir(project)
    shown = CliRunner().invoke(main, ["--recipe", "recipes/recipe.yaml", "--dry-run"])
    assert shown.exit_code == 0, shown.output
    assert "recipe: 1 stage(s) from model in runs/assistant" in shown.output
    assert "1. sft on chats.json from model" in shown.output
    assert "recipes/.." not in shown.output
    assert json.loads((project / "runs" / "assistant" / "recipe.json").read_text())["stages"][0]["dataset"] == \
        "chats.json"
