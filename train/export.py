"""GGUF export for llama.cpp, Ollama and LM Studio, with llama.cpp's own converter, verified after writing.

The converter is llama.cpp's `convert_hf_to_gguf` as the `convert-hf-to-gguf` package carries it, with its own copy
of `gguf` (the `gguf` extra; docs/gguf.md says why this source). A file is written under a temporary name, read back
with `GGUFReader` (architecture, tensor count, chat template), loaded with transformers' GGUF support, compared
with the model it came from (the tokens of a few prompts, and their next-token logits within `TOLERANCE`), and
only then given its name. Types the converter cannot write (the k-quants) are written as f16 or bf16 with the
exact `llama-quantize` command that makes them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from trlprep.errors import TrlprepError, UsageError

# What the converter writes itself, as its `--outtype` names them.
WRITTEN = {"f32": "ALL_F32", "f16": "MOSTLY_F16", "bf16": "MOSTLY_BF16", "q8_0": "MOSTLY_Q8_0"}
# Largest next-token logit difference from the model it came from, as a share of that prompt's logit range
# (max - min). Measured here on the tiny test model and a 5M Qwen2 (../shared/reference/feasibility.md): f16
# 2e-4, q8_0 0.4-1.8%; the bounds leave room for larger models without letting a wrong tensor through (a
# transposed or missing weight moves the logits by their whole range).
TOLERANCE = {"f32": 1e-4, "f16": 5e-3, "bf16": 2e-2, "q8_0": 5e-2}
VERIFY_TEXTS = ("The capital of France is", "def add(a, b):\n    return",
                "Question: how many legs does a spider have?\nAnswer:")
VERIFY_CHAT = "Write one sentence about the sea."
INSTALL = "GGUF export needs the gguf extra: uv sync --extra gguf (or pip install 'trlprep[gguf]')"


class ExportRejected(TrlprepError):
    """The written GGUF file does not match the model it came from: it is removed, never left as if done."""

    exit_code = 1
    kind = "export_rejected"


@dataclass
class ExportPlan:
    outtype: str            # as asked
    written_type: str       # what the converter writes: outtype, or f16/bf16 for llama-quantize
    pre_tokenizer: str | None
    quantize_to: str | None = None  # a llama-quantize type (Q4_K_M, ...) to make from the written file


@dataclass
class ExportResult:
    path: str
    outtype: str
    written_type: str
    bytes: int
    seconds: float
    architecture: str
    tensors: int
    chat_template: bool
    checks: list[dict] = field(default_factory=list)  # per prompt: tokens equal, logit difference, tolerance
    quantize_command: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def quantize_types() -> list[str]:
    """The llama-quantize types, as gguf's `LlamaFileType` names them (Q4_K_M, Q5_K_S, IQ4_XS, ...)."""
    import gguf

    written = set(WRITTEN.values())
    return [name.removeprefix("MOSTLY_") for name in gguf.LlamaFileType.__members__
            if name.startswith("MOSTLY_") and name not in written]


def plan_export(outtype: str, pre_tokenizer: str | None = None) -> ExportPlan:
    """What an `export: gguf` stage will write, checked before anything trains: the extra installed, the type known.

    >>> plan_export("q8_0").written_type
    'q8_0'
    >>> plan_export("Q4_K_M").quantize_to
    'Q4_K_M'
    >>> plan_export("q4")
    Traceback (most recent call last):
    ...
    trlprep.errors.UsageError: outtype 'q4': choose f32, f16, bf16, q8_0 (written here) or a llama-quantize type (Q4_0, Q4_1, ...)
    """
    if importlib.util.find_spec("conversion") is None:
        raise UsageError(INSTALL)
    if outtype.lower() in WRITTEN:
        return ExportPlan(outtype.lower(), outtype.lower(), pre_tokenizer)
    known = {name.lower(): name for name in quantize_types()}
    if outtype.lower() not in known:
        listed = ", ".join(list(known.values())[:2])
        raise UsageError(f"outtype {outtype!r}: choose {', '.join(WRITTEN)} (written here) or a llama-quantize "
                         f"type ({listed}, ...)")
    return ExportPlan(outtype, "f16", pre_tokenizer, quantize_to=known[outtype.lower()])


