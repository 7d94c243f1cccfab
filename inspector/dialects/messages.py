"""Messages in every style the dialects write them (OpenAI/TRL `role`/`content`, ShareGPT `from`/`value`, typed
content parts, tool calls) and their reading as TRL messages."""

from __future__ import annotations

from typing import Any

import orjson

from trlprep.inspector.toolcalls import named_call

CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "function_call": "assistant",
    "observation": "tool",
    "tool": "tool",
}
# Names peers and datasets use for chat roles, and the TRL role each one means.
ROLE_ALIASES = {
    "human": "user",
    "prompter": "user",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "ai": "assistant",
    "chatgpt": "assistant",
    "function": "tool",
    "observation": "tool",
    "ipython": "tool",
    "function_call": "assistant",
}
# Per-message training flags: LLaMA-Factory's `loss_weight`, OpenAI's and axolotl's `weight`, axolotl's `train` /
# `training` (its message_field_training). 0 or false: not trained; 1 or true: trained.
TURN_FLAG_KEYS = ("loss_weight", "weight", "train", "training")
REASONING_PARTS = ("reasoning", "thinking")
CALL_PARTS = ("tool_call",)


def message_style(value: Any) -> str | None:
    """`"role"` for OpenAI/TRL messages, `"from"` for ShareGPT turns, else None.

    >>> message_style([{"from": "human", "value": "Hi"}])
    'from'
    >>> message_style([{"role": "user", "content": "Hi"}])
    'role'
    >>> message_style("Hi"), message_style([]), message_style([1])
    (None, None, None)
    """
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return single_message_style(value[0])
    return None


def single_message_style(value: Any) -> str | None:
    """Style of one message object.

    >>> single_message_style({"from": "gpt", "value": "Hello"})
    'from'
    >>> single_message_style("Hello") is None
    True
    """
    if isinstance(value, dict):
        if "role" in value:
            return "role"
        if "from" in value:
            return "from"
    return None


def user_message(text: str) -> dict:
    """A user turn.

    >>> user_message("2+2?")
    {'role': 'user', 'content': '2+2?'}
    """
    return {"role": "user", "content": text}


def assistant_message(text: Any) -> dict:
    """An assistant turn (its text may be None, where a dialect's row has no answer to give).

    >>> assistant_message("4")
    {'role': 'assistant', 'content': '4'}
    """
    return {"role": "assistant", "content": text}


def content_text(content: Any) -> Any:
    """Message content as a string when it is a list of text parts; other content is returned as is.

    >>> content_text([{"type": "text", "value": "Hello "}, {"type": "text", "text": "world"}])
    'Hello world'
    >>> content_text("Hi")
    'Hi'
    """
    if isinstance(content, list) and all(_part_text(p, ("text",)) is not None for p in content):
        return "".join(_part_text(p, ("text",)) for p in content)
    return content


def _part_text(part: Any, types: tuple[str, ...]) -> str | None:
    if isinstance(part, dict) and part.get("type") in types:
        text = part.get("text", part.get("value"))
        return text if isinstance(text, str) else None
    return None


