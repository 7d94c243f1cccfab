"""Row checks: each yields `(rule_id, detail)` pairs for one row; none raises on malformed input.

`check_fields` looks at a row's own columns as its shape reads them (what JSON Schema can say too);
`check_conversation` and `check_trl_row` look at the row once read as TRL's type (roles, turn order,
preference pairs).

>>> row = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"},
...                     {"role": "user", "content": "Bye"}]}
>>> check_row(row, classify_row(row))[0]
[('TP205', "messages: ends with a 'user' turn")]
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from inspector.hygiene import text_faults
from inspector.rules import blocking_rules, declared_checks
from inspector.dialects import (
    CHAT_ROLES,
    DIALECT_ROLES,
    ROLE_ALIASES,
    SHAREGPT_ROLES,
    Field,
    Shape,
    classify_row,
    answer_list,
    choice_index,
    choice_letter,
    choice_texts,
    parallel_scores,
    STEP_TAG,
    prm800k_steps,
    prompt_turn_end,
    rated_pair,
    shared_prompt_length,
    shepherd_steps,
    sharegpt_tool_call,
    single_message_style,
    to_trl,
)

Issue = tuple[str, str]
PREFERENCE_SIDES = ("chosen", "rejected", "preferred_output", "non_preferred_output", "answer_w", "answer_l")

TEMPLATE_MARKUP = re.compile(
    r"<\|im_start\|>|<\|im_end\|>|\[INST\]|\[/INST\]|<\|eot_id\|>|<\|start_header_id\|>|<\|end_header_id\|>"
    r"|<\|begin_of_text\|>|<start_of_turn>|<end_of_turn>|<\|user\|>|<\|assistant\|>|<\|system\|>|<\|endoftext\|>"
    r"|<\|im_sep\|>|<s>\s*\[INST\]"
)


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def _snippet(value: Any, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def role_hint(role: Any) -> str:
    """How to fix an unknown role.

    >>> role_hint("bot")
    "role 'bot' is not a chat role; map it with `--roles bot=assistant`"
    """
    if isinstance(role, str):
        target = ROLE_ALIASES.get(role.lower()) or (role.lower() if role.lower() in CHAT_ROLES else None)
        if target:
            return f"role {role!r} is not a chat role; map it with `--roles {role}={target}`"
    return f"role {_snippet(role)} is not one of {', '.join(sorted(CHAT_ROLES))}"


def check_text(value: str, where: str, empty_rule: str = "TP201") -> Iterator[Issue]:
    if not value.strip():
        yield empty_rule, f"{where} is empty" if not value else f"{where} is whitespace only"
        return
    if "<" in value or "[" in value:  # every markup pattern holds one; most text holds neither
        markup = TEMPLATE_MARKUP.search(value)
        if markup:
            yield "TP207", f"{where} contains {markup.group(0)!r}"
    yield from text_faults(value, where)


def check_message(message: Any, where: str, empty_rule: str = "TP201", style: str = "role",
                  aliases: frozenset = frozenset()) -> Iterator[Issue]:
    """Checks on one message in the given style: "role" (role/content) or "from" (ShareGPT from/value); `aliases`
    are the other roles the row's dialect is known to write (and its reading maps)."""
    if not isinstance(message, dict):
        yield "TP103", f"{where} is {type_name(message)}"
        return
    if style not in message:
        yield "TP104", f"{where} has no {style!r} (keys: {', '.join(map(str, message)) or 'none'})"
        return
    if style == "role":
        role, content_key, known = message["role"], "content", CHAT_ROLES | aliases
    else:  # ShareGPT's `value`, or a `content` beside `from` as ColossalChat writes it
        role, known = message["from"], SHAREGPT_ROLES
        content_key = "content" if "content" in message and "value" not in message else "value"
    if not isinstance(role, str) or role not in known:
        yield "TP106", f"{where}: {role_hint(role)}"
    content = message.get(content_key)
    if content_key == "value" and role == "function_call":
        if sharegpt_tool_call(content) is None:
            yield "TP102", f"{where}: function_call value is not JSON with a 'name'"
        return
    if content is None:
        if not message.get("tool_calls"):
            yield "TP105", f"{where} has no '{content_key}'"
    elif isinstance(content, str):
        if not (message.get("tool_calls") and not content.strip()):
            yield from check_text(content, f"{where}.{content_key}", empty_rule)
    elif isinstance(content, list):
        yield from _check_parts(content, f"{where}.{content_key}", empty_rule)
    else:
        yield "TP102", f"{where}.{content_key} is {type_name(content)}, expected a string"


