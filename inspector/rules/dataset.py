"""The whole dataset (TP4xx): repeated rows, KTO label balance, rows of another shape, evaluation leakage and
near-duplicates. Their passes are the scan's merge (`inspector.scan.finish`) and the comparing checks
(`inspector.leakage`, `inspector.neardup`)."""

from __future__ import annotations

from trlprep.inspector.rules.catalog import ERROR, WARNING, register, Rule
from trlprep.inspector.rules.examples import CHAT, USER, chat, flagged, Example

KTO = frozenset({"unpaired_preference"})

DUPLICATE_ROW = register(Rule("TP401", "duplicate-row", WARNING, "the row repeats an earlier row exactly (id-like columns aside)",
         "`convert --dedup` drops repeats", "dataset",
         why="repeats are trained more than once and leak between train and test splits",
         example=flagged(CHAT, chat(USER, {"role": "assistant", "content": "four"}), CHAT)))

SINGLE_LABEL_CLASS = register(Rule("TP402", "single-label-class", WARNING, "every KTO label has the same value",
         "KTO needs both desirable (true) and undesirable (false) examples", "dataset",
         why="KTOTrainer's loss needs both classes in a batch", types=KTO,
         example=Example(tuple({"prompt": "q", "completion": c, "label": True} for c in "abc"), ())))

LABEL_IMBALANCE = register(Rule("TP403", "label-imbalance", WARNING, "KTO labels are strongly imbalanced",
         "set desirable_weight / undesirable_weight so the weighted classes are within 1:1 to 4:3", "dataset",
         why="the KTO paper's weighting assumes balanced classes", types=KTO,
         example=Example(tuple({"prompt": "q", "completion": c, "label": c != "f"} for c in "abcdef"), ())))

MIXED_SHAPE = register(Rule("TP404", "mixed-shape", ERROR, "the row has a different shape from most rows (other columns or dialect)",
         "`convert` rejects rows that do not fit the dataset's shape", "dataset",
         why="a trainer reads one set of columns; a row of another shape is lost or breaks the batch",
         example=flagged(CHAT, CHAT, CHAT, {"instruction": "Add 2 and 2", "input": "", "output": "4"})))

EVAL_CONTAMINATION = register(Rule("TP405", "eval-contamination", WARNING,
         "the row shares 13-word n-grams with a row of an evaluation set given with `--against` (a verbatim copy "
         "shares them all, a reworded one the stretches it kept)",
         "`convert --against EVAL --drop-contaminated` rejects the rows", "dataset",
         why="a model trained on an evaluation set's questions scores what it memorised, not what it learned"))

NEAR_DUPLICATE_ROW = register(Rule("TP406", "near-duplicate-row", WARNING,
         "the row's prompt and answers both nearly repeat an earlier row's (MinHash estimate of the Jaccard "
         "similarity of their 3-word shingles at least --near-threshold, 0.8 by default); reported with "
         "`--near-duplicates`, exact repeats included", "`convert --dedup near` keeps the first row of each cluster", "dataset",
         why="templated and lightly edited copies are trained many times over and leak between train and test "
             "splits, where exact-duplicate checks do not see them"))
