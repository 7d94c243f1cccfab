"""Pure per-row transforms: one row in, rows out. Each raises `Reject` when a row cannot be converted.

They take rows already read as their TRL type (`inspector.dialects.to_trl`) and put them in the shape a
method's trainer wants.
"""

from __future__ import annotations

from typing import Any

import orjson

from trlprep.inspector.dialects import content_text, final_answer, shared_prompt_length
from trlprep.inspector.reasoning import as_form, strip_trace
from trlprep.inspector.rules.hygiene import fix_text
from trlprep.inspector.rules import last_answer
from trlprep.inspector.rules.conversion import first_wrong_step
from trlprep.inspector.rules.preference import NO_SHARED_PROMPT

class Reject(Exception):
    def __init__(self, rule: str, detail: str):
        super().__init__(detail)
        self.rule = rule
        self.detail = detail


def split_shared_prompt(chosen: list | str, rejected: list | str) -> tuple[Any, Any, Any]:
    """Implicit prompt → (prompt, chosen, rejected), message by message (or at a word boundary for strings).

    Unlike TRL's `extract_prompt`, each side keeps at least its last turn when one side is a prefix of the
    other or both are identical, and the prompt never ends inside an assistant answer.

    >>> u, a, b = {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}, \\
    ...     {"role": "assistant", "content": "Go"}
    >>> split_shared_prompt([u, a], [u, b])
    ([{'role': 'user', 'content': 'Hi'}], [{'role': 'assistant', 'content': 'Yo'}], [{'role': 'assistant', 'content': 'Go'}])
    >>> split_shared_prompt([u, a], [u, a, u, b])[0]
    [{'role': 'user', 'content': 'Hi'}]
    >>> split_shared_prompt("The answer is 4", "The answer is 42")
    ('The answer is ', '4', '42')
    """
    shared = shared_prompt_length(chosen, rejected)
    if shared <= 0:
        raise Reject(NO_SHARED_PROMPT.id, "chosen and rejected share no prompt")
    return chosen[:shared], chosen[shared:], rejected[shared:]


def explicit_preference(row: dict) -> dict:
    """A preference row with its prompt in its own column (extracted when implicit); a gold `reference` (TPO's)
    that repeats the prompt loses it too, as TRL's TPOTrainer cuts it.

    >>> explicit_preference({"chosen": "2+3 is 5", "rejected": "2+3 is 6", "reference": "2+3 is five"})["reference"]
    'five'
    """
    if "prompt" in row:
        return row
    prompt, chosen, rejected = split_shared_prompt(row["chosen"], row["rejected"])
    out = {"prompt": prompt, "chosen": chosen, "rejected": rejected,
           **{k: v for k, v in row.items() if k not in ("chosen", "rejected")}}
    reference = row.get("reference")
    if isinstance(reference, (str, list)) and reference[:len(prompt)] == prompt:
        out["reference"] = reference[len(prompt):]
    return out


def text_of(value: Any) -> str:
    """The text of a completion: a string as is, the contents of a message list joined; an assistant turn that
    calls tools is its calls as JSON, the answer a reward function compares against.

    >>> text_of([{"role": "assistant", "content": [{"type": "text", "text": "4"}]}])
    '4'
    >>> text_of([{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "add"}}]}])
    '[{"type":"function","function":{"name":"add"}}]'
    """
    if isinstance(value, str):
        return value
    texts = [_turn_text(m) for m in value if isinstance(m, dict)]
    return "\n".join(text for text in texts if isinstance(text, str) and text)


def _turn_text(message: dict) -> str | None:
    text = content_text(message.get("content"))
    if message.get("tool_calls") and not (isinstance(text, str) and text.strip()):
        return orjson.dumps(message["tool_calls"]).decode()
    return text


def _others(row: dict, *used: str) -> dict:
    return {k: v for k, v in row.items() if k not in used}


def stepwise_solution(row: dict) -> dict:
    """A stepwise row as prompt-completion: its steps, up to and including its first wrong one, joined by
    newlines; `label` says whether every step is correct (a cut solution ends at the step that went wrong).

    >>> stepwise_solution({"prompt": "2+3?", "completions": ["2+3 = 6", "So 6"], "labels": [False, False]})
    {'prompt': '2+3?', 'completion': '2+3 = 6', 'label': False}
    >>> stepwise_solution({"prompt": "2+3?", "completions": ["2+3 = 5", "So 5"], "labels": [True, True]})
    {'prompt': '2+3?', 'completion': '2+3 = 5\\nSo 5', 'label': True}
    """
    wrong = first_wrong_step(row)
    steps = row["completions"] if wrong is None else row["completions"][:wrong + 1]
    return {"prompt": row["prompt"], "completion": "\n".join(steps), "label": wrong is None,
            **_others(row, "prompt", "completions", "labels")}


