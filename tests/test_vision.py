"""Image data, as users bring it: every common shape is read from its values, each image is checked, and what
`convert` writes is TRL's vision shape (typed parts, each image part where its image stood, `images` in order);
rows with a bad image are rejected with their reason, and `inspect`'s counts are `convert`'s ledger."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import orjson
import pytest

from trlprep.converters import convert
from trlprep.inspector import inspect_dataset
from trlprep.inspector.dialects import classify_row, to_trl

IMAGES = Path(__file__).parent / "data" / "vision"
DOG, LOGO, TINY = "dog_on_skateboard.jpg", "oumi_logo_dark.png", "rgb_pytorch.png"
ASK, ANSWER = "What is in the picture?", "A dog on a skateboard."


def _folder(tmp_path: Path) -> Path:
    """A dataset folder with the real images under `img/`."""
    (tmp_path / "img").mkdir()
    for name in (DOG, LOGO, TINY):
        shutil.copy(IMAGES / name, tmp_path / "img" / name)
    return tmp_path


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


def _data_url(name: str) -> str:
    return "data:image/png;base64," + base64.b64encode((IMAGES / name).read_bytes()).decode()


def _user(content):
    return {"role": "user", "content": content}


def _assistant(content):
    return {"role": "assistant", "content": content}


# Each shape as its source writes it, one row: (rows, the images TRL should get, in order).
SHAPES = {
    "llamafactory placeholders": {"messages": [_user(f"<image>{ASK}"), _assistant(ANSWER),
                                               _user("And this one?<image>"), _assistant("A logo.")],
                                  "images": [f"img/{DOG}", f"img/{LOGO}"]},
    "llava image + sharegpt": {"id": "1", "image": f"img/{DOG}",
                               "conversations": [{"from": "human", "value": f"<image>\n{ASK}"},
                                                 {"from": "gpt", "value": ANSWER}]},
    "trl typed parts": {"messages": [_user([{"type": "image"}, {"type": "text", "text": ASK}]),
                                     _assistant([{"type": "text", "text": ANSWER}])], "images": [f"img/{DOG}"]},
    "openai image_url": {"messages": [_user([{"type": "text", "text": ASK},
                                             {"type": "image_url", "image_url": {"url": _data_url(TINY)}}]),
                                      _assistant(ANSWER)]},
    "anthropic image block": {"messages": [_user([{"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": base64.b64encode((IMAGES / TINY).read_bytes()).decode()}},
        {"type": "text", "text": ASK}]), _assistant(ANSWER)]},
    "imagefolder metadata": {"file_name": f"img/{DOG}", "messages": [_user(ASK), _assistant(ANSWER)]},
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_shape_is_read_with_each_image_part_where_its_image_stood(name):
    row = SHAPES[name]
    shape = classify_row(row)
    assert shape.reads_images, name
    trl = to_trl(row, shape)
    parts = [part for message in trl["messages"] for part in message["content"]]
    assert all(isinstance(message["content"], list) for message in trl["messages"]), "every turn typed"
    assert sum(part["type"] == "image" for part in parts) == len(trl["images"]) >= 1
    assert not any("<image>" in part.get("text", "") for part in parts), "no placeholder text is left"
    assert "image" not in trl and "file_name" not in trl  # the image column became `images`


def test_placeholders_keep_their_turn_and_position():
    trl = to_trl(SHAPES["llamafactory placeholders"], classify_row(SHAPES["llamafactory placeholders"]))
    first, second = trl["messages"][0]["content"], trl["messages"][2]["content"]
    assert first == [{"type": "image"}, {"type": "text", "text": ASK}]
    assert second == [{"type": "text", "text": "And this one?"}, {"type": "image"}]
    assert trl["images"] == [f"img/{DOG}", f"img/{LOGO}"]


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_each_shape_inspects_converts_and_reads_back_as_trl_vision_data(name, tmp_path):
    folder = _folder(tmp_path)
    source = _jsonl(folder / "data.jsonl", [SHAPES[name]] * 2)
    report = inspect_dataset(source)
    sft = report.methods["sft"]
    assert sft["status"] in ("ready", "convertible"), sft
    assert report.methods["reward"]["status"] == "incompatible"
    assert "text only" in report.methods["reward"]["reason"]
    (folder / "out").mkdir()
    result = convert(source, to="sft", output=folder / "out" / "sft.jsonl")
    assert result.rows_out == sft["rows_kept"] == 2
    written = [json.loads(line) for line in (folder / "out" / "sft.jsonl").read_text().splitlines()]
    for row in written:  # paths still resolve from the output's folder; other images travel as data URLs
        for image in row["images"]:
            assert image.startswith("data:image/") or (folder / "out" / image).resolve().is_file(), image
    assert inspect_dataset(folder / "out" / "sft.jsonl").methods["sft"]["status"] == "ready"


def test_parquet_output_embeds_the_images_as_the_image_feature(tmp_path):
    import datasets

    folder = _folder(tmp_path)
    source = _jsonl(folder / "data.jsonl", [SHAPES["llamafactory placeholders"]])
    convert(source, to="sft", output=folder / "sft.parquet")
    shutil.rmtree(folder / "img")  # embedded: the output no longer needs the files
    loaded = datasets.Dataset.from_parquet(str(folder / "sft.parquet"))
    assert isinstance(loaded.features["images"].feature, datasets.Image)
    assert [image.size for image in loaded[0]["images"]] == [(580, 403), (1024, 1024)]
    assert inspect_dataset(folder / "sft.parquet").methods["sft"]["status"] == "ready"


def hub_parquet(path: Path, rows: int = 1) -> Path:
    """A Parquet file as the Hub serves image datasets: TRL's typed parts, and the `Image` feature with the bytes
    embedded."""
    import datasets
    from datasets.table import embed_table_storage

    columns = {"messages": [[_user([{"type": "image"}, {"type": "text", "text": ASK}]),
                             _assistant([{"type": "text", "text": ANSWER}])]] * rows,
               "images": [[str(IMAGES / DOG)]] * rows}
    features = datasets.Features({"messages": datasets.List({"role": datasets.Value("string"), "content": datasets.List(
        {"type": datasets.Value("string"), "text": datasets.Value("string")})}),
        "images": datasets.List(datasets.Image())})
    dataset = datasets.Dataset.from_dict(columns, features=features)
    datasets.Dataset(embed_table_storage(dataset.data.table)).to_parquet(str(path))
    return path


def test_hub_parquet_with_the_image_feature_is_read_and_converted(tmp_path):
    import datasets

    hub_parquet(tmp_path / "hub.parquet")
    report = inspect_dataset(tmp_path / "hub.parquet")
    assert report.methods["sft"]["status"] in ("ready", "convertible"), report.methods["sft"]
    assert not [f for f in report.findings if f.severity == "error"]
    convert(tmp_path / "hub.parquet", to="sft", output=tmp_path / "out.parquet")
    assert datasets.Dataset.from_parquet(str(tmp_path / "out.parquet"))[0]["images"][0].size == (580, 403)


def test_planted_defects_are_each_rejected_with_their_reason_and_the_good_rows_kept(tmp_path):
    folder = _folder(tmp_path)
    (folder / "img" / "truncated.jpg").write_bytes((IMAGES / DOG).read_bytes()[:2000])
    (folder / "img" / "notes.jpg").write_text("not an image")
    good = SHAPES["llamafactory placeholders"]
    rows = [good,
            {**good, "images": [f"img/{DOG}", "img/missing.jpg"]},
            {**good, "images": [f"img/{DOG}", "img/notes.jpg"]},
            {**good, "images": [f"img/{DOG}"]},  # two placeholders, one image
            {"messages": [_user(f"<image>{ASK}"), _assistant(ANSWER)], "images": ["https://example.com/dog.jpg"]},
            good]
    source = _jsonl(folder / "planted.jsonl", rows)
    report = inspect_dataset(source)
    flagged = {f.rule: f.rows for f in report.findings}
    assert flagged["TP703"] == [2] and flagged["TP704"] == [3] and flagged["TP701"] == [4]
    assert flagged["TP705"] == [5]  # a remote image is said, never passed silently
    assert report.methods["sft"]["rows_kept"] == 3
    result = convert(source, to="sft", output=folder / "sft.jsonl")
    assert result.rows_out == 3
    rejects = [json.loads(line) for line in (folder / "sft.rejects.jsonl").read_text().splitlines()]
    assert sorted((r["row"], r["rule"]) for r in rejects) == [(2, "TP703"), (3, "TP704"), (4, "TP701")]
    assert "missing.jpg" in next(r["reason"] for r in rejects if r["rule"] == "TP703")


def test_a_truncated_image_is_found_by_a_full_decode(tmp_path):
    folder = _folder(tmp_path)
    (folder / "img" / "truncated.jpg").write_bytes((IMAGES / DOG).read_bytes()[:20000])
    source = _jsonl(folder / "t.jsonl", [{**SHAPES["llamafactory placeholders"],
                                          "images": [f"img/{DOG}", "img/truncated.jpg"]}])
    assert "TP704" in {f.rule for f in inspect_dataset(source, decode_images=True).findings}


def test_image_paths_resolve_against_the_image_root(tmp_path):
    folder = _folder(tmp_path)
    (folder / "data").mkdir()
    source = _jsonl(folder / "data" / "d.jsonl", [{**SHAPES["trl typed parts"], "images": [DOG]}])
    assert "TP703" in {f.rule for f in inspect_dataset(source).findings}
    assert not inspect_dataset(source, image_root=folder / "img").findings


def test_text_rows_among_image_rows_are_said_and_image_rows_after_text_rows_refused(tmp_path):
    folder = _folder(tmp_path)
    text = {"messages": [_user("What is 2+2?"), _assistant("4")]}
    image = SHAPES["trl typed parts"]
    report = inspect_dataset(_jsonl(folder / "a.jsonl", [image, image, {**text, "images": []}]))
    assert {f.rule: f.rows for f in report.findings}["TP708"] == [3]
    report = inspect_dataset(_jsonl(folder / "b.jsonl", [text, text, text, image]))
    assert {f.rule: f.rows for f in report.findings}["TP709"] == [4]
    assert report.methods["sft"]["rows_kept"] == 3


def test_the_shared_oumi_file_says_its_remote_images(shared_data):
    report = inspect_dataset(shared_data / "vision" / "oumi_vision_language_format.jsonl")
    assert {f.rule for f in report.findings} >= {"TP705", "TP710"}
    assert report.methods["reward"]["status"] == "incompatible"


def test_a_repeated_image_is_found_whatever_its_path_and_across_parallel_chunks(tmp_path, monkeypatch):
    import trlprep.inspector.scan

    folder = _folder(tmp_path)
    shutil.copy(IMAGES / DOG, folder / "img" / "same_dog.jpg")
    rows = [{"messages": [_user(f"<image>Question {i}?"), _assistant(ANSWER)],
             "images": [f"img/{(DOG, TINY, LOGO)[i % 3]}" if i < 3 else "img/same_dog.jpg" if i % 2 else f"img/{TINY}"]}
            for i in range(400)]
    source = _jsonl(folder / "r.jsonl", rows)
    alone = {f.rule: f for f in inspect_dataset(source, workers=1).findings}["TP711"]
    assert alone.count == 397 and alone.rows[:2] == [4, 5]  # row 4 repeats row 1's image (by bytes, under another name), row 5 row 2's
    monkeypatch.setattr(trlprep.inspector.scan, "PARALLEL_FROM_BYTES", 0)
    parallel = {f.rule: f for f in inspect_dataset(source, workers=2).findings}["TP711"]
    assert (parallel.count, parallel.rows) == (alone.count, alone.rows)


def test_image_data_is_pushed_as_parquet_with_the_images_never_as_paths(tmp_path):
    from trlprep.errors import SourceError, UsageError

    folder = _folder(tmp_path)
    source = _jsonl(folder / "data.jsonl", [SHAPES["llamafactory placeholders"]])
    with pytest.raises(UsageError, match="image data goes to the Hub as Parquet"):
        convert(source, to="sft", output=folder / "sft.jsonl", push_to_hub="me/pictures")
    with pytest.raises(SourceError, match="--push-to-hub me/pictures"):  # the Hub is unreachable from here
        convert(source, to="sft", output=folder / "sft.parquet", push_to_hub="me/pictures")
    import pyarrow.parquet as pq

    features = json.loads(pq.read_schema(folder / "sft.parquet").metadata[b"huggingface"])["info"]["features"]
    assert features["images"]["feature"]["_type"] == "Image"  # what the Hub's viewer draws as pictures


@pytest.mark.parametrize("method", ["sft", "dpo", "grpo", "kto"])
def test_a_vision_preference_file_converts_for_every_method_that_reads_images(method, tmp_path):
    """LLaMA-Factory's image preference rows (ShareGPT turns, single chosen/rejected turns, `images`) become each
    method's TRL shape with the image part in the prompt and the images carried; Reward is refused."""
    folder = _folder(tmp_path)
    rows = [{"conversations": [{"from": "human", "value": f"<image>Question {i}?"}],
             "chosen": {"from": "gpt", "value": "Riding."}, "rejected": {"from": "gpt", "value": "Sleeping."},
             "images": [f"img/{(DOG, TINY, LOGO)[i]}"]} for i in range(3)]
    source = _jsonl(folder / "pref.jsonl", rows)
    report = inspect_dataset(source)
    assert report.methods["reward"]["status"] == "incompatible"
    convert(source, to=method, output=folder / f"{method}.jsonl")
    written = [json.loads(line) for line in (folder / f"{method}.jsonl").read_text().splitlines()]
    assert len(written) == report.methods[method]["rows_kept"] * (2 if method == "kto" else 1)
    for row in written:
        assert row["prompt"][0]["content"][0] == {"type": "image"} and len(row["images"]) == 1
        assert (folder / row["images"][0]).is_file()
    assert inspect_dataset(folder / f"{method}.jsonl").methods[method]["status"] == "ready"


