"""ColossalChat's KTO rows: `prompt` (messages), `completion` (one message) and `label`."""

from __future__ import annotations

from trlprep.inspector.dialects.columns import extra_columns
from trlprep.inspector.dialects.core import Dialect, Field, Shape, register
from trlprep.inspector.dialects.messages import single_message_style, to_chat_message, to_messages


class ColossalChat(Dialect):
    """Unpaired preference: the completion message as a one-message completion."""

    name = "colossalchat"
    style = "either"  # `from` + `content`, or role/content
    description = ("ColossalChat's KTO rows: prompt messages (`from` + `content`), one completion message and a "
                   "label, read as conversational unpaired preference")
    priority = 900
    example = {"prompt": [{"from": "user", "content": "2+2?"}], "completion": {"from": "assistant", "content": "4"},
               "label": True}

    def detect(self, row: dict) -> Shape | None:
        if "completion" in row and "label" in row and single_message_style(row["completion"]) \
                and isinstance(row.get("prompt"), list):
            return Shape("colossalchat", "unpaired_preference", "conversational", False, (
                Field("prompt", "messages"), Field("completion", "message"), Field("label", "label")))
        return None

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        return {"prompt": to_messages(row["prompt"], roles), "completion": [to_chat_message(row["completion"], roles)],
                "label": row["label"], **extra_columns(row, shape)}


register(ColossalChat())
