"""Math-Shepherd's process supervision: `input` (the question and steps, each ended with `ки`) and `label` (the
same text with `+` or `-` in each tag's place)."""

from __future__ import annotations

from trlprep.inspector.dialects.columns import extra_columns
from trlprep.inspector.dialects.core import Dialect, Field, Shape, register

STEP_TAG = "ки"  # Math-Shepherd ends each step with it in `input`, and puts + or - in its place in `label`


def shepherd_steps(text: str, labels: str) -> tuple[str, list[str], list[bool]] | None:
    """A Math-Shepherd row as (question, steps, labels); None when `label` does not mark each step + or -.

    >>> shepherd_steps("Q? Step 1: a ки\\nStep 2: b ки", "Q? Step 1: a +\\nStep 2: b -")
    ('Q?', ['Step 1: a', 'Step 2: b'], [True, False])
    """
    parts = text.split(STEP_TAG)
    marks, position = [], 0
    for part in parts[:-1]:
        position += len(part)
        if position >= len(labels) or labels[position] not in "+-":
            return None
        marks.append(labels[position] == "+")
        position += 1
    question, found, first = parts[0].partition("Step 1:")
    steps = [("Step 1:" + first).strip() if found else parts[0].strip()] + [p.strip() for p in parts[1:-1]]
    return (question.strip() if found else ""), steps, marks


class MathShepherd(Dialect):
    """Stepwise supervision: the question as prompt, the steps as completions, each labelled good or bad."""

    name = "math_shepherd"
    description = ("Math-Shepherd step labels: the steps tagged `ки` in `input`, each labelled by the + or - in "
                   "its place in `label`, the question before `Step 1:` as the prompt")
    priority = 300
    example = {"input": "Q? Step 1: a ки\nStep 2: b ки", "label": "Q? Step 1: a +\nStep 2: b -"}

    def detect(self, row: dict) -> Shape | None:
        if isinstance(row.get("input"), str) and isinstance(row.get("label"), str) and STEP_TAG in row["input"]:
            return Shape("math_shepherd", "stepwise_supervision", "standard", False, (
                Field("input", "tagged_steps"), Field("label", "text")))
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        question, steps, labels = shepherd_steps(row["input"], row["label"])
        return {"prompt": question, "completions": steps, "labels": labels, **extra_columns(row, shape)}


register(MathShepherd())
