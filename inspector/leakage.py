"""Evaluation leakage: training rows that share long word n-grams with rows of an evaluation set (rule TP405).

The convention of GPT-3's contamination study and lm-evaluation-harness: normalised words (`inspector.ngrams`), 13
at a time. A row shares an n-gram with an evaluation row when 13 consecutive words of its text occur in that
row's text; a text of fewer than 13 words counts whole. A verbatim copy shares all of the evaluation row's
n-grams, a reworded one the stretches it kept.

`inspect --against EVAL` reports the rows; `convert --against EVAL --drop-contaminated` rejects them, counted in
the ledger. A batch's n-grams are looked up in each evaluation set's sorted n-grams at once (numpy); only the rows
with a hit are matched to the evaluation row they share the most with.

>>> index = EvalIndex.build("gsm8k", [(1, {"question": "Natalia sold clips to 48 of her friends in April, and "
...                                                "then she sold half as many clips in May. How many?"})])
>>> leakage = Leakage([index])
>>> leakage.add([7], [{"prompt": "natalia sold clips to 48 of her friends in april, and then she sold half as "
...                          "many clips in may"}])
>>> leakage.found, dict(leakage.per_set)
({7: 'shares 8 of 10 13-grams with gsm8k:1'}, {'gsm8k': 1})
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from trlprep.inspector.ngrams import batches, ngram_hashes, row_text, words

NGRAM = 13


def row_ngrams(values: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """The 13-word n-gram hashes of rows' whole text, and where each row's start (`inspector.ngrams.ngram_hashes`)."""
    return ngram_hashes([words(row_text(value)) for value in values], NGRAM)


@dataclass
class EvalIndex:
    """The n-grams of one evaluation set: sorted for lookups, and for each the first evaluation row that has it."""

    name: str
    grams: np.ndarray
    first_row: dict[int, int]
    sizes: dict[int, int]  # distinct n-grams per evaluation row
    rows: int

    @classmethod
    def build(cls, name: str, rows: Iterable[tuple[int, Any]]) -> EvalIndex:
        first_row: dict[int, int] = {}
        sizes: dict[int, int] = {}
        count = 0
        for numbers, values in batches(rows):
            hashes, offsets = row_ngrams(values)
            for i, number in enumerate(numbers):
                grams = hashes[offsets[i]:offsets[i + 1]].tolist()
                sizes[number] = len(set(grams))
                for gram in grams:
                    first_row.setdefault(gram, number)
            count += len(numbers)
        grams = np.fromiter(first_row, np.uint64, len(first_row))
        grams.sort()
        return cls(name, grams, first_row, sizes, count)

    def hits(self, hashes: np.ndarray) -> np.ndarray:
        """Which of `hashes` the evaluation set has."""
        places = np.minimum(np.searchsorted(self.grams, hashes), max(len(self.grams) - 1, 0))
        return self.grams[places] == hashes if len(self.grams) else np.zeros(len(hashes), bool)

    def match(self, grams: set[int]) -> tuple[int, int]:
        """(evaluation row, n-grams shared with it) for the row sharing the most."""
        shared = Counter(self.first_row[gram] for gram in grams if gram in self.first_row)
        return shared.most_common(1)[0]


class Leakage:
    """Training rows, a batch at a time (`add`), against evaluation sets: `found` maps a row that shares an n-gram
    with one to what it shares with which evaluation row (the first set it shares with, in the order given)."""

    def __init__(self, indexes: list[EvalIndex]):
        self.indexes = indexes
        self.found: dict[int, str] = {}
        self.per_set: Counter = Counter({index.name: 0 for index in indexes})  # a set none shares with says 0

    def add(self, numbers: list[int], values: list[Any]) -> None:
        hashes, offsets = row_ngrams(values)
        for index in self.indexes:
            hit = index.hits(hashes)
            if not hit.any():
                continue
            for i in np.unique(np.searchsorted(offsets, np.flatnonzero(hit), side="right") - 1):
                if numbers[i] in self.found:
                    continue
                row, shared = index.match(set(hashes[offsets[i]:offsets[i + 1]].tolist()))
                self.found[numbers[i]] = f"shares {shared} of {index.sizes[row]} {NGRAM}-grams with {index.name}:{row}"
                self.per_set[index.name] += 1


def eval_indexes(sources: Iterable[Any]) -> list[EvalIndex]:
    """One index per evaluation source (a file, folder or Hub id)."""
    from trlprep.inspector.scan import read_plan
    from trlprep.inspector.sources import open_source

    indexes = []
    for source in sources:
        plan = read_plan(open_source(source))
        indexes.append(EvalIndex.build(str(source), plan.numbered_rows()))
    return indexes
