"""`inspect --model` and `train`'s token preflight on image data, with a real tiny LLaVA (16 tokens per image) and
the real test images: counts as the processor makes them, max_length against image tokens, templates that never
show the model an image."""

import json
import shutil

import jsonschema
import pytest

from tests import tiny_model, tiny_vlm
from tests.conftest import REPO
from tests.test_train_vision import DOG, DPO_ROWS, IMAGES, LOGO, RGB, SFT_ROWS, assistant, user, write_parquet
from trlprep.errors import DataRefused
from trlprep.inspector import inspect_dataset
from trlprep.inspector.images import ImageChecker
from trlprep.inspector.tokens import (ImageTokens, analyse_row, load_processor, processor_tokenizer, readable_rows,
                                      special_strings)
from trlprep.train.api import token_preflight_or_refuse

TRIGGERED = {"TP510", "TP511"}  # tests/test_tokens.py checks that every TP5xx rule is triggered by a test
THREE_IMAGES = {"messages": [user(None, None, None, "What colour is this image?"), assistant("It is red.")],
                "images": [RGB, DOG, LOGO]}
TEXT_ONLY_TEMPLATE = tiny_model.CHAT_TEMPLATE  # prints `content` as it is: a list of parts, as Python writes it
DROPS_IMAGES = tiny_vlm.CHAT_TEMPLATE.replace(
    "{%- if p['type'] == 'image' -%}{{- '<image>' -}}{%- elif p['type'] == 'text' -%}", "{%- if p['type'] == 'text' -%}")


