"""Tool calls checked against the tools a row declares (TP6xx).

A row read as its TRL type holds its conversations in `messages`, or `prompt` with `completion`, `chosen` or
`rejected`, and its tools in `tools` (TRL's form: `{"type": "function", "function": {name, description,
parameters}}`; a JSON string or a bare function schema is read too). Each check yields one detail per problem.

>>> tools = [{"type": "function", "function": {"name": "add", "parameters": {
...     "type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}}]
>>> call = lambda name, arguments: {"role": "assistant", "tool_calls": [
...     {"type": "function", "function": {"name": name, "arguments": arguments}}]}
>>> row = {"messages": [{"role": "user", "content": "1+?"}, call("sub", {"a": 1}), call("add", '{"a": "1"}')],
...        "tools": tools}
>>> list(undeclared_calls(row, None)), list(invalid_arguments(row, None))
(["messages[1] calls 'sub', which `tools` does not declare (add)"], ["messages[2] add: arguments.a: '1' is not of type 'integer'"])

`TOOL_CALLS_NOT_CANONICAL` (TP605) has no check of its own: reading a row as its TRL type puts its tool calls in the
one form trlprep writes (`inspector.toolcalls`), and `inspector.checks.check_row` reports what that changed of a row
in TRL's own columns, which TRL would read as written.
"""

from __future__ import annotations

import functools
from typing import Any, Iterator

import orjson

from trlprep.inspector.rules.catalog import ERROR, WARNING, by_structure, register, Rule, unproven
from trlprep.inspector.rules.examples import USER, flagged, tool_row
from trlprep.inspector.toolcalls import answered_call

CONVERSATIONS = (("messages",), ("prompt", "completion"), ("prompt", "chosen"), ("prompt", "rejected"))
MESSAGE_LISTS = ("messages", "prompt", "completion", "chosen", "rejected")


def _functions(tools: Any) -> list[dict] | None:
    """The function schemas of a `tools` value, or None when it is not a list of them."""
    if isinstance(tools, str):
        try:
            tools = orjson.loads(tools)
        except orjson.JSONDecodeError:
            return None
    if not isinstance(tools, list):
        return None
    # A tool of another type (Anthropic's server tools, OpenAI's custom tools) is not a function: no schema to read.
    functions = [tool.get("function") if isinstance(tool, dict) and tool.get("type", "function") == "function"
                 and "function" in tool else tool if isinstance(tool, dict) and "type" not in tool else None
                 for tool in tools]
    return functions if all(isinstance(f, dict) for f in functions) else None


def _sequences(row: dict) -> Iterator[tuple[str, list]]:
    """Each conversation of a row as the model sees it: the messages, or the prompt followed by an answer."""
    for names in CONVERSATIONS:
        parts = [row.get(name) for name in names]
        if all(isinstance(part, list) for part in parts):
            yield "+".join(names), [message for part in parts for message in part]


def _calls(row: dict) -> Iterator[tuple[str, Any]]:
    """(where, call) of every tool call in the row, each message list once."""
    for name in MESSAGE_LISTS:
        messages = row.get(name)
        for i, message in enumerate(messages if isinstance(messages, list) else []):
            for call in (message.get("tool_calls") or []) if isinstance(message, dict) else []:
                yield f"{name}[{i}]", call


def _function(call: Any) -> dict:
    """A call's `function` object ({} when it has none)."""
    function = call.get("function") if isinstance(call, dict) else None
    return function if isinstance(function, dict) else {}


def undeclared_calls(row: dict, shape: Any) -> Iterator[str]:
    """TP601: a call to a function the row's `tools` does not declare (rows without `tools` are not judged)."""
    functions = _functions(row.get("tools"))
    if functions is None:
        return
    declared = [f.get("name") for f in functions]
    for where, call in _calls(row):
        function = _function(call)
        if function.get("name") not in declared:
            yield (f"{where} calls {function.get('name')!r}, which `tools` does not declare "
                   f"({', '.join(map(str, declared)) or 'none'})")