def _check_parts(parts: list, where: str, empty_rule: str) -> Iterator[Issue]:
    if not parts:
        yield empty_rule, f"{where} is an empty list"
    for i, part in enumerate(parts):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            yield "TP102", f"{where}[{i}] is not a typed part such as {{\"type\": \"text\", \"text\": ...}}"
        elif part["type"] == "text":
            text = part.get("text", part.get("value"))
            if not isinstance(text, str):
                yield "TP102", f"{where}[{i}] text part has no string 'text'"
            else:
                yield from check_text(text, f"{where}[{i}]", empty_rule)


def check_messages(value: Any, where: str, empty_rule: str = "TP201", style: str = "role",
                   aliases: frozenset = frozenset()) -> Iterator[Issue]:
    if not isinstance(value, list):
        yield "TP102", f"{where} is {type_name(value)}, expected a list of messages"
        return
    if not value:
        yield ("TP111" if empty_rule == "TP201" else empty_rule), f"{where} is an empty list"
    for i, message in enumerate(value):
        yield from check_message(message, f"{where}[{i}]", empty_rule, style, aliases)


def _check_field(row: dict, field: Field, shape: Shape) -> Iterator[Issue]:
    name, kind = field.name, field.kind
    value = row.get(name)
    if value is None:
        if field.required:
            yield "TP101", f"{name} is {'null' if name in row else 'missing'}"
        return
    empty_rule = "TP302" if name in PREFERENCE_SIDES else "TP201"
    style = "from" if shape.dialect == "sharegpt" or (
        shape.dialect == "colossalchat" and "from" in str(single_message_style(row.get("completion")))) else "role"
    aliases = frozenset(DIALECT_ROLES.get(shape.dialect, ()))
    if kind in ("text", "prompt", "optional_text"):
        if isinstance(value, str):
            if kind != "optional_text":
                yield from check_text(value, name, empty_rule)
        elif kind == "prompt" and isinstance(value, list):
            yield "TP107", f"{name} is a message list where the row's other fields are strings"
        elif isinstance(value, list) and value and all(isinstance(item, str) for item in value):
            yield "TP102", (f"{name} is a list of {len(value)} strings, expected one: several answers are samples "
                            "or a ranking ([chosen, rejected] in LLaMA-Factory's old format), and trlprep does not "
                            "guess which; write them as chosen/rejected columns or one row per answer")
        else:
            yield "TP102", f"{name} is {type_name(value)}, expected a string"
    elif kind == "messages":
        if name == "prompt" and isinstance(value, str):
            yield "TP107", f"{name} is a string where the row's other fields are message lists"
        else:
            yield from check_messages(value, name, empty_rule, style, aliases)
    elif kind == "prompted_messages":
        yield from check_messages(value, name, empty_rule, style)
        prompt = row.get("prompt")
        opening = prompt_turn_end(value, prompt) if isinstance(prompt, str) else None
        if opening == 0:
            yield "TP305", f"{name} does not open with the prompt's user turn"
        elif opening is not None and len(value) <= opening:
            yield empty_rule, f"{name} holds the prompt and no answer"
    elif kind == "openai_input":
        if not isinstance(value, dict) or "messages" not in value:
            yield "TP102", (f"{name} has no `messages`" if isinstance(value, dict)
                            else f"{name} is {type_name(value)}, expected an object with `messages`")
        else:
            yield from check_messages(value["messages"], f"{name}.messages", empty_rule, style)
            if value.get("tools") is not None and not isinstance(value["tools"], list):
                yield "TP102", f"{name}.tools is {type_name(value['tools'])}, expected a list of tool schemas"
    elif kind == "message":
        yield from check_message(value, name, empty_rule, style, aliases)
    elif kind == "tagged_steps":
        if shepherd_steps(value, row.get("label") if isinstance(row.get("label"), str) else "") is None:
            yield "TP109", f"`label` does not mark each of the {value.count(STEP_TAG)} steps of `{name}` + or -"
        elif not value.partition(STEP_TAG)[0].partition("Step 1:")[1]:
            yield "TP101", f"{name}: no question before `Step 1:`"
    elif kind == "prm_question":
        if not isinstance(value, dict) or not isinstance(value.get("problem"), str):
            yield "TP102", f"{name} has no string `problem`"
        else:
            yield from check_text(value["problem"], f"{name}.problem", empty_rule)
    elif kind == "prm_steps":
        steps, _ = prm800k_steps(value)
        if not steps:
            yield "TP101", f"{name}: no step has a chosen or human completion"
        for i, step in enumerate(steps):
            if not isinstance(step, str):
                yield "TP102", f"{name}: step {i + 1} has no text"
            else:
                yield from check_text(step, f"{name}: step {i + 1}", empty_rule)
    elif kind == "message_turns":
        yield from check_messages(value[0], f"{name}[0]", empty_rule, style)
    elif kind == "turn_pairs":
        for i, pair in enumerate(value):
            for side in ("human", "assistant"):
                if not isinstance(pair.get(side), str):
                    yield "TP102", f"{name}[{i}].{side} is {type_name(pair.get(side))}, expected a string"
                else:
                    yield from check_text(pair[side], f"{name}[{i}].{side}", empty_rule)
    elif kind == "label":
        if not isinstance(value, bool):
            yield "TP110", f"{name} is {_snippet(value)} ({type_name(value)}), expected true or false"
    elif kind == "text_list":
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            yield "TP102", f"{name} is not a non-empty list of strings"
    elif kind == "bool_list":
        if not isinstance(value, list) or not all(isinstance(v, bool) for v in value):
            yield "TP102", f"{name} is not a list of booleans"
        elif isinstance(row.get("completions"), list) and len(value) != len(row["completions"]):
            yield "TP109", f"{len(row['completions'])} completions but {len(value)} labels"
    elif kind == "history":
        if not isinstance(value, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(t, str) for t in p) for p in value
        ):
            yield "TP102", f"{name} is not a list of [query, answer] string pairs"
    elif kind == "scored_list":
        if rated_pair(row, shape) is None:
            scores = parallel_scores(row)
            yield ("TP301" if scores or isinstance(value[0], dict) else "TP102"), \
                f"{name}: no best and worst completion (scores missing or all equal)"
    elif kind == "thread":
        if not row.get("thread_problem"):  # else there is no thread to check
            yield from check_messages(value, name, empty_rule, style)
    elif kind == "thread_problem":
        yield "TP113", value
    elif kind == "left_out":
        yield "TP209", f"{value} repl(ies) deleted or failed review, left out"
    elif kind == "ranked_replies":
        if not value:
            yield "TP302", f"{name}: the prompt has no reply"
        for i, reply in enumerate(value):
            text = reply.get("text") if isinstance(reply, dict) else None
            if not isinstance(text, str):
                yield "TP102", f"{name}[{i}] has no string `text`"
            else:
                yield from check_text(text, f"{name}[{i}]", "TP302")
    elif kind == "answer_list":
        if not answer_list(value):
            yield "TP302", f"{name} holds no answer"
    elif kind == "choices":
        options = choice_texts(value)
        if options is None:
            yield "TP102", f"{name} is not a list of two or more option strings"
        else:
            for i, option in enumerate(options):
                yield from check_text(option, f"{name}[{i}]", empty_rule)
    elif kind == "choice_answer":
        options = choice_texts(row.get(shape.fields[1].name))
        if options is not None and choice_index(value, options) is None:
            yield "TP102", (f"{name} {_snippet(value)} names none of the {len(options)} options, or more than one "
                            f"(an index from 0, a letter A-{choice_letter(len(options) - 1)}, or an option's text)")
    elif kind == "tools":
        if not isinstance(value, (str, list)):
            yield "TP102", f"{name} is {type_name(value)}, expected a list of tool schemas or a JSON string"


