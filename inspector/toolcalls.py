"""Tool calls in the one form trlprep writes, whatever dialect they came in: the form Hugging Face chat templates
and TRL's docs read.

- An assistant turn's calls are `tool_calls: [{"type": "function", "id"?: ..., "function": {"name", "arguments"}}]`
  with `arguments` an object. The OpenAI API writes it as a JSON string, which templates render as a string:
  Qwen2.5's double-encodes it, newer Qwen templates raise. A string that is not JSON stays a string, and TP602
  names it: never a guess.
- A turn that only calls has `content: ""`. Templates test `message.content` or pipe it through filters, and a
  null renders as "None" under `| trim`.
- Null keys are dropped from the messages of such rows. Arrow fills every key any row has with nulls, and templates
  test `'tool_calls' in message`.
- A tool result carries the `name` of the call it answers, and its `tool_call_id` when the call has an id: by id
  when it gives one, else in order.
- `tools` is a list of `{"type": "function", "function": {name, description, parameters}}`, the form
  `transformers.utils.get_json_schema` writes. A JSON string is parsed, a bare function schema wrapped, and an
  empty list written as null, since only `trl.apply_chat_template` maps `[]` to None.

>>> row = {"messages": [{"role": "user", "content": "2+2?"},
...     {"role": "assistant", "content": None, "tool_calls": [
...         {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 2}'}}]},
...     {"role": "tool", "tool_call_id": "c1", "content": "4"}],
...     "tools": '[{"name": "add", "parameters": {"type": "object"}}]'}
>>> out, changes = canonical_tool_calls(row)
>>> out["messages"][1], out["messages"][2]
({'role': 'assistant', 'content': '', 'tool_calls': [{'id': 'c1', 'type': 'function', 'function': {'name': 'add', 'arguments': {'a': 2, 'b': 2}}}]}, {'role': 'tool', 'tool_call_id': 'c1', 'content': '4', 'name': 'add'})
>>> out["tools"]
[{'type': 'function', 'function': {'name': 'add', 'parameters': {'type': 'object'}}}]
>>> changes
('arguments parsed from JSON strings into objects', 'call-only turns given empty content', 'tool results named after their calls', '`tools` in function form')
"""

from __future__ import annotations

import ast
from typing import Any

import orjson

MESSAGE_LISTS = ("messages", "prompt", "completion", "chosen", "rejected")
ARGUMENTS_PARSED = "arguments parsed from JSON strings into objects"
CONTENT_GIVEN = "call-only turns given empty content"
NULLS_DROPPED = "null keys dropped"
RESULTS_NAMED = "tool results named after their calls"
TOOLS_WRAPPED = "`tools` in function form"
# The longest text read as a Python literal: `ast.literal_eval` evaluates no code, but its parser's memory grows
# with the text's nesting.
LITERAL_LIMIT = 100_000


