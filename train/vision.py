"""Training on image data: what TRL 1.16 needs from the data file, the model and the config when rows hold images.

TRL calls a dataset "vision" when its first row has `images` (a list) or `image` (one image); it then skips its
own data preparation and its collators process the images one batch at a time. So whatever would go wrong with an
image (a path TRL resolves against the current directory, a cut through an image's tokens, a setting the vision
collators refuse) goes wrong mid-training, after the model loaded. Here it is answered before.

The data file is TRL's own vision shape: typed message contents with one `{"type": "image"}` part per image, and
the row's images in `images`, in the same order. Parquet written with the `datasets` Image feature loads as it is;
JSON lines hold image paths relative to the data file's folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from trlprep.errors import DataRefused, UsageError
from trlprep.inspector.methods import METHOD, TRAINERS

IMAGE_COLUMNS = ("images", "image")
REWARD_REFUSED = ("reward on image data: TRL's RewardTrainer has no vision path and would silently drop the images; "
                  "train a reward model on text rows, or use GRPO with a reward function")
# The trainers whose collators cut rows at max_length; a cut inside an image's tokens stops training at its batch.
TRUNCATING = ("sft", "dpo", "kto")
# (method, setting) -> why TRL's vision path cannot take it when set to a true value.
REFUSED_SETTINGS = {
    ("sft", "packing"): "packing joins rows into one sequence, which the vision collator cannot do",
    ("sft", "padding_free"): "padding-free batches are not supported for images",
    ("dpo", "precompute_ref_log_probs"): "the reference log-probs cannot be precomputed with images",
    ("kto", "precompute_ref_log_probs"): "the reference log-probs cannot be precomputed with images",
}
# Columns each trainer's vision path reads; TRL does no prompt extraction or unpairing for image data.
REQUIRED_COLUMNS = {
    "dpo": ("prompt", "chosen", "rejected"),
    "kto": ("prompt", "completion", "label"),
    "grpo": ("prompt",),
}


def is_vision_row(row: dict) -> bool:
    """TRL's test on a dataset's first row: it has `images` or `image`.

    >>> is_vision_row({"messages": [], "images": []}), is_vision_row({"messages": []})
    (True, False)
    """
    return any(column in row for column in IMAGE_COLUMNS)


def is_vision_dataset(dataset) -> bool:
    """Whether TRL's trainers treat `dataset` (a `datasets.Dataset`, or any iterable of rows) as vision data."""
    first = next(iter(dataset), None)
    return first is not None and is_vision_row(first)


