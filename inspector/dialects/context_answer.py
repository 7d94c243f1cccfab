"""Rows of a `context` (messages, the bot's turns as `bot`) and its answer: `answer_w` and `answer_l`
(preference), or `answer` with `is_desirable` (unpaired preference)."""

from __future__ import annotations

from trlprep.inspector.dialects.columns import extra_columns
from trlprep.inspector.dialects.core import Dialect, Field, Shape, register
from trlprep.inspector.dialects.messages import to_chat_message, to_messages


class ContextAnswer(Dialect):
    """The context as prompt, the answers as one-message completions; `bot` is the assistant."""

    name = "context_answer"
    description = ("context messages + one answer message (is_desirable as the KTO label), or answer_w / "
                   "answer_l as chosen/rejected; its `bot` role read as assistant")
    priority = 1800
    roles = {"bot": "assistant"}
    example = {"context": [{"role": "user", "content": "2+2?"}], "answer_w": {"role": "bot", "content": "4"},
               "answer_l": {"role": "bot", "content": "5"}}

    def detect(self, row: dict) -> Shape | None:
        if not isinstance(row.get("context"), list):
            return None
        if "answer_w" in row and "answer_l" in row:
            return Shape("context_answer", "preference", "conversational", False, (
                Field("context", "messages"), Field("answer_w", "message"), Field("answer_l", "message")))
        if isinstance(row.get("answer"), dict) and "is_desirable" in row:
            return Shape("context_answer", "unpaired_preference", "conversational", False, (
                Field("context", "messages"), Field("answer", "message"), Field("is_desirable", "label")))
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        roles = {**self.roles, **(roles or {})}
        prompt, extras = to_messages(row["context"], roles), extra_columns(row, shape)
        if shape.type == "preference":
            return {"prompt": prompt, "chosen": [to_chat_message(row["answer_w"], roles)],
                    "rejected": [to_chat_message(row["answer_l"], roles)], **extras}
        return {"prompt": prompt, "completion": [to_chat_message(row["answer"], roles)],
                "label": row["is_desirable"], **extras}


register(ContextAnswer())