def to_sft(row: dict, data_type: str, style: str = "prompt_completion") -> list[dict]:
    """Rows for SFTTrainer: language modeling or prompt-completion (`style="messages"` merges the two).

    >>> to_sft({"prompt": [{"role": "user", "content": "Q"}], "completion": [{"role": "assistant", "content": "A"}]},
    ...        "prompt_completion", style="messages")
    [{'messages': [{'role': 'user', 'content': 'Q'}, {'role': 'assistant', 'content': 'A'}]}]
    """
    if data_type == "language_modeling":
        if "trained_turns" in row:
            return per_trained_turn(row)
        return [row]
    if data_type == "stepwise_supervision":  # solutions with a wrong step are rejected before (TC106)
        row = _others(stepwise_solution(row), "label")
    elif data_type == "unpaired_preference":  # the rows labelled false are rejected before (TC101)
        row = {**_others(row, "label")}
    elif data_type == "preference":
        pair = explicit_preference(row)
        row = {"prompt": pair["prompt"], "completion": pair["chosen"], **_others(pair, "prompt", "chosen", "rejected")}
    return [as_messages(row)] if style == "messages" else [row]


def through_last_answer(row: dict) -> dict:
    """A conversation cut after its last assistant turn, for a trainer that trains the last turn: a user turn left
    last would be trained as the answer.

    >>> through_last_answer({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"},
    ...                                   {"role": "user", "content": "Thanks"}]})["messages"][-1]["content"]
    'A'
    """
    messages = row.get("messages")
    last = last_answer(messages) if isinstance(messages, list) else 0
    return {**row, "messages": messages[:last + 1]} if last else row


def as_messages(row: dict) -> dict:
    """A conversational prompt-completion row as one `messages` conversation, the completion its last turns;
    other rows as they are.

    >>> as_messages({"prompt": [{"role": "user", "content": "Q"}], "completion": [{"role": "assistant", "content": "A"}]})
    {'messages': [{'role': 'user', 'content': 'Q'}, {'role': 'assistant', 'content': 'A'}]}
    """
    if isinstance(row.get("prompt"), list) and isinstance(row.get("completion"), list):
        return {"messages": row["prompt"] + row["completion"], **_others(row, "prompt", "completion")}
    return row


def per_trained_turn(row: dict) -> list[dict]:
    """A conversation whose flags say which turns to train, as one prompt-completion row per trained turn: under
    TRL's completion-only loss each row trains that turn alone, the turns before it (trained or not) its prompt.
    Whatever `style` asks, since merged messages would train every turn.

    >>> u, a, b = {"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}, \\
    ...     {"role": "assistant", "content": "B"}
    >>> [(len(r["prompt"]), r["completion"][0]["content"])
    ...  for r in per_trained_turn({"messages": [u, a, u, b], "trained_turns": [False, True, False, True]})]
    [(1, 'A'), (3, 'B')]
    """
    messages, rest = row["messages"], _others(row, "messages", "trained_turns")
    return [{"prompt": messages[:i], "completion": [messages[i]], **rest}
            for i, trained in enumerate(row["trained_turns"]) if trained is True]


def to_preference(row: dict, data_type: str) -> list[dict]:
    """Rows for DPOTrainer and RewardTrainer: explicit-prompt preference pairs."""
    return [explicit_preference(row)]


def to_kto(row: dict, data_type: str) -> list[dict]:
    """Rows for KTOTrainer: unpaired completions with a boolean label; a pair becomes two rows.

    >>> to_kto({"prompt": "Q", "chosen": "A", "rejected": "B"}, "preference")
    [{'prompt': 'Q', 'completion': 'A', 'label': True}, {'prompt': 'Q', 'completion': 'B', 'label': False}]
    """
    if data_type == "unpaired_preference":
        return [row]
    if data_type == "stepwise_supervision":
        return [stepwise_solution(row)]
    pair = explicit_preference(row)
    rest = _others(pair, "prompt", "chosen", "rejected")
    return [{"prompt": pair["prompt"], "completion": pair["chosen"], "label": True, **rest},
            {"prompt": pair["prompt"], "completion": pair["rejected"], "label": False, **rest}]


