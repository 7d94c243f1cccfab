import re
"""The HTML page of image data: each drawn row's images where they stand in its turns, as embedded thumbnails (a
box naming a missing image and its problem), the image plots, and a page size that stays bounded."""

import html
import json
import shutil
from pathlib import Path

import pytest

from trlprep.inspector import inspect_dataset
from trlprep.inspector.thumbnails import THUMBNAILS_PER_PAGE
from tests.test_html import open_in_chromium

pytest.importorskip("altair", reason="the html extra (uv sync --extra html) is not installed")
IMAGES = Path(__file__).parent / "data" / "vision"
SIZES = {"dog_on_skateboard.jpg": (580, 403), "oumi_logo_dark.png": (1024, 1024), "rgb_pytorch.png": (100, 100)}
THUMBNAIL = "<img src='data:image/"


def image_dataset(tmp_path, rows: list[dict]) -> Path:
    """`rows` as a JSON-lines file beside an `img/` folder holding the test images."""
    shutil.copytree(IMAGES, tmp_path / "img")
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def chat(question: str, answer: str, images: list[str]) -> dict:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            "images": images}


ROWS = [chat("<image>What is the dog doing? And this?<image>", "Skating; a logo.",
             ["img/dog_on_skateboard.jpg", "img/oumi_logo_dark.png"]),
        chat("<image>\nWhat colours?", "Red, green and blue.", ["img/rgb_pytorch.png"]),
        chat("<image>Describe the photo.", "A street at night.", ["img/street_at_night.jpg"]),
        chat("<image><image>Which one is larger?", "The first.", ["img/dog_on_skateboard.jpg"])]


def test_the_page_draws_each_image_where_it_stands_and_names_the_missing_one(tmp_path):
    page = inspect_dataset(image_dataset(tmp_path, ROWS), profile=True).to_html()
    first = page[page.index("row 1 ("):]
    first = first[:first.index("</div></div></div>")]
    # Row 1's turn: its first image, the text, then its second image, as the `<image>` marks place them.
    assert first.index("alt='img/dog_on_skateboard.jpg'") < first.index("What is the dog doing? And this?") \
        < first.index("alt='img/oumi_logo_dark.png'")
    assert THUMBNAIL + "jpeg;base64," in page and THUMBNAIL + "png;base64," in page  # the logo keeps its alpha
    # Row 3's image is not there: a box names the path, where it was looked for and the problem.
    assert (f"<b>missing</b> {html.escape(repr('img/street_at_night.jpg'))} ({tmp_path / 'img/street_at_night.jpg'})"
            " does not exist") in page
    # Row 4 has two placeholders for one image (TP701): the second says so.
    assert "no image for this placeholder" in page
    assert "more image(s) named, not drawn" not in page


def test_image_paths_are_read_against_the_image_root(tmp_path):
    rows = [{**row, "images": [name.removeprefix("img/") for name in row["images"]]} for row in ROWS]
    path = image_dataset(tmp_path, rows)
    assert THUMBNAIL not in inspect_dataset(path, profile=True).to_html()
    page = inspect_dataset(path, profile=True, image_root=tmp_path / "img").to_html()
    assert page.count(THUMBNAIL) >= 4


def test_the_profile_counts_images_per_row_and_measures_their_sizes(tmp_path):
    images = inspect_dataset(image_dataset(tmp_path, ROWS), profile=True).profile["images"]
    assert images["per_row"] == {"1": 3, "2": 1}
    assert images["checked"] == 5 and images["unreadable"] == 1  # the street photo is missing
    assert sorted(zip(images["width"], images["height"])) == sorted(
        [SIZES["dog_on_skateboard.jpg"]] * 2 + [SIZES["oumi_logo_dark.png"], SIZES["rgb_pytorch.png"]])


