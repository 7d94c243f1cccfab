"""Training on image data, from files already in TRL's vision shape (what the converter hands over), on CPU with
a real tiny LLaVA: the run starts at `run_prepared`, where `train` goes once the data is prepared."""

import json
import math
import random
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, in_fresh_python
from trlprep.errors import DataRefused, UsageError
from trlprep.train import config as run_config
from trlprep.train.api import PreparedRun, TrainResult, _build_trainer, run_prepared
from trlprep.train.vision import load_training_data, maybe_vision_settings

pytestmark = pytest.mark.slow  # the slow tier (--slow): vision runs through TRL's trainers

IMAGES = REPO / "tests" / "data" / "vision"
DOG, LOGO, RGB = "dog_on_skateboard.jpg", "oumi_logo_dark.png", "rgb_pytorch.png"
FAST = {"max_steps": 2, "per_device_train_batch_size": 2}


def user(*parts):
    return {"role": "user", "content": [{"type": "image"} if part is None else {"type": "text", "text": part}
                                        for part in parts]}


def assistant(text):
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


# Rows as the converter writes them, `images` named by file; one row has two images, one none.
SFT_ROWS = [
    {"messages": [user(None, "What is this?"), assistant("A dog on a skateboard.")], "images": [DOG]},
    {"messages": [user("Describe the picture.", None), assistant("A logo.")], "images": [LOGO]},
    {"messages": [user(None, None, "What colour is this image?"), assistant("It is red.")], "images": [RGB, DOG]},
    {"messages": [user("What is this?"), assistant("A square.")], "images": []},
]
DPO_ROWS = [{"prompt": [user(None, "What is this?")], "chosen": [assistant("A dog.")],
             "rejected": [assistant("A logo.")], "images": [name]} for name in (DOG, LOGO, RGB, DOG)]
GRPO_ROWS = [{"prompt": [user(None, "What colour is this image?")], "images": [name]} for name in (RGB, DOG, LOGO, RGB)]
KTO_ROWS = [{"prompt": [user(None, "What is this?")], "completion": [assistant(answer)], "label": label,
             "images": [name]} for name, answer, label in ((DOG, "A dog.", True), (LOGO, "A dog.", False),
                                                           (RGB, "It is red.", True), (DOG, "A logo.", False))]


def write_jsonl(rows, folder: Path, images_under="images") -> Path:
    """The rows as JSON lines in `folder`, their images copied to `folder/images_under` and named relative to it."""
    (folder / images_under).mkdir(parents=True, exist_ok=True)
    for name in {name for row in rows for name in row["images"]}:
        shutil.copy(IMAGES / name, folder / images_under / name)
    path = folder / "data.jsonl"
    path.write_text("".join(json.dumps({**row, "images": [f"{images_under}/{name}" for name in row["images"]]}) + "\n"
                            for row in rows))
    return path


def write_parquet(rows, folder: Path) -> Path:
    """The rows as Parquet with the images embedded (the `datasets` Image feature), as the converter writes them."""
    import datasets

    folder.mkdir(parents=True, exist_ok=True)
    dataset = datasets.Dataset.from_list([{**row, "images": [str(IMAGES / name) for name in row["images"]]}
                                          for row in rows])
    dataset = dataset.cast_column("images", datasets.List(datasets.Image()))
    path = folder / "data.parquet"
    dataset.to_parquet(str(path))
    return path


def prepared(method, model, train_file, output_dir, functions=(), said=None, **settings):
    """What `prepare_run` hands `run_prepared` once the data is converted: the run's TRL config, made fit for images
    by the same call."""
    settings = run_config.resolve(method, output_dir=str(output_dir), options={**FAST, **settings}, yaml_path=None,
                                  overrides=())
    settings = maybe_vision_settings(method, settings, train_file, say=(said if said is not None else []).append)
    rows = sum(1 for _ in open(train_file)) if train_file.suffix == ".jsonl" else 4
    # The files are written ready for the method, so the ledger `convert` would give is every row read, kept
    # and written: `run_prepared` accounts the trainer's rows against it.
    ledger = {"rows_in": rows, "rows_kept": rows, "rows_rejected": 0, "rows_out": rows, "rejected_by_rule": {}}
    result = TrainResult(method=method, model=str(model), output_dir=str(output_dir), report={},
                         ledger=ledger, eval_ledger=None, config={}, reward_funcs=[])
    return PreparedRun(result, settings, run_config.build(method, settings), {"train": train_file}, list(functions),
                       None)


