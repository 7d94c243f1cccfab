"""NousResearch's Hermes function calling (hermes-function-calling-v1, and the Qwen templates that read it): the
calls are JSON inside `<tool_call>` tags in the assistant's text, the results sit in `<tool_response>` tags of
`tool` turns, and the tools are listed inside `<tools>` tags in the system prompt. Its rows write JSON or Python
literals (`{'name': 'f', 'arguments': {...}}`), in ShareGPT turns or role/content messages."""

from __future__ import annotations

import re
from typing import Any

import orjson

from trlprep.inspector.dialects.agent_turns import AgentDialect
from trlprep.inspector.dialects.core import register
from trlprep.inspector.toolcalls import call, named_call, parse_object

CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
RESPONSE = re.compile(r"<tool_response>(.*?)</tool_response>", re.DOTALL)
TOOLS = re.compile(r"<tools>(.*?)</tools>", re.DOTALL)
# The roles, as either message style writes them, whose turns hold calls and results.
ASSISTANT_ROLES = frozenset({"gpt", "assistant"})
TOOL_ROLES = frozenset({"tool", "observation"})


def hermes_call(text: str) -> dict:
    """The body of a `<tool_call>` as a canonical call; a body that is no `{name, arguments}` object becomes a call
    whose arguments are the raw text, which TP602 names: the row is never trained on a guess.

    >>> hermes_call("{'arguments': {'symbol': 'TSLA'}, 'name': 'get_stock_price'}")
    {'type': 'function', 'function': {'name': 'get_stock_price', 'arguments': {'symbol': 'TSLA'}}}
    >>> hermes_call("get_stock_price(TSLA)")["function"]["arguments"]
    'get_stock_price(TSLA)'
    """
    return named_call(parse_object(text)) or call(None, text.strip())


def assistant_calls(text: str) -> tuple[str, list[dict]]:
    """An assistant text's calls and the text left around them; a `<tool_call>` left unclosed (or a stray closing
    tag) is a call whose arguments are the raw text from it on, which TP602 rejects: never trained as text.

    >>> assistant_calls("Checking.<tool_call>{'name': 'f', 'arguments': {}}</tool_call>")
    ('Checking.', [{'type': 'function', 'function': {'name': 'f', 'arguments': {}}}])
    >>> assistant_calls('<tool_call>{"name": "f"')[1][0]["function"]
    {'name': None, 'arguments': '<tool_call>{"name": "f"'}
    """
    calls = [hermes_call(body) for body in CALL.findall(text)]
    rest = CALL.sub("", text)
    stray = [at for at in (rest.find("<tool_call>"), rest.find("</tool_call>")) if at >= 0]
    if stray:
        calls.append(call(None, rest[min(stray):].strip()))
        rest = rest[:min(stray)]
    return rest.strip(), calls


def hermes_tools(text: str) -> list | None:
    """The tools of a `<tools>` block: a list, or one object a line, in JSON or Python literals; None when unread.

    >>> hermes_tools('{"name": "a"}\\n{"name": "b"}')
    [{'name': 'a'}, {'name': 'b'}]
    """
    parsed = parse_object(text)
    if isinstance(parsed, dict):
        parsed = [parsed]
    if isinstance(parsed, list):
        return parsed
    lines = [parse_object(line) for line in text.strip().splitlines() if line.strip()]
    return lines if lines and all(isinstance(line, dict) for line in lines) else None


def tools_block(text: str) -> tuple[re.Match, Any] | None:
    """The `<tools>` block of a system prompt that lists tools, and its tools (its raw text when they do not parse,
    which TP604 then refuses); None when none does. Hermes' prompt names the tags in its prose first ("signatures
    within <tools> </tools> XML tags"): an empty block lists nothing.

    >>> tools_block("Tools in <tools> </tools> tags: <tools>[{'name': 'f'}]</tools>")[1]
    [{'name': 'f'}]
    >>> tools_block("<tools>[{'name': 'f'</tools>")[1]
    "[{'name': 'f'"
    """
    for block in TOOLS.finditer(text):
        if block.group(1).strip():
            tools = hermes_tools(block.group(1))
            return block, tools if tools is not None else block.group(1).strip()
    return None


