"""Prompt sets written as messages: a conversation column holding user turns (perhaps after a system message)
and nothing else, no label."""

from __future__ import annotations

from trlprep.inspector.dialects.conversations import ConversationDialect
from trlprep.inspector.dialects.core import register
from trlprep.inspector.dialects.prompts import user_turns_only


class PromptMessages(ConversationDialect):
    """Prompt-only: nothing to train on, prompts to generate from. After ShareGPT's conversations, which read
    their own prompt sets."""

    name = "prompt_messages"
    description = "conversations of user turns only (a system message may lead) as conversational prompts"
    priority = 1910
    kind = "prompt_only"
    example = {"conversation": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]}

    def fits(self, row: dict, column: str, label: str | None) -> bool:
        return not label and user_turns_only(row[column])


register(PromptMessages())
