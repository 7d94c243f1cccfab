"""Instruction tasks with their instances, one task a row, read as rows of one instance each.

Self-Instruct's seed tasks (yizhongw/self-instruct, Stanford Alpaca's `seed_tasks.jsonl`) hold an `instruction`
and its `instances`, each `{"input", "output"}`; Super-NaturalInstructions' task files (allenai/natural-instructions)
hold a `Definition` and its `Instances`, each `{"id", "input", "output": [reference outputs]}`. A task is no
training example: each of its instances is one, the instruction with that instance's input prompting its output
(`inspector.dialects.task_instances` reads it).

`instance_rows` reads a file whose first row is a task into one row an instance: the task with its list of
instances replaced by the one instance, under `instance` (SNI's `Instance`, as its Tk-Instruct loader names it).
Every instance of a line is numbered by that line here; the scan numbers them in order and names the line each came
from. A task without instances stays a row of its own (rejected: it has no `instance`), so every line is accounted
for.
"""

from __future__ import annotations

from typing import Any, Iterator

# A task's list of instances -> the column one instance of it is written under, and the instruction beside it.
INSTANCE_COLUMNS = {"instances": ("instance", "instruction"), "Instances": ("Instance", "Definition")}


def instances_column(row: Any) -> str | None:
    """The column that lists a task row's instances (`instances`, or SNI's `Instances`); None for other rows.

    >>> instances_column({"instruction": "Add.", "instances": [{"input": "1 2", "output": "3"}]})
    'instances'
    >>> instances_column({"instruction": "Add.", "input": "1 2", "output": "3"}) is None
    True
    """
    if not isinstance(row, dict):
        return None
    return next((column for column, (_, instruction) in INSTANCE_COLUMNS.items()
                 if isinstance(row.get(column), list) and instruction in row), None)


def read_with(columns: set[str]) -> set[str]:
    """`columns` read by a shape, with the task column each instance column was expanded from: a row that still
    holds its list of instances is a task without any, rejected, so the list is never written (nor an extra column).

    >>> sorted(read_with({"instruction", "instance"}))
    ['instance', 'instances', 'instruction']
    """
    return columns | {listed for listed, (single, _) in INSTANCE_COLUMNS.items() if single in columns}


def is_task(row: Any) -> bool:
    """Whether a row is a task with a list of instances."""
    return instances_column(row) is not None


def instance_rows(rows: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    """A file of tasks as one row an instance, each numbered by its task's line, the task's other columns kept;
    rows that are not tasks, and tasks without instances, pass through as they are.

    >>> task = {"id": "seed_task_1", "instruction": "Add.", "instances": [{"input": "1 2", "output": "3"},
    ...                                                                    {"input": "2 2", "output": "4"}]}
    >>> list(instance_rows(iter([(1, task)])))  # doctest: +NORMALIZE_WHITESPACE
    [(1, {'id': 'seed_task_1', 'instruction': 'Add.', 'instance': {'input': '1 2', 'output': '3'}}),
     (1, {'id': 'seed_task_1', 'instruction': 'Add.', 'instance': {'input': '2 2', 'output': '4'}})]
    """
    for number, value in rows:
        column = instances_column(value)
        if column is None or not value[column]:
            yield number, value
            continue
        single = INSTANCE_COLUMNS[column][0]
        for instance in value[column]:
            yield number, {(single if key == column else key): (instance if key == column else kept)
                           for key, kept in value.items()}
