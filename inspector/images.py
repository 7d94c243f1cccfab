"""Images in vision-language data: recognise one image value however a dataset carries it, and check it offline.

TRL trains vision-language models from rows whose `images` column (or a message's `{"type": "image"}` part) holds
images. Datasets carry an image as a file path, raw bytes, the `datasets` Image feature's `{"bytes", "path"}`
struct, a `data:` URL, an http(s) URL, OpenAI's `{"url": ...}`, Anthropic's base64 or URL source, or an
already-decoded PIL image. `image_source` tells which (an `ImageSource`), and `ImageChecker.check` says whether
a processor will be able to use it (an `ImageCheck`): it exists, it is an image, it is whole, it is neither
huge nor a tracking pixel, its mode converts to RGB without losing its meaning.

Importing this module does not import Pillow: inspecting text-only data must not pay for it. The functions that
read pixels import it themselves.

>>> source = image_source({"bytes": None, "path": "img/cat.jpg"})
>>> source.kind, source.name
('path', 'img/cat.jpg')
>>> check = ImageChecker(Path("/data")).check(source)
>>> check.problem, check.detail
('missing', "'img/cat.jpg' (/data/img/cat.jpg) does not exist")
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from stat import S_ISDIR
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

KINDS = ("path", "bytes", "data_url", "url", "decoded")

# The problems a check can report, worst first. "truncated" is apart from "unreadable" because its fix differs:
# a file cut short (an interrupted download or copy) is fetched again, a file that is no image is replaced.
PROBLEMS = ("missing", "unreadable", "truncated", "remote", "too_large", "too_small", "odd_mode")

DATA_URL = re.compile(r"data:([^,;]*)((?:;[^,;]*)*),", re.IGNORECASE)
DIGEST_BYTES = 16
# Checks kept by resolved path (and by digest for embedded bytes): about 0.5 KB each, so 100,000 of them stay
# within ~50 MB however many images a dataset names, and a file that many rows share is read once.
CACHED_CHECKS = 100_000


@dataclass(frozen=True)
class ImageSource:
    """One image value as a dataset carries it: `kind` (one of KINDS) and `value` (the path as written, the
    bytes, the `data:` URL, the http(s) URL, or the decoded PIL image)."""

    kind: str
    value: Any

    @property
    def name(self) -> str:
        """How a report names the image, in one short line.

        >>> ImageSource("path", "img/cat.jpg").name
        'img/cat.jpg'
        >>> ImageSource("bytes", bytes(12345)).name
        'bytes (12,345 B)'
        >>> ImageSource("data_url", "data:image/png;base64,iVBORw0KGgo=").name
        'data URL (image/png, 8 B)'
        >>> ImageSource("url", "https://example.com/cat.jpg").name
        'https://example.com/cat.jpg'
        """
        if self.kind == "bytes":
            return f"bytes ({len(self.value):,} B)"
        if self.kind == "data_url":
            media_type, size = data_url_summary(self.value)
            return f"data URL ({media_type}, {size:,} B)"
        if self.kind == "decoded":
            return f"decoded image {self.value.width}x{self.value.height} {self.value.mode}"
        return self.value


def data_url_summary(url: str) -> tuple[str, int]:
    """A `data:` URL's media type and the size of what it encodes, told from its length without decoding it.

    >>> data_url_summary("data:image/jpeg;base64,/9j/4AAQ")
    ('image/jpeg', 6)
    >>> data_url_summary("data:,hello%20world")
    ('unknown type', 11)
    """
    header = DATA_URL.match(url)
    payload = url[header.end():]
    media_type = header.group(1) or "unknown type"
    if ";base64" in header.group(2).lower():
        return media_type, len(payload) * 3 // 4 - payload[-2:].count("=")
    return media_type, len(unquote_to_bytes(payload))


def image_source(value: Any) -> ImageSource | None:
    """What `value` is as an image, or None when it is none of the ways datasets carry one. Never raises.

    Strings: a `data:` URL, an http(s) URL, a `file://` URL (its path), else a path (in an image column a string
    is a path by convention).

    >>> image_source("data:image/png;base64,iVBORw0KGgo=").kind
    'data_url'
    >>> image_source("https://example.com/cat.jpg")
    ImageSource(kind='url', value='https://example.com/cat.jpg')
    >>> image_source("file:///data/my%20cat.jpg")
    ImageSource(kind='path', value='/data/my cat.jpg')
    >>> image_source("img/cat.jpg")
    ImageSource(kind='path', value='img/cat.jpg')

    Bytes, and the `datasets` Image feature's struct (its bytes win over its path):

    >>> image_source(b"\\xff\\xd8\\xff").kind, image_source(bytearray(3)).kind
    ('bytes', 'bytes')
    >>> image_source({"bytes": b"\\x89PNG", "path": "cat.png"})
    ImageSource(kind='bytes', value=b'\\x89PNG')
    >>> image_source({"bytes": None, "path": "cat.png"})
    ImageSource(kind='path', value='cat.png')

    A decoded PIL image (told by its class's module, so that Pillow is not imported to ask):

    >>> from PIL import Image
    >>> image_source(Image.new("RGB", (4, 3))).name
    'decoded image 4x3 RGB'

    OpenAI's `image_url` value, and Anthropic's image sources (base64 becomes a data URL):

    >>> image_source({"url": "https://example.com/cat.jpg", "detail": "low"}).kind
    'url'
    >>> image_source({"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="})
    ImageSource(kind='data_url', value='data:image/png;base64,iVBORw0KGgo=')
    >>> image_source({"type": "url", "url": "https://example.com/cat.jpg"}).kind
    'url'

    Anything else:

    >>> [image_source(v) for v in (None, 3, "", "  ", ["a.jpg"], {"bytes": None, "path": None}, {"text": "hi"})]
    [None, None, None, None, None, None, None]
    """
    if isinstance(value, str):
        return _string_source(value)
    if isinstance(value, (bytes, bytearray)):
        return ImageSource("bytes", bytes(value)) if value else None
    if type(value).__module__.startswith("PIL."):
        return ImageSource("decoded", value)
    if isinstance(value, dict):
        return _dict_source(value)
    return None


def _string_source(text: str) -> ImageSource | None:
    if not text.strip():
        return None
    lowered = text[:8].lower()
    if lowered.startswith("data:") and DATA_URL.match(text):
        return ImageSource("data_url", text)
    if lowered.startswith(("http://", "https://")):
        return ImageSource("url", text)
    if lowered.startswith("file://"):
        return _string_source(unquote(text[len("file://"):]))
    return ImageSource("path", text)


def _dict_source(value: dict) -> ImageSource | None:
    keys = value.keys()
    if keys == {"bytes", "path"}:  # datasets' Image feature, not decoded
        if isinstance(value["bytes"], (bytes, bytearray)) and value["bytes"]:
            return ImageSource("bytes", bytes(value["bytes"]))
        return _string_source(value["path"]) if isinstance(value["path"], str) else None
    if "url" in keys and keys <= {"url", "detail", "type"} and isinstance(value["url"], str):
        if value.get("type", "url") == "url":  # OpenAI's image_url value, Anthropic's URL source
            return _string_source(value["url"])
    if value.get("type") == "base64" and isinstance(value.get("data"), str) and isinstance(value.get("media_type"), str):
        return ImageSource("data_url", f"data:{value['media_type']};base64,{value['data']}")
    return None


@dataclass(frozen=True)
class ImageLimits:
    """What a usable image is.

    - `max_bytes`: 20 MB, the per-image limit of OpenAI's vision API; a larger encoded file is a raw scan or a
      camera original, far more than any VLM processor keeps after resizing.
    - `max_pixels`: 40 megapixels: past any VLM's input (Qwen2-VL's default caps at ~12.8 MP, LLaVA-style
      processors resize to under 1 MP), and on the way to decompression bombs (Pillow refuses at 179 MP).
    - `min_side`: 8 px: an image narrower or lower than that is almost surely a broken thumbnail or a tracking
      pixel, and some processors (Qwen2-VL's `smart_resize`) reject sides under their patch size.
    - `modes`: those a processor's `convert("RGB")` keeps the meaning of: colour with or without alpha,
      greyscale, palette, CMYK, YCbCr. Odd ones: "1" (bilevel: a mask or a fax scan, rarely a training photo),
      "I", "I;16..." and "F" (16/32-bit and float: `convert("RGB")` clips them at 255, so most turn white),
      "LAB" and "HSV" (their channels are copied as if they were RGB).

    >>> ImageLimits().max_pixels
    40000000
    >>> "I;16" in ImageLimits().modes, "RGBA" in ImageLimits().modes
    (False, True)
    """

    max_bytes: int = 20_000_000
    max_pixels: int = 40_000_000
    min_side: int = 8
    modes: frozenset[str] = field(
        default=frozenset({"RGB", "RGBA", "L", "LA", "P", "PA", "CMYK", "YCbCr"}))


@dataclass(frozen=True)
class ImageCheck:
    """What `ImageChecker.check` found: `problem` is None for a usable image, else one of PROBLEMS; `detail` names
    the image and says what is wrong (what it is, for a usable one). The sizes are None where they could not be
    read; `digest` (16 bytes of XXH3-128 of the encoded bytes, or of the pixels of a decoded image) finds one
    image repeated across rows, and is None when the bytes could not be read."""

    source: ImageSource | None
    problem: str | None
    detail: str
    width: int | None = None
    height: int | None = None
    mode: str | None = None
    format: str | None = None
    nbytes: int | None = None
    digest: bytes | None = None


def digest_of(data: bytes) -> bytes:
    """The digest that finds one image repeated: XXH3-128, which hashes at ~17 GB/s where blake2b does ~0.7 GB/s
    (on a 400 KB JPEG, blake2b took longer than reading the file and its header together; bench/images.py). It
    is no defence against a forged collision, which finding repeated images does not need. xxhash comes with
    `datasets`, which hashes with it too.

    >>> digest_of(b"cat").hex()
    '0381fd7cec51321d42548a8a111c54ee'
    """
    import xxhash

    return xxhash.xxh3_128_digest(data)


def looks_truncated(data: bytes, image_format: str | None) -> bool:
    """Whether encoded bytes lack the ending their format always writes: a JPEG's end-of-image marker, a PNG's
    IEND chunk, a GIF's trailer, a WebP's full RIFF length. A cheap suspicion on bytes already read (a header
    read cannot see a missing end); `ImageChecker` confirms it by decoding, since a few writers append bytes
    after the end (trailing zeros are allowed here).

    >>> looks_truncated(b"\\xff\\xd8 ... \\xff\\xd9", "JPEG"), looks_truncated(b"\\xff\\xd8 ... \\x12\\x34", "JPEG")
    (False, True)
    >>> looks_truncated(b"RIFF\\x10\\x00\\x00\\x00WEBP", "WEBP"), looks_truncated(b"BM...", "BMP")
    (True, False)
    """
    tail = data[-1024:].rstrip(b"\0")
    if image_format == "JPEG":
        return not tail.endswith(b"\xff\xd9")
    if image_format == "PNG":
        return not tail.endswith(b"IEND\xaeB`\x82")
    if image_format == "GIF":
        return not tail.endswith(b";")
    if image_format == "WEBP":
        return len(data) < 8 + int.from_bytes(data[4:8], "little")
    return False


class ImageChecker:
    """Checks images offline, resolving relative paths against `root` (the dataset file's folder, or the user's
    `--image-root`). Never raises for bad data: every failure is an ImageCheck with a problem.

    By default it reads each file's bytes (the digest needs them) and its header (`Image.open`: size, mode,
    format), not its pixels. A header read cannot see a file cut short, since the header is at the start, so the
    bytes are tested for their format's ending (`looks_truncated`) and only an image failing that is decoded to
    confirm: truncated JPEG, PNG, GIF and WebP files are found at the cost of a header read. `verify()` is not
    used: for a JPEG it checks nothing, and for a PNG it adds only the chunks' CRCs.

    What the default misses: data garbled inside a whole file. `full_decode=True` decodes every image (`load()`,
    10-40x the default's time, see bench/images.py) and finds it in a PNG (a broken compressed stream), not in a
    JPEG: libjpeg repairs a corrupt scan with grey blocks rather than failing."""

    def __init__(self, root: Path | None, *, full_decode: bool = False, limits: ImageLimits = ImageLimits()):
        self.root = root
        self.full_decode = full_decode
        self.limits = limits
        self._checked: OrderedDict[Any, ImageCheck] = OrderedDict()  # nameless checks, by resolved path or digest

    def resolve(self, path: str) -> Path:
        """Where a path as written points: `~` expanded, relative paths under `root`, absolute ones kept.

        >>> checker = ImageChecker(Path("/data"))
        >>> checker.resolve("img/cat.jpg"), checker.resolve("/srv/cat.jpg")
        (PosixPath('/data/img/cat.jpg'), PosixPath('/srv/cat.jpg'))
        >>> ImageChecker(None).resolve("img/cat.jpg")
        PosixPath('img/cat.jpg')
        """
        written = Path(path).expanduser()
        return written if written.is_absolute() or self.root is None else self.root / written

    def check(self, source: ImageSource) -> ImageCheck:
        """Whether `source` is an image a processor can use (see the class and ImageLimits)."""
        if source.kind == "url":
            return ImageCheck(source, "remote", f"{_quoted(source.value)} is a remote URL: not fetched (this tool "
                                                "runs offline), so it cannot be verified")
        if source.kind == "decoded":
            return self._check_decoded(source)
        if source.kind == "path":
            resolved = self.resolve(source.value)
            shown = os.path.normpath(resolved)  # `data/../img/a.jpg` said as `img/a.jpg`; read as resolved
            label = _quoted(source.value) + ("" if shown == source.value else f" ({shown})")
            return self._named(self._cached(resolved, lambda: self._check_file(resolved)), source, label)
        data, problem = self._embedded_bytes(source)
        if data is None:
            return ImageCheck(source, "unreadable", f"{source.name} {problem}")
        digest = digest_of(data)
        return self._named(self._cached(digest, lambda: self._check_bytes(data, digest)), source, source.name)

    def _cached(self, key: Any, compute) -> ImageCheck:
        if key in self._checked:
            self._checked.move_to_end(key)
            return self._checked[key]
        check = self._checked[key] = compute()
        if len(self._checked) > CACHED_CHECKS:
            self._checked.popitem(last=False)
        return check

    @staticmethod
    def _named(check: ImageCheck, source: ImageSource, label: str) -> ImageCheck:
        return replace(check, source=source, detail=f"{label} {check.detail}")

    def _embedded_bytes(self, source: ImageSource) -> tuple[bytes | None, str]:
        """The bytes of a bytes or data URL source, or None and why they cannot be had."""
        if source.kind == "bytes":
            return source.value, ""
        header = DATA_URL.match(source.value)
        payload = source.value[header.end():]
        if ";base64" not in header.group(2).lower():
            return unquote_to_bytes(payload), ""
        try:  # line breaks are tolerated, as the base64 of e-mail has them; any other stray character is not
            return base64.b64decode("".join(payload.split()), validate=True), ""
        except (binascii.Error, ValueError) as error:
            return None, f"is not valid base64 ({error})"

    def _check_file(self, path: Path) -> ImageCheck:
        """A file's check, its detail without the name (`_named` adds it)."""
        try:
            status = path.stat()
            size = status.st_size
            if S_ISDIR(status.st_mode):
                return ImageCheck(None, "unreadable", "is a folder, not an image file")
            if size > self.limits.max_bytes:  # not read: no point hashing what will not be used
                return ImageCheck(None, "too_large", f"is {size:,} B, over the limit of {self.limits.max_bytes:,} B",
                                  nbytes=size)
            data = path.read_bytes()
        except FileNotFoundError:
            return ImageCheck(None, "missing", "does not exist")
        except OSError as error:
            return ImageCheck(None, "unreadable", f"cannot be read ({error.strerror or error})")
        return self._check_bytes(data, digest_of(data))

    def _check_bytes(self, data: bytes, digest: bytes) -> ImageCheck:
        """Encoded bytes' check, its detail without the name."""
        from PIL import Image

        known = {"nbytes": len(data), "digest": digest}
        if not data:
            return ImageCheck(None, "unreadable", "is empty (0 B)", **known)
        if len(data) > self.limits.max_bytes:
            return ImageCheck(None, "too_large", f"is {len(data):,} B, over the limit of {self.limits.max_bytes:,} B",
                              **known)
        try:
            with _bombs_as_errors():
                image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as error:
            return ImageCheck(None, "too_large", f"is too large to open safely ({error})", **known)
        except Exception as error:  # Pillow's readers raise many types on bad headers, each a bad image here
            return ImageCheck(None, "unreadable", _not_an_image(data, error), **known)
        known.update(width=image.width, height=image.height, mode=image.mode, format=image.format)
        found = self._size_problem(image.width, image.height)
        if found is None and (self.full_decode or looks_truncated(data, image.format)):
            found = _decode_problem(image)
        if found is None and image.mode not in self.limits.modes:
            found = ("odd_mode", f"has mode {image.mode}, which {_mode_hint(image.mode)}")
        if found is None:
            return ImageCheck(None, None, f"is a {image.width}x{image.height} {image.mode} {image.format}, "
                                          f"{len(data):,} B", **known)
        return ImageCheck(None, *found, **known)

    def _size_problem(self, width: int, height: int) -> tuple[str, str] | None:
        if width * height > self.limits.max_pixels:
            return "too_large", (f"is {width}x{height} ({width * height / 1e6:.1f} MP), over the limit of "
                                 f"{self.limits.max_pixels / 1e6:g} MP")
        if min(width, height) < self.limits.min_side:
            return "too_small", f"is {width}x{height}, under the minimum side of {self.limits.min_side} px"
        return None

    def _check_decoded(self, source: ImageSource) -> ImageCheck:
        """A PIL image a dataset handed over decoded (datasets' Image feature): its pixels are hashed, as it has no
        encoded bytes of its own; a lazily loaded one is decoded by that."""
        image = source.value
        known = {"width": image.width, "height": image.height, "mode": image.mode, "format": image.format}
        found = self._size_problem(image.width, image.height)
        if found is not None:
            return ImageCheck(source, found[0], f"{source.name} {found[1]}", **known)
        try:
            pixels = image.tobytes()
        except Exception as error:  # a lazily loaded image whose data is cut short or corrupt
            problem, what = _decode_failure(error)
            return ImageCheck(source, problem, f"{source.name} {what}", **known)
        digest = digest_of(f"{image.mode} {image.width}x{image.height} ".encode() + pixels)
        if image.mode not in self.limits.modes:
            return ImageCheck(source, "odd_mode", f"{source.name} has mode {image.mode}, which "
                                                 f"{_mode_hint(image.mode)}", digest=digest, **known)
        return ImageCheck(source, None, f"{source.name} is usable", digest=digest, **known)


class _bombs_as_errors:
    """Pillow warns (DecompressionBombWarning) between 89 and 179 MP and raises above: ImageLimits judges size
    itself, so the warning is silenced rather than printed once per image."""

    def __enter__(self):
        import warnings

        from PIL import Image

        self._catching = warnings.catch_warnings()
        self._catching.__enter__()
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)

    def __exit__(self, *exc) -> None:
        self._catching.__exit__(*exc)


