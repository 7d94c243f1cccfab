"""`inspect`'s options as one dataclass, shared by the command line, `inspect_dataset` and the shard steps
(`trlprep.options` says how an option declares its flag and whether `--executor` takes it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trlprep.options import NEAR_THRESHOLD, NEAR_THRESHOLDS, count, option, whole_from


@dataclass(frozen=True)
class InspectOptions:
    """`inspect`'s options (`inspect_dataset`). `limit` checks the first N rows (`--limit`, once `--sample`);
    `rename` (`--map`) and `roles` preview the mapping `convert` would apply; `against` names evaluation sets
    (TP405); `near_duplicates` clusters near-repeats at `near_threshold` (TP406); `cut_off` finds answers a length
    cap cut (TP214); `profile` measures what the HTML page plots; `model` checks the data against a tokenizer and
    its chat template (`max_length`, `show_masks` rows drawn token by token, in colour with `mask_color`) and says
    what an SFT run costs: its sequences packed with the `packing` strategy (or not), its optimizer steps at
    `batch_size` per device, `grad_accum` steps of gradient accumulation and `devices` (TRL's defaults: 8, 1, 1);
    `workers`: processes for a large JSON-lines, Parquet or Arrow file (both cores by default); `image_root`: the
    folder image paths are relative to (the dataset file's own by default), `decode_images`: decode every image in
    full, not only its header; `encoding`: the text encoding of the dataset's JSON and CSV files (None: UTF-8);
    `severity`: rules whose severity replaces the catalog's ({id: "error" | "warning"}), and `gates`: limits the
    data must meet for `method` (`inspector.settings.Gate`), both from a config file
    (`inspector.settings.resolve_settings`)."""

    method: str | None = option(None, flag="--method", shards=True)
    split: str | None = option(None, flag="--split")
    dataset_config: str | None = option(None, flag="--dataset-config")
    revision: str | None = option(None, flag="--revision")
    encoding: str | None = option(None, flag="--encoding", shards=True)
    limit: int | None = option(None, flag="--limit", value=count)
    select: tuple[str, ...] = option((), flag="--select", shards=True)
    ignore: tuple[str, ...] = option((), flag="--ignore", shards=True)
    max_rows: int = option(5, flag="--max-rows", shards=True, value=count)
    rename: tuple[str, ...] | dict | None = option(None, flag="--map")
    roles: tuple[str, ...] | dict | None = option(None, flag="--roles")
    model: str | None = option(None, flag="--model")
    max_length: int | None = option(None, flag="--max-length", value=count)
    show_masks: int = option(0, flag="--show-masks", value=whole_from(0))
    packing: str | None = option(None, flag="--packing")
    batch_size: int = option(8, flag="--batch-size", value=count)
    grad_accum: int = option(1, flag="--grad-accum", value=count)
    devices: int = option(1, flag="--devices", value=count)
    mask_color: bool = option(False, flag=None, shards=True)
    workers: int | None = option(None, flag=None, shards=True, value=count)
    against: tuple[Any, ...] = option((), flag="--against")
    near_duplicates: bool = option(False, flag="--near-duplicates")
    near_threshold: float = option(NEAR_THRESHOLD, flag="--near-threshold", value=NEAR_THRESHOLDS)
    cut_off: bool = option(False, flag="--cut-off")
    profile: bool = option(False, flag="--html")
    overwrite: bool = option(False, flag="--overwrite", shards=True)
    image_root: str | Path | None = option(None, flag="--image-root")
    decode_images: bool = option(False, flag="--decode-images")
    progress: bool = option(False, flag=None, shards=True)
    # Applied to the report, the sharded one too, once it is built.
    severity: dict[str, str] | None = option(None, flag=None, shards=True)
    gates: tuple[Any, ...] = option((), flag=None, shards=True)
