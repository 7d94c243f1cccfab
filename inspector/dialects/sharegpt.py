"""ShareGPT (LLaMA-Factory's and axolotl's chat format): turns written `{"from": "human" | "gpt" | "system" |
"function_call" | "observation", "value": ...}` in a conversation column, perhaps beside a KTO label, `tools`
(a JSON string) and a `system` prompt (LLaMA-Factory's, read into the first message); its preference rows put single `chosen` and `rejected` turns after the conversation."""

from __future__ import annotations

from trlprep.inspector.dialects.conversations import (
    conversation_columns,
    conversation_shape,
    read_conversation,
    with_system,
)
from trlprep.inspector.dialects.core import Dialect, Shape, register
from trlprep.inspector.dialects.messages import message_style
from trlprep.inspector.dialects.pairs import message_pair_shape, read_message_pair, single_message_pair
from trlprep.inspector.dialects.prompts import user_turns_only


class ShareGPT(Dialect):
    """Read alike at both its places in the order: turns mapped to TRL roles."""

    name = "sharegpt"
    style = "from"
    description = ("ShareGPT from/value turns as messages, roles mapped (human→user, gpt→assistant, "
                   "function_call→assistant tool_calls, observation→tool)")

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        if shape.type == "preference":
            return read_message_pair(row, shape, roles)
        return read_conversation(row, shape, roles)


class ShareGPTPair(ShareGPT):
    """First of the `chosen`/`rejected` dialects: sides that are single `from` turns."""

    priority = 600
    example = {"conversations": [{"from": "human", "value": "2+2?"}],
               "chosen": {"from": "gpt", "value": "4"}, "rejected": {"from": "gpt", "value": "5"}}

    def detect(self, row: dict) -> Shape | None:
        pair = single_message_pair(row)
        if pair is not None and pair[0] == "from":
            return message_pair_shape("sharegpt", pair[1])
        return None


class ShareGPTConversation(ShareGPT):
    """First of the conversation-column dialects: `from` turns, a prompt set when they are all the user's."""

    priority = 1900
    example = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}],
               "tools": '[{"name": "weather", "parameters": {}}]'}

    def detect(self, row: dict) -> Shape | None:
        found = conversation_columns(row)
        if found is None or message_style(row[found[0]]) != "from":
            return None
        column, label = found
        # A prompt set: nothing to train on, prompts to generate from.
        kind = "prompt_only" if not label and user_turns_only(row[column]) else None
        shape = conversation_shape(row, "sharegpt", column, label, kind)
        return with_system(shape) if isinstance(row.get("system"), str) else shape


register(ShareGPTPair())
register(ShareGPTConversation())
