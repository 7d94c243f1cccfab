"""Images (TP7xx): where each image of a row goes, and whether each one is there and readable.

`inspector.vision.read_images` places a row's images as TRL's vision trainers read them; `check_images` turns what
it could not place, and what `inspector.images.ImageChecker` finds of each image, into findings. A row whose image
is missing, unreadable or oversized breaks an error rule: it is not ready, and `convert` rejects it, so that a bad
image never reaches a trainer, where it would fail at its batch, hours in.

No fast shape holds an image (their contents are strings, and a shape that reads images has no fast path), so every
rule here is proven by structure.
"""

from __future__ import annotations


from trlprep.inspector.rules.catalog import ERROR, WARNING, Example, Rule, by_structure, register
from trlprep.inspector.rules.examples import TINY_PNG

Issue = tuple[str, str]
_NO_FAST_IMAGES = by_structure("a fast shape's rows hold no image: string contents, and a shape that reads images "
                               "has no fast path")
_ASK = {"role": "user", "content": "<image>What is in the picture?"}
_ANSWER = {"role": "assistant", "content": "A dog on a skateboard."}


def _flagged_image(image: str) -> Example:
    """An example of one row, flagged, asking about one image."""
    return Example(({"messages": [_ASK, _ANSWER], "images": [image]},), (1,))


IMAGE_PLACEMENT = register(Rule("TP701", "image-placement", ERROR,
         "a row's images do not match the places its turns give them: more or fewer `<image>` placeholders or image "
         "parts than images, a part no TRL trainer reads, or images and no user turn to hold them",
         "give each image one placeholder, at the place in the turn where it belongs, or drop the row", "field",
         why="TRL fails at the batch that holds such a row (\"Number of images provided (1) does not match number of "
             "image placeholders (2)\"), or, for LLaVA, on the count of image tokens",
         example=Example(({"messages": [_ASK, _ANSWER], "images": ["dog.jpg"]},
                          {"messages": [{**_ASK, "content": "<image><image>Same?"}, _ANSWER], "images": ["dog.jpg"]}),
                         (2,)),
         proof=_NO_FAST_IMAGES))

IMAGES_BEFORE_FIRST_TURN = register(Rule("TP702", "images-before-first-turn", WARNING,
         "several images and no placeholder: all of them go before the first user turn, as TRL puts them",
         "mark where each image belongs with `<image>` (or an image part) in its turn", "field",
         why="a multi-turn conversation about several images learns each answer as if every image came first",
         example=Example(({"messages": [_ASK, _ANSWER], "images": ["a.jpg"]},
                          {"messages": [{"role": "user", "content": "Which is larger?"}, _ANSWER],
                           "images": ["a.jpg", "b.jpg"]}), (2,)),
         proof=_NO_FAST_IMAGES))

IMAGE_MISSING = register(Rule("TP703", "image-missing", ERROR,
         "an image file is not there (a relative path is read against the dataset file's folder, or `--image-root`)",
         "fix the path, pass `--image-root` with the folder the paths are relative to, or drop the row", "field",
         why="the processor opens each image at the batch that holds it: a missing file stops training there",
         example=_flagged_image("no-such-image.jpg"),
         proof=_NO_FAST_IMAGES))

IMAGE_UNREADABLE = register(Rule("TP704", "image-unreadable", ERROR,
         "an image does not decode: not an image, a truncated file, a bad data URL",
         "replace the file with a readable image, or drop the row", "field",
         why="the processor fails on it at its batch, or trains on a half-decoded picture",
         example=_flagged_image("data:image/png;base64,bm90IGFuIGltYWdl"),
         proof=_NO_FAST_IMAGES))

IMAGE_REMOTE = register(Rule("TP705", "image-remote", WARNING,
         "an image is an http(s) URL: trlprep runs offline and cannot check it; the processor fetches it at training "
         "time", "download the images and point the rows at the files", "field",
         why="a URL that is gone or slow stops or stalls training at its batch, and the picture may have changed",
         example=_flagged_image("https://example.com/dog.jpg"),
         proof=_NO_FAST_IMAGES))

IMAGE_OVERSIZED = register(Rule("TP706", "image-oversized", ERROR,
         "an image is past the size limits (bytes or pixels; Pillow's decompression-bomb guard included)",
         "resize the image, or drop the row", "field",
         why="a processor resizes every image, but decoding a huge one first costs memory and time at every epoch",
         example=_flagged_image(  # a PNG header of 10000x10000 pixels
             "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAJxAAACcQCAIAAAA1LPVwAAAACElEQVR4nAMAAAAAAUgGidIAAAAASUVORK5CYII="),
         proof=_NO_FAST_IMAGES))

IMAGE_ODD = register(Rule("TP707", "image-odd", WARNING,
         "an image is tiny (a broken thumbnail or a tracking pixel) or in a mode a processor converts with loss "
         "(1-bit, floating point)", "check the image; replace it if it is not the picture meant", "field",
         why="the model is trained to describe what is not visible in it",
         example=_flagged_image(  # 2x2 pixels
             "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg=="),
         proof=_NO_FAST_IMAGES))

