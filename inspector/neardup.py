"""Near-duplicate rows (rule TP406): rows whose prompts and answers both share most of their 3-word shingles.

A row is read as two texts, its prompt and its answers (`inspector.ngrams.row_parts`: a conversation's assistant turns
are its answers). Each becomes a MinHash signature of 64 permutations over the hashes of its 3-word shingles,
computed by rensa (Rust) a batch at a time; a row's signature is the two side by side. Two rows are near-duplicates
when, in each half, the share of positions on which their signatures agree (the MinHash estimate of the Jaccard
similarity of the two texts' shingle sets, within about 0.05 at 0.8) reaches the threshold; rows of image data
with other images never do (`ngrams.images_key` is mixed into the prompt half). Both must: a long
system prompt or a question shared by rows with different answers, or an answer given to different questions, makes
no duplicate. Shingles are of 3 words, not the 5 of web-scale deduplication, because prompts are short: one word
changed in a 30-word prompt leaves 0.80 of its 3-word shingles and 0.68 of its 5-word ones. Rows of fewer than 5
words are left to the exact check (TP401): a few words say too little to call two rows the same.

Candidates come from bands of the signatures (Locality-Sensitive Hashing): rows with an identical band (not that
of an empty text) are compared. At the default threshold of 0.8 the bands are 16 of 8 positions: a pair of
similarity 0.8 becomes a candidate with probability 0.95, one of 0.85 with 0.994, one of 0.5 with 0.06 (which the
comparison then turns away). Below 0.8 they are 32 of 4: a pair at 0.6 is found with probability 0.99, at 0.5
(the lowest threshold allowed) with 0.87. Pairs join into clusters; a cluster's first row is the one kept, and every
other row of it nearly repeats that row. Memory: the signatures, 512 bytes a row, never the rows.

>>> question = ("Natalia sold clips to 48 of her friends in April and then she sold half as many in May. "
...             "How many clips did Natalia sell altogether in April and May?")
>>> answer = "She sold 48 + 24 = 72 clips in April and May."
>>> rows = [(1, {"prompt": question, "completion": answer}),
...         (2, {"prompt": question, "completion": "Natalia sold 72 clips altogether, 24 of them in May."}),
...         (3, {"prompt": question.upper().replace(" ", "  "), "completion": answer}),
...         (4, {"prompt": question + " Answer briefly.", "completion": answer})]
>>> found = NearDuplicates.find(rows)
>>> found.clusters(), found.detail(4, 1)
([(1, [3, 4])], 'nearly repeats row 1 (similarity 0.92)')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trlprep.inspector.dialects import Shape
from trlprep.options import NEAR_THRESHOLD
from trlprep.inspector.ngrams import batches, images_key, ngram_hashes, row_parts, words

SHINGLE_WORDS = 3
MIN_WORDS = 5
PERMUTATIONS = 128  # 64 for the prompt, then 64 for the answers
HALF = PERMUTATIONS // 2
THRESHOLD = NEAR_THRESHOLD
SEED = 20261127
EMPTY = np.uint32(0xFFFFFFFF)  # every position of an empty text's signature
_BAND_WEIGHTS = np.random.default_rng(SEED).integers(1, 2**63, size=8, dtype=np.uint64) * 2 + 1


class Signatures:
    """The MinHash signatures of rows of five words or more, added a batch at a time."""

    def __init__(self, shape: Shape | None = None) -> None:
        self.shape = shape  # the dataset's, which most rows have (see `row_parts`)
        self.numbers: list[np.ndarray] = []
        self.blocks: list[np.ndarray] = []

    def add(self, numbers: list[int], values: list[Any]) -> None:
        parts = [tuple(map(words, row_parts(value, self.shape))) for value in values]
        long_enough = [i for i, (prompt, answers) in enumerate(parts) if len(prompt) + len(answers) >= MIN_WORDS]
        if not long_enough:
            return
        halves = [_signatures([parts[i][side] for i in long_enough]) for side in (0, 1)]
        if self.shape is not None and self.shape.reads_images:
            # Rows with other pictures repeat nothing: their prompt halves are made to disagree everywhere.
            halves[0] ^= np.array([images_key(values[i], self.shape) for i in long_enough], dtype=halves[0].dtype)[:, None]
        self.blocks.append(np.hstack(halves))
        self.numbers.append(np.array(numbers, dtype=np.int64)[long_enough])

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.blocks:
            return np.zeros(0, np.int64), np.zeros((0, PERMUTATIONS), np.uint32)
        return np.concatenate(self.numbers), np.concatenate(self.blocks)


def _signatures(texts: list[list[bytes]]) -> np.ndarray:
    """One 64-position signature a text (all EMPTY for a text of no words)."""
    import rensa

    hashes, offsets = ngram_hashes(texts, SHINGLE_WORDS)
    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(hashes, offsets.astype(np.uint64), HALF, SEED)
    return np.array(matrix.to_rows(), dtype=np.uint32).reshape(len(texts), HALF)


def agreement(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """How similar rows are: the lower of the two halves' shares of agreeing positions (rows of signatures, pairwise).

    >>> a, b = np.zeros((1, PERMUTATIONS), np.uint32), np.zeros((1, PERMUTATIONS), np.uint32)
    >>> b[0, :8] = 1  # an eighth of the prompt's positions differ
    >>> agreement(a, b).tolist()
    [0.875]
    """
    same = first == second
    return np.minimum(same[:, :HALF].mean(axis=1), same[:, HALF:].mean(axis=1))


@dataclass
class NearDuplicates:
    """Clusters of near-duplicate rows: for each row of a cluster, the cluster's first row, and the rows'
    signatures (those of clustered rows only) to say how similar two of them are."""

    threshold: float
    kept_row: dict[int, int] = field(default_factory=dict)  # every clustered row (its first row included) -> first
    signature: dict[int, np.ndarray] = field(default_factory=dict)
    neighbour: dict[int, tuple[int, float]] = field(default_factory=dict)  # row -> its most similar partner
    kept_by_convert: dict[int, int] = field(default_factory=dict)  # cluster's first row -> the row convert kept

    @classmethod
    def find(cls, rows: Iterable[tuple[int, Any]], threshold: float = THRESHOLD) -> NearDuplicates:
        """The clusters among `rows` ((number, value) in order)."""
        signatures = Signatures()
        for numbers, values in batches(rows):
            signatures.add(numbers, values)
        return cls.from_signatures(signatures, threshold)

    @classmethod
    def from_signatures(cls, signatures: Signatures, threshold: float = THRESHOLD) -> NearDuplicates:
        numbers, matrix = signatures.matrix()
        first, second, similarity = _similar_pairs(matrix, threshold)
        found = cls(threshold)
        if not len(first):
            return found
        root = _components(len(numbers), first, second)
        for index in np.flatnonzero(root != np.arange(len(numbers))):
            found.kept_row[int(numbers[index])] = int(numbers[root[index]])
        for index in np.unique(root[root != np.arange(len(numbers))]):
            found.kept_row[int(numbers[index])] = int(numbers[index])
        order = np.argsort(similarity, kind="stable")  # the most similar partner last, so it stays
        for a, b, score in zip(first[order], second[order], similarity[order]):
            found.neighbour[int(numbers[a])] = (int(numbers[b]), float(score))
            found.neighbour[int(numbers[b])] = (int(numbers[a]), float(score))
        for row in found.kept_row:
            found.signature[row] = matrix[np.searchsorted(numbers, row)]
        return found

    def similarity(self, row: int, other: int) -> float:
        return float(agreement(self.signature[row][None], self.signature[other][None])[0])

    def repeats(self) -> dict[int, int]:
        """Every row that nearly repeats its cluster's first row -> that row."""
        return {row: kept for row, kept in self.kept_row.items() if row != kept}

    def clusters(self) -> list[tuple[int, list[int]]]:
        """(first row, the rows that nearly repeat it), largest cluster first."""
        members: dict[int, list[int]] = {}
        for row, kept in sorted(self.repeats().items()):
            members.setdefault(kept, []).append(row)
        return sorted(members.items(), key=lambda item: (-len(item[1]), item[0]))

    def dropped(self, row: int) -> str | None:
        """Why `convert --dedup near` rejects `row`: its cluster has a row kept already (`keep`). A cluster's first
        row may be rejected by another rule: the next of its rows that converts is kept instead."""
        kept = self.kept_by_convert.get(self.kept_row.get(row, -1))
        return None if kept is None else self.detail(row, kept)

    def keep(self, row: int) -> None:
        """`row` was converted: it is the row its cluster keeps, if none is kept yet."""
        if row in self.kept_row:
            self.kept_by_convert.setdefault(self.kept_row[row], row)

    def detail(self, row: int, kept: int) -> str:
        """What `row` repeats, said against `kept` (a row of its cluster kept before it); a row that reached the
        cluster through another row names that one too."""
        score = self.similarity(row, kept)
        said = f"nearly repeats row {kept} (similarity {score:.2f})"
        partner, partner_score = self.neighbour[row]
        if score < self.threshold:
            said += f"; it is {partner_score:.2f} similar to row {partner} of the same cluster"
        return said


