"""What the SFT cost report (`inspector.cost`) adds to `inspect --model`: GSM8K's test split (1319 rows) inspected
with the tests' tiny model without and with each `--packing` strategy, in one process, best of 3; then
`sft_cost` alone, on those rows and on 200,000 rows of random lengths.

    uv run python bench/cost.py                       # reads ../shared/data/gsm8k_test.jsonl
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from bench import best_of  # bench/bench.py: this script's folder is first on sys.path
from tests.conftest import SHARED_DATA
from tests.tiny_model import build_tiny_model
from trlprep.inspector import inspect_dataset
from trlprep.inspector.cost import PACKING_STRATEGIES, RunShape, sft_cost

GSM8K = SHARED_DATA / "gsm8k_test.jsonl"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        model = str(build_tiny_model(Path(folder) / "model"))
        inspect_dataset(str(GSM8K), model=model)  # the imports and the tokenizer's first load, not timed
        for packing in (None, *PACKING_STRATEGIES):
            seconds = best_of(3, inspect_dataset, str(GSM8K), model=model, packing=packing)
            print(f"inspect --model{f' --packing {packing}' if packing else ''}: {seconds:.2f} s")
    rows = [(length, ((length // 3, length),)) for length in (random.randint(50, 1200) for _ in range(200_000))]
    for packing in (None, *PACKING_STRATEGIES):
        seconds = best_of(3, sft_cost, rows[:1319], "prompt_completion", RunShape(packing=packing))
        large = best_of(1, sft_cost, rows, "prompt_completion", RunShape(packing=packing))
        print(f"sft_cost, packing {packing}: {seconds * 1000:.1f} ms for 1319 rows, {large:.2f} s for 200,000")


if __name__ == "__main__":
    main()