NO_IMAGE = register(Rule("TP708", "no-image", WARNING,
         "a row of image data holds no image", "nothing to fix if text-only rows are meant (TRL mixes them); else "
         "add the row's image", "field",
         why="LLaVA's ScienceQA file has 2,224 of its 4,241 rows without an image: a text-only row among image "
             "rows trains the model to answer without looking",
         example=Example(({"messages": [_ASK, _ANSWER], "images": ["dog.jpg"]},
                          {"messages": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant",
                                                                                       "content": "4"}],
                           "images": []}), (2,)),
         proof=_NO_FAST_IMAGES))

IMAGES_IN_TEXT_DATA = register(Rule("TP709", "images-in-text-data", ERROR,
         "a row holds images in data whose first rows hold none", "put image rows first (or give every row an "
         "`images` column, empty where a row has no image), or drop the images", "field",
         why="TRL reads a dataset as image data only when its first row holds images: every image after a text row "
             "is dropped, and training \"succeeds\" on the text alone",
         example=Example(({"messages": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant",
                                                                                      "content": "4"}]},
                          {"messages": [_ASK, _ANSWER], "images": ["dog.jpg"]}), (2,)),
         proof=_NO_FAST_IMAGES))

NOT_VISION_SHAPE = register(Rule("TP710", "not-trl-vision-shape", WARNING,
         "image data written in a shape TRL's vision trainers misread: `<image>` text in string turns, images inside "
         "message parts, text parts under another key; `convert` rewrites it into TRL's (typed parts, each image "
         "part where its image stood, `images` in order)", "run the verdict's `convert` command", "field",
         repairable=True,
         why="TRL puts every image of a string conversation before its first user turn and leaves `<image>` in the "
             "text (LLaVA then fails on the count of image tokens, Qwen2-VL trains on the stray text), and trains "
             "rows whose images sit inside message parts on their text alone",
         example=Example(({"messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text",
                                                                                       "text": "What is it?"}]},
                                        {"role": "assistant", "content": [{"type": "text", "text": "A dog."}]}],
                           "images": ["dog.jpg"]},
                          {"messages": [_ASK, _ANSWER], "images": ["dog.jpg"]}), (2,)),
         proof=_NO_FAST_IMAGES))

IMAGE_REPEATED = register(Rule("TP711", "image-repeated", WARNING,
         "an image (the same bytes, whatever its path) already appeared in an earlier row",
         "nothing to fix when several questions about one picture are meant; else drop or replace the repeats",
         "dataset",
         why="a picture repeated across rows weighs more in training than the others, and a copy in both the "
             "training and the evaluation split leaks",
         example=Example(({"messages": [_ASK, _ANSWER], "images": ["data:image/png;base64," + TINY_PNG]},
                          {"messages": [{**_ASK, "content": "<image>Which colour is it?"}, _ANSWER],
                           "images": ["data:image/png;base64," + TINY_PNG]}), (2,))))

# The problems `ImageChecker` finds, and the rule each breaks.
CHECK_RULES = {"missing": IMAGE_MISSING, "unreadable": IMAGE_UNREADABLE, "truncated": IMAGE_UNREADABLE, "remote": IMAGE_REMOTE,
               "too_large": IMAGE_OVERSIZED, "too_small": IMAGE_ODD, "odd_mode": IMAGE_ODD}


def check_images(placement, checker, image_data: bool) -> tuple[list[Issue], list[bytes]]:
    """Every image finding of a row read by `inspector.vision.read_images`, and the digests of its readable images
    (for `IMAGE_REPEATED`, across rows): what could not be placed, then each image as `checker` (an
    `inspector.images.ImageChecker`) finds it; in `image_data` (the dataset's first rows hold images), a row with
    none."""
    from trlprep.inspector.images import image_source

    issues: list[Issue] = [(IMAGE_PLACEMENT.id, problem) for problem in placement.problems]
    if placement.rewrites:
        issues.append((NOT_VISION_SHAPE.id, "; ".join(placement.rewrites)))
    if placement.before_first_turn > 1:
        issues.append((IMAGES_BEFORE_FIRST_TURN.id, f"{placement.before_first_turn} images, no placeholder"))
    images = placement.row["images"]
    if image_data and not images:
        issues.append((NO_IMAGE.id, "no image"))
    if images and not image_data:
        issues.append((IMAGES_IN_TEXT_DATA.id, f"{len(images)} image(s) in a row after text rows"))
    digests = []
    for i, value in enumerate(images):
        source = image_source(value)
        if source is None:
            issues.append((IMAGE_UNREADABLE.id, f"images[{i}] is {type(value).__name__} {str(value)[:40]!r}, "
                                                "not an image"))
            continue
        found = checker.check(source)
        if found.problem is not None:
            issues.append((CHECK_RULES[found.problem].id, f"images[{i}] {found.detail}"))
        if found.digest is not None:
            digests.append(found.digest)
    return issues, digests
