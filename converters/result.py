"""What a conversion did: its ledger (rows in = kept + rejected), the files it wrote and how, as JSON, text or
Markdown. Below both the conversion (`converters.api`) and the Hub upload (`converters.hub`), which card it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from trlprep.inspector.methods import METHOD
from trlprep.inspector.rules import RULES
from trlprep.inspector.summary import split_sum, visible, written_sum


@dataclass
class ConversionResult:
    source: str
    to: str
    rows_in: int
    rows_kept: int
    rows_rejected: int
    rows_out: int
    rejected_by_rule: dict[str, int]
    repaired: dict[str, int]
    output: str | None
    outputs: dict[str, str]
    rejects: str | None
    plan: list[str]
    preview: list[dict]
    dry_run: bool
    verification: dict[str, Any] = field(default_factory=dict)
    pushed_to: str | None = None
    seconds: float = 0.0
    split: dict[str, Any] | None = None  # how --test-size grouped the rows (`Staging._grouped`)
    shards: list[dict] | None = None  # with --executor: each input shard's ledger and output shard
    # rows_out = rows_kept + rows_added: rows written beyond one a kept row, and why (None when there are none)
    rows_added: int = 0
    rows_added_by: str | None = None

    def __post_init__(self):
        self.rows_added = self.rows_out - self.rows_kept
        self.rows_added_by = added_by(self.to) if self.rows_added else None

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2).decode()

    def to_text(self) -> str:
        lines = [f"{self.source} → {self.to}" + (" (dry run: nothing written)" if self.dry_run else "")]
        lines += [f"  {step}" for step in self.plan]
        lines.append(f"rows in {self.rows_in} = kept {self.rows_kept} + rejected {self.rows_rejected}; "
                     f"rows written {written_sum(self.to_dict())}" + ("" if not self.dry_run else " (would be)"))
        for rule, count in sorted(self.rejected_by_rule.items()):
            lines.append(f"  rejected {count:>6}  {rule} {_reason_name(rule)}")
        for repair, count in sorted(self.repaired.items()):
            lines.append(f"  repaired {count:>6}  {repair}")
        if self.split:
            lines.append(f"split by {_split_grouping(self.split)}: {self.split['groups']} groups, "
                         f"{self.split['test_groups']} in test; {split_sum(self.split)}")
        for split, path in self.outputs.items():
            lines.append(f"wrote {path}" + (f" ({split})" if split != "all" else "") + (
                f" ({sum(shard['output'] is not None for shard in self.shards)} Parquet shards)" if self.shards else ""))
        if self.rejects:
            lines.append(f"rejects: {self.rejects}")
        if self.verification:
            lines.append(f"inspected output for {self.to}: {self.verification['status']}")
        if self.pushed_to:
            lines.append(f"pushed to https://huggingface.co/datasets/{self.pushed_to}")
        if self.dry_run and self.preview:
            lines.append("first converted rows:")
            lines += [f"  {orjson.dumps(row, default=str).decode()}" for row in self.preview]
        return "\n".join(lines) + "\n"


    def to_markdown(self) -> str:
        """The summary to paste into an issue or a pull request."""
        lines = [f"**{self.source}** → `{self.to}`" + (" (dry run)" if self.dry_run else ""), "",
                 "| rows in | kept | rejected | written |", "| --- | --- | --- | --- |",
                 f"| {self.rows_in} | {self.rows_kept} | {self.rows_rejected} | {self.rows_out} |"]
        if self.rejected_by_rule:
            lines += ["", "| rejected by | rows |", "| --- | --- |"]
            lines += [f"| {rule} {_reason_name(rule)} | {count} |" for rule, count in sorted(self.rejected_by_rule.items())]
        if self.split:
            lines += ["", f"Split by {_split_grouping(self.split)}: {split_sum(self.split)}."]
        outputs = [f"`{path}`" + (f" ({split})" if split != "all" else "") for split, path in self.outputs.items()]
        if outputs or self.rejects:
            lines += ["", "Wrote " + ", ".join(outputs + ([f"rejects `{self.rejects}`"] if self.rejects else [])) + "."]
        return "\n".join(lines) + "\n"

    def render(self, output_format: str) -> str:
        """The summary in `output_format`; as text or Markdown, with the data's control characters made visible (its
        file and column names are in it; no line of ours holds one)."""
        if output_format == "json":
            return self.to_json()
        return visible(self.to_markdown() if output_format == "markdown" else self.to_text())


def added_by(to: str) -> str:
    """What makes a conversion to `to` write more rows than it keeps."""
    if METHOD[to].base == "kto":
        return "KTO unpairing"
    return "one row per trained turn"


def _reason_name(rule: str) -> str:
    return RULES[rule].name


def _split_grouping(split: dict) -> str:
    """How a --test-size split kept related rows together.

    >>> _split_grouping({"by": "prompt", "near_duplicate_rows": 4})
    'prompt and near-duplicate cluster (4 rows in clusters), so that none is in both splits'
    """
    clusters = f" and near-duplicate cluster ({split['near_duplicate_rows']} rows in clusters)" \
        if split["near_duplicate_rows"] else ""
    return f"{split['by']}{clusters}, so that none is in both splits"
