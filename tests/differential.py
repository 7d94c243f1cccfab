"""The trust check: on a dataset, for every method, `convert` keeps and rejects exactly what `inspect` said, and
every row it writes is data TRL's own helpers take.

For each method `inspect` calls ready or convertible, the file is converted for real: the ledger (rows kept,
rows rejected, rejections by rule) must equal the verdict's, the rejects file must hold those rows with those
rules, and each written row must pass TRL's `maybe_extract_prompt` and `maybe_apply_chat_template` under a chat
template, with no empty answer and no prompt repeated inside the answer. A method `inspect` calls incompatible
must be refused.

Run it on any data: `uv run python -m tests.differential PATH [PATH ...]` (files or folders; exit 1 when a file
disagrees, with one line per disagreement).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from converters import convert
from inspector import inspect_dataset
from inspector.errors import DataRefused, SourceError
from inspector.methods import METHODS
from inspector.sources import DATA_SUFFIXES

ANSWER_SIDES = ("completion", "chosen", "rejected")


def check_dataset(path: str | Path, tokenizer: Any = None) -> list[str]:
    """Every disagreement between `inspect` and `convert` on one dataset, as lines (none: they agree)."""
    try:
        report = inspect_dataset(path)
    except SourceError:
        return []  # unreadable: both commands refuse it alike (tests/test_broken_inputs.py)
    problems = []
    for method in METHODS:
        verdict = report.methods[method]
        with tempfile.TemporaryDirectory() as folder:
            output = Path(folder) / "out.jsonl"
            try:
                result = convert(path, to=method, output=output)
            except DataRefused as refused:
                if verdict["status"] != "incompatible" and refused.result is None:
                    problems.append(f"{path} {method}: inspect says {verdict['status']}, convert refuses: {refused}")
                if refused.result is not None:
                    problems += _ledger_problems(path, method, verdict, refused.result)
                continue
            if verdict["status"] == "incompatible":
                problems.append(f"{path} {method}: inspect says incompatible ({verdict['reason']}), convert wrote "
                                f"{result.rows_kept} rows")
                continue
            problems += _ledger_problems(path, method, verdict, result)
            rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines() if line.strip()]
            for number, row in enumerate(rows, start=1):
                problems += [f"{path} {method}: written row {number}: {problem}"
                             for problem in trl_problems(row, tokenizer)]
    return problems


def _ledger_problems(path, method: str, verdict: dict, result) -> list[str]:
    problems = []
    said = (verdict["rows_kept"], verdict["rows_rejected"], verdict["rejected_by_rule"])
    done = (result.rows_kept, result.rows_rejected, dict(sorted(result.rejected_by_rule.items())))
    if said != done:
        problems.append(f"{path} {method}: inspect said kept/rejected/by rule {said}, convert did {done}")
    if result.rejects:
        lines = Path(result.rejects).read_text(encoding="utf-8").splitlines()
        by_rule = Counter(json.loads(line)["rule"] for line in lines)
        if dict(by_rule) != result.rejected_by_rule:
            problems.append(f"{path} {method}: the rejects file holds {dict(by_rule)}, the ledger says "
                            f"{result.rejected_by_rule}")
    return problems


def trl_problems(row: dict, tokenizer: Any = None) -> list[str]:
    """What is wrong with one converted row as TRL data: an empty answer, the prompt repeated in the answer, a
    row TRL's helpers reject."""
    from trl.data_utils import maybe_apply_chat_template, maybe_extract_prompt

    problems = []
    prompt = row.get("prompt")
    for side in ANSWER_SIDES:
        answer = row.get(side)
        if answer is None:
            continue
        if isinstance(answer, str):
            if not answer.strip():
                problems.append(f"{side} is empty")
        elif not answer or any(isinstance(m.get("content"), str) and not m["content"].strip()
                                and not m.get("tool_calls") for m in answer):
            problems.append(f"{side} holds an empty message")
        if isinstance(prompt, list) and isinstance(answer, list) and prompt and answer[: len(prompt)] == prompt:
            problems.append(f"{side} repeats the prompt")
    try:
        example = maybe_extract_prompt(dict(row))
        if tokenizer is not None:
            rendered = maybe_apply_chat_template(example, tokenizer)
            problems += [f"{key} renders empty" for key in ANSWER_SIDES if rendered.get(key) == ""]
    except Exception as error:  # TRL's own helpers are the judge here
        problems.append(f"TRL's helpers refuse it: {type(error).__name__}: {error}")
    return problems


def datasets_under(paths: list[str]) -> list[Path]:
    found = []
    for spec in paths:
        path = Path(spec)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(
                DATA_SUFFIXES + tuple(s + ".gz" for s in DATA_SUFFIXES)))
        else:
            found.append(path)
    return found


def main(argv: list[str]) -> int:
    tokenizer = None
    try:
        from tests.tiny_model import build_tiny_model
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(build_tiny_model(Path(tempfile.mkdtemp()) / "tiny"))
    except ImportError:
        pass
    failed = 0
    for path in datasets_under(argv):
        problems = check_dataset(path, tokenizer)
        failed += bool(problems)
        print(f"{'DISAGREE' if problems else 'agree   '} {path}")
        for problem in problems[:20]:
            print(f"  {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