@functools.lru_cache(maxsize=256)
def _validator(parameters_json: bytes):
    """A JSON Schema validator for a function's parameters (None when the schema itself is invalid)."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    schema = orjson.loads(parameters_json)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError:
        return None
    return Draft202012Validator(schema)


TYPES = {"string": str, "number": (int, float), "integer": int, "boolean": bool, "array": list, "object": dict}
# What `plainly_valid` reads of a schema; a schema that says anything else goes to jsonschema.
PLAIN_KEYWORDS = frozenset({"type", "properties", "required", "description", "title"})


def plainly_valid(arguments: Any, schema: dict) -> bool:
    """Whether arguments are valid for a plain function schema (an object of typed properties, some required,
    nothing else said), decided without jsonschema, which costs ~30x more; False means "not proven", and
    jsonschema decides. A proof, never a guess: only the keywords it reads may appear.

    >>> schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    >>> plainly_valid({"a": 1}, schema), plainly_valid({"a": True}, schema), plainly_valid({}, schema)
    (True, False, False)
    """
    if schema.keys() - PLAIN_KEYWORDS or schema.get("type") != "object" or not isinstance(arguments, dict):
        return False
    properties = schema.get("properties", {})
    if not isinstance(properties, dict) or not set(arguments) <= properties.keys():
        return False
    required = schema.get("required", [])
    if not isinstance(required, list) or not set(required) <= arguments.keys():
        return False
    for name, value in arguments.items():
        spec = properties[name]
        kind = TYPES.get(spec.get("type")) if isinstance(spec, dict) else None
        if kind is None or spec.keys() - {"type", "description", "title"}:
            return False
        if isinstance(value, bool) and spec["type"] != "boolean" or not isinstance(value, kind):
            return False
    return True


def invalid_arguments(row: dict, shape: Any) -> Iterator[str]:
    """TP602: a call that is not `{"type": "function", "function": {name, arguments}}`, arguments that are not the
    JSON of an object (whether or not the row declares `tools`), or arguments that break the declared function's
    JSON Schema: a missing required argument, a wrong type, an argument the schema does not name."""
    functions = _functions(row.get("tools"))
    parameters = {f.get("name"): f.get("parameters") for f in functions or ()}
    for where, call in _calls(row):
        function = _function(call)
        name, arguments = function.get("name"), function.get("arguments", {})
        if not function or not isinstance(call, dict) or call.get("type", "function") != "function":
            yield f"{where}: a call that is not {{\"type\": \"function\", \"function\": ...}} ({str(call)[:60]!r})"
            continue
        if not isinstance(name, str) or not name:
            # A call read from text that is no `{name, arguments}` object has no name (Hermes, ms-swift).
            yield f"{where}: a call with no name, arguments {str(arguments)[:40]!r}"
            continue
        if isinstance(arguments, str):
            try:
                arguments = orjson.loads(arguments) if arguments.strip() else {}
            except orjson.JSONDecodeError:
                yield f"{where} {name}: arguments are not JSON ({arguments[:40]!r})"
                continue
        if not isinstance(arguments, dict):
            yield f"{where} {name}: arguments are {type(arguments).__name__} {str(arguments)[:40]!r}, not an object"
            continue
        schema = parameters.get(name)
        if not isinstance(schema, dict) or plainly_valid(arguments, schema):
            continue
        validator = _validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
        if validator is None:
            continue  # TP604 names the schema
        error = next(iter(validator.iter_errors(arguments)), None)
        if error is not None:
            path = ".".join(map(str, error.absolute_path))
            yield f"{where} {name}: arguments{'.' + path if path else ''}: {error.message}"
            continue
        known = schema.get("properties")
        if isinstance(known, dict):
            unknown = sorted(set(arguments) - set(known))
            if unknown:
                yield f"{where} {name}: argument(s) {', '.join(unknown)} not in its schema"


def _results(row: dict) -> Iterator[tuple[str, int, dict, list[tuple[int, Any, Any]]]]:
    """(where, index, tool message, calls pending before it: (turn, name, id)) of each tool result of each
    conversation, and (where, index, next non-tool message, calls left pending) where the conversation goes on
    past unanswered calls; results are matched to calls as `inspector.toolcalls` names them."""
    for where, messages in _sequences(row):
        pending: list[tuple[int, Any, Any]] = []
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                continue
            if message.get("role") == "tool":
                yield where, i, message, list(pending)
                answered = answered_call(pending, message.get("tool_call_id"))
                if answered is not None:
                    pending.remove(answered)
                continue
            if pending and message.get("role") in ("assistant", "user"):
                yield where, i, message, pending
                pending = []
            if message.get("role") == "assistant" and message.get("tool_calls"):
                pending = [(i, _function(c).get("name"), c.get("id") if isinstance(c, dict) else None)
                           for c in message["tool_calls"]]


def unanswered_calls(row: dict, shape: Any) -> Iterator[str]:
    """TP603: a call not answered by a tool message before the conversation goes on. A call that ends the
    conversation is the training target, not a fault."""
    for where, i, message, pending in _results(row):
        if message.get("role") != "tool":
            turn, name, _ = pending[0]
            yield f"{where}[{turn}] calls {name!r}, answered by no tool message before turn {i + 1}"


def mismatched_results(row: dict, shape: Any) -> Iterator[str]:
    """TP606: a tool result whose `tool_call_id` names no pending call, or whose `name` is not that of the call its
    id names; two calls of one turn that share an id."""
    for name in MESSAGE_LISTS:
        messages = row.get(name)
        for i, message in enumerate(messages if isinstance(messages, list) else []):
            ids = [c.get("id") for c in (message.get("tool_calls") or []) if isinstance(c, dict) and c.get("id")] \
                if isinstance(message, dict) else []
            if len(ids) != len(set(ids)):
                yield f"{name}[{i}]: two calls share the id {next(x for x in ids if ids.count(x) > 1)!r}"
    for where, i, message, pending in _results(row):
        own_id = message.get("tool_call_id")
        if message.get("role") != "tool" or own_id is None or not pending:
            continue
        answered = answered_call(pending, own_id)
        if answered is None:
            yield (f"{where}[{i}] answers call id {own_id!r}, which no pending call has "
                   f"({', '.join(str(p[2]) for p in pending)})")
        elif message.get("name") is not None and message["name"] != answered[1]:
            yield f"{where}[{i}] is named {message['name']!r}, but its id {own_id!r} is the call of {answered[1]!r}"


def invalid_tools(row: dict, shape: Any) -> Iterator[str]:
    """TP604: a `tools` value that is not a list of functions, each with a name and a valid JSON Schema of
    parameters."""
    tools = row.get("tools")
    if tools is None:
        return
    functions = _functions(tools)
    if functions is None:
        kinds = sorted({str(t.get("type")) for t in tools if isinstance(t, dict) and t.get("type") != "function"}) \
            if isinstance(tools, list) else []
        yield "tools is not a list of function schemas" + (f" (tools of type {', '.join(kinds)})" if kinds else "")
        return
    for i, function in enumerate(functions):
        if not isinstance(function.get("name"), str) or not function["name"]:
            yield f"tools[{i}] has no name"
        parameters = function.get("parameters")
        if parameters is not None and (not isinstance(parameters, dict) or _validator(
                orjson.dumps(parameters, option=orjson.OPT_SORT_KEYS)) is None):
            yield f"tools[{i}] ({function.get('name')}): parameters are not a valid JSON Schema"


TOOL_NOT_DECLARED = register(Rule("TP601", "tool-not-declared", ERROR, "a tool call names a function the row's `tools` does not declare",
         "declare the function in `tools`, or drop the row", "trl",
         why="the model learns to call a function it was never shown: a hallucinated tool",
         check=undeclared_calls, example=flagged(tool_row("add", {"a": 1}), tool_row("subtract", {"a": 1})),
         proof=by_structure("the typed messages take no tool calls")))

TOOL_ARGUMENTS_INVALID = register(Rule("TP602", "tool-arguments-invalid", ERROR,
         "a tool call's arguments are not JSON, or break the function's JSON Schema (`parameters`): a missing "
         "required argument, a wrong type, an argument the schema does not name", "fix the call, or drop the row",
         "trl", why="the model learns calls the tool would refuse",
         check=invalid_arguments, example=flagged(tool_row("add", {"a": 1}), tool_row("add", '{"a": "one"}')),
         proof=by_structure("the typed messages take no tool calls")))

TOOL_CALL_UNANSWERED = register(Rule("TP603", "tool-call-unanswered", WARNING,
         "a tool call is not answered by a tool message before the conversation goes on; a call that ends the "
         "conversation is the training target, not a fault",
         "add the tool's result after the call, or end the conversation at the call", "trl",
         why="the answer after an unanswered call is learned as if the model knew the tool's result",
         check=unanswered_calls,
         example=flagged(tool_row("add", {"a": 1}),
                       {**tool_row("add", {"a": 1}), "messages": tool_row("add", {"a": 1})["messages"][:2]
                        + [{"role": "assistant", "content": "It is 2."}]}),
         proof=by_structure("the typed messages take no tool calls")))

TOOLS_INVALID = register(Rule("TP604", "tools-invalid", ERROR,
         "`tools` is not a list of functions, each with a name and a valid JSON Schema of its parameters",
         "write each tool as `transformers.utils.get_json_schema` does", "trl",
         why="chat templates render `tools` into the prompt: a broken schema is what the model is trained to read",
         check=invalid_tools,
         example=flagged(tool_row("add", {"a": 1}), {**tool_row("add", {"a": 1}), "tools": [
             {"type": "function", "function": {"name": "add", "parameters": {"type": "objekt"}}}]}),
         columns=frozenset({"tools"}),
         proof=unproven("the typed decode holds the type of a `tools` column, not what it declares: rows with one "
                        "take the full checks")))

TOOL_CALLS_NOT_CANONICAL = register(Rule("TP605", "tool-calls-not-canonical", WARNING,
         "tool calls or `tools` in TRL's columns but not in the form chat templates read: `arguments` as a JSON "
         "string, a call-only turn with null or no content, null keys, a tool result without the name of its call, "
         "`tools` as a JSON string or bare function schemas; `convert` rewrites them (`inspector.toolcalls`)",
         "run the verdict's `convert` command", "trl", repairable=True,
         why="templates render a string argument as a string: Qwen2.5's double-encodes the call, newer Qwen "
             "templates raise, and a null content renders as \"None\" under `| trim`",
         example=flagged(tool_row("add", {"a": 1}), tool_row("add", '{"a": 1}')),
         proof=by_structure("the typed messages take no tool calls, and no fast shape has a `tools` column")))

TOOL_RESULT_MISMATCH = register(Rule("TP606", "tool-result-mismatch", ERROR,
         "a tool result's `tool_call_id` names no pending call, or its `name` is not that of the call its id names; "
         "or two calls of one turn share an id", "give each call its own id and each result the id and name of the "
         "call it answers", "trl",
         why="the model learns a result as the answer to another call than the one that made it",
         check=mismatched_results,
         example=flagged(tool_row("add", {"a": 1}),
                         {**tool_row("add", {"a": 1}), "messages": [
                             USER, {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
                                    "function": {"name": "add", "arguments": {"a": 1}}}]},
                             {"role": "tool", "tool_call_id": "c9", "content": "2"},
                             {"role": "assistant", "content": "It is 2."}]}),
         proof=by_structure("the typed messages take no tool calls")))