def check_fields(row: Any, shape: Shape) -> list[Issue]:
    """Checks on the columns the shape reads, in the row's own dialect.

    >>> shape = classify_row({"prompt": "Q", "completion": "A", "label": True})
    >>> check_fields({"prompt": "Q", "completion": "A", "label": "true"}, shape)
    [('TP110', "label is 'true' (a string), expected true or false")]
    """
    if not isinstance(row, dict):
        return [("TP002", f"the row is {type_name(row)}")]
    return [issue for field in shape.fields for issue in _check_field(row, field, shape)]


def check_conversation(messages: list[dict], where: str) -> Iterator[Issue]:
    """Turn-order checks on a conversation read as TRL messages.

    >>> list(check_conversation([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}], "messages"))
    [('TP202', 'messages: system message at turn 2')]
    """
    previous: dict | None = None
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "system" and i > 0:
            yield "TP202", f"{where}: system message at turn {i + 1}"
        if previous is not None and role in ("user", "assistant") and role == previous.get("role"):
            yield "TP203", f"{where}: turns {i} and {i + 1} are both {role!r}"
        if role == "tool" and not (
            previous is not None and (previous.get("role") == "tool" or
                                      (previous.get("role") == "assistant" and previous.get("tool_calls")))
        ):
            yield "TP206", f"{where}: tool result at turn {i + 1} follows no tool call"
        previous = message