def vision_weights(folder: Path) -> dict:
    """The vision tower's and projector's weights saved in `folder`: they change only if images reached the model."""
    from safetensors.torch import load_file

    return {name: tensor for name, tensor in load_file(folder / "model.safetensors").items()
            if "vision_tower" in name or "multi_modal_projector" in name}


def assert_trained_on_images(tiny_vlm, output_dir, result):
    assert math.isfinite(result.metrics["train_loss"])
    before, after = vision_weights(tiny_vlm), vision_weights(output_dir)
    assert before.keys() == after.keys() and before
    assert any(not before[name].equal(after[name]) for name in before), "the vision tower got no gradient"


def test_sft_trains_on_images_embedded_in_parquet(tiny_vlm, tmp_path):
    said = []
    result = run_prepared(prepared("sft", tiny_vlm, write_parquet(SFT_ROWS, tmp_path / "data"), tmp_path / "out",
                                   said=said))
    assert_trained_on_images(tiny_vlm, tmp_path / "out", result)
    assert said == ["image data: SFTTrainer will not truncate (max_length=None), since a cut inside an image's "
                    "tokens stops training; set --max-length to cut rows"]
    assert result.rows_trained == 4
    assert (result.accounting["rows_in"], result.accounting["dropped_by_trainer"]) == (4, 0)
    assert (tmp_path / "out" / "processor_config.json").exists()  # the processor is saved with the model


def test_dpo_reads_image_paths_relative_to_the_data_file_not_the_working_directory(tiny_vlm, tmp_path,
                                                                                    monkeypatch):
    train_file = write_jsonl(DPO_ROWS, tmp_path / "data")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # where TRL would look for images/dog_on_skateboard.jpg
    result = run_prepared(prepared("dpo", tiny_vlm, train_file, tmp_path / "out"))
    assert_trained_on_images(tiny_vlm, tmp_path / "out", result)


def test_grpo_generates_from_images_and_its_reward_function_sees_them(tiny_vlm, tmp_path):
    seen = []

    def noisy_reward(completions, images, **kwargs):
        seen.extend(images)
        return [random.random() for _ in completions]  # unequal rewards, so the group's advantages are not zero

    result = run_prepared(prepared("grpo", tiny_vlm, write_parquet(GRPO_ROWS, tmp_path / "data"), tmp_path / "out",
                                   functions=[noisy_reward], num_generations=2, max_completion_length=8))
    assert_trained_on_images(tiny_vlm, tmp_path / "out", result)
    sizes = {image.size for images in seen for image in images}  # PIL images, as the Parquet file holds them
    assert sizes and sizes <= {_size(name) for name in (RGB, DOG, LOGO)}


def test_kto_trains_on_images(tiny_vlm, tmp_path):
    result = run_prepared(prepared("kto", tiny_vlm, write_jsonl(KTO_ROWS, tmp_path / "data"), tmp_path / "out"))
    assert_trained_on_images(tiny_vlm, tmp_path / "out", result)


def _size(name):
    from PIL import Image

    with Image.open(IMAGES / name) as image:
        return image.size


def test_relative_image_paths_load_as_the_files_images_from_any_working_directory(tmp_path, monkeypatch):
    train_file = write_jsonl(SFT_ROWS, tmp_path / "data", images_under="pictures")
    monkeypatch.chdir(tmp_path)  # not the data file's folder
    loaded = load_training_data(train_file)
    assert [[image.size for image in row["images"]] for row in loaded] == [
        [_size(DOG)], [_size(LOGO)], [_size(RGB), _size(DOG)], []]


def test_a_missing_image_is_refused_naming_the_file_the_row_and_the_path(tmp_path):
    train_file = write_jsonl(SFT_ROWS, tmp_path / "data")
    (tmp_path / "data" / "images" / LOGO).unlink()
    with pytest.raises(DataRefused, match=rf"^{train_file} row 2: image images/{LOGO} not found \(looked for "
                                          rf"{tmp_path / 'data' / 'images' / LOGO}\)$"):
        load_training_data(train_file)


