"""The images of the rows an HTML report page draws: each where it stands in its turn, as a small embedded preview,
or as a box that names the image and says what is wrong with it.

A page embeds at most THUMBNAILS_PER_PAGE previews (each under ~8 KB, `images.thumbnail_data_url`), so that a
page of image data stays near the size of a page of text; the images past that are named, not drawn, and the
page says how many.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from trlprep.inspector.images import UNREADABLE, ImageChecker, image_source, thumbnail_data_url
from trlprep.inspector.vision import TURN_COLUMNS, read_images

THUMBNAILS_PER_PAGE = 60


def images_in_place(row: dict) -> dict:
    """The row as TRL's vision trainers read it (`vision.read_images`), each image part holding the image it takes
    from `images` (None for a placeholder left without one), so that a page draws every image where it stands;
    `images` lists the images' names.

    >>> row = images_in_place({"messages": [{"role": "user", "content": "<image><image>Same?"}], "images": ["a.png"]})
    >>> row["messages"][0]["content"]
    [{'type': 'image', 'image': 'a.png'}, {'type': 'image', 'image': None}, {'type': 'text', 'text': 'Same?'}]
    >>> row["images"]
    ['a.png']
    """
    placed = read_images(row).row
    images = list(placed.get("images") or ())
    waiting = iter(images)
    for name in TURN_COLUMNS:
        if isinstance(placed.get(name), list):
            placed[name] = [_with_images(message, waiting) for message in placed[name]]
    placed["images"] = [_name(image) for image in images]
    return placed


def _with_images(message: Any, waiting) -> Any:
    """A message whose image parts each hold the next image (a new message: the row as read is left as it is)."""
    if not isinstance(message, dict):
        return message
    key = "value" if "value" in message and "content" not in message else "content"
    parts = message.get(key)
    if not isinstance(parts, list):
        return message
    return {**message, key: [{"type": "image", "image": next(waiting, None)} if is_image_part(part) else part
                             for part in parts]}


def is_image_part(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") == "image"


def _name(image: Any) -> str:
    """How the page names an image: its path or URL as written, else what it is (bytes, a data URL, ...)."""
    source = image_source(image)
    return source.name if source is not None else f"not an image: {str(image)[:80]}"


class Thumbnails:
    """Draws the images of a page's rows, paths read against `folder`; at most `limit` previews a page, the rest
    named (`left_out` counts them). An image shown in several places is read once."""

    def __init__(self, folder: str | Path | None, limit: int = THUMBNAILS_PER_PAGE):
        self.checker = ImageChecker(Path(folder) if folder is not None else None)
        self.limit = limit
        self.drawn = 0
        self.left_out = 0
        self._previews: dict[str, str | None] = {}  # data URL by path or URL as written

    def draw(self, image: Any) -> str:
        """One image as the page shows it: a preview, or a box naming the image and what is wrong with it.

        >>> print(Thumbnails(None).draw(None))
        <span class='thumb broken'>no image for this placeholder</span>
        >>> print(Thumbnails("/data").draw("cat.jpg"))
        <span class='thumb broken' title='cat.jpg'><b>missing</b> &#x27;cat.jpg&#x27; (/data/cat.jpg) does not exist</span>
        """
        source = image_source(image)
        if source is None:
            return "<span class='thumb broken'>no image for this placeholder</span>" if image is None else \
                f"<span class='thumb broken'><b>not an image</b> {_e(_name(image))}</span>"
        check = self.checker.check(source)
        if check.problem in UNREADABLE:  # no picture to show: what the check found is the point
            return _broken(source, check.problem, check.detail)
        if self.drawn >= self.limit:
            self.left_out += 1
            return f"<span class='thumb broken left-out'>{_e(source.name)}: not drawn (page limit)</span>"
        preview = self._preview(source)
        if preview is None:
            return _broken(source, "unreadable", check.detail)
        self.drawn += 1
        return f"<span class='thumb'><img src='{preview}' alt='{_e(source.name)}' title='{_e(check.detail)}'></span>"

    def _preview(self, source) -> str | None:
        if not isinstance(source.value, str):  # bytes or a decoded image: no key worth keeping
            return thumbnail_data_url(source, self.checker)
        if source.value not in self._previews:
            self._previews[source.value] = thumbnail_data_url(source, self.checker)
        return self._previews[source.value]

    def note(self) -> str:
        """What the page left out, when it left out any."""
        if not self.left_out:
            return ""
        return (f"<p class='row-title'>{self.left_out:,} more image(s) named, not drawn: a page embeds at most "
                f"{self.limit} thumbnails.</p>")


def _broken(source, problem: str, detail: str) -> str:
    return (f"<span class='thumb broken' title='{_e(source.name)}'><b>{_e(problem.replace('_', ' '))}</b> "
            f"{_e(detail)}</span>")


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)
