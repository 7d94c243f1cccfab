"""Prompt sets written as messages: a conversation column holding user turns (perhaps after a system message)
and nothing else, no label."""

from __future__ import annotations

from trlprep.inspector.dialects.conversations import conversation_columns, conversation_shape, read_conversation
from trlprep.inspector.dialects.core import Dialect, Shape, register
from trlprep.inspector.dialects.prompts import user_turns_only


class PromptMessages(Dialect):
    """Prompt-only: nothing to train on, prompts to generate from. After ShareGPT's conversations, which read
    their own prompt sets."""

    name = "prompt_messages"
    description = "conversations of user turns only (a system message may lead) as conversational prompts"
    priority = 1910
    example = {"conversation": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]}

    def detect(self, row: dict) -> Shape | None:
        found = conversation_columns(row)
        if found is not None and not found[1] and user_turns_only(row[found[0]]):
            return conversation_shape(row, "prompt_messages", *found, kind="prompt_only")
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        return read_conversation(row, shape, roles)


register(PromptMessages())
