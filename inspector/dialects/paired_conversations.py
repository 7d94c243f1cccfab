"""Preference rows written as two whole conversations, `chosen_messages` and `rejected_messages` (the prompt
implicit in their shared start)."""

from __future__ import annotations

from trlprep.inspector.dialects.columns import extra_columns
from trlprep.inspector.dialects.core import Dialect, Field, Shape, register
from trlprep.inspector.dialects.messages import to_messages


class PairedConversations(Dialect):
    """Preference with an implicit prompt: the conversations as TRL's `chosen` and `rejected`."""

    name = "paired_conversations"
    description = "chosen_messages/rejected_messages as implicit-prompt preference"
    priority = 700
    example = {"chosen_messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
               "rejected_messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "5"}]}

    def detect(self, row: dict) -> Shape | None:
        if "chosen_messages" in row and "rejected_messages" in row:
            return Shape("paired_conversations", "preference", "conversational", True, (
                Field("chosen_messages", "messages"), Field("rejected_messages", "messages")))
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        return {"chosen": to_messages(row["chosen_messages"], roles),
                "rejected": to_messages(row["rejected_messages"], roles), **extra_columns(row, shape)}


register(PairedConversations())
