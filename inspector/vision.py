"""Images in rows, found from their values, and read into the shape TRL's vision trainers load.

Datasets carry a row's images in an image column (`images`, a list; `image`, one, as LLaVA writes it; an
imagefolder's `file_name`), inline in message parts (TRL's `{"type": "image"}`, OpenAI's `image_url`, Oumi's
`image_url` with `content`, Anthropic's `image` with a `source`), and mark where each belongs with `<image>` in
string turns (LLaMA-Factory, ms-swift, LLaVA) or with an image part.

TRL reads a vision row as typed parts and an `images` column: each `{"type": "image"}` part without an `image` key
takes the next image of the column. Given string contents, it puts *all* the images in front of the first user
turn and leaves any `<image>` text in place; given inline images with no `images` column, it trains on the text
alone. `read_images` therefore rewrites a row before any other reading: every message's content becomes typed
parts, each image a `{"type": "image"}` part where its placeholder or part stood, and the row's images, in the
order of their parts, its `images` column. What it cannot place is said (`Placement.problems`), never guessed.

>>> placed = read_images({"messages": [{"role": "user", "content": "<image>\\nWhat is it?"},
...                                    {"role": "assistant", "content": "A dog."}], "images": ["dog.jpg"]})
>>> placed.row["messages"][0]["content"], placed.row["images"]
([{'type': 'image'}, {'type': 'text', 'text': 'What is it?'}], ['dog.jpg'])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Columns that hold a row's images, in the order a row's is looked for; `file_name` only as an imagefolder's
# metadata writes it, a path with an image extension.
IMAGE_COLUMNS = ("images", "image", "file_name")
PLACEHOLDER = "<image>"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")
# Columns whose message lists hold a row's turns, as any dialect names them (the conversation columns, and
# TRL's prompt and answers).
TURN_COLUMNS = ("messages", "conversations", "conversation", "dialog", "dialogue", "chat", "turns",
                "prompt", "completion", "chosen", "rejected")
# TRL's standard columns, whose strings become one turn of this role in image data: TRL's vision collators read
# only conversational prompts and answers.
STRING_TURNS = {"prompt": "user", "completion": "assistant", "chosen": "assistant", "rejected": "assistant"}
# Keys of a typed part that hold its text, in the order they are read (TRL's `text`, LLaMA-Factory's `value`,
# Oumi's `content`).
TEXT_KEYS = ("text", "value", "content")


def is_image(value: Any) -> bool:
    """Whether a value is one image as datasets carry it: a path with an image extension, a `data:image/` URL, an
    http(s) URL, bytes, the `datasets` Image struct `{"bytes", "path"}`, or a decoded PIL image.

    >>> [is_image(v) for v in ("cat.JPG", "data:image/png;base64,iVBO", "https://x.org/a?id=3", b"\\x89PNG")]
    [True, True, True, True]
    >>> [is_image(v) for v in ({"bytes": None, "path": "a.png"}, "a caption", 3, None, {"url": "a.png"})]
    [True, False, False, False, False]
    """
    if isinstance(value, str):
        lower = value.lower()
        return (lower.startswith(("data:image/", "http://", "https://"))
                or lower.partition("?")[0].endswith(IMAGE_EXTENSIONS))
    if isinstance(value, (bytes, bytearray)):
        return True
    if isinstance(value, dict):
        return bool(value) and set(value) <= {"bytes", "path"} and any(value.values())
    return type(value).__module__.startswith("PIL.")


def image_column(row: dict) -> str | None:
    """The row's image column: `images` or `image` when present (null or empty too: a row without an image in
    image data), or an imagefolder's `file_name` holding an image path.

    >>> image_column({"image": "a.jpg", "conversations": []}), image_column({"file_name": "a.png", "text": "x"})
    ('image', 'file_name')
    >>> image_column({"file_name": "notes.txt"}) is None, image_column({"images": None})
    (True, 'images')
    """
    for name in IMAGE_COLUMNS[:2]:
        if name in row:
            return name
    return "file_name" if is_image(row.get("file_name")) and isinstance(row.get("file_name"), str) else None


def _inline_image(part: dict) -> tuple[bool, Any]:
    """(whether the part is an image part, its inline image or None for a placeholder that the image column
    fills). TRL's and the Hub templates' `{"type": "image"}` may carry the image under `image`, `url`, `path` or
    `base64`; OpenAI's `image_url` holds `{"url": ...}` (or the URL), Oumi's its `content`; Anthropic's `image`
    holds a `source`."""
    kind = part.get("type")
    if kind == "image":
        if "source" in part:
            return True, part["source"]
        return True, next((part[key] for key in ("image", "url", "path", "base64") if part.get(key) is not None),
                          None)
    if kind == "image_url":
        value = part.get("image_url", part.get("content"))
        return True, value.get("url") if isinstance(value, dict) else value
    return False, None


def has_inline_images(row: dict) -> bool:
    """Whether any turn of the row holds an image part or an `<image>` placeholder.

    >>> has_inline_images({"messages": [{"role": "user", "content": [{"type": "image_url", "content": "u"}]}]})
    True
    >>> has_inline_images({"conversations": [{"from": "human", "value": "<image>What?"}]})
    True
    >>> has_inline_images({"messages": [{"role": "user", "content": "Hi"}], "prompt": "x"})
    False
    """
    for name in TURN_COLUMNS:
        turns = row.get(name)
        if not isinstance(turns, list):
            continue
        for message in turns:
            if not isinstance(message, dict):
                continue
            for content in (message.get("content"), message.get("value")):
                if isinstance(content, str) and PLACEHOLDER in content:
                    return True
                if isinstance(content, list) and any(isinstance(p, dict) and _inline_image(p)[0] for p in content):
                    return True
    return False


def holds_images(row: Any) -> bool:
    """Whether the row is image data: it has an image column or images in its turns."""
    return isinstance(row, dict) and (image_column(row) is not None or has_inline_images(row))


@dataclass
class Placement:
    """A row read by `read_images`, and what could not be placed."""

    row: dict
    placeholders: int = 0  # image parts and `<image>` marks that the image column fills
    given: int = 0  # images in the image column
    inline: int = 0  # images held in the turns themselves
    problems: list[str] = field(default_factory=list)  # each a one-line description, naming where
    # How the row as written is not TRL's vision shape (TRL would train it wrongly), each said once.
    rewrites: list[str] = field(default_factory=list)
    before_first_turn: int = 0  # column images with no placeholder, put before the first user turn as TRL does


def _text_parts(text: str, placement: Placement, images: list) -> list[dict]:
    """A string as typed parts, each `<image>` an image part that the image column fills; the line breaks that set
    a placeholder apart from its text go with it (`"<image>\\nWhat?"` is an image, then "What?")."""
    pieces = text.split(PLACEHOLDER)
    parts: list[dict] = []
    for i, piece in enumerate(pieces):
        if i:
            parts.append({"type": "image"})
            placement.placeholders += 1
            images.append(None)
            _rewrite(placement, "`<image>` text in the turns (TRL keeps the text and puts every image first)")
            piece = piece.lstrip("\n")
        if i < len(pieces) - 1:
            piece = piece.rstrip("\n")
        if piece:
            parts.append({"type": "text", "text": piece})
    return parts


def _content_parts(content: Any, where: str, placement: Placement, images: list) -> list[dict] | Any:
    """A message's content as typed parts, inline images moved to `images` (in order) with a placeholder each;
    content it does not know is returned as it is, for the field checks to report."""
    if isinstance(content, str):
        return _text_parts(content, placement, images)
    if not isinstance(content, list):
        return content
    parts: list[dict] = []
    for i, part in enumerate(content):
        if not isinstance(part, dict):
            return content
        is_image_part, inline = _inline_image(part)
        if is_image_part:
            parts.append({"type": "image"})
            if inline is None:
                placement.placeholders += 1
                images.append(None)  # filled from the image column below
            else:
                placement.inline += 1
                images.append(inline)
                _rewrite(placement, "images inside message parts (TRL reads only an `images` column, and drops them)")
            if part.get("type") != "image":
                _rewrite(placement, f"{part.get('type')!r} parts (TRL counts only 'image' parts)")
            continue
        text = next((part[key] for key in TEXT_KEYS if isinstance(part.get(key), str)), None)
        if part.get("type") != "text" or text is None:
            placement.problems.append(f"{where}[{i}] is a {part.get('type')!r} part, which no TRL trainer reads")
            return content
        if "text" not in part:
            _rewrite(placement, "text parts without a `text` key (the chat template reads `text`)")
        parts.extend(_text_parts(text, placement, images))
    return parts


def _rewrite(placement: Placement, reason: str) -> None:
    if reason not in placement.rewrites:
        placement.rewrites.append(reason)


def read_images(row: dict) -> Placement:
    """The row with its images placed as TRL's vision trainers read them (see the module's docstring): every turn's
    content typed parts, `images` the row's images in the order of their parts, and the image column it came in
    (`image`, `file_name`) gone.

    >>> p = read_images({"conversations": [{"from": "human", "value": "Compare <image> and <image>."},
    ...                                    {"from": "gpt", "value": "Same."}], "image": "a.png"})
    >>> p.problems
    ['2 image placeholders for 1 image']
    >>> p = read_images({"messages": [{"role": "user", "content": "What?"}, {"role": "assistant", "content": "A"}],
    ...                  "images": ["a.png"]})
    >>> p.row["messages"][0]["content"], p.before_first_turn
    ([{'type': 'image'}, {'type': 'text', 'text': 'What?'}], 1)
    """
    column = image_column(row)
    given = row.get(column) if column is not None else None
    given = [] if given is None else list(given) if isinstance(given, (list, tuple)) else [given]
    placement = Placement(dict(row), given=len(given))
    out = placement.row
    if column is not None and column != "images":
        del out[column]
    images: list = []
    # An implicit-prompt pair writes its shared prompt, images included, in both sides: the images are counted in
    # `chosen`, and `rejected` must hold as many.
    implicit = "prompt" not in row and isinstance(row.get("chosen"), list) and isinstance(row.get("rejected"), list)
    for name in TURN_COLUMNS:
        turns = row.get(name)
        if isinstance(turns, str) and name in STRING_TURNS:  # TRL's standard columns, read as one turn each
            turns = [{"role": STRING_TURNS[name], "content": turns}]
        if not isinstance(turns, list):
            continue
        if implicit and name == "rejected":
            side = Placement({})
            out[name] = _read_turns(turns, name, side, [])
            if (side.placeholders, side.inline) != (placement.placeholders, placement.inline) or side.problems:
                placement.problems.append(f"rejected holds {side.placeholders + side.inline} image(s), chosen "
                                          f"{placement.placeholders + placement.inline}: the prompt they share differs")
            continue
        out[name] = _read_turns(turns, name, placement, images)
    _fill(placement, images, given)
    out["images"] = images
    return placement


def _read_turns(turns: list, name: str, placement: Placement, images: list) -> list:
    """A column's turns, each content typed parts (`_content_parts`). An image belongs in a user turn: TRL 1.16
    counts none in a tool turn (and then fails on the count), and an assistant's or a system's would be trained as
    part of an answer, or dropped by templates that draw images in user turns only. A ShareGPT `function_call`
    turn's JSON stays as it is."""
    read = []
    for i, message in enumerate(turns):
        if isinstance(message, dict) and message.get("from") != "function_call":
            key = "value" if "value" in message and "content" not in message else "content"
            if key in message:
                before = placement.placeholders + placement.inline
                message = {**message, key: _content_parts(message[key], f"{name}[{i}].{key}", placement, images)}
                role = message.get("role", message.get("from"))
                if placement.placeholders + placement.inline > before and role not in ("user", "human"):
                    placement.problems.append(f"{name}[{i}] is a {role!r} turn holding an image: images belong in "
                                              "user turns")
        read.append(message)
    return read