def to_grpo(row: dict, data_type: str, dialect: str) -> list[dict]:
    """Rows for GRPOTrainer: a prompt, and the reference answer in columns reward functions receive.

    >>> to_grpo({"prompt": [{"role": "user", "content": "6*7?"}],
    ...          "completion": [{"role": "assistant", "content": "6*7 = 42\\n#### 42"}]}, "prompt_completion",
    ...         "question_answer")
    [{'prompt': [{'role': 'user', 'content': '6*7?'}], 'reference': '6*7 = 42\\n#### 42', 'answer': '42'}]
    """
    if data_type == "prompt_only":
        return [row]
    if data_type == "stepwise_supervision":  # solutions with a wrong step are rejected before (TC106)
        # The last step states the answer: `answer_match` reads the last number in it.
        solution = {**_others(stepwise_solution(row), "label"), "answer": row.get("answer", row["completions"][-1])}
        return to_grpo(solution, "prompt_completion", dialect)
    if data_type == "language_modeling":
        messages = row["messages"]
        last = last_answer(messages)  # 0, no prompt, is rejected before (TC102)
        prompt, reference = messages[:last], [messages[last]]
        rest = _others(row, "messages", "trained_turns")
    elif data_type == "preference":
        pair = explicit_preference(row)
        prompt, reference = pair["prompt"], pair["chosen"]
        rest = _others(pair, "prompt", "chosen", "rejected")
    else:  # prompt_completion, unpaired_preference
        prompt, reference = row["prompt"], row["completion"]
        rest = _others(row, "prompt", "completion", "label")
        if "label" in row:  # TRL's chat-template helper refuses a `prompt` beside a `label`: renamed, not lost
            rest["desirable"] = row["label"]
    out = {"prompt": prompt, "reference": text_of(reference), **rest}
    if dialect == "question_answer" and "answer" not in rest:  # a dataset's own short answer stays as it is
        out["answer"] = final_answer(out["reference"]) or out["reference"]
    return [out]


CONVERSATION_FIELDS = ("messages", "prompt", "chosen", "rejected", "completion")


def set_system(row: dict, text: str | None, drop: bool = False) -> dict:
    """Add or replace the system message (or drop every system message) in a conversational row.

    The system message goes at the start of the conversation: `messages`, or `prompt`, or for an implicit
    prompt both `chosen` and `rejected`.

    >>> set_system({"prompt": [{"role": "user", "content": "Hi"}]}, "Be brief.")
    {'prompt': [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'Hi'}]}
    >>> set_system({"messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "Hi"}]}, None, True)
    {'messages': [{'role': 'user', 'content': 'Hi'}]}
    """
    out = dict(row)
    starts = [k for k in ("messages", "prompt") if isinstance(row.get(k), list)] or \
        [k for k in ("chosen", "rejected") if isinstance(row.get(k), list)]
    for key in CONVERSATION_FIELDS:
        if drop and isinstance(out.get(key), list):
            out[key] = [m for m in out[key] if m.get("role") != "system"]
    if text is not None:
        for key in starts:
            messages = out[key]
            if messages and messages[0].get("role") == "system":
                messages = messages[1:]
            out[key] = [{"role": "system", "content": text}] + messages
    return out


def fixed_text(value: Any) -> Any:
    """`value` with every string in it through `inspector.rules.hygiene.fix_text` (`convert --fix-text`).

    >>> fixed_text({"prompt": [{"role": "user", "content": "CafÃ©?"}], "completion": "Yes\\x00."})
    {'prompt': [{'role': 'user', 'content': 'Café?'}], 'completion': 'Yes.'}
    """
    if isinstance(value, str):
        return fix_text(value)
    if isinstance(value, dict):
        return {key: fixed_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [fixed_text(item) for item in value]
    return value


# The string columns that hold an answer after a conversion: standard rows' answers, GRPO's reference.
ANSWER_STRINGS = ("completion", "chosen", "rejected", "reference")


def traces_as(row: dict, form: str) -> dict:
    """The row with every assistant turn's reasoning trace in `form` (`convert --reasoning`): "field"
    (`reasoning_content`), "inline" (`<think>…</think>` opening the content) or "drop". A standard row's answer
    strings can hold a trace only inline: "drop" removes it, the other forms leave it.

    >>> traces_as({"messages": [{"role": "user", "content": "2+2?"},
    ...                         {"role": "assistant", "content": "<think>2+2</think>4"}]}, "field")["messages"][1]
    {'role': 'assistant', 'content': '4', 'reasoning_content': '2+2'}
    >>> traces_as({"prompt": "2+2?", "completion": "<think>2+2</think>\\n\\n4"}, "drop")
    {'prompt': '2+2?', 'completion': '4'}
    """
    out = dict(row)
    for key in CONVERSATION_FIELDS:
        if isinstance(row.get(key), list):
            out[key] = [as_form(m, form) if isinstance(m, dict) and m.get("role") == "assistant" else m
                        for m in row[key]]
    if form == "drop":
        for key in ANSWER_STRINGS:
            if isinstance(row.get(key), str):
                out[key] = strip_trace(row[key])
    return out
