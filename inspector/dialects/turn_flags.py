"""Conversations whose messages say whether each is trained: LLaMA-Factory's `loss_weight`, OpenAI's and
axolotl's `weight`, axolotl's `train` / `training` (see `messages.TURN_FLAG_KEYS`)."""

from __future__ import annotations

from typing import Any

from trlprep.inspector.dialects.columns import extra_columns
from trlprep.inspector.dialects.conversations import conversation_columns, conversation_shape
from trlprep.inspector.dialects.core import Dialect, Shape, register
from trlprep.inspector.dialects.messages import TURN_FLAG_KEYS, to_messages


def turn_flag(message: Any) -> Any:
    """A message's training flag, or None when it has none.

    >>> turn_flag({"role": "user", "content": "a", "train": False}), turn_flag({"role": "user", "content": "a"})
    (False, None)
    """
    if not isinstance(message, dict):
        return None
    return next((message[key] for key in TURN_FLAG_KEYS if key in message), None)


def trained_turns(messages: list) -> list:
    """Which turns a conversation's flags train: True or False for each message; a turn without a flag is trained
    when it is the assistant's (the convention of every format that has flags); a flag other than 0/1 or a
    boolean is kept as it is, for the checks to name.

    >>> trained_turns([{"role": "user", "content": "a", "loss_weight": 0.0},
    ...                {"role": "assistant", "content": "b", "loss_weight": 1.0}, {"role": "assistant", "content": "c"}])
    [False, True, True]
    >>> trained_turns([{"role": "assistant", "content": "b", "weight": 0.5}])
    [0.5]
    """
    out = []
    for message in messages:
        flag = turn_flag(message)
        if flag is None:
            out.append(isinstance(message, dict) and message.get("role") == "assistant")
        elif isinstance(flag, bool) or flag in (0, 1):
            out.append(bool(flag))
        else:
            out.append(flag)
    return out


class TurnFlags(Dialect):
    """Language modeling: the flags leave the messages, their meaning stays beside them as `trained_turns`. A
    conversation-column dialect, after ShareGPT's and the prompt sets; a KTO label makes the row another's."""

    name = "turn_flags"
    description = ("messages with per-turn training flags (`loss_weight`, `weight`, `train`): for SFT one "
                   "prompt-completion row per trained assistant turn, the turns before it the prompt, so TRL's "
                   "completion-only loss trains exactly the turns the flags train")
    priority = 1920
    example = {"messages": [{"role": "user", "content": "2+2?", "loss_weight": 0.0},
                            {"role": "assistant", "content": "4", "loss_weight": 1.0}]}

    def detect(self, row: dict) -> Shape | None:
        found = conversation_columns(row)
        if found is None or found[1]:
            return None
        value = row[found[0]]
        if isinstance(value, list) and any(turn_flag(m) is not None for m in value):
            return conversation_shape(row, "turn_flags", *found)
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        column = shape.columns[0]
        return {"messages": to_messages(row[column], roles), "trained_turns": trained_turns(row[column]),
                **extra_columns(row, shape)}


register(TurnFlags())
