"""Answers cut off by a length cap (rule TP214): they stop mid-sentence where the data's longest answers stop.

A generation capped at `max_new_tokens`, or an export that keeps the first N characters, leaves answers that end
inside a sentence, often inside a word (`...it may need to be re`). One such answer may be a style; many of them
at the top of the length distribution, or at one exact length, are a cap. So a final answer of 20 words or more
(`inspector.ngrams.final_answers`) that ends on a letter or a comma is flagged when either holds:

- it is among the longest answers (the top 1%, at least 3), and at least 2 of those end so, a share at least 3
  times that of all answers: a cap in tokens leaves lengths near each other, not equal;
- at least 3 answers ending so have exactly its length in characters: a cap in characters.

>>> long = "word " * 30
>>> rows = [(i, {"prompt": "q", "completion": long + "ends well."}) for i in range(1, 98)]
>>> rows += [(98, {"prompt": "q", "completion": long * 3 + "and then it stops mid-sen"}),
...          (99, {"prompt": "q", "completion": long * 3 + "and so does th"}),
...          (100, {"prompt": "q", "completion": long * 3 + "but this one ends."})]
>>> found = CutOffs.find(rows)
>>> sorted(found), found[98]
([98, 99], "ends mid-sentence ('…then it stops mid-sen') at 475 characters, among the 3 longest answers, 2 of which end so")
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from trlprep.inspector.dialects import Shape
from trlprep.inspector.ngrams import batches, final_answers

MIN_WORDS = 20
TOP_SHARE = 0.01
TOP_AT_LEAST = 3
SAME_LENGTH_AT_LEAST = 3


class CutOffs:
    """Final answers, added a batch at a time (`add`); `found` maps each row cut off to why it looks so."""

    def __init__(self, shape: Shape | None = None):
        self.shape = shape  # the dataset's (see `final_answers`)
        self.lengths: list[int] = []  # of every answer long enough to judge
        self.open: list[tuple[int, int, str]] = []  # (row, length, last words) of those ending mid-sentence

    @classmethod
    def find(cls, rows: Iterable[tuple[int, Any]]) -> dict[int, str]:
        cut_offs = cls()
        for numbers, values in batches(rows):
            cut_offs.add(numbers, values)
        return cut_offs.found()

    def add(self, numbers: list[int], values: list[Any]) -> None:
        for number, value in zip(numbers, values):
            for answer in final_answers(value, self.shape):
                answer = answer.rstrip()
                if len(answer.split()) < MIN_WORDS:
                    continue
                self.lengths.append(len(answer))
                if answer[-1].isalpha() or answer[-1] == ",":
                    self.open.append((number, len(answer), " ".join(answer[-200:].split()[-4:])))

    def found(self) -> dict[int, str]:
        if not self.open:
            return {}
        found: dict[int, str] = {}
        top = max(TOP_AT_LEAST, round(len(self.lengths) * TOP_SHARE))
        floor = sorted(self.lengths, reverse=True)[min(top, len(self.lengths)) - 1]
        at_top = [item for item in self.open if item[1] >= floor]
        if len(at_top) >= 2 and len(at_top) / top >= 3 * len(self.open) / len(self.lengths):
            for row, length, tail in at_top:
                found.setdefault(row, f"ends mid-sentence ('…{tail}') at {length} characters, among the {top} "
                                      f"longest answers, {len(at_top)} of which end so")
        same = Counter(length for _, length, _ in self.open)
        for row, length, tail in self.open:
            if same[length] >= SAME_LENGTH_AT_LEAST:
                found.setdefault(row, f"ends mid-sentence ('…{tail}') at exactly {length} characters, as "
                                      f"{same[length] - 1} other answers do")
        return found
