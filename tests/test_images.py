"""Image checks on the real images of tests/data/vision/ and on broken copies of them."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from trlprep.inspector.images import (ImageChecker, ImageLimits, ImageSource, image_bytes, image_source,
                                      thumbnail_data_url)

VISION = Path(__file__).parent / "data" / "vision"
DOG, LOGO, SMALL = VISION / "dog_on_skateboard.jpg", VISION / "oumi_logo_dark.png", VISION / "rgb_pytorch.png"


def checked(value, root: Path | None = None, **options):
    return ImageChecker(root, **options).check(image_source(value))


@pytest.mark.parametrize("path, size, mode, image_format", [
    (DOG, (580, 403), "RGB", "JPEG"),
    (LOGO, (1024, 1024), "RGBA", "PNG"),
    (SMALL, (100, 100), "RGB", "PNG"),
])
@pytest.mark.parametrize("full_decode", [False, True])
def test_real_images_are_usable(path, size, mode, image_format, full_decode):
    check = checked(str(path), full_decode=full_decode)
    assert check.problem is None, check.detail
    assert (check.width, check.height, check.mode, check.format) == (*size, mode, image_format)
    assert check.nbytes == path.stat().st_size and len(check.digest) == 16


def test_missing_file_names_the_path_as_written_and_resolved(tmp_path):
    check = checked("img/cat.jpg", root=tmp_path)
    assert check.problem == "missing"
    assert check.detail == f"'img/cat.jpg' ({tmp_path}/img/cat.jpg) does not exist"
    assert check.digest is None


def test_relative_path_resolves_against_the_root(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "dog.jpg").write_bytes(DOG.read_bytes())
    check = checked("img/dog.jpg", root=tmp_path)
    assert check.problem is None and check.width == 580
    assert check.detail.startswith(f"'img/dog.jpg' ({tmp_path}/img/dog.jpg) is a 580x403 RGB JPEG")


def test_truncated_jpeg_is_found_by_the_bytes_test_and_by_a_full_decode(tmp_path):
    data = DOG.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[:len(data) // 2])
    for full_decode in (False, True):
        check = checked(str(tmp_path / "cut.jpg"), full_decode=full_decode)
        assert check.problem == "truncated", check.detail
        assert "cut.jpg" in check.detail and (check.width, check.height) == (580, 403)


def test_header_alone_cannot_see_corruption_that_a_full_decode_does(tmp_path):
    """Whole bytes (the PNG's IEND chunk in place) but compressed pixels garbled inside: the header read and the
    bytes test pass it; only decoding finds it."""
    data = bytearray(SMALL.read_bytes())
    pixels = data.index(b"IDAT") + 40
    data[pixels:pixels + 20] = bytes(byte ^ 0xFF for byte in data[pixels:pixels + 20])
    (tmp_path / "garbled.png").write_bytes(bytes(data))
    assert checked(str(tmp_path / "garbled.png")).problem is None
    full = checked(str(tmp_path / "garbled.png"), full_decode=True)
    assert full.problem == "unreadable" and "garbled.png" in full.detail and "cannot be decoded" in full.detail


def test_garbled_jpeg_data_passes_even_a_full_decode(tmp_path):
    """libjpeg repairs a corrupt scan (grey blocks, a warning) rather than failing: no check short of looking at
    the picture sees it. This test holds that limit, so that the docs stay true."""
    data = bytearray(DOG.read_bytes())
    scan = data.index(b"\xff\xda") + 20
    data[scan:len(data) - 2] = b"\xff\xd0" * ((len(data) - 2 - scan) // 2)  # restart markers, no pixels
    (tmp_path / "garbled.jpg").write_bytes(bytes(data))
    assert checked(str(tmp_path / "garbled.jpg"), full_decode=True).problem is None


def test_truncated_png(tmp_path):
    data = LOGO.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:len(data) // 2])
    assert checked(str(tmp_path / "cut.png")).problem == "truncated"


def test_text_file_named_jpg_is_unreadable(tmp_path):
    (tmp_path / "notes.jpg").write_text("these are my holiday notes, not a photo")
    check = checked(str(tmp_path / "notes.jpg"))
    assert check.problem == "unreadable"
    assert "notes.jpg" in check.detail and "not an image" in check.detail and "b'these are my hol'" in check.detail


def test_empty_file_and_folder_are_unreadable(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    empty = checked(str(tmp_path / "empty.jpg"))
    assert (empty.problem, empty.nbytes) == ("unreadable", 0) and "is empty" in empty.detail
    folder = checked(str(tmp_path))
    assert folder.problem == "unreadable" and "folder" in folder.detail


def test_data_url_of_a_png():
    url = "data:image/png;base64," + base64.b64encode(LOGO.read_bytes()).decode()
    check = checked(url)
    assert check.problem is None and (check.width, check.mode) == (1024, "RGBA")
    assert check.detail.startswith(f"data URL (image/png, {LOGO.stat().st_size:,} B) is a 1024x1024 RGBA PNG")
    assert check.digest == checked(str(LOGO)).digest  # the same bytes, however carried


def test_bad_data_url_says_it_is_not_base64():
    check = checked("data:image/png;base64,this is not base64!")
    assert check.problem == "unreadable" and "not valid base64" in check.detail
    with pytest.raises(ValueError, match="not valid base64"):
        image_bytes(image_source("data:image/png;base64,this is not base64!"), ImageChecker(None))


def test_datasets_struct_prefers_its_bytes_and_falls_back_to_its_path():
    from_bytes = checked({"bytes": SMALL.read_bytes(), "path": "elsewhere.png"})
    assert from_bytes.source.kind == "bytes" and from_bytes.problem is None and from_bytes.width == 100
    from_path = checked({"bytes": None, "path": SMALL.name}, root=VISION)
    assert from_path.source == ImageSource("path", SMALL.name) and from_path.problem is None


def test_decoded_pil_image():
    with Image.open(DOG) as image:
        check = checked(image)
    assert check.problem is None and (check.width, check.height, check.mode) == (580, 403, "RGB")
    assert check.detail == "decoded image 580x403 RGB is usable" and len(check.digest) == 16


def test_http_url_is_remote_and_never_fetched():
    check = checked("https://example.invalid/cat.jpg")  # .invalid never resolves: a fetch would fail, not pass
    assert check.problem == "remote" and "'https://example.invalid/cat.jpg'" in check.detail
    assert "offline" in check.detail and check.width is None
    with pytest.raises(ValueError, match="remote URL"):
        image_bytes(check.source, ImageChecker(None))


def test_tiny_image_is_too_small(tmp_path):
    Image.new("RGB", (2, 2), "red").save(tmp_path / "pixel.png")
    check = checked(str(tmp_path / "pixel.png"))
    assert check.problem == "too_small" and "pixel.png" in check.detail and "2x2" in check.detail


def test_low_limits_make_images_too_large():
    pixels = checked(str(DOG), limits=ImageLimits(max_pixels=100_000))
    assert pixels.problem == "too_large" and "580x403" in pixels.detail
    size = checked(str(DOG), limits=ImageLimits(max_bytes=10_000))
    assert size.problem == "too_large" and "over the limit of 10,000 B" in size.detail


def test_decompression_bomb_is_too_large_not_a_crash(tmp_path):
    """A 20,000 x 10,000 PNG (200 MP, past Pillow's own refusal) of a few KB, checked with no pixel limit."""
    Image.new("1", (20_000, 10_000)).save(tmp_path / "bomb.png")
    check = checked(str(tmp_path / "bomb.png"), limits=ImageLimits(max_pixels=10**12))
    assert check.problem == "too_large" and "bomb.png" in check.detail


def test_one_bit_image_has_an_odd_mode(tmp_path):
    Image.open(SMALL).convert("1").save(tmp_path / "mask.png")
    check = checked(str(tmp_path / "mask.png"))
    assert check.problem == "odd_mode" and "mode 1" in check.detail and "mask.png" in check.detail


def test_one_image_under_two_names_has_one_digest(tmp_path):
    (tmp_path / "a.jpg").write_bytes(DOG.read_bytes())
    (tmp_path / "b.jpg").write_bytes(DOG.read_bytes())
    checker = ImageChecker(tmp_path)
    a, b, logo = (checker.check(image_source(name)) for name in ("a.jpg", "b.jpg", str(LOGO)))
    assert a.digest == b.digest != logo.digest


def test_a_file_many_rows_share_is_read_once(tmp_path):
    (tmp_path / "dog.jpg").write_bytes(DOG.read_bytes())
    checker = ImageChecker(tmp_path)
    first = checker.check(image_source("dog.jpg"))
    (tmp_path / "dog.jpg").unlink()  # read again, it would be missing
    again = checker.check(image_source(str(tmp_path / "dog.jpg")))
    assert again.problem is None and again.digest == first.digest
    assert again.detail.startswith(f"'{tmp_path}/dog.jpg' is a 580x403")  # named as this row wrote it


def test_image_bytes_for_embedding(tmp_path):
    checker = ImageChecker(VISION)
    assert image_bytes(image_source(DOG.name), checker) == DOG.read_bytes()
    with Image.open(SMALL) as image:
        encoded = image_bytes(image_source(image), checker)
    assert encoded.startswith(b"\x89PNG") and checked(encoded).width == 100
    with pytest.raises(ValueError, match="does not exist"):
        image_bytes(image_source("gone.jpg"), checker)


def test_thumbnails_are_small_data_urls():
    checker = ImageChecker(VISION)
    photo = thumbnail_data_url(image_source(DOG.name), checker)
    logo = thumbnail_data_url(image_source(LOGO.name), checker)
    assert photo.startswith("data:image/jpeg;base64,") and logo.startswith("data:image/png;base64,")
    for url in (photo, logo):
        assert len(url) < 8192 * 4 / 3 + 30
        with Image.open(io.BytesIO(image_bytes(image_source(url), checker))) as thumb:
            assert max(thumb.size) == 96
    assert thumbnail_data_url(image_source("gone.jpg"), checker) is None


def test_importing_the_module_does_not_import_pillow():
    code = "import sys, trlprep.inspector.images; print('PIL' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_data_url_with_line_breaks_in_its_base64_is_read():
    encoded = base64.encodebytes(SMALL.read_bytes()).decode()  # 76 characters a line, as e-mail writes it
    assert checked("data:image/png;base64," + encoded).problem is None
