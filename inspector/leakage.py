"""Evaluation leakage: training rows that share long word n-grams with rows of an evaluation set (rule TP405).

The convention of GPT-3's contamination study and lm-evaluation-harness: lower-cased words, 13 at a time. A row
shares an n-gram with an evaluation row when 13 consecutive words of its text occur in that row's text; a text of
fewer than 13 words counts whole. A verbatim copy shares all of the evaluation row's n-grams, a reworded one the
stretches it kept. Rows are read as they are written (every string in them, id-like columns aside), so a question
is found whether it sits in `question`, `prompt` or a user message.

`inspect --against EVAL` reports the rows; `convert --against EVAL --drop-contaminated` rejects them, counted in
the ledger. Both number rows the way the scan does, through `contaminated_rows`.

>>> index = EvalIndex.build("gsm8k", [(1, {"question": "Natalia sold clips to 48 of her friends in April, and "
...                                                "then she sold half as many clips in May. How many?"})])
>>> contaminated_rows([("train.jsonl", [(7, {"prompt": "natalia sold clips to 48 of her friends in april, and "
...                                                  "then she sold half as many clips in may"})])], [index])
{7: 'shares 8 of 10 13-grams with gsm8k:1'}
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from inspector.dialects import without_ids
from inspector.sources import row_value

NGRAM = 13
WORD = re.compile(r"\w+")


def strings(value: Any) -> Iterable[str]:
    """Every string inside a value, in order (object keys aside)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings(item)


def ngrams(value: Any) -> set[int]:
    """Hashes of the 13-word windows of a row's text (one for the whole text when it is shorter).

    >>> len(ngrams({"text": " ".join(map(str, range(20)))})), len(ngrams({"text": "two words"}))
    (8, 1)
    """
    words = WORD.findall(" ".join(strings(without_ids(value) if isinstance(value, dict) else value)).lower())
    if not words:
        return set()
    if len(words) < NGRAM:
        return {hash(tuple(words))}
    return {hash(tuple(words[i:i + NGRAM])) for i in range(len(words) - NGRAM + 1)}


@dataclass
class EvalIndex:
    """The n-grams of one evaluation set: for each, the first evaluation row that has it."""

    name: str
    first_row: dict[int, int] = field(default_factory=dict)
    sizes: dict[int, int] = field(default_factory=dict)  # n-grams per evaluation row
    rows: int = 0

    @classmethod
    def build(cls, name: str, rows: Iterable[tuple[int, Any]]) -> EvalIndex:
        index = cls(name)
        for number, value in rows:
            grams = ngrams(row_value(value))
            index.rows += 1
            index.sizes[number] = len(grams)
            for gram in grams:
                index.first_row.setdefault(gram, number)
        return index

    def match(self, grams: set[int]) -> tuple[int, int] | None:
        """(evaluation row, n-grams shared with it) for the row sharing the most, or None."""
        shared: dict[int, int] = {}
        for gram in grams:
            row = self.first_row.get(gram)
            if row is not None:
                shared[row] = shared.get(row, 0) + 1
        if not shared:
            return None
        row = max(shared, key=shared.get)
        return row, shared[row]


def contaminated_rows(parts: Iterable[tuple[str, Iterable[tuple[int, Any]]]],
                      indexes: list[EvalIndex]) -> dict[int, str]:
    """Row number (numbered across files as the scan numbers them) → what it shares with which evaluation row, for
    every row that shares an n-gram with any evaluation set."""
    found: dict[int, str] = {}
    offset = 0
    for _name, rows in parts:
        last = 0
        for number, value in rows:
            last = number
            grams = ngrams(row_value(value))
            for index in indexes:
                match = index.match(grams)
                if match is not None:
                    row, shared = match
                    found[offset + number] = (f"shares {shared} of {index.sizes[row]} {NGRAM}-grams with "
                                              f"{index.name}:{row}")
                    break
        offset += last
    return found


def eval_indexes(sources: Iterable[Any]) -> list[EvalIndex]:
    """One index per evaluation source (a file, folder or Hub id)."""
    from inspector.scan import read_plan
    from inspector.sources import open_source

    indexes = []
    for source in sources:
        plan = read_plan(open_source(source))
        rows = (item for part in plan.parts for item in plan.rows(part))
        indexes.append(EvalIndex.build(str(source), rows))
    return indexes
