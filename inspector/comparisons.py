"""The checks that compare rows, in one more pass over them: with evaluation sets (TP405, `inspector.leakage`),
with each other (near-duplicates, TP406, `inspector.neardup`), with the data's longest answers (cut-off answers,
TP214, `inspector.cutoff`); and, in the same pass, what the HTML page plots (`inspector.profile`). What `inspect`
reports and `convert` rejects."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trlprep.inspector.neardup import SHINGLE_WORDS, NearDuplicates
from trlprep.inspector.rules.content import CUT_OFF_RESPONSE
from trlprep.inspector.rules.dataset import EVAL_CONTAMINATION, NEAR_DUPLICATE_ROW
from trlprep.inspector.scan import ReadPlan, ScanResult, Tally, read_plan
from trlprep.inspector.sources import Source


@dataclass
class Comparisons:
    """What the checks that compare rows found: with evaluation sets (TP405), with each other (TP406, TP214)."""

    leaked: dict[int, str] = field(default_factory=dict)  # row -> what it shares with which evaluation row
    leaked_per_set: dict[str, int] = field(default_factory=dict)
    near: NearDuplicates | None = None
    cut_off: dict[int, str] = field(default_factory=dict)  # row -> how its answer stops (TP214)
    profile: dict | None = None  # what the HTML report plots (`inspector.profile`)


def compare_rows(opened: Source, *, against: tuple[Any, ...] = (), near_threshold: float | None = None,
                 cut_off: bool = False, profile: bool = False, sample: int | None = None,
                 prepare=None, image_root: str | Path | None = None) -> Comparisons:
    """One more pass over the rows, numbered as the scan numbers them, for the checks that compare rows: n-grams
    shared with the evaluation sets of `against` (`inspector.leakage`), with a threshold near-duplicate clusters
    (`inspector.neardup`), with `cut_off` answers that stop where a length cap stops them (`inspector.cutoff`).
    What `inspect` reports and `convert` rejects; with `profile`, in the same pass, what the HTML report plots
    (image paths read against `image_folder`)."""
    from trlprep.inspector.cutoff import CutOffs
    from trlprep.inspector.leakage import Leakage, eval_indexes
    from trlprep.inspector.neardup import Signatures
    from trlprep.inspector.profile import Profile
    from trlprep.inspector.ngrams import batches

    plan = read_plan(opened, limit=sample, prepare=prepare)
    checks = {"leakage": Leakage(eval_indexes(against)) if against else None,
              "near": Signatures(plan.expected) if near_threshold is not None else None,
              "cut_off": CutOffs(plan.expected) if cut_off else None,
              "profile": Profile(plan.expected, image_root=image_folder(plan, image_root)) if profile else None}
    running = [check for check in checks.values() if check is not None]
    for numbers, values in batches(plan.numbered_rows()):
        for check in running:
            check.add(numbers, values)
    compared = Comparisons()
    if checks["leakage"] is not None:
        compared.leaked, compared.leaked_per_set = checks["leakage"].found, dict(checks["leakage"].per_set)
    if checks["near"] is not None:
        compared.near = NearDuplicates.from_signatures(checks["near"], near_threshold)
    if checks["cut_off"] is not None:
        compared.cut_off = checks["cut_off"].found()
    if checks["profile"] is not None:
        compared.profile = checks["profile"].to_dict()
    return compared


def image_folder(plan: ReadPlan, image_root: str | Path | None) -> Path | None:
    """The folder the page and its plots read relative image paths against: `image_root` when given, else the first
    file's. The scan reads each file's against its own folder; a dataset whose files lie in several folders needs
    `--image-root` for its page to find them all."""
    return Path(image_root) if image_root is not None else plan.parts[0].folder if plan.parts else None


def tally_comparisons(result: ScanResult, compared: Comparisons, max_rows: int) -> None:
    """The rows the comparing checks found, as the scan's tallies of TP214, TP405 and TP406."""
    found = {CUT_OFF_RESPONSE.id: compared.cut_off, EVAL_CONTAMINATION.id: compared.leaked}
    if compared.near is not None:
        found[NEAR_DUPLICATE_ROW.id] = {row: compared.near.detail(row, kept) for row, kept in compared.near.repeats().items()}
    for rule, details in found.items():
        if details:
            first = sorted(details)[:max_rows]
            result.tallies[rule] = Tally(count=len(details), rows=first, details=[details[row] for row in first])


def cluster_section(near: NearDuplicates, result: ScanResult, max_rows: int) -> dict:
    """The report's near-duplicate section: the cluster count and the largest clusters with their rows."""
    clusters = near.clusters()
    sizes = Counter(1 + len(rows) for _, rows in clusters)
    return {"threshold": near.threshold, "shingle_words": SHINGLE_WORDS, "clusters": len(clusters),
            "rows_repeating": sum(len(rows) for _, rows in clusters),
            "cluster_sizes": {str(size): sizes[size] for size in sorted(sizes)},
            "largest": [{"kept": kept, "kept_where": result.where(kept), "size": 1 + len(rows),
                         "rows": [{"row": row, "where": result.where(row),
                                   "similarity": round(near.similarity(row, kept), 3)} for row in rows[:max_rows]]}
                        for kept, rows in clusters[:max_rows]]}


