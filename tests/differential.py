"""The trust check: on a dataset, for every method, `convert` keeps and rejects exactly the rows `inspect` said,
for the same rules, and every row it writes is data TRL's own helpers take.

For each method `inspect` calls ready or convertible, the file is converted for real: the ledger (rows kept,
rows rejected, rejections by rule) must equal the verdict's, and the rejects file must hold the very rows the
verdict names (`rejected_rows`, every one of them: `inspect` runs with no cap on the rows it lists), each with the
rule the verdict gives it. Counts alone miss a swap, one row rejected by `inspect` and another by `convert`; the
row numbers do not. Each written row must pass TRL's `maybe_extract_prompt` and `maybe_apply_chat_template` under
a chat template, with no empty answer and no prompt repeated inside the answer. A method `inspect` calls
incompatible must be refused.

Run it on any data: `uv run --all-extras python -m tests.differential [--train] [PATH ...]` (files or folders,
each folder also as one dataset of its files; no PATH: the slices in `tests/data/shared/`, and `../shared/data`
where it is beside the checkout): one line per dataset, `agree`, `DISAGREE` with one line per
disagreement, `unread` for data that both commands refuse to read (with why: a folder mixing formats, a format they do not
read yet; text in another encoding is read in the one their refusal proposes), or `CRASH` when either raised; exit 1 when a dataset disagrees or crashes. With `--train`, each converted
output is also trained on for one step by the method's TRL trainer (a tiny model built in-process), which must
keep every row.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from trlprep.converters import convert
from trlprep.inspector import inspect_dataset
from trlprep.errors import DataRefused, SourceError
from trlprep.inspector.methods import BASE_METHODS, METHOD, REGISTRY
from trlprep.inspector.sources import DATA_SUFFIXES

ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = [ROOT / "tests" / "data" / "shared", ROOT.parent / "shared" / "data"]  # slices, then the full files
ANSWER_SIDES = ("completion", "chosen", "rejected")
TRAIN_MAX_LENGTH = 1 << 15
EVERY_ROW = 1 << 62  # `inspect --max-rows`: every rejected row listed, not the first few
GENERATED_LENGTH = 16  # a generating trainer's max_length is that of what it generates, which drops no row
# The five methods with data of their own, and those whose entry changes what `convert` writes or refuses (GKD's
# messages, TPO's and SDFT's columns): every other method writes exactly the rows of the method it takes data of.
CHECKED_METHODS = BASE_METHODS + tuple(m.name for m in REGISTRY if m.data_as and (m.style or m.columns))


class Unread(Exception):
    """Neither `inspect` nor `convert` reads the dataset: both refuse it alike, for this reason."""


def check_dataset(path: str | Path, tokenizer: Any = None, model: str | None = None,
                  encoding: str | None = None) -> list[str]:
    """Every disagreement between `inspect` and `convert` on one dataset, as lines (none: they agree); `Unread`
    when both refuse to read it. With `model` (a local model folder), each converted output also goes through
    `train` for one step: its trainer must keep every row written. Text that is not UTF-8 is read in the
    encoding the refusal proposes, as a user would run both commands again."""
    try:
        report = inspect_dataset(path, max_rows=EVERY_ROW, encoding=encoding)
    except SourceError as error:
        try:
            convert(path, to="sft", dry_run=True, encoding=encoding)
        except SourceError:
            proposed = getattr(error, "proposed", None)
            if proposed is not None and encoding is None:
                return check_dataset(path, tokenizer, model, proposed)
            raise Unread(str(error)) from None
        return [f"{path}: inspect cannot read it ({error}), convert can"]
    problems = []
    for method in CHECKED_METHODS:
        verdict = report.methods[method]
        with tempfile.TemporaryDirectory() as folder:
            output = Path(folder) / "out.jsonl"
            try:
                result = convert(path, to=method, output=output, encoding=encoding)
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
            rows = [json.loads(line) for line in output.read_text(encoding="utf-8").split("\n") if line.strip()]
            for number, row in enumerate(rows, start=1):
                problems += [f"{path} {method}: written row {number}: {problem}"
                             for problem in trl_problems(row, tokenizer)]
            if model is not None:
                problems += _trainer_problems(path, method, output, len(rows), model)
    return problems


def _trainer_problems(path, method: str, output: Path, rows: int, model: str) -> list[str]:
    """The converted rows through `train` and the method's TRL trainer, one step, with a max_length no row
    reaches: the trainer's own preparation must keep every one."""
    from trlprep.train.api import train

    entry = METHOD[method]
    needs = {"reward_funcs": ("length_penalty",) if "reward" in entry.needs else (),
             "teacher": model if "teacher" in entry.needs else None}
    try:
        result = train(method=method, model=model, dataset=str(output), output_dir=output.parent / "run",
                       max_steps=1, max_length=TRAIN_MAX_LENGTH if entry.length_field == "max_length"
                       else GENERATED_LENGTH, batch_size=2, **needs)
    except Exception as error:  # the trainer is the judge here
        return [f"{path} {method}: train refuses the converted data: {type(error).__name__}: {error}"]
    if result.rows_trained != rows:
        return [f"{path} {method}: the trainer kept {result.rows_trained} of the {rows} rows written"]
    return []


