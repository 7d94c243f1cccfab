"""Fast acceptance of clean rows for the common shapes: a few type and value tests per message, no allocation.

A fast check answers True only for a row that the full checks would find nothing wrong with and that has the
expected shape; anything unusual (a tool call, a `<` or `[` that might be template markup, an unknown role)
answers False and the row takes the full path, which finds and words the problem. A property test holds the
two paths together.
"""

from __future__ import annotations

from typing import Any, Callable

from inspector.dialects import Shape

USER_ASSISTANT = ("user", "assistant")
SHAREGPT = {"human": "user", "gpt": "assistant", "system": "system"}


def _clean_text(text: Any) -> bool:
    """A non-blank string with no character that starts template markup."""
    return type(text) is str and bool(text) and not text.isspace() and "<" not in text and "[" not in text


def _clean_turns(messages: Any, *, role_key: str = "role", content_key: str = "content",
                 roles: dict | None = None, end_with_assistant: bool = False) -> bool:
    """Plain messages (two keys each) with known roles, system only first, user and assistant alternating."""
    if type(messages) is not list or not messages:
        return False
    previous = None
    for index, message in enumerate(messages):
        if type(message) is not dict or len(message) != 2:
            return False
        text = message.get(content_key)  # _clean_text, inlined: this loop is the hot path of a scan
        if type(text) is not str or not text or text.isspace() or "<" in text or "[" in text:
            return False
        role = message.get(role_key)
        if roles is not None:
            role = roles.get(role)
        if role in USER_ASSISTANT:
            if role == previous:
                return False
        elif role != "system" or index:
            return False
        previous = role
    return previous == "assistant" or not end_with_assistant


def _one_answer(side: Any) -> bool:
    return type(side) is list and len(side) == 1 and type(side[0]) is dict and side[0].get("role") == "assistant"


def _chat(row: dict) -> bool:
    return _clean_turns(row["messages"], end_with_assistant=True)


def _sharegpt(row: dict) -> bool:
    tools = row.get("tools")
    return (tools is None or type(tools) in (str, list)) and _clean_turns(
        row["conversations"], role_key="from", content_key="value", roles=SHAREGPT, end_with_assistant=True)


def _text(row: dict) -> bool:
    return _clean_text(row["text"]) and "Human:" not in row["text"]


def _prompt_completion_standard(row: dict) -> bool:
    return _clean_text(row["prompt"]) and _clean_text(row["completion"])


def _prompt_completion_chat(row: dict) -> bool:
    prompt, completion = row["prompt"], row["completion"]
    return type(prompt) is list and bool(prompt) and _one_answer(completion) and _clean_turns(prompt + completion)


def _preference_standard(row: dict) -> bool:
    return (_clean_text(row["prompt"]) and _clean_text(row["chosen"]) and _clean_text(row["rejected"])
            and row["chosen"] != row["rejected"])


def _preference_chat(row: dict) -> bool:
    prompt, chosen, rejected = row["prompt"], row["chosen"], row["rejected"]
    return (type(prompt) is list and bool(prompt) and _one_answer(chosen) and _one_answer(rejected)
            and chosen != rejected
            and _clean_turns(prompt + chosen) and _clean_turns(prompt + rejected))


FAST_CHECKS: dict[tuple, Callable[[dict], bool]] = {
    ("trl", "language_modeling", "conversational", ("messages",)): _chat,
    ("sharegpt", "language_modeling", "conversational", ("conversations",)): _sharegpt,
    ("trl", "language_modeling", "standard", ("text",)): _text,
    ("trl", "prompt_completion", "standard", ("prompt", "completion")): _prompt_completion_standard,
    ("trl", "prompt_completion", "conversational", ("prompt", "completion")): _prompt_completion_chat,
    ("trl", "preference", "standard", ("prompt", "chosen", "rejected")): _preference_standard,
    ("trl", "preference", "conversational", ("prompt", "chosen", "rejected")): _preference_chat,
}


def fast_check_for(shape: Shape | None) -> Callable[[dict], bool] | None:
    """The fast check for rows of this shape, or None when it has none.

    >>> from inspector.dialects import classify_row
    >>> check = fast_check_for(classify_row({"text": "plain"}))
    >>> check({"text": "plain"}), check({"text": "   "}), check({"text": "<|im_start|>"})
    (True, False, False)
    """
    if shape is None or shape.implicit_prompt:
        return None
    return FAST_CHECKS.get((shape.dialect, shape.type, shape.format, tuple(f.name for f in shape.fields
                                                                         if f.required)))