def tool_results(text: str) -> list[dict]:
    """The tool messages of a `tool` turn's `<tool_response>` blocks: `{"name", "content"}` objects give the
    result's name and content (JSON unless a string), other blocks their text.

    >>> tool_results('<tool_response>\\n{"name": "f", "content": {"x": 1}}\\n</tool_response>')
    [{'role': 'tool', 'content': '{"x":1}', 'name': 'f'}]
    """
    out = []
    for block in RESPONSE.findall(text):
        parsed = parse_object(block)
        if isinstance(parsed, dict) and isinstance(parsed.get("name"), str) and "content" in parsed:
            content = parsed["content"]
            content = content if isinstance(content, str) else orjson.dumps(content).decode()
            out.append({"role": "tool", "content": content, "name": parsed["name"]})
        else:
            out.append({"role": "tool", "content": block.strip()})
    return out


class Hermes(AgentDialect):
    """Language modeling with tools, read from the tags; a conversation-column dialect, first of them, since its
    rows are ShareGPT turns or plain messages otherwise."""

    name = "hermes"
    style = "either"
    description = ("Hermes function calling: `<tool_call>` JSON in assistant text as tool_calls, `<tool_response>` "
                   "turns as tool messages, the `<tools>` list moved out of the system prompt into `tools` (the "
                   "rest of the system prompt kept)")
    priority = 1860
    example = {"conversations": [
        {"from": "system", "value": "You may call functions.\n<tools>\n[{'type': 'function', 'function': {'name': "
                                    "'get_weather', 'parameters': {'type': 'object', 'properties': {'city': "
                                    "{'type': 'string'}}}}}]\n</tools>"},
        {"from": "human", "value": "Weather in Paris?"},
        {"from": "gpt", "value": "<tool_call>\n{'arguments': {'city': 'Paris'}, 'name': 'get_weather'}\n</tool_call>"},
        {"from": "tool", "value": "<tool_response>\n{\"name\": \"get_weather\", \"content\": \"18C\"}\n</tool_response>"},
        {"from": "gpt", "value": "It is 18C in Paris."}]}

    def fits(self, row: dict, column: str, label: str | None) -> bool:
        # Every conversation row off the fast paths asks: a text without "<tool" is settled by one substring test.
        for message in row[column]:
            text = message.get("value", message.get("content")) if type(message) is dict else None
            if type(text) is not str or "<tool" not in text:
                continue
            role = message.get("role") or message.get("from")
            # A system prompt that shows the tags (as Hermes' own does) holds no call: its list of tools counts.
            if tools_block(text) is not None if role == "system" else "<tool_call>" in text \
                    if role in ASSISTANT_ROLES else role in TOOL_ROLES and RESPONSE.search(text):
                return True
        return False

    def rewrite(self, messages: list[dict], row: dict) -> tuple[list[dict], list | None]:
        out: list[dict] = []
        tools = None
        for message in messages:
            role, text = message.get("role"), message.get("content")
            if not isinstance(text, str):
                out.append(message)
            elif role == "system" and (found := tools_block(text)) is not None:
                block, tools = found
                rest = (text[:block.start()] + text[block.end():]).strip()
                if rest:
                    out.append({**message, "content": rest})
            elif role == "assistant" and ("<tool_call>" in text or "</tool_call>" in text):
                content, calls = assistant_calls(text)
                out.append({**message, "content": content, "tool_calls": calls})
            elif role == "tool" and RESPONSE.search(text):
                out.extend(tool_results(text))
            else:
                out.append(message)
        # A `tools` column, when the row has one, says what the system prompt's list says.
        return out, tools if row.get("tools") is None else None


register(Hermes())