def _fill(placement: Placement, images: list, given: list) -> None:
    """Each placeholder takes the next image of the column, in order; column images without any placeholder go
    before the first user turn, as TRL puts them."""
    if placement.placeholders == 0 and given:
        first = _first_user_turn(placement.row)
        if first is None:
            placement.problems.append(f"{len(given)} image(s) and no user turn to put them in")
            images[:] = [image for image in images if image is not None] + given  # each still checked
            return
        message, key = first
        message[key] = [{"type": "image"} for _ in given] + message[key]
        images[:0] = given
        placement.before_first_turn = len(given)
        return
    if placement.placeholders != len(given):
        placement.problems.append(f"{placement.placeholders} image placeholder{'s' if placement.placeholders != 1 else ''}"
                                  f" for {len(given)} image{'s' if len(given) != 1 else ''}")
        images[:] = [image for image in images if image is not None] + given  # each still checked
        return
    queue = iter(given)
    images[:] = [next(queue) if image is None else image for image in images]


def _first_user_turn(row: dict) -> tuple[dict, str] | None:
    """The first user turn whose content is typed parts, as (message, content key)."""
    for name in TURN_COLUMNS:
        for message in row.get(name) or ():
            if isinstance(message, dict) and message.get("role", message.get("from")) in ("user", "human"):
                key = "value" if "value" in message and "content" not in message else "content"
                if isinstance(message.get(key), list):
                    return message, key
    return None


