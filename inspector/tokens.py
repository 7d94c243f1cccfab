"""The data against a model's tokenizer and chat template, before any training: token lengths, what each
trainer would truncate or drop, and template problems that silently ruin a run (prompt tokens trained, an
end-of-turn never learned, a role the template drops).

Image data is read with the model's processor, as TRL's vision collators read it: its chat template renders the
rows' image parts, and each image's placeholder counts as the tokens the processor expands it to. That count
comes from the image's size alone, read from its header (`ImageTokens`), which equals the processor's own count
on real images at a fraction of its cost (the images are never decoded).

Imports transformers (not torch) and only when `inspect --model` asks for it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from trlprep.inspector.checks import check_row
from trlprep.inspector.cost import SFT_TYPES, RunShape, sft_cost
from trlprep.inspector.dialects import Shape, classify_row, shape_key, shared_prompt_length
from trlprep.inspector.images import ImageChecker, image_source
from trlprep.inspector.profile import histogram
from trlprep.inspector.scan import most_common_shape
from trlprep.inspector.sources import row_value
from trlprep.inspector.reasoning import describe, join_trace
from trlprep.inspector.rules.reasoning import answers, holds_trace
from trlprep.inspector.rules.tokens import (DOUBLE_BOS, IMAGE_CUT_BY_MAX_LENGTH, IMAGES_NOT_RENDERED, NO_CHAT_TEMPLATE,
    NO_GENERATION_MARKERS, OVER_MAX_LENGTH, PROMPT_NOT_TOKEN_PREFIX, SPECIAL_TOKEN_IN_CONTENT, STOP_TOKEN_NOT_TRAINED,
    TEMPLATE_DROPS_REASONING, TEMPLATE_DROPS_ROLE, TEMPLATE_RENDER_FAILURE, TEMPLATE_STRIPS_EARLIER_TRACES,
    TEMPLATE_WITHOUT_TOOLS, TOOL_CALL_DOUBLE_ENCODED, TOOL_CALL_TEMPLATE_ERROR)

TRL_MAX_LENGTH = 1024  # SFT, DPO, KTO and Reward configs default to it (TRL 1.x)
BATCH_ROWS = 256
PARALLEL_FROM_ROWS = 4000  # below this, starting worker processes costs more than it saves
GENERATION_MARKER = re.compile(r"{%-?\s*generation\s*-?%}")


def load_tokenizer(model: str):
    """A tokenizer from a local folder (offline) or a Hub id (a clear error when the Hub is unreachable)."""
    from transformers import AutoTokenizer

    return _from_pretrained(AutoTokenizer, model, "a tokenizer")


def load_processor(model: str):
    """A model's processor (its tokenizer and image processor, as TRL's vision trainers load it), from a local
    folder (offline) or a Hub id. A text-only model's is its tokenizer."""
    from transformers import AutoProcessor

    return _from_pretrained(AutoProcessor, model, "a processor")


def _from_pretrained(auto_class, model: str, what: str):
    from trlprep.inspector.sources import SourceError, hub_unreachable_reason

    if not os.path.isdir(model):
        reason = hub_unreachable_reason()
        if reason:
            raise SourceError(f"--model {model}: no such folder, and {reason}")
    from transformers.utils import logging

    logging.set_verbosity_error()
    try:
        loaded = auto_class.from_pretrained(model)
    except (OSError, ValueError) as error:
        raise SourceError(f"--model {model}: cannot load {what} ({str(error).splitlines()[0]})") from None
    check_template_caps(loaded, model)
    return loaded


# --- Caps on a chat template ---------------------------------------------------------------------------------------
# A chat template is a program that a model's files bring. transformers renders it in jinja's sandbox, which stops it
# reaching Python's internals and any range() over 100,000 numbers, but not loops inside loops, nor a string
# repeated a billion times: such a template would hang the run or fill memory. So each template is first compiled
# and rendered here on probe conversations, under caps: a template that runs past TEMPLATE_SECONDS, writes more than
# TEMPLATE_CHARACTERS, or builds a string or list past that size or a number past TEMPLATE_BITS (`'x' * 10**10`,
# `10**1000000`: also when jinja would fold the constant on compiling, before any render) is refused in one line.
TEMPLATE_SECONDS = 5
TEMPLATE_CHARACTERS = 1_000_000  # a real template writes a few thousand on the probes (a long tool preamble: 30,000)
TEMPLATE_BITS = 100_000
PROBE_CONVERSATIONS = (
    [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "What is 2+2?"},
     {"role": "assistant", "content": "4"}],
    [{"role": "user", "content": "Hello?"}],
)


class TemplateOverrun(Exception):
    """A chat template went past a cap (`check_template_caps`): what it did, in words."""


