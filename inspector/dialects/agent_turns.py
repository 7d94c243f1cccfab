"""What the tool-calling dialects share: a conversation column whose messages the dialect rewrites into TRL's
(`rewrite`), its `tools` found where the dialect keeps them, before the row is read as any conversation is
(`read_conversation`); `inspector.toolcalls` then puts the calls in canonical form."""

from __future__ import annotations

from trlprep.inspector.dialects.columns import extra_columns
from trlprep.inspector.dialects.conversations import ConversationDialect, read_conversation
from trlprep.inspector.dialects.core import Shape
from trlprep.inspector.dialects.messages import to_messages


class AgentDialect(ConversationDialect):
    """A conversation dialect whose messages hold tool calls in a form of its own: `rewrite(messages, row)` returns
    the TRL messages and the row's tools, wherever the dialect keeps them (None: the row's `tools` column, if any)."""

    def rewrite(self, messages: list[dict], row: dict) -> tuple[list[dict], list | None]:
        raise NotImplementedError

    def read(self, row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
        column = shape.columns[0]
        messages, tools = self.rewrite(to_messages(row[column], roles), row)
        extras = extra_columns(row, shape)
        if tools is not None:
            extras["tools"] = tools
        return read_conversation({**row, column: messages}, shape, None, extras)
