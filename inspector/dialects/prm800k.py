"""PRM800K's process supervision: `question` (`problem`, perhaps `ground_truth_answer`) and `label` (the
labeller's `steps`, each rated completions and the one chosen)."""

from __future__ import annotations

from trlprep.inspector.dialects.columns import extra_columns
from trlprep.inspector.dialects.core import Dialect, Field, Shape, register


def prm800k_steps(label: dict) -> tuple[list[str], list[bool]]:
    """The steps of a PRM800K trajectory and their labels: each step's chosen completion, rated 1 or 0 (neutral)
    good and -1 bad, or the labeler's own completion where none was chosen (good); it ends where neither is.

    >>> prm800k_steps({"steps": [{"completions": [{"text": "a", "rating": 1}], "chosen_completion": 0},
    ...                          {"completions": [{"text": "b", "rating": -1}], "chosen_completion": None,
    ...                           "human_completion": {"text": "c"}}, {"completions": None}]})
    (['a', 'c'], [True, True])
    """
    steps, labels = [], []
    for step in label.get("steps") or []:
        chosen, completions = step.get("chosen_completion"), step.get("completions") or []
        if isinstance(chosen, int) and 0 <= chosen < len(completions):
            steps.append(completions[chosen].get("text"))
            labels.append((completions[chosen].get("rating") or 0) >= 0)
        elif isinstance(step.get("human_completion"), dict):
            steps.append(step["human_completion"].get("text"))
            labels.append(True)
        else:
            break
    return steps, labels


class PRM800K(Dialect):
    """Stepwise supervision: the problem as prompt, the trajectory's steps as completions; the ground-truth
    answer, when given, as `answer`."""

    name = "prm800k"
    description = ("PRM800K trajectories: each step's chosen completion (rated 1 or 0: good, -1: bad) or the "
                   "labeler's own completion (good), the problem as the prompt, its ground-truth answer kept")
    priority = 400
    example = {"question": {"problem": "1+1?", "ground_truth_answer": "2"},
               "label": {"steps": [{"completions": [{"text": "1+1 = 2", "rating": 1}], "chosen_completion": 0}]}}

    def detect(self, row: dict) -> Shape | None:
        if isinstance(row.get("question"), dict) and isinstance(row.get("label"), dict) and "steps" in row["label"]:
            return Shape("prm800k", "stepwise_supervision", "standard", False, (
                Field("question", "prm_question"), Field("label", "prm_steps")))
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        steps, labels = prm800k_steps(row["label"])
        return {"prompt": row["question"].get("problem"), "completions": steps, "labels": labels,
                **({"answer": row["question"]["ground_truth_answer"]}
                   if "ground_truth_answer" in row["question"] else {}), **extra_columns(row, shape)}


register(PRM800K())