def capped_binop(operator: str, left: Any, right: Any) -> Any:
    """`left operator right` as a chat template computes it, refused (TemplateOverrun) past the caps.

    >>> capped_binop("*", "ab", 3), capped_binop("**", 2, 10)
    ('ababab', 1024)
    >>> capped_binop("*", "x", 10**10)
    Traceback (most recent call last):
    trlprep.inspector.tokens.TemplateOverrun: repeats a string or list to 10,000,000,000 items (cap 1,000,000)
    """
    import operator as operators

    if operator == "*":
        sized, times = (left, right) if isinstance(right, int) else (right, left)
        if isinstance(sized, (str, list, tuple)) and isinstance(times, int) and len(sized) * times > TEMPLATE_CHARACTERS:
            raise TemplateOverrun(f"repeats a string or list to {len(sized) * times:,} items "
                                  f"(cap {TEMPLATE_CHARACTERS:,})")
    numbers = all(isinstance(value, int) and not isinstance(value, bool) for value in (left, right))
    if numbers and operator in ("*", "**"):
        bits = (left.bit_length() + right.bit_length() if operator == "*"
                else right * max(abs(left) - 1, 0).bit_length() if right > 0 else 0)
        if bits > TEMPLATE_BITS:
            raise TemplateOverrun(f"computes a number of about {bits:,} bits (cap {TEMPLATE_BITS:,})")
    return {"*": operators.mul, "**": operators.pow, "+": operators.add, "-": operators.sub}[operator](left, right)


def _capped_environment():
    """A jinja sandbox as transformers builds its chat templates' (its extensions, filters and globals), whose `*`
    and `**` go through `capped_binop` (so jinja folds neither on compiling) and whose output stops at the caps."""
    import time

    from jinja2 import nodes
    from jinja2.ext import Extension
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationTags(Extension):
        """`{% generation %}`: transformers marks the trained tokens with it; here it renders its body."""

        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.Scope(body).set_lineno(lineno)

    class CappedEnvironment(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})
        deadline = float("inf")

        def call_binop(self, context, operator, left, right):
            return capped_binop(operator, left, right)

        def concat(self, chunks):  # what a render, a macro or a {% set %} block joins its output with
            written = []
            size = 0
            for chunk in chunks:
                size += len(chunk)
                if size > TEMPLATE_CHARACTERS:
                    raise TemplateOverrun(f"writes more than {TEMPLATE_CHARACTERS:,} characters")
                if time.monotonic() > self.deadline:
                    raise TemplateOverrun(f"runs longer than {TEMPLATE_SECONDS} s")
                written.append(chunk)
            return "".join(written)

    def raise_exception(message):
        raise ValueError(message)

    environment = CappedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                    extensions=[GenerationTags, "jinja2.ext.loopcontrols"])
    environment.filters["tojson"] = lambda value, indent=None, **_: json.dumps(value, indent=indent)
    environment.globals.update(raise_exception=raise_exception, strftime_now=lambda form: time.strftime(form))
    return environment


def _folded_constants(tree) -> None:
    """Every `*` and `**` of constants in a parsed template, computed under the caps: transformers' jinja folds them
    when it compiles the template, before any render could be stopped."""
    from jinja2 import nodes

    def constant(node):
        if isinstance(node, nodes.Const):
            return node.value
        if isinstance(node, (nodes.Add, nodes.Sub, nodes.Mul, nodes.Pow)):
            return capped_binop(node.operator, constant(node.left), constant(node.right))
        raise LookupError  # not a constant: computed, if ever, in a render, under the caps

    for node in tree.find_all((nodes.Mul, nodes.Pow)):
        try:
            constant(node)
        except (LookupError, TypeError, ValueError, OverflowError, ZeroDivisionError):
            continue


