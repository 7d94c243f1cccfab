"""Tool calls in the one form trlprep writes, whatever dialect they came in: the form Hugging Face chat templates
and TRL's docs read.

- An assistant turn's calls are `tool_calls: [{"type": "function", "id"?: ..., "function": {"name", "arguments"}}]`
  with `arguments` an object. The OpenAI API writes it as a JSON string, which templates render as a string:
  Qwen2.5's double-encodes it, newer Qwen templates raise. A string that is not JSON stays a string, and TP602
  names it: never a guess.
- A turn that only calls has `content: ""`. Templates test `message.content` or pipe it through filters, and a
  null renders as "None" under `| trim`.
- Null keys are dropped from the messages of such rows, and a null or empty `tool_calls` from any message: Arrow
  fills every key any row has with nulls, and templates such as Llama 3.1's test `'tool_calls' in message`.
- A tool result carries the `name` of the call it answers, and its `tool_call_id` when the call has an id: by id
  when it gives one, else in order.
- `tools` is a list of `{"type": "function", "function": {name, description, parameters}}`, the form
  `transformers.utils.get_json_schema` writes. A JSON string is parsed, a bare function schema wrapped, and an
  empty list written as null, since only `trl.apply_chat_template` maps `[]` to None.
- Null values inside arguments and tool schemas are dropped: Parquet's struct columns hold every key any row has,
  the others null, and a call to `get_time` would be trained with `{"city": null, "tz": "UTC"}`. A null argument
  and an absent one are the same call here.

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
# The keys of tool turns that a message without one may carry, null or empty, when Arrow wrote the rows.
TOOL_KEYS = ("tool_calls", "tool_call_id", "name", "function_call", "refusal")
TOOL_KEY_SET = frozenset(TOOL_KEYS)
ARGUMENTS_PARSED = "arguments parsed from JSON strings into objects"
CONTENT_GIVEN = "call-only turns given empty content"
NULLS_DROPPED = "null keys dropped"
RESULTS_NAMED = "tool results named after their calls"
TOOLS_WRAPPED = "`tools` in function form"
CHANGES = (ARGUMENTS_PARSED, CONTENT_GIVEN, NULLS_DROPPED, RESULTS_NAMED, TOOLS_WRAPPED)  # in the order reported
# The longest text read as a Python literal: `ast.literal_eval` evaluates no code, but its parser's memory grows
# with the text's nesting.
LITERAL_LIMIT = 100_000


def parse_object(text: str) -> Any:
    """A JSON value, or a Python literal as Hermes' own rows write calls and tools (`{'name': 'f'}`), read with
    `ast.literal_eval`, which evaluates no code; None when the text is neither.

    >>> parse_object('{"a": 1}'), parse_object("{'a': [1, True, None]}"), parse_object("os.system('x')")
    ({'a': 1}, {'a': [1, True, None]}, None)
    >>> parse_object("{'tags': {'a', 'b'}}") is None  # a set: no JSON form, and no order to write it in
    True
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    if len(text) > LITERAL_LIMIT:
        return None
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if is_json_data(value) else None  # a set, bytes, a tuple or a number key has no JSON form


def is_json_data(value: Any) -> bool:
    """Whether a Python value is what JSON holds: objects with string keys, lists, strings, numbers, booleans, null.

    >>> is_json_data({"a": [1, 2.5, None, True]}), is_json_data({"a": {1, 2}}), is_json_data({1: "v"})
    (True, False, False)
    """
    if isinstance(value, dict):
        return all(isinstance(key, str) and is_json_data(item) for key, item in value.items())
    if isinstance(value, list):
        return all(map(is_json_data, value))
    return value is None or isinstance(value, (str, int, float, bool))


def call(name: Any, arguments: Any, call_id: Any = None) -> dict:
    """One tool call in the canonical form (its `id` when it has one).

    >>> call("add", '{"a": 1}', "c1")
    {'id': 'c1', 'type': 'function', 'function': {'name': 'add', 'arguments': {'a': 1}}}
    """
    out = {"id": call_id} if call_id is not None else {}
    return {**out, "type": "function", "function": {"name": name, "arguments": arguments_object(arguments)}}


def named_call(value: Any) -> dict | None:
    """A call written as a `{name, arguments}` object (ShareGPT's `function_call`, Hermes' `<tool_call>`, ms-swift's
    `tool_call`, xLAM's answers) in the canonical form; None when the value is no object with a string name.
    Llama 3.1's JSON calls, and datasets that follow them, name the arguments `parameters`.

    >>> named_call({"name": "f", "parameters": {"x": 1}}), named_call({"name": "f"}), named_call(["f"])
    ({'type': 'function', 'function': {'name': 'f', 'arguments': {'x': 1}}}, {'type': 'function', 'function': {'name': 'f', 'arguments': {}}}, None)
    """
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    return call(value["name"], value.get("arguments", value.get("parameters", {})))


def arguments_object(arguments: Any) -> Any:
    """A call's arguments as an object: a JSON string parsed (an empty one, or null, is no arguments), and the null
    values in it dropped, which Arrow writes for every key any row's arguments have. Anything else, a string that
    is not the JSON of an object among them, is returned as it is, for TP602 to name.

    >>> arguments_object('{"a": 1}'), arguments_object(""), arguments_object("a=1"), arguments_object('[1, 2]')
    ({'a': 1}, {}, 'a=1', '[1, 2]')
    >>> arguments_object({"city": "Paris", "tz": None})
    {'city': 'Paris'}
    """
    parsed = arguments
    if isinstance(arguments, str):
        try:
            parsed = orjson.loads(arguments) if arguments.strip() else None
        except orjson.JSONDecodeError:
            return arguments
    if parsed is None:
        return {}
    return without_nulls(parsed) if isinstance(parsed, dict) else arguments