def test_near_duplicates_need_the_same_pictures(tmp_path):
    """A fixed question about many pictures is no repeat: `--dedup near` keeps rows whose images differ."""
    folder = _folder(tmp_path)
    rows = [{"messages": [_user("<image>Is there a dog in this picture? Answer in one sentence."),
                          _assistant("No, there is no dog in it.")], "images": [f"img/{name}"]}
            for name in (DOG, LOGO, TINY, DOG)]
    result = convert(_jsonl(folder / "q.jsonl", rows), to="sft", output=folder / "o.jsonl", dedup="near")
    assert (result.rows_out, result.rejected_by_rule) == (3, {"TP406": 1})  # row 4 repeats row 1, picture too


@pytest.mark.parametrize("row, problem", [
    ({"messages": [_user("Take a screenshot"), {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "shot", "arguments": {}}}]},
        {"role": "tool", "content": [{"type": "image"}]}, _assistant("A dog.")], "images": [f"img/{DOG}"]},
     "'tool' turn holding an image"),  # TRL 1.16 counts no image in a tool turn, then fails on the count
    ({"messages": [_user("What?"), _assistant("<image>It is this")], "images": [f"img/{DOG}"]},
     "'assistant' turn holding an image"),
])
def test_an_image_outside_a_user_turn_is_refused(row, problem, tmp_path):
    report = inspect_dataset(_jsonl(_folder(tmp_path) / "t.jsonl", [row]))
    placement = next(f for f in report.findings if f.rule == "TP701")
    assert problem in placement.examples[0]["detail"]
    assert report.methods["sft"]["rows_kept"] == 0