@contextlib.contextmanager
def _alarm(seconds: float):
    """TemplateOverrun after `seconds` of a render that writes nothing (loops inside loops): a timer signal, which
    only the main thread can take; elsewhere the output's own checks stop it."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def overrun(_signal, _frame):
        raise TemplateOverrun(f"runs longer than {TEMPLATE_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, overrun)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_template_caps(loaded, model: str) -> None:
    """Refuse (SourceError) a tokenizer's or processor's chat template (each of them, when it has several by name)
    that goes past a cap on the probe conversations. A template's own error is left to the rows, where it is a
    finding (TP502)."""
    import time

    import jinja2

    templates = getattr(loaded, "chat_template", None)
    named = templates if isinstance(templates, dict) else {None: templates}
    for name, template in named.items():
        if not isinstance(template, str):
            continue
        environment = _capped_environment()
        what = "its chat template" if name is None else f"its chat template {name!r}"
        try:
            try:
                tree = environment.parse(template)
            except jinja2.TemplateSyntaxError:
                continue
            _folded_constants(tree)
            compiled = environment.from_string(template)
            environment.deadline = time.monotonic() + TEMPLATE_SECONDS
            with _alarm(TEMPLATE_SECONDS):
                for messages in PROBE_CONVERSATIONS:
                    try:
                        compiled.render(messages=messages, add_generation_prompt=True, tools=None, documents=None,
                                        bos_token="", eos_token="")
                    except TemplateOverrun:
                        raise
                    except Exception:  # the template's own error: the rows' finding
                        continue
        except TemplateOverrun as overrun:
            from trlprep.inspector.sources import SourceError

            raise SourceError(f"--model {model}: {what} {overrun}: refused before rendering any row (a template "
                              f"is capped at {TEMPLATE_SECONDS} s and {TEMPLATE_CHARACTERS:,} characters on probe "
                              f"conversations; docs/bad-input.md)") from None


def processor_tokenizer(processor):
    """The processor's tokenizer under the processor's chat template, the one TRL's vision collators render with
    (a tokenizer's own template may not render image parts)."""
    tokenizer = processor.tokenizer
    tokenizer.chat_template = processor.chat_template
    return tokenizer


@dataclass(frozen=True)
class RowImages:
    """A row's images as the model reads them: the token the chat template emits for each image (`placeholder`),
    and the tokens the processor expands each one to, in order."""

    placeholder: int
    tokens: tuple[int, ...]


class ImageTokens:
    """The tokens each image of a row becomes, counted by the processor from the image's (height, width) alone,
    which the image's header gives (`ImageChecker`); counts are kept by size, as most datasets repeat a few."""

    def __init__(self, processor, images: ImageChecker):
        from trlprep.inspector.sources import SourceError

        if not hasattr(processor, "_get_num_multimodal_tokens"):
            raise SourceError(f"the model's processor ({type(processor).__name__}) cannot count image tokens from "
                              "image sizes; inspect the data without --model")
        self.processor = processor
        self.images = images
        self.placeholder = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
        self._by_size: dict[tuple[int, int], int] = {}

    def of_row(self, trl_row: dict) -> RowImages | None:
        """The row's images, or None when one of them has no size to read (missing, unreadable, remote: the scan
        reports it, and counting without it would only mislead)."""
        sizes = []
        for value in trl_row.get("images") or ():
            source = image_source(value)
            check = self.images.check(source) if source is not None else None
            if check is None or check.width is None:
                return None
            sizes.append((check.height, check.width))
        return RowImages(self.placeholder, tuple(self._tokens(size) for size in sizes))

    def _tokens(self, size: tuple[int, int]) -> int:
        if size not in self._by_size:
            # A private API of transformers' processors, stable since 4.5x; the feasibility note measured it equal
            # to the processor's count on real images, for LLaVA and Qwen2-VL.
            counted = self.processor._get_num_multimodal_tokens(image_sizes=[size])
            self._by_size[size] = counted["num_image_tokens"][0]
        return self._by_size[size]


def reads_images(processor) -> bool:
    """Whether the processor reads images: it has an image processor and an image token (a text-only model's
    "processor" is its tokenizer)."""
    return (getattr(processor, "image_processor", None) is not None
            and getattr(processor, "image_token", None) is not None)


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
    images: int = 0
    image_tokens: int = 0  # what the processor expands the row's images to
    last_image_end: int | None = None  # tokens up to the end of the last image (the longer side of a pair)
    # (start, end) of each run of tokens the row's own mask trains: the completion (from where the tokenized prompt
    # and prompt+completion part, as SFT finds it), the assistant turns under a template with generation markers,
    # else the whole row; none for a prompt alone. `inspector.cost` counts trained tokens from them.
    trained_spans: tuple[tuple[int, int], ...] = ()


def _expand_images(rendered: dict, images: RowImages | None) -> dict:
    """A rendering with each image placeholder repeated as many times as the processor expands that image (the
    i-th placeholder takes the i-th image's count; placeholders past the row's images stay one token), its
    assistant mask along."""
    ids = rendered["input_ids"]
    if images is None or images.placeholder not in ids:
        return rendered
    repeats = [1] * len(ids)
    at = [i for i, token in enumerate(ids) if token == images.placeholder]
    for position, count in zip(at, images.tokens):
        repeats[position] = count
    expanded = {"input_ids": [token for token, n in zip(ids, repeats) for _ in range(n)]}
    if "assistant_masks" in rendered:
        expanded["assistant_masks"] = [m for m, n in zip(rendered["assistant_masks"], repeats) for _ in range(n)]
    return expanded


def _image_facts(ids: list[int], images: RowImages) -> tuple[int | None, list[tuple[str, str]]]:
    """Where the row's last image ends in `ids`, and a finding when the template rendered another number of image
    tokens than the processor makes of the row's images."""
    expected = sum(images.tokens)
    rendered = ids.count(images.placeholder)
    issues = []
    if rendered != expected:
        issues.append((IMAGES_NOT_RENDERED.id, f"the chat template renders {rendered} image tokens where the "
                                               f"processor makes {expected} of the row's {len(images.tokens)} "
                                               "image(s)"))
    last = max((i for i, token in enumerate(ids) if token == images.placeholder), default=None)
    return (None if last is None else last + 1), issues


def _render(tokenizer, messages, *, generation_prompt=False, continue_final=False, tools=None,
            masks=False, images: RowImages | None = None) -> dict:
    return _expand_images(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                                        add_generation_prompt=generation_prompt,
                                                        continue_final_message=continue_final, tools=tools,
                                                        return_assistant_tokens_mask=masks), images)


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text)["input_ids"]