def without_nulls(value: Any) -> Any:
    """Objects without their null values, at any depth (lists keep theirs: a null there is a value); the value
    itself when it holds no null, told by one search of its JSON (every tool-calling row asks, for its tools).

    >>> without_nulls({"a": {"b": None, "c": [None, {"d": None}]}})
    {'a': {'c': [None, {}]}}
    """
    try:
        if b"null" not in orjson.dumps(value):
            return value
    except TypeError:  # not JSON data: nothing Arrow wrote
        return value
    return _without_nulls(value)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


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
    tools = without_nulls(tools)  # Arrow's: no JSON Schema keyword means anything by a null
    if all(not isinstance(tool, dict) or "type" in tool or "name" not in tool for tool in tools):
        return tools  # in function form already: the same list, which the caller tells by identity
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
    function["arguments"] = arguments_object(arguments)
    if isinstance(arguments, str) and not isinstance(function["arguments"], str):
        changes.add(ARGUMENTS_PARSED)
    elif isinstance(arguments, dict) and function["arguments"] != arguments:
        changes.add(NULLS_DROPPED)
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
        if type(message) is not dict or (message.get("role") != "tool" and "tool_calls" not in message
                                          and None not in message.values()):
            out.append(message)  # nothing of it to rewrite: most turns of a tool-calling conversation
            continue
        kept = {key: value for key, value in message.items()
                if value is not None and not (key in TOOL_KEYS and not value)}
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
            answered = answered_call(pending, kept.get("tool_call_id"))
            if answered is None:  # its id names no pending call: it answers none of them (TP606 rejects the row)
                out.append(kept)
                continue
            pending.remove(answered)
            name, call_id = answered
            if "name" not in kept and name is not None:
                kept["name"] = name
                changes.add(RESULTS_NAMED)
            if "tool_call_id" not in kept and call_id is not None:
                kept["tool_call_id"] = call_id
                changes.add(RESULTS_NAMED)
        out.append(kept)
    return out


def answered_call(pending: list[tuple], result_id: Any) -> tuple | None:
    """Which of the calls pending (tuples whose last item is the call's id) a tool result answers: the one its
    `tool_call_id` names; a result without one answers the first, since results come in the calls' order. None
    when its id names no pending call (TP606), or none is pending.

    >>> answered_call([("f", "c1"), ("g", "c2")], "c2"), answered_call([("f", "c1")], None), answered_call([("f", "c1")], "x")
    (('g', 'c2'), ('f', 'c1'), None)
    """
    if result_id is None:
        return pending[0] if pending else None
    return next((call for call in pending if call[-1] == result_id), None)


def untouched(messages: list) -> bool:
    """Whether no message of a list is a tool result or carries a tool key: nothing in it to put in canonical form.

    >>> untouched([{"role": "user", "content": "Hi"}]), untouched([{"role": "user", "content": "Hi", "name": None}])
    (True, False)
    """
    for message in messages:
        if type(message) is dict and (message.get("role") == "tool" or not TOOL_KEY_SET.isdisjoint(message)):
            return False
    return True


def stray_tool_keys(messages: Any) -> bool:
    """Whether a message list without tool turns holds a null or empty tool key (Arrow's, in Parquet rows beside
    tool-calling ones).

    >>> stray_tool_keys([{"role": "user", "content": "Hi", "tool_calls": None}])
    True
    """
    return isinstance(messages, list) and any(
        isinstance(m, dict) and any(key in m and not m[key] for key in TOOL_KEYS) for m in messages)


def canonical_tool_calls(trl_row: dict) -> tuple[dict, tuple[str, ...]]:
    """A row read as its TRL type with its tool calls and `tools` in the canonical form, and what that changed
    (nothing for rows without them, which are returned as they are)."""
    changes: set[str] = set()
    out = trl_row
    for name in MESSAGE_LISTS:
        messages = trl_row.get(name)
        if type(messages) is not list or untouched(messages):
            continue  # every row read off the fast paths asks: most turns are role and content alone
        if holds_tool_turns(messages):
            out = dict(out) if out is trl_row else out
            out[name] = canonical_messages(messages, changes)
        elif stray_tool_keys(messages):
            out = dict(out) if out is trl_row else out
            out[name] = [{key: value for key, value in m.items() if key not in TOOL_KEYS or value}
                         if isinstance(m, dict) else m for m in messages]
            changes.add(NULLS_DROPPED)
    tools = trl_row.get("tools")
    if "tools" in trl_row:
        canonical = function_tools(tools)
        if canonical is None and tools is not None and any(
                m.get("tool_calls") for name in MESSAGE_LISTS for m in out.get(name) or () if type(m) is dict):
            canonical = []  # calls beside an empty list of tools: TP601 names each call as undeclared
        if canonical is not tools and canonical != tools:
            out = dict(out) if out is trl_row else out
            out["tools"] = canonical
            changes.add(TOOLS_WRAPPED)
    return out, tuple(change for change in CHANGES if change in changes) if changes else ()