def test_the_page_of_image_data_plots_images_per_row_and_their_sizes(tmp_path):
    path = image_dataset(tmp_path, ROWS)
    page = tmp_path / "report.html"
    page.write_text(inspect_dataset(path, profile=True).to_html())
    text = page.read_text()
    assert "Images per row" in text and "Image sizes, width against height in pixels" in text
    assert "4 images of 4 of 4 image rows, a random sample; 1 unreadable, not drawn" in text
    seen = open_in_chromium(page, tmp_path / "report.png")
    assert seen["errors"] == [] and seen["requests"] == []
    # shapes, characters of prompt, completion and total, turns, roles, images per row, image sizes, the scatter
    assert seen["plots"] == 9
    assert seen["pictures"] == text.count(THUMBNAIL) >= 4  # every thumbnail decodes in the browser


def test_the_page_of_text_data_has_no_image_plot_or_thumbnail():
    report = inspect_dataset([{"prompt": "2+2?", "completion": "4"}, {"prompt": "Hi", "completion": ""}],
                             profile=True)
    page = report.to_html()
    body = page[page.index("<body>"):]  # past the inlined JavaScript
    assert report.profile["images"] is None
    assert "Image sizes" not in body and "Images per row" not in body and "<img" not in body


def test_a_page_of_200_image_rows_embeds_at_most_its_cap_of_thumbnails(tmp_path):
    """Every row has 25 images and a `<image>` mark (TP710), and repeats earlier rows' images (TP711): the rows
    drawn hold more than 60 images, the page embeds 60, names the rest, and stays near the size of a page without
    images."""
    names = list(SIZES) * 9
    rows = [chat("<image>" * 25 + f"Question {n}?", f"Answer {n}.", [f"img/{name}" for name in names[n % 3:][:25]])
            for n in range(200)]
    report = inspect_dataset(image_dataset(tmp_path, rows), profile=True)
    page = report.to_html()
    assert page.count(THUMBNAIL) == THUMBNAILS_PER_PAGE
    more = re.search(rf"(\d+) more image\(s\) named, not drawn: a page embeds at most {THUMBNAILS_PER_PAGE} thumbnails",
                     page)
    assert more and (int(more.group(1)) + THUMBNAILS_PER_PAGE) % 25 == 0  # the rest of the drawn rows' images
    assert report.profile["images"]["per_row"] == {"25": 200}
    assert len(page.encode()) < 1_500_000  # the 0.9 MB of JavaScript, and at most 60 thumbnails under 8 KB each


def test_images_a_dataset_holds_decoded_are_drawn_too():
    """The Hub's `Image` feature hands rows over as decoded pictures: drawn from their pixels, named by their size."""
    import datasets
    from PIL import Image

    features = datasets.Features({"messages": [{"role": datasets.Value("string"), "content": datasets.Value("string")}],
                                  "images": datasets.Sequence(datasets.Image())})
    rows = datasets.Dataset.from_dict({"messages": [[{"role": "user", "content": "<image>What is it?"},
                                                     {"role": "assistant", "content": "A dog."}]],
                                       "images": [[Image.open(IMAGES / "dog_on_skateboard.jpg")]]}, features=features)
    report = inspect_dataset(rows, profile=True)
    page = report.to_html()
    assert page.count(THUMBNAIL + "jpeg;base64,") == 1 and "decoded image 580x403 RGB" in page
    assert report.profile["images"]["width"] == [580]


def test_image_sizes_come_from_a_random_sample_of_2000_image_rows_and_images_per_row_from_all():
    rows = [{"messages": [{"role": "user", "content": "<image>What?"}, {"role": "assistant", "content": "A dog."}],
             "images": [str(IMAGES / "dog_on_skateboard.jpg")]}] * 4999 + [ROWS[1]]
    images = inspect_dataset(rows, profile=True).profile["images"]
    assert images["per_row"] == {"1": 5000} and images["image_rows"] == 5000
    assert images["sampled_rows"] == images["checked"] == 2000
    # Every sampled image is the dog, but for the last row's if the sample took it: its relative path has no folder.
    assert set(images["width"]) == {580} and len(images["width"]) + images["unreadable"] == 2000