def _prompt_and_full(tokenizer, prompt, completion, tools, has_markers,
                     images: RowImages | None = None) -> tuple[list[int], list[int], list[int]]:
    """(prompt ids, prompt+completion ids, trained mask) under the chat template, or plain text + EOS."""
    if isinstance(prompt, list):
        prompt_ids = _render(tokenizer, prompt, generation_prompt=prompt[-1].get("role") != "assistant",
                             continue_final=prompt[-1].get("role") == "assistant", tools=tools,
                             images=images)["input_ids"]
        full = _render(tokenizer, prompt + completion, tools=tools, masks=has_markers, images=images)
        full_ids = full["input_ids"]
        mask = [0] * len(prompt_ids) + [1] * (len(full_ids) - len(prompt_ids))
        return prompt_ids, full_ids, mask
    prompt_ids = _ids(tokenizer, prompt)
    full_ids = _ids(tokenizer, prompt + completion) + ([tokenizer.eos_token_id] if tokenizer.eos_token_id is not None
                                                        else [])
    return prompt_ids, full_ids, [0] * len(prompt_ids) + [1] * (len(full_ids) - len(prompt_ids))


def analyse_row(tokenizer, trl_row: dict, data_type: str, *, implicit: bool, has_markers: bool,
                specials: list[str], images: RowImages | None = None) -> RowTokens:
    """Token counts and template findings for one row already read as its TRL type (its `images` as the
    processor counts them, for image data)."""
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
            rendered = _render(tokenizer, value, tools=tools, masks=has_markers, images=images)
            ids = rendered["input_ids"]
            mask = rendered.get("assistant_masks") if has_markers else [1] * len(ids)
        else:
            ids = _ids(tokenizer, value) + [tokenizer.eos_token_id]
            mask = [1] * len(ids)
        first = next((i for i, m in enumerate(mask) if m), None)
        trained = sum(mask)
        issues += _stop_token_issues(tokenizer, ids, mask, conversational=isinstance(value, list))
        issues += _bos_issues(tokenizer, ids)
        return _with_images(RowTokens(len(ids) - trained, trained, len(ids), len(ids), first, issues,
                                      trained_spans=mask_spans(mask)), [ids], images)
    if data_type == "prompt_only":
        prompt = trl_row["prompt"]
        ids = (_render(tokenizer, prompt, generation_prompt=True, tools=tools, images=images)["input_ids"]
               if isinstance(prompt, list) else _ids(tokenizer, prompt))
        return _with_images(RowTokens(len(ids), 0, len(ids), len(ids), None, issues + _bos_issues(tokenizer, ids)),
                            [ids], images)
    if data_type == "preference":
        chosen, rejected = trl_row["chosen"], trl_row["rejected"]
        prompt = trl_row.get("prompt")
        if implicit:
            cut = shared_prompt_length(chosen, rejected)
            prompt, chosen, rejected = chosen[:cut], chosen[cut:], rejected[cut:]
        sides = [chosen, rejected]
    else:  # prompt_completion, unpaired_preference
        prompt, sides = trl_row["prompt"], [trl_row["completion"]]
    totals, completions, first, fulls = [], [], None, []
    prompt_length, spans = 0, ()
    for side in sides:
        prompt_ids, full_ids, mask = _prompt_and_full(tokenizer, prompt, side, tools, has_markers, images)
        fulls.append(full_ids)
        prompt_length = len(prompt_ids)
        spans = ((common_prefix_length(prompt_ids, full_ids), len(full_ids)),)
        if full_ids[:len(prompt_ids)] != prompt_ids:
            issues.append((PROMPT_NOT_TOKEN_PREFIX.id, "the tokenized prompt is not a prefix of the tokenized prompt+completion"))
        issues += _stop_token_issues(tokenizer, full_ids, mask, conversational=isinstance(prompt, list))
        issues += _bos_issues(tokenizer, full_ids)
        totals.append(len(full_ids))
        completions.append(len(full_ids) - len(prompt_ids))
        first = len(prompt_ids)
    return _with_images(RowTokens(prompt_length, max(completions), max(totals), max(totals), first, issues,
                                  trained_spans=spans), fulls, images)


def mask_spans(mask: list[int]) -> tuple[tuple[int, int], ...]:
    """The (start, end) runs of a 0/1 mask's ones.

    >>> mask_spans([0, 1, 1, 0, 1]), mask_spans([0, 0])
    (((1, 3), (4, 5)), ())
    """
    spans, at = [], 0
    for trained, run in itertools.groupby(mask, key=bool):
        length = sum(1 for _ in run)
        if trained:
            spans.append((at, at + length))
        at += length
    return tuple(spans)


def common_prefix_length(prompt_ids: list[int], full_ids: list[int]) -> int:
    """Where SFT starts a completion's trained tokens: where the tokenized prompt and prompt+completion part
    (TRL's `common_prefix_length`; the prompt's length when it is a token prefix, TP505 otherwise).

    >>> common_prefix_length([1, 2, 3], [1, 2, 3, 4]), common_prefix_length([1, 2, 9], [1, 2, 3, 4])
    (3, 2)
    """
    return next((i for i, (a, b) in enumerate(zip(prompt_ids, full_ids)) if a != b), min(len(prompt_ids),
                                                                                      len(full_ids)))