# Magic numbers of the formats processors read, for the media type a data URL names.
_MIME_BY_MAGIC = ((b"\x89PNG", "image/png"), (b"\xff\xd8", "image/jpeg"), (b"GIF8", "image/gif"),
                  (b"BM", "image/bmp"), (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"))


def image_mime(data: bytes) -> str:
    """The media type of encoded image bytes, from their first bytes (WebP from its RIFF header); PNG when unknown.

    >>> image_mime(b"\\xff\\xd8\\xff\\xe0"), image_mime(b"RIFF\\x00\\x00\\x00\\x00WEBPVP8 ")
    ('image/jpeg', 'image/webp')
    """
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, mime in _MIME_BY_MAGIC if data.startswith(magic)), "image/png")


def typed_turns(trl_row: dict) -> dict:
    """A vision row read as its TRL type with every turn's content typed parts: TRL puts *all* a row's images in
    front of the first user turn whose content is a string, even when image parts stand elsewhere, and then
    fails on the count.

    >>> typed_turns({"prompt": [{"role": "user", "content": [{"type": "image"}]}],
    ...              "completion": [{"role": "assistant", "content": "A dog."}], "images": ["a.png"]})["completion"]
    [{'role': 'assistant', 'content': [{'type': 'text', 'text': 'A dog.'}]}]
    """
    out = dict(trl_row)
    for name in ("messages", "prompt", "completion", "chosen", "rejected"):
        turns = out.get(name)
        if isinstance(turns, list):
            out[name] = [{**m, "content": [{"type": "text", "text": m["content"]}]}
                         if isinstance(m, dict) and isinstance(m.get("content"), str) else m for m in turns]
    return out
