"""UltraFeedback's binarized rows: `prompt` (a string) beside whole conversations that open with that prompt's
user turn: `chosen` and `rejected` (preference, the chosen conversation often again as `messages`), or
`completion` perhaps with a KTO `label`."""

from __future__ import annotations

from trlprep.inspector.dialects.columns import extra_columns
from trlprep.inspector.dialects.core import Dialect, Field, Shape, register
from trlprep.inspector.dialects.messages import to_messages
from trlprep.inspector.dialects.pairs import has_pair
from trlprep.inspector.dialects.prompts import prompt_turn_end


class UltraFeedback(Dialect):
    """The conversations cut after the prompt's turn: what comes before is the prompt, the rest the answers."""

    name = "ultrafeedback"
    description = ("a string prompt with chosen/rejected (or completion) conversations that open with it: the "
                   "opening turns become the prompt, the rest the answer (a `messages` copy of chosen is "
                   "dropped)")

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        extras = extra_columns(row, shape)
        if shape.type != "preference":
            completion = row["completion"]
            opening = prompt_turn_end(completion, row["prompt"])
            label = {"label": row["label"]} if shape.type == "unpaired_preference" else {}
            return {"prompt": to_messages(completion[:opening], roles),
                    "completion": to_messages(completion[opening:], roles), **label, **extras}
        chosen, rejected = row["chosen"], row["rejected"]
        opening = prompt_turn_end(chosen, row["prompt"])
        if extras.get("messages") == chosen:  # the chosen conversation again, as UltraFeedback ships it
            del extras["messages"]
        return {"prompt": to_messages(chosen[:opening], roles), "chosen": to_messages(chosen[opening:], roles),
                "rejected": to_messages(rejected[prompt_turn_end(rejected, row["prompt"]):], roles), **extras}


class UltraFeedbackPair(UltraFeedback):
    """After the single-message pairs among the `chosen`/`rejected` dialects."""

    priority = 620
    example = {"prompt": "2+2?", "chosen": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
               "rejected": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "5"}]}

    def detect(self, row: dict) -> Shape | None:
        prompt = row.get("prompt")
        if has_pair(row) and isinstance(prompt, str) and (
                prompt_turn_end(row["chosen"], prompt) or prompt_turn_end(row["rejected"], prompt)):
            return Shape("ultrafeedback", "preference", "conversational", False, (
                Field("prompt", "text"), Field("chosen", "prompted_messages"), Field("rejected", "prompted_messages")))
        return None


class UltraFeedbackCompletion(UltraFeedback):
    """Before TRL's own `completion` rows, which would read the conversation as the answer alone."""

    priority = 1000
    example = {"prompt": "2+2?", "label": True,
               "completion": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}

    def detect(self, row: dict) -> Shape | None:
        if "completion" in row and isinstance(row.get("prompt"), str) and prompt_turn_end(row["completion"],
                                                                                           row["prompt"]):
            label = (Field("label", "label"),) if "label" in row else ()
            return Shape("ultrafeedback", "unpaired_preference" if label else "prompt_completion",
                         "conversational", False, (Field("prompt", "text"), Field("completion", "prompted_messages"))
                         + label)
        return None


register(UltraFeedbackPair())
register(UltraFeedbackCompletion())
