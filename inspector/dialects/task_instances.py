"""One instance of an instruction task a row, as `inspector.instances` reads a file of tasks: Self-Instruct's
`instruction` with one `instance` (`{"input", "output"}`), or Super-NaturalInstructions' `Definition` (a list of
one text, or a text) with one `Instance` (`{"id", "input", "output": [reference outputs]}`), the task's other
columns beside them."""

from __future__ import annotations

from trlprep.inspector.dialects.columns import extra_columns
from trlprep.inspector.dialects.core import Dialect, Field, Shape, register
from trlprep.inspector.dialects.messages import assistant_message, user_message
from trlprep.inspector.dialects.prompts import first_of, instruction_query
from trlprep.inspector.instances import INSTANCE_COLUMNS


class TaskInstances(Dialect):
    """Conversational prompt-completion: the instruction and the instance's input, joined as alpaca joins them, are
    the prompt, and its output the completion. The instance's other keys (SNI's `id`) are kept beside the task's columns."""

    name = "task_instances"
    description = ("Self-Instruct / Super-NaturalInstructions tasks, one row an instance: the instruction (SNI's "
                   "first Definition) and the instance's input, joined as alpaca joins them, are the prompt, and its "
                   "output the completion (the first of SNI's reference outputs; TP216 counts the others)")
    priority = 450
    example = {"id": "seed_task_1", "instruction": "What is the relation between the given pairs?",
               "instance": {"input": "Night : Day :: Right : Left",
                            "output": "The relation between the given pairs is that they are opposites."}}

    def detect(self, row: dict) -> Shape | None:
        for instance, instruction in INSTANCE_COLUMNS.values():
            if isinstance(row.get(instance), dict) and instruction in row:
                kind = "text_list" if isinstance(row[instruction], list) else "text"
                return Shape(self.name, "prompt_completion", "conversational", False,
                             (Field(instruction, kind), Field(instance, "instance")))
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        instruction, instance = shape.columns
        one = row[instance]
        query = instruction_query(first_of(row[instruction]), one.get("input"))
        task = extra_columns(row, shape)
        # The instance's own keys beside the task's: one the task also has (an `id`) is the instance's `instance_id`.
        own = {(f"instance_{k}" if k in task else k): v for k, v in one.items() if k not in ("input", "output")}
        return {"prompt": [user_message(query)], "completion": [assistant_message(first_of(one["output"]))],
                **task, **own}


register(TaskInstances())
