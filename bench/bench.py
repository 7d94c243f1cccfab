"""Benchmarks: trlprep against baselines run in the same process, as ratios (these machines are noisy).

    uv run python bench/bench.py                 # 50,000 generated chat rows
    uv run python bench/bench.py --rows 200000   # the size the performance issue names

Generates a chat JSONL (2-6 turns, lognormal content lengths) and an implicit-prompt preference JSONL under
bench/data/, then times, each best of --repeat runs:
- reading every row with json / orjson (the floor any full check sits on),
- `inspect` of the file (every rule, every row), in one process and in two (files over 64 MB are split),
- `datasets.load_dataset("json")` + `.map(...)`: how the peers walk rows,
- `convert` ShareGPT → messages against `datasets.map(trl.maybe_convert_to_chatml)`,
- `convert` implicit → explicit prompt against `datasets.map(trl.extract_prompt)`,
- `inspect --model`'s tokenization under a chat template (a tiny in-process tokenizer) of the first 5,000 rows,
  on one and two cores,
and the shared real datasets when ../shared/data is there.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import resource
import shutil
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / "bench" / "data"
TOKENIZED_ROWS = 5000  # tokenizing is ~100x slower than checking: a slice gives its rate
WORDS = ("the of and to in is that it for on with as was at by this be from or have an are not but what all "
         "were when we there can more if no out so said about up into them some could time would make like").split()


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(max(1, int(rng.lognormvariate(3.5, 0.8)))))


def generate(rows: int, seed: int = 0) -> tuple[Path, Path]:
    """A ShareGPT chat file and an implicit-prompt preference file of `rows` rows each (cached)."""
    DATA.mkdir(parents=True, exist_ok=True)
    chat, pairs = DATA / f"chat-{rows}.jsonl", DATA / f"pairs-{rows}.jsonl"
    if chat.exists() and pairs.exists():
        return chat, pairs
    rng = random.Random(seed)
    with open(chat, "wb") as c, open(pairs, "wb") as p:
        for _ in range(rows):
            turns = [{"from": "human" if i % 2 == 0 else "gpt", "value": _text(rng)}
                     for i in range(2 * rng.randint(1, 3))]
            c.write(orjson.dumps({"conversations": turns}) + b"\n")
            prompt = [{"role": "user", "content": _text(rng)}]
            p.write(orjson.dumps({"chosen": prompt + [{"role": "assistant", "content": _text(rng)}],
                                  "rejected": prompt + [{"role": "assistant", "content": _text(rng)}]}) + b"\n")
    return chat, pairs


def best_of(repeat: int, function) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def read_json(path: Path) -> None:
    with open(path, "rb") as handle:
        for line in handle:
            json.loads(line)


def read_orjson(path: Path) -> None:
    with open(path, "rb") as handle:
        for line in handle:
            orjson.loads(line)


def peers_walk(path: Path) -> None:
    import datasets

    datasets.disable_progress_bars()
    dataset = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(DATA / "hf-cache"))
    dataset.map(lambda row: {"ok": bool(row["conversations"])}, load_from_cache_file=False)


def trl_map(path: Path, function) -> None:
    import datasets

    datasets.disable_progress_bars()
    dataset = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(DATA / "hf-cache"))
    dataset.map(function, load_from_cache_file=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from converters import convert
    from inspector import inspect_dataset

    chat, pairs = generate(args.rows)
    out = DATA / "out"
    out.mkdir(exist_ok=True)
    size_mb = chat.stat().st_size / 1e6
    rows = args.rows
    results: list[tuple[str, float, int, float]] = []

    def measure(name: str, function, n_rows: int = rows, mb: float = size_mb) -> float:
        seconds = best_of(args.repeat, function)
        results.append((name, seconds, n_rows, mb))
        return seconds

    def convert_to(source: Path, to: str) -> None:
        convert(source, to=to, output=out / f"{source.stem}.{to}.jsonl", overwrite=True)

    base = measure("orjson per line (decode only)", lambda: read_orjson(chat))
    measure("json per line (decode only)", lambda: read_json(chat))
    measure("trlprep inspect, every rule, 1 process", lambda: inspect_dataset(chat, workers=1))
    measure("trlprep inspect, every rule, 2 processes", lambda: inspect_dataset(chat, workers=2))
    measure("datasets.load_dataset + map (peers)", lambda: peers_walk(chat))
    import trl

    sharegpt_ours = measure("trlprep convert sharegpt -> messages", lambda: convert_to(chat, "sft"))
    sharegpt_trl = measure("datasets.map(trl.maybe_convert_to_chatml)",
                           lambda: trl_map(chat, trl.maybe_convert_to_chatml))
    pairs_mb = pairs.stat().st_size / 1e6
    extract_ours = measure("trlprep convert implicit -> explicit", lambda: convert_to(pairs, "dpo"), mb=pairs_mb)
    extract_trl = measure("datasets.map(trl.extract_prompt)", lambda: trl_map(pairs, trl.extract_prompt), mb=pairs_mb)

    from inspector.sources import open_source
    from inspector.tokens import token_preflight
    from tests.tiny_model import build_tiny_model

    model = str(build_tiny_model(DATA / "tiny-model"))
    token_rows = list(itertools.islice(open_source(chat).rows(), TOKENIZED_ROWS))
    token_mb = sum(len(orjson.dumps(row)) for _, row in token_rows) / 1e6
    one = measure("tokenize under the chat template, 1 process",
                  lambda: token_preflight(token_rows, model=model, workers=1), len(token_rows), token_mb)
    two = measure("tokenize under the chat template, 2 processes",
                  lambda: token_preflight(token_rows, model=model, workers=2), len(token_rows), token_mb)

    shared = ROOT.parent / "shared" / "data"
    if shared.is_dir():
        for path in sorted(shared.iterdir()):
            if path.suffix in (".json", ".jsonl"):
                n = inspect_dataset(path).rows_checked
                measure(f"inspect {path.name}", lambda p=path: inspect_dataset(p), n, path.stat().st_size / 1e6)

    print(f"{rows:,} generated chat rows ({size_mb:.1f} MB), best of {args.repeat}; ratio = time / orjson decode time")
    print(f"| {'what':<44} | {'seconds':>8} | {'rows/s':>10} | {'MB/s':>7} | {'ratio':>6} |")
    print(f"| {'-' * 44} | {'-' * 8}: | {'-' * 10}: | {'-' * 7}: | {'-' * 6}: |")
    for name, seconds, n_rows, mb in results:
        print(f"| {name:<44} | {seconds:>8.3f} | {n_rows / seconds:>10,.0f} | {mb / seconds:>7.1f} | "
              f"{seconds / base:>6.2f} |")
    print(f"\nconvert sharegpt -> messages vs datasets.map(maybe_convert_to_chatml): {sharegpt_trl / sharegpt_ours:.2f}x")
    print(f"convert implicit -> explicit vs datasets.map(extract_prompt): {extract_trl / extract_ours:.2f}x")
    print(f"tokenizing with 2 processes vs 1: {one / two:.2f}x")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this whole process: {peak:.0f} MB")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