def _converter_class(model_dir: Path, pre_tokenizer: str | None):
    """llama.cpp's converter class for the model's architecture; with `pre_tokenizer`, a subclass that names
    llama.cpp's pre-tokenizer instead of recognising it by the hash of a fixed string's token ids (a tokenizer
    llama.cpp has never seen, one trained in-process among them, is refused by that check)."""
    from conversion import ModelBase, ModelType, get_model_architecture, get_model_class

    config = ModelBase.load_hparams(model_dir, False)
    if "vision_config" in config:
        raise UsageError(f"{model_dir}: a vision-language model ({config.get('model_type')}); a GGUF of it would hold "
                         f"the text model only, and llama.cpp reads its image encoder from a separate mmproj file, "
                         f"which trlprep does not write: export both with llama.cpp's convert_hf_to_gguf.py "
                         f"(its --mmproj option)")
    try:
        base = get_model_class(get_model_architecture(config, ModelType.TEXT))
    except NotImplementedError as error:
        raise UsageError(f"{model_dir}: llama.cpp's converter cannot export it ({error})") from None
    if pre_tokenizer is None:
        return base

    class NamedPreTokenizer(base):
        model_arch = base.model_arch

        def get_vocab_base_pre(self, tokenizer) -> str:
            return pre_tokenizer

    return NamedPreTokenizer


@contextlib.contextmanager
def _quiet_converter() -> Iterator[None]:
    """The converter logs every tensor at INFO; a recipe announces the export in one line."""
    import logging

    logger = logging.getLogger("hf-to-gguf")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def check_vocab(model_dir: str | Path, plan: ExportPlan) -> None:
    """Convert only the vocabulary (llama.cpp's `--vocab-only`), to learn before training whether the converter
    takes this architecture and tokenizer; a training stage does not change either."""
    import gguf
    import torch

    model_dir = Path(model_dir)
    converter = _converter_class(model_dir, plan.pre_tokenizer)
    with tempfile.TemporaryDirectory(prefix="trlprep-gguf-") as scratch, _quiet_converter(), torch.inference_mode():
        try:
            converter(model_dir, getattr(gguf.LlamaFileType, WRITTEN[plan.written_type]),
                      Path(scratch) / "vocab.gguf").write_vocab()
        except NotImplementedError as error:
            hint = ("; if it splits words like a model llama.cpp knows, name that one in the stage, e.g. "
                    "pre_tokenizer: qwen2" if "pre-tokenizer" in str(error) else "")
            raise UsageError(f"{model_dir}: llama.cpp's converter refuses its tokenizer ({error}){hint}") from None


def export_gguf(model_dir: str | Path, out_dir: str | Path, plan: ExportPlan) -> ExportResult:
    """Write `<out_dir>/model-<type>.gguf` from a saved model folder, verify it (`verify_gguf`), then name it."""
    import time

    import gguf
    import torch

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"model-{plan.written_type}.gguf"
    started = time.perf_counter()
    converter = _converter_class(model_dir, plan.pre_tokenizer)
    with tempfile.TemporaryDirectory(prefix=".gguf-", dir=out_dir) as scratch:
        # Verified in a folder of its own: transformers reads a GGUF from a folder, beside no other weights.
        written = Path(scratch) / target.name
        with _quiet_converter(), torch.inference_mode():
            converter(model_dir, getattr(gguf.LlamaFileType, WRITTEN[plan.written_type]), written).write()
        result = verify_gguf(written, model_dir, plan.written_type)
        os.replace(written, target)
    result.path, result.outtype = str(target), plan.outtype
    result.seconds = round(time.perf_counter() - started, 3)
    if plan.quantize_to:
        final = out_dir / f"model-{plan.quantize_to}.gguf"
        result.quantize_command = f"llama-quantize {target} {final} {plan.quantize_to}"
    return result