def split_parts(content: Any) -> tuple[Any, str | None, list[dict] | None]:
    """Typed content whose parts are text, reasoning and tool calls (LLaMA-Factory's `{"type": "reasoning", "value":
    ...}` and `{"type": "tool_call", "value": '{"name": ..., "arguments": ...}'}`) as (text, reasoning, tool calls);
    other content, and content with a part of another type or a call that does not parse, as (content, None, None).
    The reasoning goes to a message's `reasoning_content`, the key chat templates of reasoning models (Qwen3,
    DeepSeek-R1) read, the calls to its `tool_calls`.

    >>> split_parts([{"type": "reasoning", "value": "2+2 is 4"}, {"type": "text", "value": "4"}])
    ('4', '2+2 is 4', None)
    >>> split_parts([{"type": "tool_call", "value": '{"name": "f", "arguments": {"x": 1}}'}])
    ('', None, [{'type': 'function', 'function': {'name': 'f', 'arguments': {'x': 1}}}])
    >>> split_parts([{"type": "tool_call", "value": "f(1)"}])
    ([{'type': 'tool_call', 'value': 'f(1)'}], None, None)
    """
    if not isinstance(content, list) or not any(
            isinstance(p, dict) and p.get("type") in REASONING_PARTS + CALL_PARTS for p in content):
        return content, None, None
    texts, traces, calls = [], [], []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        text = _part_text(part, ("text",) + REASONING_PARTS + CALL_PARTS)
        parsed = sharegpt_tool_calls(text) if kind in CALL_PARTS and text is not None else None
        if text is None or (kind in CALL_PARTS and parsed is None):
            return content, None, None
        if kind in CALL_PARTS:
            calls.extend(parsed)
        else:
            (traces if kind in REASONING_PARTS else texts).append(text)
    return "".join(texts), "".join(traces) if traces else None, calls or None


def sharegpt_tool_calls(value: Any) -> list[dict] | None:
    """A ShareGPT `function_call` value (or an ms-swift `tool_call` turn) as OpenAI tool calls: one `{name,
    arguments}` object, or a list of them (parallel calls); None when it is neither.

    >>> sharegpt_tool_calls('{"name": "f", "arguments": {"x": 1}}')
    [{'type': 'function', 'function': {'name': 'f', 'arguments': {'x': 1}}}]
    >>> len(sharegpt_tool_calls('[{"name": "f"}, {"name": "g", "arguments": {}}]')), sharegpt_tool_calls('f(1)')
    (2, None)
    """
    try:
        parsed = orjson.loads(value) if isinstance(value, str) else value
    except orjson.JSONDecodeError:
        return None
    calls = [named_call(c) for c in (parsed if isinstance(parsed, list) and parsed else [parsed])]
    return None if None in calls else calls


def to_chat_message(message: dict, roles: dict[str, str] | None = None) -> dict:
    """One message of any supported style as a TRL message: ShareGPT roles mapped, typed text parts joined.

    >>> to_chat_message({"from": "human", "value": "Hi"})
    {'role': 'user', 'content': 'Hi'}
    >>> to_chat_message({"from": "function_call", "value": '{"name": "f", "arguments": {}}'})
    {'role': 'assistant', 'tool_calls': [{'type': 'function', 'function': {'name': 'f', 'arguments': {}}}]}
    >>> to_chat_message({"role": "bot", "content": "Hi"}, roles={"bot": "assistant"})
    {'role': 'assistant', 'content': 'Hi'}
    """
    roles = roles or {}
    if "from" in message and "role" not in message:
        source_role = message.get("from")
        if source_role == "function_call" and source_role not in roles:
            calls = sharegpt_tool_calls(message.get("value"))
            if calls is not None:
                return {"role": "assistant", "tool_calls": calls}
        role = roles.get(source_role, SHAREGPT_ROLES.get(source_role, source_role))
        return {"role": role, "content": message.get("value", message.get("content"))}
    out = {key: value for key, value in message.items() if key not in TURN_FLAG_KEYS}
    out["role"] = roles.get(message.get("role"), message.get("role"))
    if "content" in out:
        text, reasoning, calls = split_parts(out["content"])
        out["content"] = content_text(text)
        if reasoning is not None:
            out["reasoning_content"] = reasoning
        if calls is not None:
            out["tool_calls"] = (out.get("tool_calls") or []) + calls
    return out


def to_messages(value: list, roles: dict[str, str] | None = None) -> list[dict]:
    """A message list of any supported style as TRL messages (`inspector.toolcalls` then puts its tool calls in
    canonical form).

    >>> to_messages([{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}])
    [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Yo'}]
    """
    return [to_chat_message(m, roles) for m in value]
