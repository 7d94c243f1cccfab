"""Golden reports: the JSON report of `inspect` on every dataset the project reads, held byte for byte across
changes that must not change behaviour (timings aside).

`uv run python -m tests.golden --write` records the reports of the current code in `tests/data/golden/`;
`tests/test_golden.py` requires today's reports to equal them. The datasets are the files in `examples/`, the
slices of `../shared/data` shipped in `tests/data/shared/` and, when `../shared/data` is beside the checkout, every
file there as well. Each is inspected
as it is, and with the opt-in checks that read the rows a second time (`--near-duplicates`, `--cut-off`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "data" / "golden"
SLICES = ROOT / "tests" / "data" / "shared"
SHARED = ROOT.parent / "shared" / "data"
SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".gz", ".arrow")
# What a report holds that differs between two runs of the same code.
TIMINGS = ("stats",)
VARIANTS = {"default": {}, "opt-in": {"near_duplicates": True, "cut_off": True}}


def datasets() -> list[str]:
    """The datasets whose reports are held, as paths relative to the repository root (as the report names them)."""
    found = sorted(p for p in (ROOT / "examples").iterdir() if p.suffix in SUFFIXES)
    for folder in (SLICES, SHARED) if SHARED.is_dir() else (SLICES,):
        found += sorted(p for p in folder.rglob("*") if p.suffix in SUFFIXES and "images" not in p.parts)
    return [os.path.relpath(p, ROOT) for p in found]


def golden_name(dataset: str, variant: str) -> str:
    return dataset.replace("../", "").replace("/", "__") + f".{variant}.json"


def report_json(dataset: str, variant: str) -> str:
    """The report as `inspect --format json` prints it, its timings left out, keys sorted."""
    from trlprep.inspector import inspect_dataset
    from trlprep.errors import SourceError

    try:
        report = inspect_dataset(dataset, **VARIANTS[variant]).to_dict()
    except SourceError as error:  # an unreadable file's one line is its report
        report = {"error": str(error)}
    for key in TIMINGS:
        report.pop(key, None)
    return json.dumps(report, indent=1, sort_keys=True, ensure_ascii=False, default=str) + "\n"


def main(argv: list[str]) -> int:
    os.chdir(ROOT)
    if argv != ["--write"]:
        print("usage: python -m tests.golden --write", file=sys.stderr)
        return 2
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for dataset in datasets():
        for variant in VARIANTS:
            (GOLDEN / golden_name(dataset, variant)).write_text(report_json(dataset, variant), encoding="utf-8")
            print(f"{dataset} ({variant})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