def parse_object(text: str) -> Any:
    """A JSON value, or a Python literal as Hermes' own rows write calls and tools (`{'name': 'f'}`), read with
    `ast.literal_eval`, which evaluates no code; None when the text is neither.

    >>> parse_object('{"a": 1}'), parse_object("{'a': [1, True, None]}"), parse_object("os.system('x')")
    ({'a': 1}, {'a': [1, True, None]}, None)
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    if len(text) > LITERAL_LIMIT:
        return None
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def call(name: Any, arguments: Any, call_id: Any = None) -> dict:
    """One tool call in the canonical form (its `id` when it has one).

    >>> call("add", '{"a": 1}', "c1")
    {'id': 'c1', 'type': 'function', 'function': {'name': 'add', 'arguments': {'a': 1}}}
    """
    out = {"id": call_id} if call_id is not None else {}
    return {**out, "type": "function", "function": {"name": name, "arguments": arguments_object(arguments)}}


def arguments_object(arguments: Any) -> Any:
    """A call's arguments as an object: a JSON string parsed (an empty one is no arguments); anything else, a string
    that is not JSON among them, as it is, for TP602 to name.

    >>> arguments_object('{"a": 1}'), arguments_object(""), arguments_object("a=1"), arguments_object({"a": 1})
    ({'a': 1}, {}, 'a=1', {'a': 1})
    """
    if not isinstance(arguments, str):
        return {} if arguments is None else arguments
    if not arguments.strip():
        return {}
    try:
        return orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments


def function_tools(tools: Any) -> Any:
    """A row's `tools` in function form: a JSON string parsed, bare function schemas wrapped, an empty list null;
    anything else as it is, for TP604 to name.

    >>> function_tools('[{"name": "weather", "parameters": {}}]')
    [{'type': 'function', 'function': {'name': 'weather', 'parameters': {}}}]
    >>> function_tools("not json"), function_tools([])
    ('not json', None)
    """
    if isinstance(tools, str):
        try:
            tools = orjson.loads(tools) if tools.strip() else []
        except orjson.JSONDecodeError:
            return tools
    if not isinstance(tools, list):
        return tools
    if not tools:
        return None
    return [{"type": "function", "function": tool} if isinstance(tool, dict) and "type" not in tool and "name" in tool
            else tool for tool in tools]


def holds_tool_turns(messages: Any) -> bool:
    """Whether a message list holds a call or a tool result (the rows whose messages are put in canonical form).

    >>> holds_tool_turns([{"role": "tool", "content": "4"}]), holds_tool_turns([{"role": "user", "content": "Hi"}])
    (True, False)
    """
    return isinstance(messages, list) and any(
        isinstance(m, dict) and (m.get("tool_calls") or m.get("role") == "tool") for m in messages)


def _canonical_call(value: Any, changes: set[str]) -> Any:
    if not isinstance(value, dict) or not isinstance(value.get("function"), dict):
        return value  # TP601/TP602 name what is wrong with it
    function = {key: item for key, item in value["function"].items() if item is not None}
    arguments = function.get("arguments")
    if isinstance(arguments, str) or arguments is None:
        function["arguments"] = arguments_object(arguments)
        if isinstance(arguments, str) and function["arguments"] is not arguments:
            changes.add(ARGUMENTS_PARSED)
    out = {key: item for key, item in value.items() if item is not None}
    if len(out) != len(value) or len(function) != len(value["function"]):
        changes.add(NULLS_DROPPED)
    return {**out, "type": out.get("type", "function"), "function": function}


def canonical_messages(messages: list, changes: set[str]) -> list:
    """A message list holding tool turns in the canonical form; what changed is added to `changes`.

    >>> changes = set()
    >>> canonical_messages([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]},
    ...                     {"role": "tool", "content": "ok", "name": None}], changes)
    [{'role': 'assistant', 'content': '', 'tool_calls': [{'function': {'name': 'f', 'arguments': {}}, 'type': 'function'}]}, {'role': 'tool', 'content': 'ok', 'name': 'f'}]
    >>> sorted(changes)
    ['call-only turns given empty content', 'null keys dropped', 'tool results named after their calls']
    """
    pending: list[tuple[Any, Any]] = []  # (name, id) of the calls not answered yet
    out = []
    for message in messages:
        if not isinstance(message, dict):
            out.append(message)
            continue
        kept = {key: value for key, value in message.items() if value is not None}
        calls = kept.get("tool_calls")
        calling = kept.get("role") == "assistant" and isinstance(calls, list) and bool(calls)
        if message.keys() - kept.keys() - ({"content"} if calling else set()):
            changes.add(NULLS_DROPPED)
        if calling:
            kept["tool_calls"] = [_canonical_call(c, changes) for c in calls]
            pending = [(c["function"].get("name"), c.get("id")) for c in kept["tool_calls"]
                       if isinstance(c, dict) and isinstance(c.get("function"), dict)]
            if kept.get("content") is None:
                kept = {"role": kept["role"], "content": "", **kept}
                changes.add(CONTENT_GIVEN)
        elif kept.get("role") == "tool" and pending:
            # The call a result names by id, else the first one pending: results come in the calls' order.
            name, call_id = next((p for p in pending if p[1] is not None and p[1] == kept.get("tool_call_id")),
                                 pending[0])
            pending.remove((name, call_id))
            if "name" not in kept and name is not None:
                kept["name"] = name
                changes.add(RESULTS_NAMED)
            if "tool_call_id" not in kept and call_id is not None:
                kept["tool_call_id"] = call_id
                changes.add(RESULTS_NAMED)
        out.append(kept)
    return out


def canonical_tool_calls(trl_row: dict) -> tuple[dict, tuple[str, ...]]:
    """A row read as its TRL type with its tool calls and `tools` in the canonical form, and what that changed
    (nothing for rows without them, which are returned as they are)."""
    changes: set[str] = set()
    out = trl_row
    for name in MESSAGE_LISTS:
        messages = trl_row.get(name)
        if holds_tool_turns(messages):
            if out is trl_row:
                out = dict(trl_row)
            out[name] = canonical_messages(messages, changes)
    tools = trl_row.get("tools")
    if "tools" in trl_row:
        canonical = function_tools(tools)
        if canonical != tools:
            out = dict(out) if out is trl_row else out
            out["tools"] = canonical
            changes.add(TOOLS_WRAPPED)
    order = (ARGUMENTS_PARSED, CONTENT_GIVEN, NULLS_DROPPED, RESULTS_NAMED, TOOLS_WRAPPED)
    return out, tuple(change for change in order if change in changes)
