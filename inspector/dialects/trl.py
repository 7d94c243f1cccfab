"""TRL's own columns (https://huggingface.co/docs/trl/dataset_formats): `text` or `messages` (language
modeling), `prompt` (prompt-only), `prompt` and `completion`, `chosen` and `rejected` (preference, the prompt
explicit or implicit), `completion` and `label` (unpaired preference), `prompt`, `completions` and `labels`
(stepwise supervision); each in the standard format (strings) or the conversational one (message lists).

Each of TRL's types is told at its own place in the priority order, after the dialects that write the same
columns more narrowly; they all read alike: the row is TRL's already, and only the roles given are mapped.
"""

from __future__ import annotations

from trlprep.inspector.dialects.columns import extra_columns, format_of, prompt_field, side_kind
from trlprep.inspector.dialects.conversations import conversation_columns, conversation_shape
from trlprep.inspector.dialects.core import Dialect, Field, Shape, register
from trlprep.inspector.dialects.messages import message_style, to_messages
from trlprep.inspector.dialects.pairs import has_pair


class TRL(Dialect):
    """A row in TRL's columns; the subclasses below tell each type at its place in the order."""

    name = "trl"
    description = "TRL's own columns"

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        if not roles:
            return dict(row)
        converted = {n: to_messages(row[n], roles) if message_style(row[n]) else row[n]
                     for n in shape.columns if n in row}
        return {**converted, **extra_columns(row, shape)}


class StepwiseSupervision(TRL):
    priority = 500
    example = {"prompt": "1+1?", "completions": ["1+1 = 2", "so 2"], "labels": [True, True]}

    def detect(self, row: dict) -> Shape | None:
        if "prompt" in row and "completions" in row and "labels" in row:
            return Shape("trl", "stepwise_supervision", "standard", False, (
                Field("prompt", "text"), Field("completions", "text_list"), Field("labels", "bool_list")))
        return None


class Preference(TRL):
    """Last of the `chosen`/`rejected` dialects: any pair the others do not claim is TRL's."""

    priority = 640
    example = {"prompt": "2+2?", "chosen": "4", "rejected": "5"}

    def detect(self, row: dict) -> Shape | None:
        if not has_pair(row):
            return None
        implicit = "prompt" not in row
        fmt = format_of(row["chosen"], row["rejected"], row.get("prompt")) or "standard"
        fields = (Field("chosen", side_kind(fmt)), Field("rejected", side_kind(fmt)))
        if not implicit:
            fields = (prompt_field(fmt),) + fields
        return Shape("trl", "preference", fmt, implicit, fields)


class UnpairedPreference(TRL):
    priority = 1100
    example = {"prompt": "2+2?", "completion": "4", "label": True}

    def detect(self, row: dict) -> Shape | None:
        if "completion" in row and "label" in row:
            fmt = format_of(row.get("completion"), row.get("prompt")) or "standard"
            return Shape("trl", "unpaired_preference", fmt, False, (
                prompt_field(fmt), Field("completion", side_kind(fmt)), Field("label", "label")))
        return None


class PromptCompletion(TRL):
    priority = 1200
    example = {"prompt": [{"role": "user", "content": "2+2?"}], "completion": [{"role": "assistant", "content": "4"}]}

    def detect(self, row: dict) -> Shape | None:
        if "prompt" in row and "completion" in row:
            fmt = format_of(row.get("completion"), row.get("prompt")) or "standard"
            return Shape("trl", "prompt_completion", fmt, False, (
                prompt_field(fmt), Field("completion", side_kind(fmt))))
        return None


class PromptOnly(TRL):
    priority = 1400
    example = {"prompt": "2+2?"}

    def detect(self, row: dict) -> Shape | None:
        if "prompt" in row:
            fmt = format_of(row.get("prompt")) or "standard"
            return Shape("trl", "prompt_only", fmt, False, (prompt_field(fmt),))
        return None


class Messages(TRL):
    """Last but one of the conversation-column dialects: plain messages in TRL's own `messages` column."""

    priority = 1950
    example = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}

    def detect(self, row: dict) -> Shape | None:
        found = conversation_columns(row)
        if found is not None and found[0] == "messages":
            return conversation_shape(row, "trl", *found)
        return None


class Text(TRL):
    """Last of all: any other row with `text` is a document."""

    priority = 2600
    example = {"text": "The sky is blue."}

    def detect(self, row: dict) -> Shape | None:
        if "text" in row:
            return Shape("trl", "language_modeling", "standard", False, (Field("text", "text"),))
        return None


for trl_type in (StepwiseSupervision, Preference, UnpairedPreference, PromptCompletion, PromptOnly, Messages, Text):
    register(trl_type())
