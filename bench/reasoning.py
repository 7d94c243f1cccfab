"""What the reasoning rules (TP801-TP806) cost `inspect`: rows/s with them and without them (the family taken out
of the catalog, `inspector.rules.unregistered`), in the same process, timed alternately (the machine is noisy).

    uv run python bench/reasoning.py                 # 100,000 rows a file
    uv run python bench/reasoning.py --rows 20000 --repeat 3

Generates, under bench/data/ (kept between runs), two conversation files of the same words (1-3 exchanges,
lognormal content lengths): one of clean text, which the fast path takes whole, and one whose every answer opens
with a `<think>` trace, which every row takes the full checks for (`<` is no fast text). Each is inspected in one
process, --repeat times with the rules and without, the two alternating: the best rates, their ratio, and the
median of the ratios of each pair of runs.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / "bench" / "data"
WORDS = ("the of and to in is that it for on with as was at by this be from or have an are not but what all "
         "were when we there can more if no out so said about up into them some could time would make like").split()


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(max(1, int(rng.lognormvariate(3.5, 0.8)))))


def generate(rows: int, traced: bool, seed: int = 0) -> Path:
    """A conversation file of `rows` rows, every answer with a `<think>` trace when `traced` (cached)."""
    path = DATA / f"reasoning-{'traced' if traced else 'clean'}-{rows}.jsonl"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(rows):
            messages = []
            for _ in range(rng.randint(1, 3)):
                answer = _text(rng)
                if traced:
                    answer = f"<think>\n{_text(rng)}\n</think>\n\n{answer}"
                messages += [{"role": "user", "content": _text(rng)}, {"role": "assistant", "content": answer}]
            handle.write(json.dumps({"messages": messages}) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from trlprep.inspector import inspect_dataset
    from trlprep.inspector.rules import unregistered

    def seconds(path: Path) -> float:
        started = time.perf_counter()
        report = inspect_dataset(path, workers=1)
        assert report.rows_checked == args.rows
        return time.perf_counter() - started

    def without(path: Path) -> float:
        with unregistered("TP8"):
            return seconds(path)

    print(f"inspect, 1 process, best of {args.repeat} (rows/s); without: TP801-TP806 out of the catalog")
    for name, traced in (("clean text", False), ("every answer traced", True)):
        path = generate(args.rows, traced)
        seconds(path)  # the page cache, and the imports, before the first timed run
        times = {"with": [], "without": []}
        for _ in range(args.repeat):
            times["with"].append(seconds(path))
            times["without"].append(without(path))
        rate = {key: args.rows / min(value) for key, value in times.items()}
        # Each pair of runs is back to back: the median of their ratios is steadier than the ratio of the bests.
        ratios = sorted(a / b for a, b in zip(times["with"], times["without"]))
        print(f"{name:>20}: with {rate['with']:>9,.0f}  without {rate['without']:>9,.0f}  "
              f"time with / without: {rate['without'] / rate['with']:.2f} (bests), "
              f"{ratios[len(ratios) // 2]:.2f} (median of pairs, from {ratios[0]:.2f} to {ratios[-1]:.2f})")

if __name__ == "__main__":
    main()