def write_rows(rows, folder):
    """The rows as JSON lines in `folder`, their images copied beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in (DOG, LOGO, RGB):
        shutil.copy(IMAGES / name, folder / name)
    path = folder / "data.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def findings(report):
    return {f.rule: f for f in report.findings}


def exact_length(processor, trl_row, folder):
    """The collator's own count: the processor's chat template on the row with its real images, tokenized."""
    from PIL import Image

    images = iter([Image.open(folder / name) for name in trl_row["images"]])
    turns = trl_row.get("messages") or trl_row["prompt"] + trl_row["chosen"]
    with_images = [{**turn, "content": [{**part, "image": next(images)} if part["type"] == "image" else part
                                        for part in turn["content"]]} for turn in turns]
    return len(processor.apply_chat_template(with_images, tokenize=True, return_dict=True)["input_ids"][0])


@pytest.mark.parametrize("rows", [SFT_ROWS + [THREE_IMAGES], DPO_ROWS], ids=["sft", "dpo"])
def test_counts_from_image_headers_equal_the_processors_own(tiny_vlm, tmp_path, rows):
    folder = tmp_path / "data"
    write_rows(rows, folder)
    processor = load_processor(str(tiny_vlm))
    tokenizer = processor_tokenizer(processor)
    counter = ImageTokens(processor, ImageChecker(folder))
    shape, readable = readable_rows(enumerate(rows, 1))
    for _, trl_row in readable:
        counted = analyse_row(tokenizer, trl_row, shape.type, implicit=False, has_markers=True,
                              specials=special_strings(tokenizer), images=counter.of_row(trl_row))
        assert counted.total == exact_length(processor, trl_row, folder)
        assert counted.image_tokens == 16 * len(trl_row["images"]) and not counted.issues


def test_inspect_counts_image_tokens_in_every_row(tiny_vlm, tmp_path):
    report = inspect_dataset(write_rows(SFT_ROWS + [THREE_IMAGES], tmp_path / "data"), model=str(tiny_vlm))
    tokens = report.tokens
    assert tokens["images"] == {"images": 7, "image_tokens": {"p50": 16, "p95": 48, "p99": 48, "max": 48},
                                "cut_inside_image": 0}
    assert tokens["rows"] == 5 and tokens["max"] == 78
    assert tokens["template"]["image_parts"] == "rendered"
    assert not {"TP509", "TP510", "TP511"} & set(findings(report))
    jsonschema.validate(report.to_dict(), json.loads((REPO / "schemas" / "report.schema.json").read_text()))


def test_max_length_that_cuts_inside_an_image_is_an_error_naming_the_row(tiny_vlm, tmp_path):
    report = inspect_dataset(write_rows(SFT_ROWS + [THREE_IMAGES], tmp_path / "data"), model=str(tiny_vlm),
                             max_length=40)
    found = findings(report)
    assert found["TP510"].rows == [5] and report.exit_code == 1
    assert found["TP510"].examples[0]["detail"] == ("3 image(s) are 48 tokens, over max_length=40 on their own; "
                                                   "the row is 78 tokens")
    assert found["TP509"].rows == [1, 2, 3]  # only their answers are cut: TRL truncates them silently
    assert report.tokens["images"]["cut_inside_image"] == 1
    # TRL prepares no vision dataset: nothing is dropped, its collators cut rows, and the cut in row 5 stops it
    sft = report.tokens["trainer_effects"]["sft"]
    assert (sft["truncated"], sft["dropped"], sft["stopped"]) == (3, 0, 1)


def test_text_up_to_the_last_image_past_max_length_is_an_error(tiny_vlm, tmp_path):
    long_question = {"messages": [user("Describe the picture. " * 3, None), assistant("A logo.")], "images": [LOGO]}
    report = inspect_dataset(write_rows([long_question], tmp_path / "data"), model=str(tiny_vlm), max_length=30)
    detail = findings(report)["TP510"].examples[0]["detail"]
    assert detail == ("the text up to the end of the last of 1 image(s) (16 image tokens) is 37 tokens, over "
                      "max_length=30")


@pytest.mark.parametrize("template, said", [
    (TEXT_ONLY_TEMPLATE, "the chat template prints the content parts as a Python list, not the image token"),
    (DROPS_IMAGES, "the chat template drops image parts (no '<image>' for an image)"),
], ids=["python-list", "drops"])
def test_a_template_that_does_not_render_image_parts_is_an_error(tiny_vlm, tmp_path, template, said):
    folder = tmp_path / "model"
    shutil.copytree(tiny_vlm, folder)
    processor = load_processor(str(folder))
    processor.chat_template = template
    processor.save_pretrained(folder)
    report = inspect_dataset(write_rows(SFT_ROWS, tmp_path / "data"), model=str(folder))
    assert findings(report)["TP511"].message == f"{said}, so the model never sees the images"
    assert report.exit_code == 1 and report.tokens["template"]["image_parts"] == said


def test_a_text_only_model_on_image_data_is_an_error(tiny_model, tmp_path):
    report = inspect_dataset(write_rows(SFT_ROWS, tmp_path / "data"), model=str(tiny_model))
    assert findings(report)["TP511"].message == ("the model's processor is a Qwen2Tokenizer, which reads no images (a "
                                                 "text-only model), so the model never sees the images")


def test_an_image_the_template_leaves_out_of_a_turn_is_an_error_on_that_row(tiny_vlm, tmp_path):
    # The tiny template renders image parts in user turns only, as many chat templates do.
    in_answer = {"messages": [user("What is this?"), {"role": "assistant", "content": [{"type": "image"}]}],
                 "images": [DOG]}
    report = inspect_dataset(write_rows(SFT_ROWS[:1] + [in_answer], tmp_path / "data"), model=str(tiny_vlm))
    finding = findings(report)["TP511"]
    assert finding.rows == [2]
    assert finding.examples[0]["detail"] == ("the chat template renders 0 image tokens where the processor makes "
                                             "16 of the row's 1 image(s)")


def test_train_preflight_counts_images_embedded_in_parquet(tiny_vlm, tmp_path):
    preflight = token_preflight_or_refuse("sft", str(tiny_vlm), write_parquet(SFT_ROWS, tmp_path / "data"), {},
                                          max_dropped=0.05)
    assert preflight["rows"] == 4 and preflight["images"]["images"] == 4
    assert preflight["max"] == 62 and "TP511" not in preflight["findings"]


def test_train_preflight_reads_image_paths_against_the_files_folder(tiny_vlm, tmp_path, monkeypatch):
    train_file = write_rows(DPO_ROWS, tmp_path / "data")
    monkeypatch.chdir(tmp_path)  # not where the images are
    preflight = token_preflight_or_refuse("dpo", str(tiny_vlm), train_file, {}, max_dropped=0.05)
    assert preflight["rows"] == 4 and preflight["images"]["image_tokens"]["max"] == 16


def test_train_refuses_a_max_length_that_cuts_inside_an_image(tiny_vlm, tmp_path):
    train_file = write_rows(SFT_ROWS + [THREE_IMAGES], tmp_path / "data")
    with pytest.raises(DataRefused, match=r"TP510: max_length=40 cuts inside the images of 1 row\(s\) \(row 5: 3 "
                                          r"image\(s\) are 48 tokens.*try --max-length 128, or leave it unset"):
        token_preflight_or_refuse("sft", str(tiny_vlm), train_file, {"max_length": 40}, max_dropped=1.0)