def _ledger_problems(path, method: str, verdict: dict, result) -> list[str]:
    problems = []
    said = (verdict["rows_kept"], verdict["rows_rejected"], verdict["rejected_by_rule"])
    done = (result.rows_kept, result.rows_rejected, dict(sorted(result.rejected_by_rule.items())))
    if said != done:
        problems.append(f"{path} {method}: inspect said kept/rejected/by rule {said}, convert did {done}")
    records = [json.loads(line) for line in Path(result.rejects).read_text(encoding="utf-8").split("\n")
               if line] if result.rejects else []
    by_rule = Counter(record["rule"] for record in records)
    if dict(by_rule) != result.rejected_by_rule:
        problems.append(f"{path} {method}: the rejects file holds {dict(by_rule)}, the ledger says "
                        f"{result.rejected_by_rule}")
    problems += [f"{path} {method}: {line}" for line in row_disagreements(
        {row: rule for rule, rows in verdict["rejected_rows"].items() for row in rows},
        {record["row"]: record["rule"] for record in records})]
    return problems


def row_disagreements(said: dict[int, str], done: dict[int, str]) -> list[str]:
    """The rows `inspect` and `convert` decide differently, from the rule each rejects a row by (`said`, `done`:
    row -> rule; a row neither holds is kept).

    >>> row_disagreements({3: "TP201", 5: "TP604"}, {3: "TP201", 4: "TP604", 5: "TC103"})
    ['row 4: inspect keeps it, convert rejects it (TP604)', 'row 5: inspect rejects it (TP604), convert rejects it (TC103)']
    >>> row_disagreements({7: "TP604"}, {})
    ['row 7: inspect rejects it (TP604), convert keeps it']
    """
    def decision(rule: str | None) -> str:
        return f"rejects it ({rule})" if rule else "keeps it"

    return [f"row {row}: inspect {decision(said.get(row))}, convert {decision(done.get(row))}"
            for row in sorted(said.keys() | done.keys()) if said.get(row) != done.get(row)]


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


def datasets_under(paths: list[str], folders: bool = True) -> list[Path]:
    """The data files under `paths`, and (with `folders`) each folder given, read whole as one dataset."""
    found = []
    for spec in paths:
        path = Path(spec)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(
                DATA_SUFFIXES + tuple(s + ".gz" for s in DATA_SUFFIXES)))
            found += [path] if folders else []
        else:
            found.append(path)
    return found


def main(argv: list[str]) -> int:
    train = "--train" in argv
    paths = [arg for arg in argv if arg != "--train"] or [str(folder) for folder in REAL_DATA if folder.is_dir()]
    from tests.tiny_model import build_tiny_model
    from transformers import AutoTokenizer

    model = build_tiny_model(Path(tempfile.mkdtemp()) / "tiny")
    tokenizer = AutoTokenizer.from_pretrained(model)
    failed = 0
    for path in datasets_under(paths):
        try:
            problems = check_dataset(path, tokenizer, str(model) if train else None)
        except Unread as unread:
            print(f"unread   {path}: {unread}")
            continue
        except Exception as error:  # a bug of either command, reported for this dataset; the others go on
            print(f"CRASH    {path}: {type(error).__name__}: {error}")
            failed += 1
            continue
        failed += bool(problems)
        print(f"{'DISAGREE' if problems else 'agree   '} {path}")
        for problem in problems[:20]:
            print(f"  {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