def test_reward_on_image_data_is_refused_before_torch_or_a_model_loads(tiny_vlm, tmp_path):
    train_file = write_parquet(DPO_ROWS, tmp_path / "data")
    code = ("import sys\nfrom pathlib import Path\nfrom trlprep.train.vision import maybe_vision_settings\n"
            "try:\n    maybe_vision_settings('reward', {}, Path(sys.argv[1]))\n"
            "except ValueError as refused:\n    print('refused:', refused)")
    done, loaded = in_fresh_python(code, str(train_file))
    assert done.stdout.strip() == ("refused: reward on image data: TRL's RewardTrainer has no vision path and would "
                                   "silently drop the images; train a reward model on text rows, or use GRPO with a "
                                   "reward function")
    assert loaded == []
    # A run prepared some other way is refused too, from the model's config alone.
    with pytest.raises(UsageError, match="^reward on image data"):
        _build_trainer("reward", str(tiny_vlm), None, {"train": train_file}, [], None)


def test_a_text_only_model_on_image_data_is_refused_in_one_line(tiny_model, tmp_path):
    with pytest.raises(UsageError, match=r"the data holds images, but this qwen2 model takes text only"):
        _build_trainer("sft", str(tiny_model), None, {"train": write_parquet(SFT_ROWS, tmp_path)}, [], None)


@pytest.mark.parametrize("method,rows,settings,refusal", [
    ("sft", SFT_ROWS, {"packing": True}, UsageError("packing=True does not work on image data")),
    ("sft", SFT_ROWS, {"padding_free": True}, UsageError("padding_free=True does not work on image data")),
    ("sft", SFT_ROWS, {"max_length": 512, "truncation_mode": "keep_end"},
     UsageError("truncation_mode=keep_end does not work on image data")),
    ("dpo", DPO_ROWS, {"precompute_ref_log_probs": True},
     UsageError("precompute_ref_log_probs=True does not work on image data")),
    ("dpo", [{key: row[key] for key in ("chosen", "rejected", "images")} for row in DPO_ROWS], {},
     DataRefused("DPOTrainer on image data needs column(s) prompt")),
    ("kto", DPO_ROWS, {}, DataRefused("KTOTrainer on image data needs column(s) completion, label")),
    ("grpo", [{"prompt": "What is this?", "images": [DOG]}], {},
     DataRefused("GRPOTrainer on image data needs a conversational prompt")),
])
def test_what_trl_would_fail_on_mid_training_is_refused_before_the_model_loads(tmp_path, method, rows, settings,
                                                                              refusal):
    with pytest.raises(type(refusal), match=re.escape(str(refusal))):
        maybe_vision_settings(method, settings, write_jsonl(rows, tmp_path))


def test_a_max_length_the_person_set_is_kept_and_its_risk_said(tmp_path):
    said = []
    settings = maybe_vision_settings("dpo", {"max_length": 256}, write_jsonl(DPO_ROWS, tmp_path), say=said.append)
    assert settings["max_length"] == 256
    assert said == ["image data: DPOTrainer cuts rows at max_length=256; a row cut inside its image tokens stops "
                    "training at its batch"]


def test_text_data_keeps_its_settings(tmp_path):
    text_file = tmp_path / "data.jsonl"
    text_file.write_text(json.dumps({"prompt": "a", "chosen": "b", "rejected": "c"}) + "\n")
    settings = {"output_dir": "x", "max_length": 64}
    assert maybe_vision_settings("reward", settings, text_file) is settings


def test_sft_on_image_data_with_a_text_column_keeps_the_text(tmp_path):
    rows = [{"text": "<image>What is this? A dog.", "images": [DOG]}]  # TRL keeps no `text` column by default
    assert maybe_vision_settings("sft", {}, write_jsonl(rows, tmp_path))["remove_unused_columns"] is False
    with pytest.raises(UsageError, match="needs remove_unused_columns=False"):
        maybe_vision_settings("sft", {"remove_unused_columns": True}, write_jsonl(rows, tmp_path))


def test_train_on_raw_llamafactory_image_data_checks_converts_and_trains_on_the_images(tiny_vlm, tmp_path):
    """The whole `train` flow on image data as LLaMA-Factory writes it (`<image>` in string turns, `images` paths
    relative to the file): each image checked, the rows converted to typed parts, the VLM trained on the images."""
    from trlprep.train.api import train

    images = tmp_path / "data" / "img"
    images.mkdir(parents=True)
    for name in ("dog_on_skateboard.jpg", "rgb_pytorch.png"):
        shutil.copy(REPO / "tests" / "data" / "vision" / name, images / name)
    row = {"messages": [{"role": "user", "content": "<image>What is it?"}, {"role": "assistant", "content": "A dog."},
                        {"role": "user", "content": "And this?<image>"}, {"role": "assistant", "content": "Colours."}],
           "images": ["img/dog_on_skateboard.jpg", "img/rgb_pytorch.png"]}
    raw = tmp_path / "data" / "raw.jsonl"
    raw.write_text((json.dumps(row) + "\n") * 4)
    result = train(method="sft", model=str(tiny_vlm), dataset=str(raw), output_dir=str(tmp_path / "out"),
                   max_steps=1, batch_size=2)
    assert_trained_on_images(tiny_vlm, tmp_path / "out", result)