def _similar_pairs(matrix: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs (first < second) whose signatures agree on at least `threshold` of the positions of each half,
    and how much. Candidates are the rows with an identical band, each paired with the first row of its band's
    group; an empty text's band pairs nothing."""
    rows = len(matrix)
    candidates = []
    width = 8 if threshold >= THRESHOLD else 4
    for band in range(PERMUTATIONS // width):
        columns = matrix[:, band * width:(band + 1) * width]
        present = np.flatnonzero(columns[:, 0] != EMPTY)
        if len(present) < 2:
            continue
        keys = (columns[present].astype(np.uint64) * _BAND_WEIGHTS[:width]).sum(axis=1)
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        new_group = np.r_[True, ordered[1:] != ordered[:-1]]
        group_first = order[np.flatnonzero(new_group)][np.cumsum(new_group) - 1]
        repeated = group_first != order
        candidates.append(present[group_first[repeated]] * rows + present[order[repeated]])
    pairs = np.unique(np.concatenate(candidates)) if candidates else np.zeros(0, np.int64)
    first, second = pairs // max(rows, 1), pairs % max(rows, 1)
    chunk = 65536
    similarity = np.concatenate([agreement(matrix[first[i:i + chunk]], matrix[second[i:i + chunk]])
                                 for i in range(0, len(pairs), chunk)] or [np.zeros(0)])
    similar = similarity >= threshold
    return first[similar], second[similar], similarity[similar]


def _components(size: int, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """For each index, the smallest index connected to it by the pairs (label propagation until nothing moves)."""
    root = np.arange(size)
    while True:
        low = np.minimum(root[first], root[second])
        before = root.copy()
        np.minimum.at(root, first, low)
        np.minimum.at(root, second, low)
        root = root[root]
        if np.array_equal(root, before):
            return root
