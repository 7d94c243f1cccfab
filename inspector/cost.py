"""What an SFT run will cost, before any GPU time: the sequences TRL 1.16's SFTTrainer makes of the rows (packed
or not), the optimizer steps transformers' Trainer takes over them, and the tokens it trains.

Pure: each row's token count and trained spans in (`inspector.tokens` measures them with `--model`), counts out.
It imports no torch, trl or datasets, and reproduces what they do:

- without packing, SFT truncates each row to `max_length` and drops the rows left with no trained token
  (`SFTTrainer._prepare_dataset`);
- with packing there is no truncation step and no drop: `trl.pack_dataset` runs inside `datasets.map(batched=True)`,
  so each batch of 1000 rows (per process with `dataset_num_proc`) is packed on its own, after a shuffle when
  `shuffle_dataset` is set. `bfd` truncates each row to `max_length` and packs best-fit-decreasing; `bfd_split` splits
  the overflow into fragments that are packed too; `wrapped` concatenates the batch and cuts it every `max_length`;
- the steps are transformers' `Trainer`'s: batches per device, `len(get_train_dataloader())`, then
  `num_update_steps_per_epoch = max(ceil(batches / gradient_accumulation_steps), 1)`.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

PACKING_STRATEGIES = ("bfd", "bfd_split", "wrapped")
MAP_BATCH_ROWS = 1000  # datasets' `Dataset.map` batch_size: TRL packs each such batch on its own
# The data types SFTTrainer takes as they are (trlprep reads other dialects as one of these).
SFT_TYPES = ("language_modeling", "prompt_completion")

Span = tuple[int, int]


@dataclass(frozen=True)
class RunShape:
    """The settings that decide a run's cost, named and defaulted as in TRL 1.16's SFTConfig and transformers'
    TrainingArguments (`from_settings` reads them from a run's config keywords). `packing` is the strategy, or
    None without packing; `devices` the data-parallel processes (or DataParallel GPUs)."""

    max_length: int | None = 1024
    packing: str | None = None
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    devices: int = 1
    dataloader_drop_last: bool = False
    shuffle_dataset: bool = False
    seed: int = 42
    dataset_num_proc: int | None = None
    padding_free: bool = False
    completion_only_loss: bool | None = None
    assistant_only_loss: bool = False
    num_train_epochs: float = 3.0
    max_steps: int = -1
    # A trainer that generates (GRPO, RLOO): completions per prompt, batches a generation serves, its reuses.
    num_generations: int | None = None
    steps_per_generation: int | None = None
    num_iterations: int = 1

    @classmethod
    def from_settings(cls, settings: dict[str, Any], devices: int = 1) -> RunShape:
        """The shape of a run from its TRL config keywords (unset ones take TRL's defaults).

        >>> shape = RunShape.from_settings({"packing": True, "per_device_train_batch_size": 2, "output_dir": "x"})
        >>> shape.packing, shape.per_device_train_batch_size, shape.max_length
        ('bfd', 2, 1024)
        """
        known = {name: settings[name] for name in cls.__dataclass_fields__ if name in settings and name != "packing"}
        packing = settings.get("packing_strategy", "bfd") if settings.get("packing") else None
        return cls(**known, packing=packing, devices=devices)


def map_batches(rows: int, processes: int | None = None, batch_rows: int = MAP_BATCH_ROWS) -> list[range]:
    """The row ranges `datasets.Dataset.map(batched=True, num_proc=processes)` hands to its function: contiguous
    shards, one per process (`Dataset.shard(contiguous=True)`), each cut into batches of `batch_rows`.

    >>> map_batches(2500)
    [range(0, 1000), range(1000, 2000), range(2000, 2500)]
    >>> map_batches(2500, processes=2)
    [range(0, 1000), range(1000, 1250), range(1250, 2250), range(2250, 2500)]
    """
    processes = min(processes or 1, rows) or 1
    size, extra = divmod(rows, processes)
    batches = []
    for index in range(processes):
        start = size * index + min(index, extra)
        end = start + size + (1 if index < extra else 0)
        batches += [range(at, min(at + batch_rows, end)) for at in range(start, end, batch_rows)]
    return batches


def shuffled_order(rows: int, seed: int) -> list[int]:
    """The row order of `datasets.Dataset.shuffle(seed=seed)`: numpy's default_rng(seed).permutation.

    >>> shuffled_order(5, seed=42)
    [4, 2, 3, 1, 0]
    """
    import numpy as np  # only a shuffled run needs it

    return np.random.default_rng(seed).permutation(rows).tolist()


def pack_bfd(lengths: Iterable[int], max_length: int, *, split: bool = False) -> list[int]:
    """The lengths of the sequences TRL's `_pack_bfd` makes of one batch of rows of these lengths, in its order:
    empty rows left out, each row truncated to `max_length` (or, with `split`, cut into `max_length` fragments and a
    shorter last one), then longest first, each into the fullest sequence it fits (a new one when none).

    TRL's own example (`pack_dataset` of rows of 5, 2, 3 and 1 tokens at 4):

    >>> pack_bfd([5, 2, 3, 1], 4), pack_bfd([5, 2, 3, 1], 4, split=True)
    ([4, 4, 2], [4, 4, 3])
    """
    pieces = []
    for length in lengths:
        if length <= 0:
            continue
        whole = (length - 1) // max_length if split else 0
        pieces += [max_length] * whole + [min(length - whole * max_length, max_length)]
    pieces.sort(reverse=True)
    filled: list[int] = []  # each sequence's tokens, in the order TRL opens them
    spaces: list[int] = []  # the distinct free spaces of sequences not yet full, sorted
    by_space: dict[int, deque] = defaultdict(deque)  # free space -> its sequences, first opened first
    for piece in pieces:
        at = bisect_left(spaces, piece)
        if at < len(spaces):  # the smallest free space that holds the piece
            space = spaces[at]
            sequence = by_space[space].popleft()
            if not by_space[space]:
                del spaces[at]
        else:
            space, sequence = max_length, len(filled)
            filled.append(0)
        filled[sequence] += piece
        left = space - piece
        if left > 0:
            if not by_space[left]:
                insort(spaces, left)
            by_space[left].append(sequence)
    return filled


def pack_wrapped(lengths: Iterable[int], max_length: int) -> list[int]:
    """The lengths of the sequences TRL's `_pack_wrapped` makes of one batch: its rows end to end, cut every
    `max_length` tokens, the last sequence holding what is left.

    >>> pack_wrapped([5, 2, 3, 1], 4)
    [4, 4, 3]
    """
    tokens = sum(lengths)
    return [max_length] * (tokens // max_length) + ([tokens % max_length] if tokens % max_length else [])


def packed_lengths(lengths: Sequence[int], max_length: int, strategy: str, *, shuffle: bool = False,
                   seed: int = 42, processes: int | None = None) -> list[int]:
    """The lengths of the sequences `SFTTrainer` packs rows of these lengths into: shuffled first when `shuffle`
    (`shuffle_dataset`), packed per `map` batch.

    1001 one-token rows fill two sequences, not one: the 1001st row is in a map batch of its own.

    >>> packed_lengths([1] * 1001, 1024, "bfd"), packed_lengths([1] * 1001, 1024, "wrapped")
    ([1000, 1], [1000, 1])
    """
    if strategy not in PACKING_STRATEGIES:
        raise ValueError(f"unknown packing strategy {strategy!r}; choose one of {', '.join(PACKING_STRATEGIES)}")
    order = shuffled_order(len(lengths), seed) if shuffle else range(len(lengths))
    ordered = [lengths[i] for i in order]
    sequences = []
    for batch in map_batches(len(ordered), processes):
        rows = ordered[batch.start:batch.stop]
        sequences += (pack_wrapped(rows, max_length) if strategy == "wrapped"
                      else pack_bfd(rows, max_length, split=strategy == "bfd_split"))
    return sequences


def trained_before(spans: Iterable[Span], limit: float) -> int:
    """The trained tokens of a row (its `(start, end)` spans) before token `limit`.

    >>> trained_before([(2, 5), (8, 12)], 10), trained_before([(2, 5)], math.inf)
    (5, 3)
    """
    return sum(max(0, min(end, limit) - start) for start, end in spans)


def steps_per_epoch(sequences: int, shape: RunShape) -> tuple[int, int]:
    """(batches each device reads, optimizer steps) per epoch over `sequences` training examples, as transformers'
    Trainer counts them: torch's batch sampler, accelerate's shard of it per process (`even_batches`), then
    `max(ceil(batches / gradient_accumulation_steps), 1)`.

    >>> steps_per_epoch(1319, RunShape(per_device_train_batch_size=8, gradient_accumulation_steps=4, devices=2))
    (83, 21)
    >>> steps_per_epoch(1319, RunShape(per_device_train_batch_size=8, devices=2, dataloader_drop_last=True))
    (82, 82)
    """
    per_step = shape.per_device_train_batch_size * shape.devices
    batches = sequences // per_step if shape.dataloader_drop_last else math.ceil(sequences / per_step)
    return batches, max(math.ceil(batches / shape.gradient_accumulation_steps), 1)


def total_steps(per_epoch: int, shape: RunShape) -> int:
    """The run's optimizer steps: `max_steps` when set, else `ceil(num_train_epochs * steps per epoch)`.

    >>> total_steps(21, RunShape()), total_steps(21, RunShape(max_steps=5))
    (63, 5)
    """
    return shape.max_steps if shape.max_steps > 0 else math.ceil(shape.num_train_epochs * per_epoch)


def trains_whole_rows(data_type: str, shape: RunShape) -> bool:
    """Whether SFT trains every token of a row (its labels are its input ids): language modeling without
    `assistant_only_loss`, or prompt-completion with `completion_only_loss=False`.

    >>> trains_whole_rows("language_modeling", RunShape()), trains_whole_rows("prompt_completion", RunShape())
    (True, False)
    """
    if data_type == "language_modeling":
        return not shape.assistant_only_loss
    return shape.completion_only_loss is False


def cost_warnings(shape: RunShape, *, vision: bool) -> list[str]:
    """What TRL refuses or gets wrong with these settings, before it shows at training time.

    >>> cost_warnings(RunShape(packing="wrapped"), vision=False)[0][:48]
    'packing_strategy=wrapped: rows are cut mid-way a'
    """
    warnings = []
    if vision and shape.packing:
        warnings.append("packing on image data: SFTTrainer refuses it (\"Packing is not supported for vision "
                        "datasets\"); the cost is counted without packing")
    elif shape.packing and shape.max_length is None:
        warnings.append("packing without max_length: SFTTrainer refuses it (\"When packing is enabled, `max_length` "
                        "can't be `None`\"); the cost is counted without packing")
    elif shape.packing == "wrapped" and not shape.padding_free:
        warnings.append("packing_strategy=wrapped: rows are cut mid-way and each row attends to the rows packed "
                        "before it (no padding-free attention, which bfd and bfd_split turn on)")
    return warnings


def sft_cost(rows: Sequence[tuple[int, Sequence[Span]]], data_type: str, shape: RunShape, *,
             vision: bool = False) -> dict:
    """What SFT makes of rows given as (tokens, trained spans): sequences, tokens cut, tokens trained, rows that
    train nothing, steps. Image rows are not prepared by TRL (its collator cuts each batch, nothing is dropped).

    >>> cost = sft_cost([(5, [(2, 5)]), (2, [(1, 2)]), (3, [(1, 3)]), (1, [(0, 1)])], "prompt_completion",
    ...                 RunShape(max_length=4, packing="bfd", per_device_train_batch_size=2))
    >>> {key: cost[key] for key in ("sequences", "fill", "tokens", "tokens_cut", "trained_tokens", "steps_per_epoch")}
    {'sequences': 3, 'fill': 0.833, 'tokens': 10, 'tokens_cut': 1, 'trained_tokens': 6, 'steps_per_epoch': 2}
    """
    warnings = cost_warnings(shape, vision=vision)
    packing = shape.packing if shape.packing and not vision and shape.max_length is not None else None
    # bfd and plain SFT keep each row's first max_length tokens; bfd_split and wrapped keep every token.
    keeps_all = packing in ("bfd_split", "wrapped") or shape.max_length is None
    limit = math.inf if keeps_all else shape.max_length
    whole = trains_whole_rows(data_type, shape)
    lengths = [length for length, _ in rows]
    trained = [min(length, limit) if whole else trained_before(spans, limit) for length, spans in rows]
    untrained = sum(1 for count in trained if count == 0)
    kept = [min(length, limit) for length, count in zip(lengths, trained) if packing or vision or count]
    sequences = packed_lengths(lengths, shape.max_length, packing, shuffle=shape.shuffle_dataset, seed=shape.seed,
                               processes=shape.dataset_num_proc) if packing else kept
    tokens = sum(sequences)
    return {
        "method": "sft", "packing": packing, "max_length": shape.max_length, "rows": len(rows),
        "sequences": len(sequences),
        "fill": round(tokens / (len(sequences) * shape.max_length), 3) if packing and sequences else None,
        "tokens": tokens, "tokens_cut": sum(lengths) - sum(min(length, limit) for length in lengths),
        "trained_tokens": sum(trained), "rows_without_trained_tokens": untrained,
        # Packed or image rows that train nothing still take their place; plain SFT drops them.
        "rows_dropped": 0 if packing or vision else untrained,
        **step_counts(len(sequences), shape), "warnings": warnings,
    }


def generation_step_counts(prompts: int, shape: RunShape) -> dict:
    """The step fields of a trainer that generates `num_generations` completions per prompt (GRPO, RLOO), as
    its `RepeatSampler` and dataloader make them: a generation serves `steps_per_generation` batches of
    `per_device_train_batch_size` completions on each device, so it takes `batch x devices x steps_per_generation /
    num_generations` prompts, and the prompts left over for a whole generation are never drawn in the epoch.

    >>> counts = generation_step_counts(25, RunShape(per_device_train_batch_size=8, num_generations=8))
    >>> counts["prompts_unused"], counts["batches_per_epoch"], counts["steps_per_epoch"]
    (0, 25, 25)
    >>> generation_step_counts(24, RunShape(per_device_train_batch_size=8, gradient_accumulation_steps=2,
    ...                                     num_generations=4))["steps_per_epoch"]
    6
    """
    per_generation = shape.steps_per_generation or shape.gradient_accumulation_steps
    completions = shape.per_device_train_batch_size * shape.devices * per_generation
    prompts_per_generation = completions // shape.num_generations
    generations = prompts // prompts_per_generation
    batches = generations * per_generation * shape.num_iterations
    per_epoch = max(math.ceil(batches / shape.gradient_accumulation_steps), 1)
    return {"per_device_train_batch_size": shape.per_device_train_batch_size,
            "gradient_accumulation_steps": shape.gradient_accumulation_steps, "devices": shape.devices,
            "num_generations": shape.num_generations, "prompts_unused": prompts - generations * prompts_per_generation, "batches_per_epoch": batches,
            "steps_per_epoch": per_epoch, "steps": total_steps(per_epoch, shape)}


def step_counts(sequences: int, shape: RunShape) -> dict:
    """The cost's step fields for `sequences` training examples: the batch settings, the batches each device reads
    and the optimizer steps, per epoch and in all.

    >>> step_counts(100, RunShape(devices=2))
    {'per_device_train_batch_size': 8, 'gradient_accumulation_steps': 1, 'devices': 2, 'batches_per_epoch': 7, 'steps_per_epoch': 7, 'steps': 21}
    """
    batches, per_epoch = steps_per_epoch(sequences, shape)
    return {"per_device_train_batch_size": shape.per_device_train_batch_size,
            "gradient_accumulation_steps": shape.gradient_accumulation_steps, "devices": shape.devices,
            "batches_per_epoch": batches, "steps_per_epoch": per_epoch, "steps": total_steps(per_epoch, shape)}



def run_cost(method: str, preflight: dict, shape: RunShape) -> dict | None:
    """What a run of `method` costs under `shape`, from the token preflight of its data (`TokenReport.to_dict`):
    SFT's sequences (packed or not) and steps; the rows a pair or label trainer keeps at max_length and its steps; the
    prompts a generating trainer draws and its steps. None for a trainer whose steps trlprep has not held to its
    own (`Method.steps`).

    >>> preflight = {"rows": 20, "trainer_effects": {"dpo": {"dropped": 4}}}
    >>> run_cost("dpo", preflight, RunShape(per_device_train_batch_size=8))["steps_per_epoch"]
    2
    """
    from trlprep.inspector.methods import METHOD

    entry = METHOD[method]
    if entry.steps == "sft" and preflight.get("cost"):
        return {**preflight["cost"], **step_counts(preflight["cost"]["sequences"], shape)}
    kept = preflight["rows"] - preflight["trainer_effects"][entry.effect_key]["dropped"]
    if entry.steps == "rows":
        return {"method": method, "rows": kept, **step_counts(kept, shape)}
    if entry.steps == "generations" and shape.num_generations:
        return {"method": method, "prompts": kept, **generation_step_counts(kept, shape)}
    return None