def _decode_problem(image) -> tuple[str, str] | None:
    """Decode every pixel (`load`): what goes wrong, or None."""
    try:
        with _bombs_as_errors():
            image.load()
    except Exception as error:  # decoders raise OSError, SyntaxError, ValueError, ... on corrupt data
        return _decode_failure(error)
    return None


def _decode_failure(error: Exception) -> tuple[str, str]:
    """
    >>> _decode_failure(OSError("image file is truncated (5 bytes not processed)"))
    ('truncated', 'is truncated: its data stops before the image ends (image file is truncated (5 bytes not processed))')
    >>> _decode_failure(SyntaxError("broken PNG file"))
    ('unreadable', 'cannot be decoded: broken PNG file')
    """
    message = str(error) or type(error).__name__
    if "truncated" in message.lower():
        return "truncated", f"is truncated: its data stops before the image ends ({message})"
    return "unreadable", f"cannot be decoded: {message}"


def _not_an_image(data: bytes, error: Exception) -> str:
    """
    >>> _not_an_image(b"hello world, this is text", ValueError())
    "is not an image Pillow can read (it starts with b'hello world, thi')"
    """
    return f"is not an image Pillow can read (it starts with {data[:16]!r})"


def _mode_hint(mode: str) -> str:
    """Why an odd mode is odd, for the detail.

    >>> _mode_hint("1"), _mode_hint("I;16")
    ('is bilevel (1 bit per pixel): usually a mask or a scan', 'converting to RGB clips at 255 (most pixels turn white)')
    """
    if mode == "1":
        return "is bilevel (1 bit per pixel): usually a mask or a scan"
    if mode.startswith("I"):
        return "converting to RGB clips at 255 (most pixels turn white)"
    if mode == "F":
        return "is floating point: converting to RGB truncates values between 0 and 1 to black"
    return "a processor's convert('RGB') does not read as colour"


