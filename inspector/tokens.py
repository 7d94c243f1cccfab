"""The data against a model's tokenizer and chat template, before any training: token lengths, what each
trainer would truncate or drop, and template problems that silently ruin a run (prompt tokens trained, an
end-of-turn never learned, a role the template drops).

Imports transformers (not torch) and only when `inspect --model` asks for it.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from trlprep.inspector.checks import check_row
from trlprep.inspector.dialects import Shape, classify_row, shape_key, shared_prompt_length
from trlprep.inspector.profile import histogram
from trlprep.inspector.scan import most_common_shape
from trlprep.inspector.sources import row_value
from trlprep.inspector.rules.tokens import DOUBLE_BOS, NO_CHAT_TEMPLATE, NO_GENERATION_MARKERS, OVER_MAX_LENGTH, PROMPT_NOT_TOKEN_PREFIX, SPECIAL_TOKEN_IN_CONTENT, STOP_TOKEN_NOT_TRAINED, TEMPLATE_DROPS_ROLE, TEMPLATE_RENDER_FAILURE

TRL_MAX_LENGTH = 1024  # SFT, DPO, KTO and Reward configs default to it (TRL 1.x)
BATCH_ROWS = 256
PARALLEL_FROM_ROWS = 4000  # below this, starting worker processes costs more than it saves
GENERATION_MARKER = re.compile(r"{%-?\s*generation\s*-?%}")


def load_tokenizer(model: str):
    """A tokenizer from a local folder (offline) or a Hub id (a clear error when the Hub is unreachable)."""
    from trlprep.inspector.sources import SourceError, hub_unreachable_reason

    if not os.path.isdir(model):
        reason = hub_unreachable_reason()
        if reason:
            raise SourceError(f"--model {model}: no such folder, and {reason}")
    from transformers import AutoTokenizer
    from transformers.utils import logging

    logging.set_verbosity_error()
    try:
        return AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError) as error:
        raise SourceError(f"--model {model}: cannot load a tokenizer ({str(error).splitlines()[0]})") from None


def special_strings(tokenizer) -> list[str]:
    """Every special or added token string the tokenizer knows (<|im_start|>, <s>, ...)."""
    added = [t.content for t in getattr(tokenizer, "added_tokens_decoder", {}).values()]
    return sorted({s for s in list(tokenizer.all_special_tokens) + added if s and len(s) > 1}, key=len, reverse=True)


@dataclass
class RowTokens:
    """Token counts of one row: prompt, completion (the longest side for pairs) and total; the trained span."""

    prompt: int
    completion: int
    total: int
    pair_total: int  # the longer of prompt+chosen / prompt+rejected for pairs; total otherwise
    first_trained: int | None  # index of the first trained token, None if nothing is trained
    issues: list[tuple[str, str]] = field(default_factory=list)


def _render(tokenizer, messages, *, generation_prompt=False, continue_final=False, tools=None,
            masks=False) -> dict:
    return tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                         add_generation_prompt=generation_prompt,
                                         continue_final_message=continue_final, tools=tools,
                                         return_assistant_tokens_mask=masks)


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text)["input_ids"]


def _prompt_and_full(tokenizer, prompt, completion, tools, has_markers) -> tuple[list[int], list[int], list[int]]:
    """(prompt ids, prompt+completion ids, trained mask) under the chat template, or plain text + EOS."""
    if isinstance(prompt, list):
        prompt_ids = _render(tokenizer, prompt, generation_prompt=prompt[-1].get("role") != "assistant",
                             continue_final=prompt[-1].get("role") == "assistant", tools=tools)["input_ids"]
        full = _render(tokenizer, prompt + completion, tools=tools, masks=has_markers)
        full_ids = full["input_ids"]
        mask = [0] * len(prompt_ids) + [1] * (len(full_ids) - len(prompt_ids))
        return prompt_ids, full_ids, mask
    prompt_ids = _ids(tokenizer, prompt)
    full_ids = _ids(tokenizer, prompt + completion) + ([tokenizer.eos_token_id] if tokenizer.eos_token_id is not None
                                                        else [])
    return prompt_ids, full_ids, [0] * len(prompt_ids) + [1] * (len(full_ids) - len(prompt_ids))


def analyse_row(tokenizer, trl_row: dict, data_type: str, *, implicit: bool, has_markers: bool,
                specials: list[str]) -> RowTokens:
    """Token counts and template findings for one row already read as its TRL type."""
    issues: list[tuple[str, str]] = []
    tools = trl_row.get("tools")
    for text in _texts(trl_row):
        hit = next((s for s in specials if s in text), None)
        if hit:
            issues.append((SPECIAL_TOKEN_IN_CONTENT.id, f"content holds the special token string {hit!r}"))
            break
    if data_type == "language_modeling":
        value = trl_row.get("messages", trl_row.get("text"))
        if isinstance(value, list):
            rendered = _render(tokenizer, value, tools=tools, masks=has_markers)
            ids = rendered["input_ids"]
            mask = rendered.get("assistant_masks") if has_markers else [1] * len(ids)
        else:
            ids = _ids(tokenizer, value) + [tokenizer.eos_token_id]
            mask = [1] * len(ids)
        first = next((i for i, m in enumerate(mask) if m), None)
        trained = sum(mask)
        issues += _stop_token_issues(tokenizer, ids, mask, conversational=isinstance(value, list))
        issues += _bos_issues(tokenizer, ids)
        return RowTokens(len(ids) - trained, trained, len(ids), len(ids), first, issues)
    if data_type == "prompt_only":
        prompt = trl_row["prompt"]
        ids = (_render(tokenizer, prompt, generation_prompt=True, tools=tools)["input_ids"]
               if isinstance(prompt, list) else _ids(tokenizer, prompt))
        return RowTokens(len(ids), 0, len(ids), len(ids), None, issues + _bos_issues(tokenizer, ids))
    if data_type == "preference":
        chosen, rejected = trl_row["chosen"], trl_row["rejected"]
        prompt = trl_row.get("prompt")
        if implicit:
            cut = shared_prompt_length(chosen, rejected)
            prompt, chosen, rejected = chosen[:cut], chosen[cut:], rejected[cut:]
        sides = [chosen, rejected]
    else:  # prompt_completion, unpaired_preference
        prompt, sides = trl_row["prompt"], [trl_row["completion"]]
    totals, completions, first = [], [], None
    prompt_length = 0
    for side in sides:
        prompt_ids, full_ids, mask = _prompt_and_full(tokenizer, prompt, side, tools, has_markers)
        prompt_length = len(prompt_ids)
        if full_ids[:len(prompt_ids)] != prompt_ids:
            issues.append((PROMPT_NOT_TOKEN_PREFIX.id, "the tokenized prompt is not a prefix of the tokenized prompt+completion"))
        issues += _stop_token_issues(tokenizer, full_ids, mask, conversational=isinstance(prompt, list))
        issues += _bos_issues(tokenizer, full_ids)
        totals.append(len(full_ids))
        completions.append(len(full_ids) - len(prompt_ids))
        first = len(prompt_ids)
    return RowTokens(prompt_length, max(completions), max(totals), max(totals), first, _unique(issues))


def _unique(issues: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(issues))


def _texts(trl_row: dict) -> Iterator[str]:
    for value in trl_row.values():
        if isinstance(value, str):
            yield value
        elif isinstance(value, list):
            for message in value:
                if isinstance(message, dict) and isinstance(message.get("content"), str):
                    yield message["content"]


def _stop_token_issues(tokenizer, ids: list[int], mask: list[int], conversational: bool) -> list[tuple[str, str]]:
    """The end-of-turn (EOS) token must be trained, or the model never learns to stop."""
    eos = tokenizer.eos_token_id
    if eos is None or not any(mask):
        return []
    trained = [token for token, m in zip(ids, mask) if m]
    if eos not in trained:
        where = "the chat template's assistant span" if conversational else "the completion"
        return [(STOP_TOKEN_NOT_TRAINED.id, f"the end-of-turn token {tokenizer.eos_token!r} is not in {where}, so it is never "
                          f"trained and the model may not learn to stop")]
    return []


def _bos_issues(tokenizer, ids: list[int]) -> list[tuple[str, str]]:
    bos = tokenizer.bos_token_id
    if bos is not None and len(ids) > 1 and ids[0] == bos and ids[1] == bos:
        return [(DOUBLE_BOS.id, f"the row starts with {tokenizer.bos_token!r} twice (template and tokenizer both add it)")]
    return []


def percentile(values: list[int], q: float) -> int:
    """Nearest-rank percentile.

    >>> percentile([1, 2, 3, 4, 100], 50), percentile([1, 2, 3, 4, 100], 99)
    (3, 100)
    """
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def recommend(p99: int) -> int:
    """A max_length that keeps 99% of rows whole: p99 rounded up to a multiple of 64.

    >>> recommend(300), recommend(1024)
    (320, 1024)
    """
    return max(64, math.ceil(p99 / 64) * 64)


# --- Running it over a dataset -------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(model: str) -> None:
    _WORKER["tokenizer"] = load_tokenizer(model)


def _analyse_batch(args: tuple) -> list[tuple[int, RowTokens | tuple[str, str]]]:
    rows, data_type, implicit, has_markers, tokenizer = args
    tokenizer = tokenizer or _WORKER["tokenizer"]
    specials = special_strings(tokenizer)
    out = []
    for number, trl_row in rows:
        try:
            out.append((number, analyse_row(tokenizer, trl_row, data_type, implicit=implicit,
                                            has_markers=has_markers, specials=specials)))
        except Exception as error:  # the template's own error is the finding
            text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            out.append((number, (TEMPLATE_RENDER_FAILURE.id, f"the chat template fails on this row: {text}")))
    return out


@dataclass
class TokenReport:
    max_length: int
    rows: int
    p50: int
    p95: int
    p99: int
    max: int
    over_max_length: int
    recommended_max_length: int
    prompt: dict
    completion: dict
    total: dict
    trainer_effects: dict
    template: dict
    histogram: dict = field(default_factory=dict)  # tokens per row, binned (`inspector.profile.histogram`)
    previews: list[dict] = field(default_factory=list)  # --show-masks; the report carries them on its own

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "previews"}


def _stats(values: list[int]) -> dict:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "p99": percentile(values, 99),
            "max": max(values, default=0)}


def trainer_effects(counts: list[RowTokens], max_length: int) -> dict:
    """What each trainer does to these rows at this max_length (TRL 1.x, keep_start truncation)."""
    over = sum(1 for c in counts if c.total > max_length)
    prompt_fills = sum(1 for c in counts if c.prompt >= max_length)
    no_trained = sum(1 for c in counts if c.first_trained is None or c.first_trained >= max_length)
    pairs_over = sum(1 for c in counts if c.pair_total > max_length)
    return {
        "sft": {"truncated": over, "dropped": no_trained,
                "note": "truncates rows over max_length and drops rows left with no trained token"},
        "dpo": {"truncated": over - prompt_fills, "dropped": prompt_fills,
                "note": "drops rows whose prompt alone fills max_length, truncates the rest"},
        "kto": {"truncated": over - prompt_fills, "dropped": prompt_fills,
                "note": "drops rows whose prompt alone fills max_length, truncates the rest"},
        "reward": {"truncated": 0, "dropped": pairs_over, "note": "drops pairs longer than max_length"},
        "grpo": {"truncated": 0, "dropped": 0, "note": "uses prompts as they are; completions are generated"},
    }


def readable_rows(rows: Iterable[tuple[int, Any]]) -> tuple[Shape | None, list[tuple[int, dict]]]:
    """The dataset's shape and its rows of that shape read as their TRL type, from raw source rows.

    Unreadable rows, rows of another shape and rows the structural checks block are left out: the scan has
    reported them, and tokenizing them would only blame the template for the data.
    """
    numbered = [(number, row_value(value)) for number, value in rows]
    shapes = [classify_row(value) for _, value in numbered]
    shape = most_common_shape(shapes)
    if shape is None:
        return None, []
    key = shape_key(shape)
    readable = []
    for (number, value), row_shape in zip(numbered, shapes):
        if row_shape is not None and shape_key(row_shape) == key:
            trl_row = check_row(value, row_shape)[1]
            if trl_row is not None:
                readable.append((number, trl_row))
    return shape, readable


def token_preflight(rows: Iterable[tuple[int, Any]], *, model: str, tokenizer=None, max_length: int | None = None,
                    collect=None, workers: int | None = None, show_masks: int = 0,
                    mask_color: bool = False) -> TokenReport:
    """Tokenize every row (in batches, over both cores when the data is large) and summarise.

    `rows` are `(row number, raw row)` pairs as a source yields them; `collect(rule, row, detail)` receives each
    finding; the first `show_masks` rows come back in `previews`, trained tokens marked.
    """
    tokenizer = tokenizer or load_tokenizer(model)
    collect = collect or (lambda rule, row, detail: None)
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
    shape, readable = readable_rows(rows)
    previews = [{"row": number, "text": mask_preview(tokenizer, trl_row, shape.type, color=mask_color)}
                for number, trl_row in readable[:show_masks]]
    conversational = bool(shape and shape.format == "conversational")
    has_markers = bool(template and GENERATION_MARKER.search(template))
    template_info = {"has_chat_template": template is not None, "generation_markers": has_markers}
    if conversational and template is None:
        collect(NO_CHAT_TEMPLATE.id, None, "the tokenizer has no chat template, and the data is conversational")
        readable = []
    if conversational and template is not None:
        template_info.update(_probe_roles(tokenizer, collect))
        if not has_markers:
            collect(NO_GENERATION_MARKERS.id, None, "the chat template has no {% generation %} markers, so assistant_only_loss is "
                                   "impossible; use a training template (TRL's get_training_chat_template, or "
                                   "--set chat_template_path=<template with markers>)")
    data_type = shape.type if shape else "unknown"
    implicit = bool(shape and shape.implicit_prompt)
    batches = [readable[i:i + BATCH_ROWS] for i in range(0, len(readable), BATCH_ROWS)]
    workers = workers or (min(2, os.cpu_count() or 1) if len(readable) >= PARALLEL_FROM_ROWS else 1)
    if workers > 1:
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(model,)) as pool:
            results = pool.map(_analyse_batch, [(b, data_type, implicit, has_markers, None) for b in batches])
            analysed = [item for batch in results for item in batch]
    else:
        analysed = [item for b in batches
                    for item in _analyse_batch((b, data_type, implicit, has_markers, tokenizer))]
    limit = max_length or TRL_MAX_LENGTH
    counts = []
    for number, outcome in analysed:
        if isinstance(outcome, tuple):
            collect(outcome[0], number, outcome[1])
            continue
        counts.append(outcome)
        for rule, detail in outcome.issues:
            collect(rule, number, detail)
        if outcome.total > limit:
            collect(OVER_MAX_LENGTH.id, number, f"{outcome.total} tokens, over max_length={limit}")
    totals = [c.total for c in counts]
    total_stats = _stats(totals)
    return TokenReport(
        max_length=limit, rows=len(counts), **total_stats,
        over_max_length=sum(1 for t in totals if t > limit),
        recommended_max_length=recommend(total_stats["p99"]),
        prompt=_stats([c.prompt for c in counts]), completion=_stats([c.completion for c in counts]),
        total=total_stats, trainer_effects=trainer_effects(counts, limit), template=template_info,
        histogram=histogram(totals), previews=previews)


def _probe_roles(tokenizer, collect) -> dict:
    """Render probe conversations: does the template keep a system message, accept a tool message?"""
    user = {"role": "user", "content": "probe question"}
    system = {"role": "system", "content": "probe system sentinel"}
    info = {}
    try:
        with_system = tokenizer.apply_chat_template([system, user], tokenize=False)
        info["system_role"] = "kept" if "probe system sentinel" in with_system else "ignored"
        if info["system_role"] == "ignored":
            collect(TEMPLATE_DROPS_ROLE.id, None, "the chat template drops the system message")
    except Exception as error:  # a template that raises on a role rejects it
        info["system_role"] = "rejected"
        collect(TEMPLATE_DROPS_ROLE.id, None, f"the chat template rejects a system message ({str(error).splitlines()[0]})")
    return info


def mask_preview(tokenizer, trl_row: dict, data_type: str, *, color: bool) -> str:
    """A row token by token, trained tokens marked: green on a terminal, [[brackets]] when piped."""
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else ""
    has_markers = bool(GENERATION_MARKER.search(template or ""))
    if data_type == "language_modeling" and isinstance(trl_row.get("messages"), list):
        rendered = _render(tokenizer, trl_row["messages"], masks=has_markers)
        ids = rendered["input_ids"]
        mask = rendered["assistant_masks"] if has_markers else [1] * len(ids)
    elif data_type == "language_modeling":
        ids = _ids(tokenizer, trl_row["text"]) + [tokenizer.eos_token_id]
        mask = [1] * len(ids)
    else:
        prompt = trl_row.get("prompt")
        side = trl_row.get("completion", trl_row.get("chosen"))
        if prompt is None:
            cut = shared_prompt_length(trl_row["chosen"], trl_row["rejected"])
            prompt, side = trl_row["chosen"][:cut], trl_row["chosen"][cut:]
        if side is None:
            ids = (_render(tokenizer, prompt, generation_prompt=True)["input_ids"] if isinstance(prompt, list)
                   else _ids(tokenizer, prompt))
            mask = [0] * len(ids)
        else:
            _, ids, mask = _prompt_and_full(tokenizer, prompt, side, trl_row.get("tools"), has_markers)
    pieces = []
    for trained, run in itertools.groupby(zip(ids, mask), key=lambda pair: bool(pair[1])):
        text = tokenizer.decode([token for token, _ in run])
        if trained:
            text = f"\x1b[42;30m{text}\x1b[0m" if color else f"[[{text}]]"
        pieces.append(text)
    return "".join(pieces)