def first_row(path: Path) -> dict:
    """The first row of a prepared training file (JSON lines or Parquet), read without loading the rest."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        batch = next(pq.ParquetFile(path).iter_batches(batch_size=1), None)
        return batch.to_pylist()[0] if batch is not None and batch.num_rows else {}
    with open(path, "rb") as handle:
        line = handle.readline()
    return json.loads(line) if line.strip() else {}


def maybe_vision_settings(method: str, settings: dict, train_file: Path,
                          say: Callable[[str], None] = lambda line: None) -> dict:
    """The TRL config fields for `method`, made fit for image data when `train_file` holds it; unchanged for text.

    Refuses, before any model loads, what TRL would refuse or get wrong mid-training: Reward on images, the
    settings of `REFUSED_SETTINGS`, keep_end truncation, and rows without the columns the trainer's vision path
    reads. Leaves `max_length` unset (no truncation) unless the person set it, and says which, through `say`.
    """
    row = first_row(train_file)
    if not is_vision_row(row):
        return settings
    if not METHOD[method].vision:
        raise UsageError(REWARD_REFUSED if method == "reward" else
                         f"{TRAINERS[method]} reads text only in TRL 1.16: the images would be dropped")
    base = METHOD[method].base  # a method that takes another's data reads its images as that one's trainer does
    _refuse_settings(base, settings)
    _refuse_columns(method, base, row, train_file)
    settings = dict(settings)
    if base in TRUNCATING:
        settings.update(_length_settings(method, settings, say))
    if base == "sft" and "text" in row:
        # TRL keeps only its vision signature columns, which lack `text`: the collator would find no text.
        if settings.get("remove_unused_columns"):
            raise UsageError("image data with a `text` column needs remove_unused_columns=False (TRL would drop "
                             "the text): drop that setting")
        settings["remove_unused_columns"] = False
    return settings


def _refuse_settings(method: str, settings: dict) -> None:
    for (refused_method, key), why in REFUSED_SETTINGS.items():
        if method == refused_method and settings.get(key):
            raise UsageError(f"{key}={settings[key]} does not work on image data ({why}): drop that setting")
    if method in ("sft", "dpo") and settings.get("truncation_mode") == "keep_end" and settings.get("max_length"):
        raise UsageError("truncation_mode=keep_end does not work on image data (it cuts the start of a row, where "
                         "the images' tokens are): drop that setting")


def _refuse_columns(method: str, base: str, row: dict, train_file: Path) -> None:
    missing = [column for column in REQUIRED_COLUMNS.get(base, ()) if column not in row]
    if missing:
        raise DataRefused(f"{train_file}: {TRAINERS[method]} on image data needs column(s) {', '.join(missing)} "
                          f"(it extracts no prompt and unpairs nothing for images); the rows have "
                          f"{', '.join(row)}")
    if base == "sft" and not ("messages" in row or {"prompt", "completion"} <= set(row) or "text" in row):
        raise DataRefused(f"{train_file}: {TRAINERS[method]} on image data needs messages, prompt and completion, or text; "
                          f"the rows have {', '.join(row)}")
    if base == "grpo" and not _is_messages(row["prompt"]):
        raise DataRefused(f"{train_file}: {TRAINERS[method]} on image data needs a conversational prompt (a list of "
                          f"messages with role and content), so that it can place the images in it")


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(m, dict) and "role" in m for m in value)


def _length_settings(method: str, settings: dict, say: Callable[[str], None]) -> dict:
    if "max_length" in settings:
        say(f"image data: {TRAINERS[method]} cuts rows at max_length={settings['max_length']}; a row cut inside "
            f"its image tokens stops training at its batch")
        return {}
    say(f"image data: {TRAINERS[method]} will not truncate (max_length=None), since a cut inside an image's tokens "
        f"stops training; set --max-length to cut rows")
    return {"max_length": None}


def load_training_data(path: Path):
    """A prepared training file as a `datasets.Dataset` whose images, if any, arrive as PIL images: Parquet with
    the Image feature loads as it is; image paths in JSON lines are resolved against the file's folder (TRL would
    resolve them against the current directory) and cast to the Image feature."""
    import datasets

    path = Path(path)
    dataset = datasets.load_dataset("parquet" if path.suffix == ".parquet" else "json", data_files=str(path),
                                    split="train")
    for column in IMAGE_COLUMNS:
        if column in dataset.column_names and not _holds_images(dataset.features[column]):
            dataset = _with_images_from_paths(dataset, column, path)
    return dataset


def _holds_images(feature) -> bool:
    import datasets

    inner = getattr(feature, "feature", feature)  # a list of images, or one
    return isinstance(inner, datasets.Image)


def _with_images_from_paths(dataset, column: str, path: Path):
    """`column`'s images as the Image feature: paths made absolute against `path`'s folder (and checked to
    exist), data URLs decoded, http(s) URLs left for the loader to fetch."""
    import datasets

    from trlprep.inspector.images import ImageChecker

    checker = ImageChecker(path.parent.resolve())

    def load(value, row_number: int):
        if value is None:
            return None
        images = [_image_of(checker, image, path, row_number) for image in ([value] if isinstance(value, str) else value)]
        return images[0] if isinstance(value, str) else images

    dataset = dataset.map(lambda row, index: {column: load(row[column], index + 1)}, with_indices=True)
    single = datasets.Image()
    return dataset.cast_column(column, single if column == "image" else datasets.List(single))


def _image_of(checker, image: Any, path: Path, row_number: int) -> dict:
    """One image as the Image feature stores it, `{bytes, path}`; a missing or unreadable one refused, naming the
    file, the row and the image."""
    from trlprep.inspector.images import image_bytes, image_source

    source = image_source(image) if isinstance(image, str) else None
    if source is None:
        raise DataRefused(f"{path} row {row_number}: an image is {type(image).__name__} {str(image)[:40]!r}, "
                          "not a path, a data URL or a URL")
    if source.kind == "url":
        return {"bytes": None, "path": source.value}
    if source.kind == "path":
        located = checker.resolve(source.value)
        if not located.is_file():
            raise DataRefused(f"{path} row {row_number}: image {image} not found (looked for {located})")
        return {"bytes": None, "path": str(located)}
    try:
        return {"bytes": image_bytes(source, checker), "path": None}
    except ValueError as error:
        raise DataRefused(f"{path} row {row_number}: {error}") from None


def vision_model_and_processor(method: str, model: str) -> tuple[str, Any]:
    """The model for TRL to load (its id: TRL loads a vision-language checkpoint by its image-text-to-text class,
    with the run's model_init_kwargs and device placement) and its processor, TRL's `processing_class`. Refuses,
    reading only the model's config, a model that cannot take images, and Reward."""
    from transformers import AutoConfig, AutoProcessor
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    if method == "reward":
        raise UsageError(REWARD_REFUSED)
    model_type = AutoConfig.from_pretrained(model).model_type
    if model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise UsageError(f"--model {model}: the data holds images, but this {model_type} model takes text only; "
                         f"choose a vision-language model (one that AutoModelForImageTextToText loads)")
    processor = AutoProcessor.from_pretrained(model)
    if processor.tokenizer.pad_token is None:
        processor.tokenizer.pad_token = processor.tokenizer.eos_token
    return model, processor