def _quoted(text: str) -> str:
    """A path or URL as written, in quotes, on one line (a newline inside shows as \\n).

    >>> print(_quoted("img/cat.jpg"), _quoted("a\\nb.jpg"))
    'img/cat.jpg' 'a\\nb.jpg'
    """
    return repr(text)


def image_bytes(source: ImageSource, checker: ImageChecker) -> bytes:
    """The image's encoded bytes, to embed into a Parquet file: a file's bytes (its path resolved by `checker`),
    a data URL's decoded payload, or a decoded image encoded as PNG. Raises ValueError (with the check's detail)
    for a remote URL, a missing file or a bad data URL.

    >>> image_bytes(image_source("data:image/png;base64,iVBORw0KGgo="), ImageChecker(None))
    b'\\x89PNG\\r\\n\\x1a\\n'
    >>> image_bytes(image_source("https://example.com/cat.jpg"), ImageChecker(None))
    Traceback (most recent call last):
    ...
    ValueError: 'https://example.com/cat.jpg' is a remote URL: not fetched (this tool runs offline), so it cannot be verified
    """
    if source.kind == "url":
        raise ValueError(checker.check(source).detail)
    if source.kind == "decoded":
        encoded = io.BytesIO()
        source.value.save(encoded, format="PNG")
        return encoded.getvalue()
    if source.kind == "path":
        try:
            return checker.resolve(source.value).read_bytes()
        except OSError:
            raise ValueError(checker.check(source).detail) from None
    data, problem = checker._embedded_bytes(source)
    if data is None:
        raise ValueError(f"{source.name} {problem}")
    return data


