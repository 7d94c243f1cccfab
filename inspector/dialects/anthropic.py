"""Anthropic's Messages API: a top-level `system`, messages whose content is a string or a list of blocks (`text`,
`thinking`, `tool_use`, and `tool_result` in the user turn that answers), and `tools` with `input_schema`."""

from __future__ import annotations

import functools
from typing import Any, Iterator

from trlprep.inspector.dialects.agent_turns import AgentDialect
from trlprep.inspector.dialects.conversations import blocks_text, with_system
from trlprep.inspector.dialects.core import Field, Shape, register
from trlprep.inspector.dialects.messages import message_style
from trlprep.inspector.toolcalls import call

AGENT_BLOCKS = frozenset({"tool_use", "tool_result", "thinking", "redacted_thinking"})


# The blocks a message is read from: the agent blocks, text, and images (placed as typed parts by
# `inspector.vision` before any dialect reads the row). Others (server tools' blocks, documents) are refused.
READ_BLOCKS = AGENT_BLOCKS | {"text", "image"}


@functools.cache
def with_block_checks(shape: Shape) -> Shape:
    """The shape with its messages checked block by block (`anthropic_messages` fields): a block it cannot read, or
    a tool result holding more than text, is refused rather than dropped."""
    return Shape(shape.dialect, shape.type, shape.format, shape.implicit_prompt, tuple(
        Field(f.name, "anthropic_messages", f.required) if f.kind == "messages" else f for f in shape.fields))


def unread_blocks(messages: list) -> Iterator[str]:
    """Where a message holds a block the dialect does not read, or a tool result holds more than text.

    >>> list(unread_blocks([{"role": "user", "content": [{"type": "tool_result", "content": [{"type": "image"}]},
    ...                                                   {"type": "document"}]}]))
    ["[0].content[0]: a tool result holding 'image' blocks: a tool message holds text", "[0].content[1]: a 'document' block, which no chat template reads"]
    """
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        for j, block in enumerate(content if isinstance(content, list) else ()):
            kind = block.get("type") if isinstance(block, dict) else None
            if kind not in READ_BLOCKS:
                yield f"[{i}].content[{j}]: a {kind!r} block, which no chat template reads"
            elif kind == "tool_result" and isinstance(block.get("content"), list):
                for part in block["content"]:
                    if not (isinstance(part, dict) and part.get("type") == "text"):
                        kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                        yield f"[{i}].content[{j}]: a tool result holding {kind!r} blocks: a tool message holds text"
                        break


def has_agent_blocks(messages: list) -> bool:
    """Whether a message holds a block only Anthropic's API writes: its agent blocks, or a server tool's use or
    result (`server_tool_use`, `web_search_tool_result`, ...), which the field checks then refuse."""
    return any(isinstance(m, dict) and isinstance(m.get("content"), list) and any(
        isinstance(b, dict) and isinstance(b.get("type"), str)
        and (b["type"] in AGENT_BLOCKS or b["type"].endswith(("_tool_use", "_tool_result")))
        for b in m["content"]) for m in messages)


def function_tool(tool: Any) -> Any:
    """An Anthropic tool as a function schema; server tools (a `type` of their own, no schema) as they are.

    >>> function_tool({"name": "f", "description": "d", "input_schema": {"type": "object"}})
    {'type': 'function', 'function': {'name': 'f', 'description': 'd', 'parameters': {'type': 'object'}}}
    """
    if not isinstance(tool, dict) or "input_schema" not in tool:
        return tool
    function = {key: value for key, value in tool.items() if key not in ("input_schema", "cache_control", "type")}
    return {"type": "function", "function": {**function, "parameters": tool["input_schema"]}}


def anthropic_turn(message: dict) -> list[dict]:
    """One Anthropic message as TRL messages: its tool results as tool messages, then the turn itself with its text,
    its thinking as `reasoning_content` and its tool uses as calls; a user turn of tool results only is those.
    Image blocks, placed already as typed parts (`inspector.vision`), stay in place among the text parts.

    >>> anthropic_turn({"role": "assistant", "content": [{"type": "thinking", "thinking": "Need weather."},
    ...     {"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Paris"}}]})
    [{'role': 'assistant', 'content': '', 'reasoning_content': 'Need weather.', 'tool_calls': [{'id': 't1', 'type': 'function', 'function': {'name': 'weather', 'arguments': {'city': 'Paris'}}}]}]
    >>> anthropic_turn({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "18C"}]})
    [{'role': 'tool', 'content': '18C', 'tool_call_id': 't1'}]
    """
    content = message.get("content")
    if not isinstance(content, list):
        return [message]
    results, parts, thinking, calls = [], [], [], []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "tool_result":
            text = blocks_text(block.get("content"))
            # An error result is trained as one: the flag has no place in a tool message, so the text says it.
            if block.get("is_error") and not text.lower().startswith("error"):
                text = f"Error: {text}"
            results.append({"role": "tool", "content": text, "tool_call_id": block.get("tool_use_id")})
        elif kind == "tool_use":
            calls.append(call(block.get("name"), block.get("input", {}), block.get("id")))
        elif kind == "thinking":
            thinking.append(block.get("thinking", ""))
        elif kind != "redacted_thinking":  # encrypted: nothing a model can be trained on
            parts.append(block)
    if not parts and not calls and not thinking and results:
        return results
    text_only = all(isinstance(p, dict) and p.get("type") == "text" for p in parts)
    turn = {**message, "content": blocks_text(parts) if text_only else parts}
    if thinking:
        turn["reasoning_content"] = "".join(thinking)
    if calls:
        turn["tool_calls"] = calls
    return results + [turn]


class Anthropic(AgentDialect):
    """Language modeling with tools and thinking; a conversation-column dialect, told by its blocks, its tools'
    `input_schema` or a `system` column beside role/content messages."""

    name = "anthropic"
    description = ("Anthropic Messages: `system` as the first message, tool_use blocks as tool_calls, tool_result "
                   "blocks as tool messages, thinking as reasoning_content, `input_schema` tools as functions")
    priority = 1865
    example = {"system": "You check the weather.",
               "tools": [{"name": "weather", "input_schema": {"type": "object", "properties": {
                   "city": {"type": "string"}}, "required": ["city"]}}],
               "messages": [{"role": "user", "content": "Weather in Paris?"},
                            {"role": "assistant", "content": [
                                {"type": "text", "text": "Checking."},
                                {"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Paris"}}]},
                            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                                          "content": "18C"}]},
                            {"role": "assistant", "content": "It is 18C in Paris."}]}

    def fits(self, row: dict, column: str, label: str | None) -> bool:
        messages = row[column]
        if message_style(messages) != "role":
            return False
        tools = row.get("tools")
        return has_agent_blocks(messages) or isinstance(row.get("system"), (str, list)) or (
            isinstance(tools, list) and any(isinstance(t, dict) and "input_schema" in t for t in tools))

    def detect(self, row: dict) -> Shape | None:
        shape = super().detect(row)
        if shape is None:
            return None
        shape = with_block_checks(shape)
        return with_system(shape) if "system" in row else shape

    def rewrite(self, messages: list[dict], row: dict) -> tuple[list[dict], list | None]:
        out: list[dict] = []
        for message in messages:
            out.extend(anthropic_turn(message))
        tools = row.get("tools")
        return out, [function_tool(t) for t in tools] if isinstance(tools, list) else tools


register(Anthropic())
