"""The report's lines of summary: rows checked and the shape, validity, the shapes seen, near-duplicates and
tokens. The text and Markdown reports (`inspector.report`) and the HTML page (`inspector.html`) each say them;
they take a `Report` and import neither. Also the sums of a conversion's ledger (rows written, a split), which
`convert`, `train`, the page and the Hub card each print from the ledger as a dict.
"""

from __future__ import annotations

import re

from trlprep.inspector.methods import TYPE_NAMES

# The characters a terminal acts on rather than shows: C0 controls but tab and newline (ESC starts a sequence that
# recolours, retitles or clears; a carriage return writes over the line), DEL, C1 controls (CSI), and the
# bidirectional overrides and isolates, which reorder what is shown.
_ACTED_ON = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    r"""Text from the data (a column name, a value, a file name) as the text and Markdown reports and the error lines
    print it: each character a terminal would act on written as its escape, so the report cannot be recoloured,
    retitled or written over by the data it reports on. The JSON report keeps the text exact.

    >>> print(visible("\x1b[31mred"), visible("\x1b]0;title\x07"), visible("\u202egnp.exe"))
    \x1b[31mred \x1b]0;title\x07 \u202egnp.exe
    >>> visible("tab\tand\nline") == "tab\tand\nline"
    True
    """
    return _ACTED_ON.sub(lambda match: match.group().encode("unicode_escape").decode(), text)


def written_sum(ledger: dict) -> str:
    """The rows written, as the rows kept and those one kept row added (a conversion's ledger, as a dict).

    >>> written_sum({"rows_out": 600, "rows_kept": 300, "rows_added": 300, "rows_added_by": "KTO unpairing"})
    '600 = kept 300 + 300 from KTO unpairing'
    >>> written_sum({"rows_out": 299, "rows_kept": 299, "rows_added": 0})
    '299'
    """
    if not ledger.get("rows_added"):
        return str(ledger["rows_out"])
    return f"{ledger['rows_out']} = kept {ledger['rows_kept']} + {ledger['rows_added']} from {ledger['rows_added_by']}"


def split_sum(split: dict) -> str:
    """A --test-size split's rows, which add up to the rows written; with the kept rows they came from when one
    kept row became several (pairs unpaired for KTO stay in one split).

    >>> split_sum({"train": 540, "test": 60, "train_kept": 270, "test_kept": 30})
    'train 540 rows + test 60 rows = 600 written (from 270 + 30 kept rows)'
    >>> split_sum({"train": 285, "test": 15, "train_kept": 285, "test_kept": 15})
    'train 285 rows + test 15 rows = 300 written'
    """
    line = f"train {split['train']} rows + test {split['test']} rows = {split['train'] + split['test']} written"
    if (split["train"], split["test"]) != (split["train_kept"], split["test_kept"]):
        line += f" (from {split['train_kept']} + {split['test_kept']} kept rows)"
    return line


def near_duplicates_line(found: dict) -> str:
    """The near-duplicate clusters in a line: how many, and the largest with its closest rows.

    >>> near_duplicates_line({"threshold": 0.8, "shingle_words": 5, "clusters": 2, "rows_repeating": 3,
    ...     "largest": [{"kept": 4, "size": 3, "rows": [{"row": 9, "similarity": 0.91}, {"row": 12, "similarity": 1.0}]}]})
    'near-duplicates (similarity >= 0.8 over 5-word shingles): 2 clusters, 3 rows repeat an earlier one; largest: row 4 and 2 more (row 9 at 0.91, row 12 at 1.00)'
    """
    clusters, rows = found["clusters"], found["rows_repeating"]
    said = (f"near-duplicates (similarity >= {found['threshold']} over {found['shingle_words']}-word shingles): "
            f"{clusters} cluster{'' if clusters == 1 else 's'}, {rows} "
            f"{'row repeats' if rows == 1 else 'rows repeat'} an earlier one")
    if found["largest"]:
        top = found["largest"][0]
        said += (f"; largest: row {top['kept']} and {top['size'] - 1} more ("
                 + ", ".join(f"row {r['row']} at {r['similarity']:.2f}" for r in top["rows"][:3])
                 + (", ..." if top["size"] - 1 > 3 else "") + ")")
    return said


def tokens_line(tokens: dict) -> str:
    return (f"tokens per row: p50 {tokens['p50']}, p95 {tokens['p95']}, p99 {tokens['p99']}, max {tokens['max']}; "
            f"{tokens['over_max_length']} over max_length={tokens['max_length']}; recommended max_length "
            f"{tokens['recommended_max_length']}")


