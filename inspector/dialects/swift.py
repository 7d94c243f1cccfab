"""ms-swift's agent format: messages with `tool_call` turns (a `{name, arguments}` JSON string each; several in a
row are parallel calls) and `tool_response` turns, beside `tools` (a JSON string)."""

from __future__ import annotations

from trlprep.inspector.dialects.agent_turns import AgentDialect
from trlprep.inspector.dialects.core import register
from trlprep.inspector.dialects.messages import sharegpt_tool_calls
from trlprep.inspector.toolcalls import call

SWIFT_ROLES = {"tool_call": "assistant", "tool_response": "tool"}


class Swift(AgentDialect):
    """Language modeling with tools: each run of `tool_call` turns becomes the calls of one assistant turn (the
    assistant's text just before them, if any, is that turn's content), each `tool_response` a tool message."""

    name = "swift"
    roles = SWIFT_ROLES
    description = ("ms-swift agent messages: tool_call turns as the calls of one assistant turn, tool_response "
                   "turns as tool messages")
    priority = 1870
    example = {"tools": '[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", '
                        '"properties": {"city": {"type": "string"}}}}}]',
               "messages": [{"role": "user", "content": "Weather in Paris?"},
                            {"role": "tool_call", "content": '{"name": "get_weather", "arguments": {"city": "Paris"}}'},
                            {"role": "tool_response", "content": '{"temperature": 18}'},
                            {"role": "assistant", "content": "It is 18C in Paris."}]}

    def fits(self, row: dict, column: str, label: str | None) -> bool:
        for message in row[column]:
            if type(message) is dict and message.get("role") in SWIFT_ROLES:
                return True
        return False

    def rewrite(self, messages: list[dict], row: dict) -> tuple[list[dict], list | None]:
        out: list[dict] = []
        for message in messages:
            role, content = message.get("role"), message.get("content")
            if role == "tool_call":
                calls = sharegpt_tool_calls(content) or [call(None, content)]
                last = out[-1] if out else None
                if last is not None and last.get("role") == "assistant":
                    last["tool_calls"] = last.get("tool_calls", []) + calls
                else:
                    out.append({"role": "assistant", "content": "", "tool_calls": calls})
            elif role == "tool_response":
                out.append({"role": "tool", "content": content})
            else:
                out.append(dict(message))
        return out, None


register(Swift())
