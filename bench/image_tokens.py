"""`inspect --model` on image rows: the cheap count (image sizes from their headers, `inspector.tokens.ImageTokens`)
against the exact one (the processor's chat template on the decoded images, tokenized: what TRL's collators do).

    uv run python bench/image_tokens.py               # 400 rows, one 1024x768 or 1920x1080 JPEG each
    uv run python bench/image_tokens.py --rows 200 --repeat 1

The images are bench/images.py's generated JPEGs (one file a row, so no check is served from the cache). Two
processors, saved without weights (counting needs none): the tests' tiny LLaVA (32 px, 16 tokens an image) and
the same with LLaVA-1.5's image settings (336 px, 14 px patches, 576 tokens an image). Each path is timed best of
--repeat, from the rows as read to the counts; every row's cheap count is checked equal to the exact one first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / "bench" / "data"


def save_processor(folder: Path, image_size: int, patch_size: int) -> Path:
    """The tiny LLaVA's processor (its tokenizer and ChatML template) with these image settings."""
    from transformers import CLIPImageProcessorPil, LlavaProcessor

    from tests.tiny_vlm import CHAT_TEMPLATE, _tokenizer

    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": image_size},
                                              crop_size={"height": image_size, "width": image_size}),
        tokenizer=_tokenizer(), patch_size=patch_size, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(folder)
    return folder


def image_rows(paths: list[Path]) -> list[tuple[int, dict]]:
    return [(number, {"messages": [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe the picture."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A dog on a skateboard."}]}],
        "images": [str(path)]}) for number, path in enumerate(paths, 1)]


def cheap(rows, model: str) -> list[int]:
    """Each row's length as `inspect --model` counts it (the timed path is `token_preflight` itself)."""
    from trlprep.inspector.images import ImageChecker
    from trlprep.inspector.tokens import (ImageTokens, analyse_row, load_processor, processor_tokenizer,
                                          readable_rows, special_strings)

    processor = load_processor(model)
    tokenizer = processor_tokenizer(processor)
    counter = ImageTokens(processor, ImageChecker(None))
    shape, readable = readable_rows(rows)
    return [analyse_row(tokenizer, trl_row, shape.type, implicit=False, has_markers=True,
                        specials=special_strings(tokenizer), images=counter.of_row(trl_row)).total
            for _, trl_row in readable]


def exact(rows, model: str) -> list[int]:
    """Each row's length as TRL's collator gets it: the images decoded, the processor's template, tokenized."""
    from PIL import Image

    from trlprep.inspector.tokens import load_processor

    processor = load_processor(model)
    lengths = []
    for _, row in rows:
        images = iter([Image.open(path) for path in row["images"]])
        turns = [{**turn, "content": [{**part, "image": next(images)} if part["type"] == "image" else part
                                      for part in turn["content"]]} for turn in row["messages"]]
        lengths.append(len(processor.apply_chat_template(turns, tokenize=True, return_dict=True)["input_ids"][0]))
    return lengths


def main() -> None:
    from bench import best_of  # bench/bench.py and bench/images.py: this script's folder is first on sys.path
    from images import generate
    from trlprep.inspector.tokens import token_preflight

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = image_rows(generate(args.rows))
    for name, image_size, patch_size in (("tiny LLaVA, 16 tokens/image", 32, 8),
                                         ("LLaVA-1.5 settings, 576 tokens/image", 336, 14)):
        model = str(save_processor(DATA / f"processor-{image_size}", image_size, patch_size))
        assert cheap(rows, model) == exact(rows, model), "the cheap count differs from the processor's"
        fast = best_of(args.repeat, token_preflight, rows, model=model, workers=1)
        slow = best_of(args.repeat, exact, rows, model)
        print(f"{name}: inspect --model {len(rows) / fast:,.0f} rows/s; exact path {len(rows) / slow:,.0f} rows/s "
              f"({slow / fast:.1f}x slower); counts equal on all {len(rows)} rows")


if __name__ == "__main__":
    main()