def cost_line(cost: dict, trainer: str = "SFTTrainer") -> str:
    """What a run costs (`inspector.cost`) in one line, as `inspect --model` and `train` print it: SFT's
    sequences and tokens, another trainer's rows or prompts; then its optimizer steps.

    >>> cost_line({"method": "sft", "packing": "bfd", "rows": 1319, "sequences": 98, "fill": 0.97, "tokens": 97328,
    ...            "tokens_cut": 0, "trained_tokens": 51234, "rows_without_trained_tokens": 0, "rows_dropped": 0,
    ...            "devices": 1, "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1,
    ...            "steps_per_epoch": 13, "steps": 39, "max_length": 1024})
    'SFTTrainer cost: 1319 rows packed (bfd) into 98 sequences of 1024, fill 97%; 51,234 of 97,328 tokens trained per epoch, 0 cut; 13 optimizer steps per epoch (batch 8 x 1 accumulation x 1 device), 39 in all'
    >>> cost_line({"method": "rloo", "prompts": 24, "num_generations": 2, "prompts_unused": 0, "devices": 1,
    ...            "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1, "steps_per_epoch": 12,
    ...            "steps": 36}, "RLOOTrainer")
    'RLOOTrainer cost: 24 prompts, 2 completions generated for each; 12 optimizer steps per epoch (batch 4 x 1 accumulation x 1 device), 36 in all'
    """
    if "prompts" in cost:
        rows = f"{cost['prompts']} prompts, {cost['num_generations']} completions generated for each" + (
            f" ({cost['prompts_unused']} left over each epoch, too few for a generation)" if cost["prompts_unused"]
            else "")
    elif "sequences" not in cost:
        rows = f"{cost['rows']} rows"
    elif cost["packing"]:
        rows = (f"{cost['rows']} rows packed ({cost['packing']}) into {cost['sequences']} sequences of "
                f"{cost['max_length']}, fill {cost['fill']:.0%}")
        if cost["rows_without_trained_tokens"]:
            rows += f", {cost['rows_without_trained_tokens']} row(s) with no trained token taking space"
    else:
        rows = f"{cost['sequences']} of {cost['rows']} rows trained ({cost['rows_dropped']} dropped)"
    if "trained_tokens" in cost:
        rows += (f"; {cost['trained_tokens']:,} of {cost['tokens']:,} tokens trained per epoch, "
                 f"{cost['tokens_cut']:,} cut")
    return (f"{trainer} cost: {rows}; {cost['steps_per_epoch']} optimizer steps per epoch (batch "
            f"{cost['per_device_train_batch_size']} x {cost['gradient_accumulation_steps']} accumulation x "
            f"{cost['devices']} device{'s' if cost['devices'] > 1 else ''}), {cost['steps']} in all")


def cost_lines(tokens: dict, trainer: str = "SFTTrainer") -> list[str]:
    """The token report's cost, when it has one: its line, then each warning about the run's settings."""
    cost = tokens.get("cost")
    return [cost_line(cost, trainer)] + [f"warning: {warning}" for warning in cost.get("warnings", ())] \
        if cost else []


def shown_method(method: str, verdict: dict) -> str:
    """The method's name, marked when its trainer is in TRL's experimental package (`EXPERIMENTAL_NOTE`)."""
    return f"{method}*" if verdict.get("experimental") else method


EXPERIMENTAL_NOTE = "* the trainer is in trl.experimental: its API may change between TRL releases"


def summary_line(report) -> str:
    checked = f"{report.rows_checked} rows checked"
    if report.sampled:
        checked += f" (a sample of the first {report.rows_checked}" + (
            f" of {report.rows}" if report.rows else "") + ")"
    prompt = ", implicit prompt" if report.implicit_prompt else ""
    return (f"{checked}; {report.format} {TYPE_NAMES.get(report.type, report.type)}{prompt}; "
            f"dialect {report.dialect}; {report.stats.get('rows_per_second', 0):,.0f} rows/s")


def shape_lines(report) -> list[str]:
    """The shapes seen, when rows have more than one, and each file's, when there are several."""
    lines = []
    if len(report.shapes) > 1 and len(report.per_file) == 1:
        lines.append("shapes seen: " + "; ".join(
            f"{s['dialect']} {s['format']} {TYPE_NAMES.get(s['type'], s['type'])} in {s['rows']} row(s) "
            f"(first rows {', '.join(map(str, s['first_rows'][:3]))})" for s in report.shapes))
    if len(report.per_file) > 1:
        for file in report.per_file:
            read_as = file["read_as"]
            lines.append(f"  {file['file']}: {file['rows']} row(s), {file['dialect']} {file['format']} "
                         f"{TYPE_NAMES.get(file['type'], file['type'])}" + (
                             f"; not the dataset's shape, so its rows are read as {read_as['dialect']} "
                             f"{read_as['format']} {TYPE_NAMES.get(read_as['type'], read_as['type'])} (TP404)"
                             if read_as else ""))
    return lines


def validity_line(report) -> str:
    errors = sum(1 for f in report.findings if f.severity == "error")
    warnings = len(report.findings) - errors
    if report.valid:
        return f"no errors, {warnings} warning rule(s)"
    return (f"{report.rows_with_errors} row(s) break error rules ({errors} error rule(s), "
            f"{warnings} warning rule(s))")
