"""GGUF export: what the verification costs on top of llama.cpp's converter, and how close each type stays.

    uv run --extra gguf python bench/gguf_export.py                      # a Qwen2 of ~60M parameters
    uv run --extra gguf python bench/gguf_export.py --hidden 256 --layers 4

A Qwen2 with the tiny test tokenizer and random weights is built in-process and saved. For each type, in the same
process: the converter alone (the baseline: what `convert_hf_to_gguf.py` does), then `train.export.export_gguf`
(the converter, then the read-back and the logit comparison). Printed: seconds, the ratio of the two, the file
size, and the largest next-token logit difference as a share of the logit range, against the tolerance.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build(folder: Path, hidden: int, layers: int) -> int:
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from tests.tiny_model import build_tiny_model

    build_tiny_model(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    config = Qwen2Config(hidden_size=hidden, intermediate_size=hidden * 3, num_hidden_layers=layers,
                         num_attention_heads=8, num_key_value_heads=2, vocab_size=len(tokenizer),
                         tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, max_position_embeddings=2048)
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(folder)
    return sum(parameter.numel() for parameter in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--layers", type=int, default=8)
    args = parser.parse_args()
    import gguf
    import torch

    from trlprep.train.export import WRITTEN, _converter_class, export_gguf, plan_export

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "model"
        parameters = build(folder, args.hidden, args.layers)
        print(f"Qwen2, {parameters / 1e6:.1f}M parameters (hidden {args.hidden}, {args.layers} layers)")
        print(f"{'type':6} {'converter s':>12} {'export+verify s':>16} {'ratio':>6} {'MB':>8} {'max diff':>9} "
              f"{'tolerance':>9}")
        for outtype in ("f16", "bf16", "q8_0"):
            plan = plan_export(outtype, "qwen2")
            converter = _converter_class(folder, plan.pre_tokenizer)
            started = time.perf_counter()
            with torch.inference_mode():
                converter(folder, getattr(gguf.LlamaFileType, WRITTEN[outtype]),
                          Path(scratch) / f"baseline-{outtype}.gguf").write()
            baseline = time.perf_counter() - started
            started = time.perf_counter()
            result = export_gguf(folder, Path(scratch) / "out", plan)
            ours = time.perf_counter() - started
            worst = max(check["logit_difference"] for check in result.checks)
            print(f"{outtype:6} {baseline:12.2f} {ours:16.2f} {ours / baseline:6.2f} {result.bytes / 1e6:8.1f} "
                  f"{worst:9.2%} {result.checks[0]['tolerance']:9.1%}")


if __name__ == "__main__":
    main()