@contextlib.contextmanager
def _transformers_reads_bundled_gguf() -> Iterator[None]:
    """transformers checks `gguf` by its distribution's version; the converter's copy belongs to the distribution
    convert-hf-to-gguf 0.1.1, which it takes for gguf 0.1.1 (< 0.10) and refuses. The copy is newer than gguf
    0.19 and has everything the reader uses (`GGUFReader`, `dequantize`), so the check is answered for it."""
    import gguf
    import transformers.modeling_gguf_pytorch_utils as gguf_loading

    if not (hasattr(gguf, "GGUFReader") and hasattr(gguf, "dequantize")):
        raise UsageError(INSTALL)
    original = gguf_loading.is_gguf_available
    gguf_loading.is_gguf_available = lambda *args, **kwargs: True
    try:
        yield
    finally:
        gguf_loading.is_gguf_available = original


def verify_gguf(path: str | Path, model_dir: str | Path, written_type: str) -> ExportResult:
    """Read a GGUF file back and compare it with the model folder it was written from; raise `ExportRejected`
    when the architecture, the chat template, the tokens or the next-token logits (beyond `TOLERANCE`) differ."""
    import gguf
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, model_dir = Path(path), Path(model_dir)
    reader = gguf.GGUFReader(path)
    architecture = reader.get_field("general.architecture").contents()
    expected = gguf.MODEL_ARCH_NAMES[_converter_class(model_dir, None).model_arch]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    template_field = reader.get_field("tokenizer.chat_template")
    embedded = template_field.contents() if template_field is not None else None
    problems = []
    if architecture != expected:
        problems.append(f"architecture {architecture!r}, expected {expected!r}")
    if tokenizer.chat_template and embedded != tokenizer.chat_template:
        problems.append("the chat template embedded differs from the tokenizer's")
    texts = list(VERIFY_TEXTS)
    if tokenizer.chat_template:
        texts.append(tokenizer.apply_chat_template([{"role": "user", "content": VERIFY_CHAT}], tokenize=False,
                                                   add_generation_prompt=True))
    try:
        with _transformers_reads_bundled_gguf():
            from_gguf = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
            gguf_tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    except Exception as error:  # an architecture transformers' GGUF support lacks: the file cannot be checked
        raise ExportRejected(f"{path.name}: transformers cannot read it back to check it against {model_dir} "
                             f"({type(error).__name__}: {str(error)[:200]}); it is not kept") from None
    original = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    checks = []
    with torch.inference_mode():
        for text in texts:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            same_tokens = gguf_tokenizer(text, add_special_tokens=False)["input_ids"] == ids
            batch = torch.tensor([ids])
            want, got = original(batch).logits[0, -1], from_gguf(batch).logits[0, -1]
            spread = float(want.max() - want.min()) or 1.0
            difference = float((want - got).abs().max()) / spread
            checks.append({"text": text, "tokens": len(ids), "same_tokens": same_tokens,
                           "logit_difference": round(difference, 6), "tolerance": TOLERANCE[written_type],
                           "same_next_token": int(want.argmax()) == int(got.argmax())})
            if not same_tokens:
                problems.append(f"{text!r} encodes to other token ids from the GGUF's vocabulary")
            if difference > TOLERANCE[written_type]:
                problems.append(f"next-token logits after {text!r} differ by {difference:.2%} of their range "
                                f"(tolerance for {written_type}: {TOLERANCE[written_type]:.2%})")
    if problems:
        raise ExportRejected(f"{path.name} does not match {model_dir}: " + "; ".join(problems))
    return ExportResult(path=str(path), outtype=written_type, written_type=written_type, bytes=path.stat().st_size,
                        seconds=0.0, architecture=architecture, tensors=len(reader.tensors),
                        chat_template=embedded is not None, checks=checks)