THUMBNAIL_MAX_BYTES = 8192
# Problems that leave no picture to preview (a tiny or odd-mode image still has one), or one too large to decode
# for a preview.
UNREADABLE = frozenset({"missing", "unreadable", "truncated", "remote", "too_large"})


def thumbnail_data_url(source: ImageSource, checker: ImageChecker, size: int = 96) -> str | None:
    """A small preview for an HTML report page, as a `data:` URL: a JPEG, or a PNG when the image has
    transparency; each under ~8 KB. None when the image cannot be read (a remote URL, a missing, broken or huge
    file: its check, cached for a file, says which).

    >>> thumbnail_data_url(image_source("https://example.com/cat.jpg"), ImageChecker(None)) is None
    True
    """
    from PIL import Image

    if checker.check(source).problem in UNREADABLE:
        return None
    try:
        with _bombs_as_errors():
            if source.kind == "decoded":
                image = source.value.copy()
            else:
                image = Image.open(io.BytesIO(image_bytes(source, checker)))
                image.draft("RGB", (size, size))  # a JPEG decodes at 1/2 to 1/8 scale: far less work
            image.thumbnail((size, size))
        encoded = _encoded_thumbnail(image)
    except Exception:  # any reason it cannot be read: the page shows no preview, the check says why
        return None
    kind = "png" if encoded.startswith(b"\x89PNG") else "jpeg"
    return f"data:image/{kind};base64,{base64.b64encode(encoded).decode('ascii')}"


def _encoded_thumbnail(image) -> bytes:
    """A thumbnail's bytes: PNG with its transparency (reduced to 64 colours if it would pass the size), else JPEG
    at a quality that stays under THUMBNAIL_MAX_BYTES."""
    encoded = io.BytesIO()
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        image = image.convert("RGBA")
        image.save(encoded, format="PNG", optimize=True)
        if encoded.tell() > THUMBNAIL_MAX_BYTES:
            encoded = io.BytesIO()
            image.quantize(64, method=2).save(encoded, format="PNG", optimize=True)  # 2: fast octree, keeps alpha
        return encoded.getvalue()
    image = image.convert("L" if image.mode in ("1", "L") else "RGB")
    for quality in (80, 60, 40):
        encoded = io.BytesIO()
        image.save(encoded, format="JPEG", quality=quality)
        if encoded.tell() <= THUMBNAIL_MAX_BYTES:
            break
    return encoded.getvalue()