def _has_assistant(messages: list[dict]) -> bool:
    return any(m.get("role") == "assistant" for m in messages)


def _shared_prefix(a: list | str, b: list | str) -> int:
    length = 0
    for x, y in zip(a, b):
        if x != y:
            break
        length += 1
    return length


def check_trl_row(trl_row: dict, shape: Shape) -> Iterator[Issue]:
    """Checks on a row read as its TRL type: turn order, an assistant answer, preference pairs."""
    conversational = shape.format == "conversational"
    if shape.type == "language_modeling" and conversational:
        messages = trl_row["messages"]
        yield from check_conversation(messages, "messages")
        if not _has_assistant(messages):
            yield "TP204", "messages: no assistant turn"
        if messages and messages[-1].get("role") != "assistant":
            yield "TP205", f"messages: ends with a {messages[-1].get('role')!r} turn"
    elif shape.type == "prompt_only" and conversational:
        yield from check_conversation(trl_row["prompt"], "prompt")
    elif shape.type in ("prompt_completion", "unpaired_preference") and conversational:
        yield from check_conversation(trl_row["prompt"] + trl_row["completion"], "prompt+completion")
        if not _has_assistant(trl_row["completion"]):
            yield "TP204", "completion: no assistant turn"
    elif shape.type == "preference":
        yield from _check_pair(trl_row, shape)
    if shape.dialect != "trl":
        yield from _check_read_contents(trl_row)
    for rule in declared_checks(shape.type):
        for detail in rule.check(trl_row, shape):
            yield rule.id, detail


def _check_read_contents(trl_row: dict) -> Iterator[Issue]:
    """The texts of a row read from another dialect, as TRL will see them: a transcript's last `Assistant:`
    with nothing after it is an empty answer, though the transcript itself is not empty."""
    for name in ("messages", "prompt", "completion", "chosen", "rejected"):
        value = trl_row.get(name)
        empty_rule = "TP302" if name in PREFERENCE_SIDES else "TP201"
        if isinstance(value, str):
            yield from check_text(value, name, empty_rule)
        elif isinstance(value, list):
            for i, message in enumerate(value):
                content = message.get("content") if isinstance(message, dict) else None
                if isinstance(content, str) and not (message.get("tool_calls") and not content.strip()):
                    yield from check_text(content, f"{name}[{i}].content (as read)", empty_rule)


def _check_pair(trl_row: dict, shape: Shape) -> Iterator[Issue]:
    chosen, rejected = trl_row["chosen"], trl_row["rejected"]
    if rejected is None:  # one answer read from a dialect that may have no pair (TP308 keeps it from pairs)
        sides = (("chosen", chosen),)
    else:
        sides = (("chosen", chosen), ("rejected", rejected))
    if shape.format == "conversational":
        prompt = trl_row.get("prompt") or []
        for side, messages in sides:
            yield from check_conversation(prompt + messages, f"prompt+{side}")
            if not _has_assistant(messages):
                yield "TP204", f"{side}: no assistant turn"
    if rejected is None:
        return
    if chosen == rejected:
        yield "TP301", "chosen and rejected are identical"
    elif shape.implicit_prompt:
        # The prompt `convert` extracts, the same function: a row flagged here is the row it cannot split.
        if shared_prompt_length(chosen, rejected) == 0:
            yield "TP303", "chosen and rejected share no prompt (" + (
                "no first message" if shape.format == "conversational" else "no words") + " in common)"
        shared = _shared_prefix(chosen, rejected)
        if shared and shared in (len(chosen), len(rejected)):
            shorter = "chosen" if shared == len(chosen) else "rejected"
            yield "TP304", f"{shorter} is a prefix of the other side"


def check_row(row: Any, shape: Shape) -> tuple[list[Issue], dict | None]:
    """All checks of one row; returns the issues and the row read as its TRL type (None if it cannot be).

    >>> shape = classify_row({"chosen": "A", "rejected": "A"})
    >>> check_row({"chosen": "A", "rejected": "A"}, shape)
    ([('TP301', 'chosen and rejected are identical')], {'chosen': 'A', 'rejected': 'A'})
    """
    issues = check_fields(row, shape)
    blocking = blocking_rules()
    if any(rule in blocking for rule, _ in issues):
        return issues, None
    trl_row = to_trl(row, shape)
    issues.extend(check_trl_row(trl_row, shape))
    return issues, trl_row


__all__ = ["check_row", "check_fields", "check_trl_row", "check_conversation", "classify_row", "Issue"]