def _with_images(counted: RowTokens, fulls: list[list[int]], images: RowImages | None) -> RowTokens:
    """The row's counts with its images' (for image data), its findings each said once."""
    if images is not None:
        for ids in fulls:
            end, issues = _image_facts(ids, images)
            counted.issues += issues
            if end is not None:
                counted.last_image_end = max(end, counted.last_image_end or 0)
        counted.images, counted.image_tokens = len(images.tokens), sum(images.tokens)
    counted.issues = _unique(counted.issues)
    return counted


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


def _init_worker(model: str, vision: bool) -> None:
    _WORKER["tokenizer"] = processor_tokenizer(load_processor(model)) if vision else load_tokenizer(model)


def _analyse_batch(args: tuple) -> list[tuple[int, RowTokens | tuple[str, str]]]:
    rows, data_type, implicit, has_markers, tokenizer = args
    tokenizer = tokenizer or _WORKER["tokenizer"]
    specials = special_strings(tokenizer)
    out = []
    for number, trl_row, images in rows:
        try:
            out.append((number, analyse_row(tokenizer, trl_row, data_type, implicit=implicit,
                                            has_markers=has_markers, specials=specials, images=images)))
        except Exception as error:  # the template's own error is the finding
            failure = f"the chat template fails on this row: {error_line(error)}"
            out.append((number, (TEMPLATE_RENDER_FAILURE.id, failure)))
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
    images: dict | None = None  # image data: images, image tokens per row, rows cut inside an image
    cost: dict | None = None  # data SFT takes: its sequences, steps and trained tokens (`inspector.cost.sft_cost`)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()
                if k != "previews" and not (k in ("images", "cost") and v is None)}


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
        # ORPO, CPO and TPO (trl.experimental) cut the prompt, then the answers, and keep every row: one whose prompt
        # fills max_length is left with an empty answer.
        "truncates": {"truncated": over, "dropped": 0, "empty_answers": prompt_fills,
                      "note": f"truncates rows over max_length, drops none; {prompt_fills} prompt(s) fill it, "
                              "leaving no answer"},
    }


def vision_trainer_effects(counts: list[RowTokens], max_length: int | None) -> dict:
    """What each trainer does to image rows: TRL prepares no vision dataset (no length filter, nothing dropped);
    its collators cut each batch at max_length, and a cut inside an image stops training (TP510)."""
    limit = max_length or TRL_MAX_LENGTH
    stopped = sum(1 for c in counts if max_length is not None and cut_inside_image(c, max_length))
    collated = {"truncated": sum(1 for c in counts if c.total > limit) - stopped, "dropped": 0, "stopped": stopped,
                "note": "the collator cuts rows over max_length; a cut inside an image stops training"}
    return {"sft": collated, "dpo": dict(collated), "kto": dict(collated),
            "reward": {"truncated": 0, "dropped": 0, "note": "reads text only: no image data"},
            "grpo": {"truncated": 0, "dropped": 0, "note": "uses prompts as they are; completions are generated"},
            "truncates": {"truncated": 0, "dropped": 0, "note": "reads text only: no image data"}}


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
                    mask_color: bool = False, image_root: Path | None = None,
                    run: RunShape | None = None) -> TokenReport:
    """Tokenize every row (in batches, over both cores when the data is large) and summarise.

    `rows` are `(row number, raw row)` pairs as a source yields them; `collect(rule, row, detail)` receives each
    finding; the first `show_masks` rows come back in `previews`, trained tokens marked. Image data is read with
    the model's processor, its image paths against `image_root` (the current folder when None). With `run`, the
    report says what an SFT run of that shape costs, for data SFT takes.
    """
    collect = collect or (lambda rule, row, detail: None)
    rows = list(rows)
    shape, readable = readable_rows(rows)
    vision = bool(shape and shape.reads_images)
    processor = load_processor(model) if vision else None
    if vision:
        tokenizer = processor_tokenizer(processor) if reads_images(processor) else processor
    tokenizer = tokenizer or load_tokenizer(model)
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
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
        # Data in TRL's own columns is what TRL trains if the file is given to it as it is (TP605 says what
        # `convert` rewrites); other data is rendered as `convert` writes it.
        kept = {number for number, _ in readable}
        # A generator: the probe reads up to the first tool-call row.
        as_trl_reads = ((number, row_value(value)) for number, value in rows if number in kept) \
            if shape.dialect == "trl" and not vision else readable
        tool_probe = probe_tool_row(tokenizer, as_trl_reads, collect)
        if tool_probe is not None:
            template_info["tool_row"] = tool_probe
        # Probed only for data with traces: the report of other data says nothing of them.
        reasoning = probe_reasoning(tokenizer) if any(holds_trace(r) for _, r in readable) else None
        if reasoning is not None:
            template_info["reasoning"] = reasoning.to_dict()
            for number, trl_row in readable:
                for rule, detail in reasoning.faults(trl_row):
                    collect(rule, number, detail)
        if not has_markers:
            collect(NO_GENERATION_MARKERS.id, None, "the chat template has no {% generation %} markers, so assistant_only_loss is "
                                   "impossible; use a training template (TRL's get_training_chat_template, or "
                                   "--set chat_template_path=<template with markers>)")
    if vision:
        unseen = _images_unseen(processor, tokenizer, template)
        template_info["image_parts"] = unseen or "rendered"
        if unseen:
            collect(IMAGES_NOT_RENDERED.id, None, f"{unseen}, so the model never sees the images")
            readable = []
    items = (_with_row_images(readable, processor, image_root) if vision and readable
             else [(number, trl_row, None) for number, trl_row in readable])
    data_type = shape.type if shape else "unknown"
    implicit = bool(shape and shape.implicit_prompt)
    batches = [items[i:i + BATCH_ROWS] for i in range(0, len(items), BATCH_ROWS)]
    workers = workers or (min(2, os.cpu_count() or 1) if len(items) >= PARALLEL_FROM_ROWS else 1)
    if workers > 1:
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(model, vision)) as pool:
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
        if max_length is not None and cut_inside_image(outcome, max_length):
            collect(IMAGE_CUT_BY_MAX_LENGTH.id, number, image_cut_detail(outcome, max_length))
        elif outcome.total > limit:
            collect(OVER_MAX_LENGTH.id, number, f"{outcome.total} tokens, over max_length={limit}")
    totals = [c.total for c in counts]
    total_stats = _stats(totals)
    return TokenReport(
        max_length=limit, rows=len(counts), **total_stats,
        over_max_length=sum(1 for t in totals if t > limit),
        recommended_max_length=recommend(total_stats["p99"]),
        prompt=_stats([c.prompt for c in counts]), completion=_stats([c.completion for c in counts]),
        total=total_stats, template=template_info,
        trainer_effects=vision_trainer_effects(counts, max_length) if vision else trainer_effects(counts, limit),
        histogram=histogram(totals), previews=previews,
        images=image_summary(counts, max_length) if vision else None,
        cost=sft_cost([(c.total, c.trained_spans) for c in counts], data_type, run, vision=vision)
        if run is not None and data_type in SFT_TYPES else None)


