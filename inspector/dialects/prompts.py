"""Where a conversation's prompt ends and its answer begins: the user turn a row's prompt names, the shared start
of two answers, the turns before an instruction's answer."""

from __future__ import annotations

from typing import Any

from trlprep.inspector.dialects.columns import extra_columns
from trlprep.inspector.dialects.core import Shape
from trlprep.inspector.dialects.messages import assistant_message, message_style, user_message

PROMPT_ROLES = frozenset({"user", "system", "developer", "human"})
# Columns an instruction row's prompt is made of, beside the instruction: they are read, not kept.
INSTRUCTION_PARTS = ("input", "context", "system", "history")


def prompt_turn_end(messages: Any, prompt: str) -> int:
    """How many messages of a conversation come up to and including the user turn that holds `prompt` (a
    system message may come first); 0 when it does not open with that turn.

    >>> prompt_turn_end([{"role": "user", "content": "2+2? "}, {"role": "assistant", "content": "4"}], "2+2?")
    1
    >>> prompt_turn_end([{"role": "assistant", "content": "4"}], "2+2?")
    0
    """
    if message_style(messages) != "role":
        return 0
    for index, message in enumerate(messages[:2]):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return index + 1 if isinstance(content, str) and content.strip() == prompt.strip() else 0
    return 0


def user_turns_only(messages: Any) -> bool:
    """Whether a conversation holds user turns (and perhaps a system message) and nothing else.

    >>> user_turns_only([{"role": "system", "content": "s"}, {"role": "user", "content": "q"}])
    True
    >>> user_turns_only([{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]), user_turns_only([])
    (False, False)
    """
    if not isinstance(messages, list) or not messages:
        return False
    roles = [(m.get("role", m.get("from")) if isinstance(m, dict) else None) for m in messages]
    return all(role in PROMPT_ROLES for role in roles) and any(role in ("user", "human") for role in roles)


def shared_prompt_length(chosen: list | str, rejected: list | str) -> int:
    """Where an implicit prompt ends: the longest shared start of chosen and rejected, cut back so that each
    side keeps at least its last turn and the prompt never ends inside an assistant answer (or a word).
    0 when they share no prompt.

    >>> u, a, b = {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}, \\
    ...     {"role": "assistant", "content": "Go"}
    >>> shared_prompt_length([u, a], [u, b]), shared_prompt_length([u, a], [u, a, u, b]), shared_prompt_length([a], [b])
    (1, 1, 0)
    >>> shared_prompt_length("The answer is 4", "The answer is 42")
    14
    """
    shared = 0
    for x, y in zip(chosen, rejected):
        if x != y:
            break
        shared += 1
    shared = max(0, min(shared, len(chosen) - 1, len(rejected) - 1))
    if isinstance(chosen, str):
        while shared > 0 and not chosen[shared - 1].isspace():
            shared -= 1
    else:
        while shared > 0 and _role(chosen[shared - 1]) == "assistant":
            shared -= 1
    return shared


def _role(message: Any) -> Any:
    """A message's role, whether the message is a dict or a decoded struct (`inspector.fast.Message`)."""
    return message.get("role") if isinstance(message, dict) else getattr(message, "role", None)


def instruction_query(*parts: Any) -> str:
    """An instruction and what it is given (an input, a context) as one user turn: the non-empty texts, a line
    apart, as alpaca's `instruction` and `input` are joined.

    >>> instruction_query("Add the numbers.", "2 and 2"), instruction_query("Say hi.", "")
    ('Add the numbers.\\n2 and 2', 'Say hi.')
    """
    return "\n".join(part for part in parts if isinstance(part, str) and part)


def first_of(value: Any) -> Any:
    """What is read of a column that may hold a list where one value is read (sampled answers, reference outputs,
    Super-NaturalInstructions' definitions): the value, or the first of the list (TP216 counts the answers left
    out).

    >>> first_of("4"), first_of(["4", "four"])
    ('4', '4')
    """
    return value[0] if isinstance(value, list) and value else value


def instruction_row(row: dict, shape: Shape, answer: str) -> dict:
    """An alpaca or instruction/response row as conversational prompt-completion: system, history and the
    instruction (with its input or context) prompt the `answer` column.

    >>> from trlprep.inspector.dialects import classify_row
    >>> row = {"instruction": "Add", "input": "2 and 2", "output": "4", "system": "Be brief", "source": "x"}
    >>> instruction_row(row, classify_row(row), "output")["prompt"]
    [{'role': 'system', 'content': 'Be brief'}, {'role': 'user', 'content': 'Add\\n2 and 2'}]
    """
    names = shape.columns
    messages = []
    if row.get("system"):
        messages.append({"role": "system", "content": row["system"]})
    for pair in row.get("history") or []:
        messages += [user_message(pair[0]), assistant_message(pair[1])]
    messages.append(user_message(instruction_query(*(row.get(n) for n in (names[0], "input", "context")
                                                     if n in names))))
    extras = extra_columns(row, shape)
    return {"prompt": messages, "completion": [assistant_message(first_of(row[answer]))],
            **{k: v for k, v in extras.items() if k not in INSTRUCTION_PARTS}}