def test_image_rows_with_tool_calls_read_as_text_rows_do(tmp_path):
    call = {"type": "function", "function": {"name": "shot", "arguments": {}}}
    rows = [{"messages": [_user(f"<image>{ASK}"), {"role": "assistant", "content": "", "tool_calls": [call]},
                          {"role": "tool", "content": "done"}, _assistant(ANSWER)], "images": [f"img/{DOG}"]},
            {"conversations": [{"from": "human", "value": f"<image>{ASK}"},
                               {"from": "function_call", "value": json.dumps({"name": "shot", "arguments": {}})},
                               {"from": "observation", "value": "done"}, {"from": "gpt", "value": ANSWER}],
             "images": [f"img/{DOG}"]}]
    folder = _folder(tmp_path)
    for i, row in enumerate(rows):
        report = inspect_dataset(_jsonl(folder / f"{i}.jsonl", [row]))
        assert not [f for f in report.findings if f.severity == "error"], report.findings


def test_an_implicit_prompt_pair_counts_its_shared_images_once_and_dpo_extracts_the_prompt(tmp_path):
    side = lambda answer: [_user([{"type": "image"}, {"type": "text", "text": ASK}]), _assistant(answer)]  # noqa: E731
    folder = _folder(tmp_path)
    source = _jsonl(folder / "pairs.jsonl", [{"chosen": side(ANSWER), "rejected": side("A cat."),
                                             "images": [f"img/{DOG}"]}] * 2)
    report = inspect_dataset(source)
    assert report.methods["dpo"]["status"] == "convertible"  # TRL's vision path extracts no prompt
    convert(source, to="dpo", output=folder / "dpo.jsonl")
    row = json.loads((folder / "dpo.jsonl").read_text().splitlines()[0])
    assert row["prompt"][0]["content"][0] == {"type": "image"} and row["images"] == [f"img/{DOG}"]
    assert row["chosen"] == [{"role": "assistant", "content": [{"type": "text", "text": ANSWER}]}]


def test_the_verdicts_command_reads_images_as_the_inspection_did(tmp_path):
    folder = _folder(tmp_path)
    (folder / "data").mkdir()
    source = _jsonl(folder / "data" / "d.jsonl", [{**SHAPES["llamafactory placeholders"], "images": [DOG, LOGO]}])
    command = inspect_dataset(source, image_root=folder / "img", decode_images=True).methods["sft"]["command"]
    assert command.endswith(f"--image-root {folder / 'img'} --decode-images")