def _with_row_images(readable: list[tuple[int, dict]], processor, image_root: Path | None) -> list[tuple]:
    """Each row with its images' token counts; rows with an image whose size cannot be read are left out (the
    scan reports the image)."""
    counter = ImageTokens(processor, ImageChecker(image_root))
    items = []
    for number, trl_row in readable:
        images = counter.of_row(trl_row)
        if images is not None:
            items.append((number, trl_row, images))
    return items


def _images_unseen(processor, tokenizer, template: str | None) -> str | None:
    """How the model would miss the images: a text-only model, or a chat template that does not render an image
    part as the processor's image token (it drops it, or prints the parts as a Python list). None when it would
    see them, or when the template is missing (TP501) or raises (each row's TP502 carries its message)."""
    if not reads_images(processor):
        return (f"the model's processor is a {type(processor).__name__}, which reads no images (a text-only "
                "model)")
    if template is None:
        return None
    probe = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "probe question"}]}]
    try:
        rendered = tokenizer.apply_chat_template(probe, tokenize=False)
    except Exception:  # the template's own error is reported on each row
        return None
    if "'type': 'image'" in rendered:
        return "the chat template prints the content parts as a Python list, not the image token"
    placeholders = rendered.count(processor.image_token)
    if placeholders == 0:
        return f"the chat template drops image parts (no {processor.image_token!r} for an image)"
    if placeholders > 1:
        return f"the chat template renders {placeholders} {processor.image_token!r} for one image part"
    return None


def cut_inside_image(counted: RowTokens, max_length: int) -> bool:
    """Whether truncating at max_length cuts into the row's image tokens (TRL's keep_start truncation)."""
    return counted.last_image_end is not None and counted.last_image_end > max_length


def image_cut_detail(counted: RowTokens, max_length: int) -> str:
    """The counts of a row whose images max_length cuts into, as its finding says them.

    >>> image_cut_detail(RowTokens(58, 4, 62, 62, 58, images=3, image_tokens=48, last_image_end=55), 40)
    '3 image(s) are 48 tokens, over max_length=40 on their own; the row is 62 tokens'
    >>> image_cut_detail(RowTokens(58, 4, 62, 62, 58, images=2, image_tokens=32, last_image_end=45), 40)
    'the text up to the end of the last of 2 image(s) (32 image tokens) is 45 tokens, over max_length=40'
    """
    if counted.image_tokens > max_length:
        return (f"{counted.images} image(s) are {counted.image_tokens} tokens, over max_length={max_length} on "
                f"their own; the row is {counted.total} tokens")
    return (f"the text up to the end of the last of {counted.images} image(s) ({counted.image_tokens} image "
            f"tokens) is {counted.last_image_end} tokens, over max_length={max_length}")


def image_summary(counts: list[RowTokens], max_length: int | None) -> dict:
    """Image data's part of the report: images read, image tokens per row, rows max_length cuts inside an image."""
    return {"images": sum(c.images for c in counts), "image_tokens": _stats([c.image_tokens for c in counts]),
            "cut_inside_image": sum(1 for c in counts if max_length is not None and cut_inside_image(c, max_length))}


