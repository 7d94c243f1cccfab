"""What a dataset looks like, for the plots of the HTML report: lengths, turns, roles, labels, pair differences,
and of image data images per row and image sizes.

Every row counts (the histograms are exact counts); only the points of the scatter plots are a sample. A
histogram covers 0 to the 99.5th percentile in equal bins, and the rows beyond go into one last bin, so that one
12,000-character outlier does not squeeze every other row into the first bar.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from trlprep.inspector.dialects import Shape
from trlprep.inspector.images import ImageChecker, image_source
from trlprep.inspector.sources import row_value
from trlprep.inspector.ngrams import ROLE_KEYS, as_trl, strings, trl_parts

BINS = 40
SCATTER_POINTS = 2000
MESSAGE_COLUMNS = ("messages", "prompt", "completion", "chosen", "rejected")


def histogram(values: Any, bins: int = BINS) -> dict:
    """Exact counts of `values` in equal bins up to the 99.5th percentile, the rest in one overflow bin, with the
    percentiles a reader looks for.

    >>> h = histogram(list(range(1, 200)) + [5000], bins=2)
    >>> h["edges"], h["counts"], h["overflow"], h["p50"], h["max"]
    ([0.0, 111.5, 223.0], [111, 88], 1, 100.5, 5000.0)
    """
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return {"edges": [], "counts": [], "overflow": 0, "rows": 0, "p50": 0.0, "p95": 0.0, "p99": 0.0,
                "min": 0.0, "max": 0.0}
    low = min(0.0, float(values.min()))
    high = float(np.percentile(values, 99.5))
    high = high if high > low else low + 1.0
    counts, edges = np.histogram(values[values <= high], bins=bins, range=(low, high))
    return {"edges": [round(float(edge), 2) for edge in edges], "counts": counts.tolist(),
            "overflow": int((values > high).sum()), "rows": len(values),
            **{f"p{q}": round(float(np.percentile(values, q)), 1) for q in (50, 95, 99)},
            "min": float(values.min()), "max": float(values.max())}


class ImageSizes:
    """Images per row, of every row, and the width and height of each image of a random sample of SCATTER_POINTS
    image rows, for the page's image plots.

    The sample is drawn as the rows stream by (reservoir sampling), and a row's images are checked when it enters
    the sample: checking an image reads its file and header (~0.17 ms), so 200,000 rows cost about 11,000 checks
    (k(1 + ln(n/k))), not 200,000, and a file that many rows share is read once (the checker caches by path).

    >>> sizes = ImageSizes(ImageChecker(None))
    >>> sizes.add([]); sizes.add(["nowhere.jpg"])
    >>> found = sizes.to_dict()
    >>> found["per_row"], found["checked"], found["unreadable"], found["width"]
    ({'0': 1, '1': 1}, 1, 1, [])
    """

    def __init__(self, checker: ImageChecker, seed: int = 0):
        self.checker = checker
        self.per_row: Counter = Counter()
        self.image_rows = 0  # rows with at least one image: those the sample is drawn from
        self.sample: list[list[tuple[int, int] | None]] = []  # per sampled row, each image's size (None: unreadable)
        self.random = random.Random(seed)
        self.seed = seed
        # Sizes by path as written: the checker's own cache resolves the path first, ~0.1 ms, as long as a row's
        # text. Only sampled rows' images enter it, k(1 + ln(n/k)) rows' at most.
        self.known: dict[str, tuple[int, int] | None] = {}

    def add(self, images: list) -> None:
        self.per_row[len(images)] += 1
        if not images:
            return
        self.image_rows += 1
        if len(self.sample) < SCATTER_POINTS:
            self.sample.append(self._sizes(images))
            return
        slot = self.random.randrange(self.image_rows)
        if slot < SCATTER_POINTS:
            self.sample[slot] = self._sizes(images)

    def _sizes(self, images: list) -> list[tuple[int, int] | None]:
        return [self.known[value] if isinstance(value, str) and value in self.known else self._size(value)
                for value in images]

    def _size(self, value: Any) -> tuple[int, int] | None:
        source = image_source(value)
        check = self.checker.check(source) if source is not None else None
        size = (check.width, check.height) if check is not None and check.width and check.height else None
        if isinstance(value, str) and source is not None and source.kind in ("path", "url"):  # not a data URL's MBs
            self.known[value] = size
        return size

    def to_dict(self) -> dict:
        sizes = [size for row in self.sample for size in row]
        readable = [size for size in sizes if size is not None]
        shown = np.random.default_rng(self.seed).permutation(len(readable))[:SCATTER_POINTS]
        shown.sort()
        return {"per_row": {str(count): rows for count, rows in sorted(self.per_row.items())},
                "image_rows": self.image_rows, "sampled_rows": len(self.sample), "checked": len(sizes),
                "unreadable": len(sizes) - len(readable),
                "width": [readable[i][0] for i in shown], "height": [readable[i][1] for i in shown]}


class Profile:
    """Collects, batch by batch of numbered rows, what the report's plots show (`to_dict`); of image data (its
    shape reads images), images per row and image sizes, paths read against `image_root`."""

    def __init__(self, shape: Shape | None, seed: int = 0, image_root: Path | None = None):
        self.shape = shape
        self.prompt: list[int] = []
        self.completion: list[int] = []
        self.turns: list[int] = []
        self.pair_difference: list[int] = []  # characters of chosen minus rejected
        self.roles: Counter = Counter()
        self.labels: Counter = Counter()
        self.unread = 0
        self.seed = seed
        reads_images = shape is not None and shape.reads_images
        self.images = ImageSizes(ImageChecker(image_root), seed) if reads_images else None

    def add(self, numbers: list[int], values: list[Any]) -> None:
        for value in values:
            trl = as_trl(row_value(value), self.shape)
            if trl is None:
                self.unread += 1
                continue
            prompt, answers = trl_parts(trl)
            self.prompt.append(len(prompt))
            self.completion.append(len(answers))
            turns = 0
            for column in MESSAGE_COLUMNS:
                messages = trl.get(column)
                if isinstance(messages, list):
                    turns += len(messages) if column in ("messages", "prompt", "completion", "chosen") else 0
                    self.roles.update(message.get("role") for message in messages if isinstance(message, dict))
            if turns:
                self.turns.append(turns)
            if "chosen" in trl and "rejected" in trl:
                self.pair_difference.append(len(" ".join(strings(trl["chosen"], ROLE_KEYS)))
                                            - len(" ".join(strings(trl["rejected"], ROLE_KEYS))))
            if "label" in trl:
                self.labels[str(trl["label"]).lower()] += 1
            if self.images is not None:
                images = trl.get("images")
                self.images.add(images if isinstance(images, list) else [])

    def to_dict(self) -> dict:
        prompt, completion = np.asarray(self.prompt), np.asarray(self.completion)
        rows = len(prompt)
        chosen = np.random.default_rng(self.seed).permutation(rows)[:SCATTER_POINTS] if rows else np.array([], int)
        chosen.sort()
        return {
            "rows": rows, "unread": self.unread,
            "characters": {"prompt": histogram(prompt), "completion": histogram(completion),
                           "total": histogram(prompt + completion)},
            "turns": {str(turns): count for turns, count in sorted(Counter(self.turns).items())} or None,
            "roles": dict(self.roles.most_common()),
            "labels": dict(self.labels) or None,
            "pair_difference": histogram(self.pair_difference) if self.pair_difference else None,
            "scatter": {"shown": len(chosen), "of": rows, "prompt": prompt[chosen].tolist(),
                        "completion": completion[chosen].tolist()},
            "images": self.images.to_dict() if self.images is not None else None,
        }