def test_a_recipe_trains_vision_stages_in_a_chain_and_refuses_a_gguf_of_a_vlm_before_training(tiny_vlm, tmp_path):
    """SFT then DPO on image data, stage 2 from stage 1's model; a GGUF export stage after them is refused before
    stage 1 trains: llama.cpp needs the image encoder as a separate mmproj file."""
    from trlprep.train.recipe import run_recipe

    images = tmp_path / "data" / "img"
    images.mkdir(parents=True)
    shutil.copy(REPO / "tests" / "data" / "vision" / "rgb_pytorch.png", images / "rgb.png")
    sft = {"messages": [{"role": "user", "content": "<image>Colours?"}, {"role": "assistant", "content": "RGB."}],
           "images": ["img/rgb.png"]}
    pair = {"conversations": [{"from": "human", "value": "<image>Colours?"}], "chosen": {"from": "gpt", "value": "RGB."},
            "rejected": {"from": "gpt", "value": "Grey."}, "images": ["img/rgb.png"]}
    for name, row in (("sft", sft), ("pairs", pair)):
        (tmp_path / "data" / f"{name}.jsonl").write_text((json.dumps(row) + "\n") * 4)
    stages = [{"method": "sft", "dataset": str(tmp_path / "data" / "sft.jsonl"), "max_steps": 1, "batch_size": 2},
              {"method": "dpo", "dataset": str(tmp_path / "data" / "pairs.jsonl"), "max_steps": 1, "batch_size": 2}]
    recipe = {"model": str(tiny_vlm), "output_dir": str(tmp_path / "run"), "stages": stages}
    with pytest.raises(UsageError, match="recipe stage 3 .gguf export.: .*vision-language model.*mmproj"):
        run_recipe({**recipe, "stages": stages + [{"export": "gguf"}]})
    assert not (tmp_path / "run" / "1-sft" / "model.safetensors").exists()
    result = run_recipe(recipe)
    first, second = result.stages
    assert (first["method"], second["method"], second["model"]) == ("sft", "dpo", str(tmp_path / "run" / "1-sft"))
    assert second["started_from_weights"] == first["saved_weights"] != second["saved_weights"]
    before, after = vision_weights(tmp_path / "run" / "1-sft"), vision_weights(tmp_path / "run" / "2-dpo")
    assert any(not before[name].equal(after[name]) for name in before), "DPO's vision tower got no gradient"


@pytest.mark.parametrize("shape", ["llamafactory placeholders", "llava image + sharegpt", "trl typed parts",
                                   "openai image_url", "anthropic image block", "imagefolder metadata"])
def test_every_image_shape_trains_a_step_on_the_tiny_vlm(shape, tiny_vlm, tmp_path):
    """Each shape users bring, as written: `train` checks it, converts it to TRL's vision shape and trains on its
    images (the vision tower moves)."""
    from tests.test_vision import SHAPES, _folder, _jsonl
    from trlprep.train.api import train

    source = _jsonl(_folder(tmp_path) / "data.jsonl", [SHAPES[shape]] * 4)
    result = train(method="sft", model=str(tiny_vlm), dataset=str(source), output_dir=str(tmp_path / "out"),
                   max_steps=1, batch_size=2)
    assert_trained_on_images(tiny_vlm, tmp_path / "out", result)


def test_hub_parquet_image_data_trains_a_step_on_the_tiny_vlm(tiny_vlm, tmp_path):
    """The Hub's shape (typed parts, the `Image` feature's embedded bytes), as `train` takes it from a Parquet
    file: checked, converted, and the images reach the vision tower."""
    from tests.test_vision import hub_parquet
    from trlprep.train.api import train

    source = hub_parquet(tmp_path / "hub.parquet", rows=4)
    result = train(method="sft", model=str(tiny_vlm), dataset=str(source), output_dir=str(tmp_path / "out"),
                   max_steps=1, batch_size=2)
    assert_trained_on_images(tiny_vlm, tmp_path / "out", result)