# The traces the reasoning probe renders: text no template writes of its own.
PROBE_TRACES = ("trlprep probe trace one", "trlprep probe trace two")


@dataclass(frozen=True)
class ReasoningTemplate:
    """What a chat template does with reasoning traces, learnt by rendering probe conversations: whether it
    renders `reasoning_content`, and, for each form of a trace ("field", "inline"), whether it drops the traces of
    assistant turns before the last user turn while keeping the last one's."""

    reads_field: bool
    strips_earlier: dict[str, bool]

    @property
    def form(self) -> str:
        """The form to write traces in for this template: the field where it reads it, else inline."""
        return "field" if self.reads_field else "inline"

    def to_dict(self) -> dict:
        return {"reads_reasoning_content": self.reads_field, "strips_earlier_traces": self.strips_earlier}

    def faults(self, trl_row: dict) -> Iterator[tuple[str, str]]:
        """TP512 for the answers whose `reasoning_content` the template does not render; TP513 for the assistant
        turns of a conversation's `messages` (each trained) before its last user turn whose traces it drops."""
        if not self.reads_field:
            unread = [where for where, answer in answers(trl_row) if describe(answer).form == "field"]
            if unread:
                yield TEMPLATE_DROPS_REASONING.id, (f"{', '.join(unread)}: `reasoning_content` is not rendered, so "
                                                    "the trace is not trained")
        messages = trl_row.get("messages")
        if not isinstance(messages, list) or not any(self.strips_earlier.values()):
            return
        last_user = max((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"),
                        default=0)
        stripped = [f"messages[{i}]" for i, message in enumerate(messages[:last_user])
                    if isinstance(message, dict) and message.get("role") == "assistant"
                    and self.strips_earlier.get(describe(message).form, False)]
        if stripped:
            yield TEMPLATE_STRIPS_EARLIER_TRACES.id, (f"{', '.join(stripped)}: the template drops the trace of this "
                                                      "earlier turn, so it trains the answer alone")


def probe_reasoning(tokenizer) -> ReasoningTemplate | None:
    """Render probe conversations through the tokenizer's chat template: one answer with its trace in
    `reasoning_content` (does the trace appear?), and two exchanges with a trace in each answer, in each form (is
    the first one's gone while the last one's stays?). None when the template raises on them."""
    first, last = PROBE_TRACES

    def rendered(form: str, *traces: str) -> str:
        messages = []
        for number, trace in enumerate(traces, start=1):
            answer = f"probe answer {number}"
            messages += [{"role": "user", "content": f"probe question {number}"},
                         {"role": "assistant", "content": answer, "reasoning_content": trace} if form == "field"
                         else {"role": "assistant", "content": join_trace(trace, answer)}]
        return tokenizer.apply_chat_template(messages, tokenize=False)

    try:
        reads_field = last in rendered("field", last)
        strips = {}
        for form in ("field", "inline"):
            text = rendered(form, first, last)
            strips[form] = first not in text and last in text
    except Exception:  # the template's own error is reported on each row (TP502)
        return None
    return ReasoningTemplate(reads_field, strips)


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


# --- One tool-call row through the template ------------------------------------------------------------------


def _conversation(trl_row: dict) -> list:
    """A row's messages as the template renders them whole: `messages`, or the prompt followed by its completion
    (the chosen answer of a pair; an implicit pair's chosen conversation)."""
    if isinstance(trl_row.get("messages"), list):
        return trl_row["messages"]
    prompt = trl_row["prompt"] if isinstance(trl_row.get("prompt"), list) else []
    answer = next((trl_row[key] for key in ("completion", "chosen") if isinstance(trl_row.get(key), list)), [])
    return prompt + answer


def _declared_tools(tools: Any) -> list | None:
    """A row's `tools` as the trainers pass them to the template (a JSON string parsed), or None when it declares
    none (or not as JSON: TP604 says so)."""
    if isinstance(tools, str):
        try:
            tools = json.loads(tools)
        except ValueError:
            return None
    return tools if isinstance(tools, list) and tools else None


def _has_calls(messages: list) -> bool:
    return any(isinstance(message, dict) and message.get("tool_calls") for message in messages)


def first_tool_row(readable: Iterable[tuple[int, dict]]) -> tuple[int, list, list | None] | None:
    """The first row that calls a tool (else the first that declares tools): its number, conversation and tools.

    >>> call = {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}
    >>> first_tool_row([(1, {"messages": [{"role": "user", "content": "hi"}], "tools": '[{"type": "function"}]'}),
    ...                 (2, {"prompt": [{"role": "user", "content": "hi"}], "completion": [call]})])[0]
    2
    """
    declaring = None
    for number, trl_row in readable:
        messages = _conversation(trl_row)
        if _has_calls(messages):
            return number, messages, _declared_tools(trl_row.get("tools"))
        if declaring is None and trl_row.get("tools"):
            tools = _declared_tools(trl_row["tools"])
            declaring = (number, messages, tools) if tools else None
    return declaring


def _calls_with_arguments(messages: list) -> Iterator[tuple[str, Any]]:
    """(function name, arguments as the data means them) of each call whose arguments are a non-empty JSON object
    or list, given as one or as a JSON string: the calls whose rendering can be told apart from other text."""
    for message in messages:
        for call in (message.get("tool_calls") or ()) if isinstance(message, dict) else ():
            function = call.get("function", call) if isinstance(call, dict) else {}
            arguments = function.get("arguments") if isinstance(function, dict) else None
            if isinstance(arguments, str):
                try:
                    arguments = json.loads(arguments)
                except ValueError:
                    continue  # not JSON: TP602's to report
            if isinstance(arguments, (dict, list)) and arguments:
                yield str(function.get("name", "?")), arguments


def double_encoded(rendered: str, arguments: Any) -> str | None:
    r"""The JSON string literal in `rendered` whose text is `arguments` as JSON, or None. Values are compared,
    not texts, so a template's spacing, key order and escapes do not matter.

    >>> double_encoded('call f("{\\"city\\": \\"Paris\\"}")', {"city": "Paris"})
    '"{\\"city\\": \\"Paris\\"}"'
    >>> double_encoded('call f({"city":"Paris"})', {"city": "Paris"}) is None
    True
    """
    decoder = json.JSONDecoder()
    for match in re.finditer('"', rendered):
        try:
            text, end = decoder.raw_decode(rendered, match.start())
            if isinstance(text, str) and text.lstrip()[:1] in ("{", "[") and json.loads(text) == arguments:
                return rendered[match.start():end]
        except ValueError:
            continue
    return None


def probe_tool_row(tokenizer, readable: Iterable[tuple[int, dict]], collect) -> dict | None:
    """Render the data's first tool-call row as TRL does (its conversation with its `tools`) and flag what the
    template makes of it: an error on the calls or tools (TP521), calls or tools left out (TP522), arguments
    quoted as a JSON string (TP520). What it found, for the report's `template`; None when the data holds no tool
    calls or tools."""
    found = first_tool_row(readable)
    if found is None:
        return None
    number, messages, tools = found
    # A prompt-only row (GRPO) is rendered as the trainer does, ready for the model's answer.
    answer_next = bool(messages) and isinstance(messages[-1], dict) and messages[-1].get("role") != "assistant"

    def render(conversation: list, with_tools: list | None) -> str:
        return tokenizer.apply_chat_template(conversation, tools=with_tools, tokenize=False,
                                             add_generation_prompt=answer_next)

    without_calls = [_without_calls(message) for message in messages]
    probe: dict[str, Any] = {"row": number}
    try:
        rendered = render(messages, tools)
    except Exception as error:  # the template's own message is the finding
        probe["rendered"] = "error"
        # What it fails on: the first part the row renders without (none: it fails on the row whatever its tool
        # use, and TP502 says so). Templates that insist on alternating roles fail on the tool turns themselves.
        attempts = ([("`tools`", messages)] if tools else []) + [
            ("tool calls", without_calls), ("tool calls and results", _without_tool_turns(messages))]
        culprit = next((part for part, conversation in attempts if _renders(render, conversation) is not None), None)
        if culprit:
            collect(TOOL_CALL_TEMPLATE_ERROR.id, number, f"the chat template fails on this row's {culprit} (it "
                                                         f"renders the row without them): {error_line(error)}")
        return probe
    probe["rendered"] = "ok"
    left_out = []
    if tools:
        probe["tools"] = "ignored" if _renders(render, messages) == rendered else "rendered"
        left_out += ["`tools`"] if probe["tools"] == "ignored" else []
    if _has_calls(messages):
        probe["calls"] = "ignored" if _renders(render, without_calls, tools) == rendered else "rendered"
        left_out += ["the tool calls"] if probe["calls"] == "ignored" else []
    if left_out:
        collect(TEMPLATE_WITHOUT_TOOLS.id, number, f"the chat template leaves out {' and '.join(left_out)}: "
                                                   "the row renders the same without them")
    for name, arguments in _calls_with_arguments(messages) if probe.get("calls") == "rendered" else ():
        quoted = double_encoded(rendered, arguments)
        if quoted is not None:
            probe["calls"] = "double-encoded"
            collect(TOOL_CALL_DOUBLE_ENCODED.id, number, f"the chat template renders the arguments of the call to "
                                                         f"{name} as a JSON string: {_clip(quoted)}")
    return probe


def _without_calls(message: Any) -> Any:
    return {key: value for key, value in message.items() if key != "tool_calls"} if isinstance(message, dict) \
        else message


def _without_tool_turns(messages: list) -> list:
    """The conversation as if no tool had been used: tool results and call-only turns left out, the calls of
    turns that also answer taken off them."""
    return [_without_calls(message) for message in messages
            if not (isinstance(message, dict) and (message.get("role") == "tool" or (
                message.get("tool_calls") and not str(message.get("content") or "").strip())))]


def _renders(render, conversation: list, tools: list | None = None) -> str | None:
    """The rendering, or None when the template raises on it."""
    try:
        return render(conversation, tools)
    except Exception:  # a template may insist on what was taken out; then nothing is told from it
        return None


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def error_line(error: Exception) -> str:
    """An error's first line, as a finding quotes it (its type when it says nothing)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


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
