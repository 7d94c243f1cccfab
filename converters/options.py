"""`convert`'s options as one dataclass, shared by the command line, `converters.convert` and the shard steps
(`inspector.options` says how an option declares its flag and whether `--executor` takes it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trlprep.errors import UsageError
from trlprep.inspector.methods import METHODS
from trlprep.options import NEAR_THRESHOLD, NEAR_THRESHOLDS, count, option, test_split_size, whole_from

STYLES = ("prompt_completion", "messages")
DEDUP = {None: None, False: None, True: "exact", "exact": "exact", "near": "near"}
REASONING = ("field", "inline", "drop")


@dataclass(frozen=True)
class ConvertOptions:
    """What `convert` writes and how. `to`: the TRL method; `output`: .jsonl, .parquet or a folder; `style` of SFT
    rows (prompt_completion or messages); `conversational` wraps standard rows as messages; `rename` (`--map`) and
    `roles` map columns and roles; `system` / `drop_system` set or drop system messages; `dedup` rejects repeats
    ("exact" TP401, or "near" TP406 at `near_threshold`); `fix_text` repairs mojibake and control characters
    (TP210, TP212); `reasoning` writes reasoning traces "field" (`reasoning_content`), "inline" (`<think>` opening
    the content) or "drop"s them, and by default leaves them as they came unless `model` is given, whose chat
    template's form it then writes (`reasoning_from_model` says so); `drop_cut_off` rejects cut-off answers (TP214); `drop_contaminated` rejects rows sharing
    13-word n-grams with an `against` set (TP405); `shuffle` with `seed`; `test_size` also writes a test split (a
    fraction, or a row count); `limit` reads the first N rows; `dry_run` writes nothing; `strict` refuses any
    rejected row; `push_to_hub` uploads with a dataset card; `html` writes the output's page; `encoding`: the text
    encoding of the dataset's JSON and CSV files (None: UTF-8)."""

    to: str = option(None, flag="--to", shards=True)
    output: str | Path | None = option(None, flag="--output", shards=True)
    style: str = option("prompt_completion", flag="--style", shards=True)
    conversational: bool = option(False, flag="--conversational", shards=True)
    rename: tuple[str, ...] | dict | None = option(None, flag="--map")
    roles: tuple[str, ...] | dict | None = option(None, flag="--roles")
    system: str | None = option(None, flag="--system", shards=True)
    drop_system: bool = option(False, flag="--drop-system", shards=True)
    dedup: bool | str | None = option(None, flag="--dedup")
    near_threshold: float = option(NEAR_THRESHOLD, flag="--near-threshold", value=NEAR_THRESHOLDS)
    fix_text: bool = option(False, flag="--fix-text", shards=True)
    reasoning: str | None = option(None, flag="--reasoning", shards=True)
    model: str | None = option(None, flag="--model", shards=True)
    reasoning_from_model: bool = option(False, flag=None, shards=True)
    drop_cut_off: bool = option(False, flag="--drop-cut-off")
    against: tuple[Any, ...] = option((), flag="--against")
    drop_contaminated: bool = option(False, flag="--drop-contaminated")
    shuffle: bool = option(False, flag="--shuffle")
    seed: int = option(42, flag="--seed", shards=True, value=whole_from(0))
    test_size: float | None = option(None, flag="--test-size", value=test_split_size)
    limit: int | None = option(None, flag="--limit", value=count)
    dry_run: bool = option(False, flag="--dry-run")
    overwrite: bool = option(False, flag="--overwrite", shards=True)
    strict: bool = option(False, flag="--strict", shards=True)
    push_to_hub: str | None = option(None, flag="--push-to-hub")
    split: str | None = option(None, flag="--split")
    dataset_config: str | None = option(None, flag="--dataset-config")
    revision: str | None = option(None, flag="--revision")
    encoding: str | None = option(None, flag="--encoding", shards=True)
    html: str | Path | None = option(None, flag="--html")
    image_root: str | Path | None = option(None, flag="--image-root")
    decode_images: bool = option(False, flag="--decode-images")
    progress: bool = option(False, flag=None, shards=True)

    @property
    def dedup_kind(self) -> str | None:
        """`dedup` as "exact", "near" or None (True is "exact")."""
        return DEDUP.get(self.dedup, self.dedup)

    def check(self) -> None:
        """Every usage mistake, before any data is read."""
        if bool(self.against) != self.drop_contaminated:
            raise UsageError("--against and --drop-contaminated go together: the evaluation sets, and what to do "
                             "with the rows that share n-grams with them")
        if self.system is not None and self.drop_system:
            raise UsageError("--system and --drop-system contradict each other: --system sets every conversation's "
                             "system message, --drop-system removes them all; give one")
        if self.dedup_kind not in (None, "exact", "near"):
            raise UsageError(f"--dedup {self.dedup!r}: choose exact or near")
        if self.to is None:
            raise UsageError("--to is required: the TRL method the data is for")
        if self.to not in METHODS:
            raise UsageError(f"unknown method {self.to!r}; choose one of {', '.join(METHODS)}")
        if self.reasoning not in (None, *REASONING):
            raise UsageError(f"--reasoning {self.reasoning!r}: choose field, inline or drop")
        if self.style not in STYLES:
            raise UsageError(f"--style {self.style!r}: choose prompt_completion or messages")
