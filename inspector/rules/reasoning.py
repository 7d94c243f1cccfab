"""Reasoning traces (TP8xx): an assistant turn's trace (`reasoning_content`, or `<think>…</think>` and its kin
opening `content`; `inspector.reasoning` finds and describes them) unclosed, empty, misplaced or with no answer
after it; traces in the prompt side of preference pairs; a dataset that mixes rows with and without traces.

Each check reads the trained answers of a row read as its TRL type (`answers`): a conversation's assistant turns,
a completion's, each preference side's after its prompt, or the answer strings of standard rows. Every marker
starts with `<`, which no text the fast paths accept holds (`TRACE_MARKERS`), and they take no message with a
`reasoning_content`: the rules cost nothing on rows without traces.

>>> row = {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "<think>2+2"}]}
>>> list(faults_of(row, "unclosed"))
["messages[1]: '<think>' is never closed"]
"""

from __future__ import annotations

from typing import Any, Iterator

from trlprep.inspector.dialects import shared_prompt_length
from trlprep.inspector.reasoning import EMPTY, MARKERS, MISPLACED, NO_ANSWER, UNCLOSED, Trace, describe, find_markers
from trlprep.inspector.rules.catalog import ERROR, WARNING, by_text, register, Rule
from trlprep.inspector.rules.examples import CHAT, USER, chat, flagged, Example

ANSWER_SIDES = ("completion", "chosen", "rejected")


def answers(trl_row: dict) -> Iterator[tuple[str, Any]]:
    """(where, message or answer string) for each answer a trainer trains in a row read as its TRL type.

    >>> [where for where, _ in answers({"chosen": [USER, {"role": "assistant", "content": "4"}],
    ...                                 "rejected": [USER, {"role": "assistant", "content": "5"}]})]
    ['chosen[1]', 'rejected[1]']
    """
    messages = trl_row.get("messages")
    if isinstance(messages, list):
        yield from _assistant_turns("messages", messages, 0)
    start = _implicit_prompt_length(trl_row)
    for side in ANSWER_SIDES:
        value = trl_row.get(side)
        if isinstance(value, str):
            yield side, value
        elif isinstance(value, list):
            yield from _assistant_turns(side, value, start if side != "completion" else 0)


def prompt_side(trl_row: dict) -> Iterator[tuple[str, Any]]:
    """(where, message or text) for each turn of a preference pair's prompt: its `prompt`, or the turns chosen
    and rejected share (an implicit prompt)."""
    prompt = trl_row.get("prompt")
    if isinstance(prompt, str):
        yield "prompt", prompt
    elif isinstance(prompt, list):
        yield from ((f"prompt[{i}]", message) for i, message in enumerate(prompt))
    else:
        chosen = trl_row.get("chosen")
        yield from ((f"chosen[{i}]", message) for i, message in enumerate(chosen[:_implicit_prompt_length(trl_row)]))


def _implicit_prompt_length(trl_row: dict) -> int:
    chosen, rejected = trl_row.get("chosen"), trl_row.get("rejected")
    if "prompt" in trl_row or not isinstance(chosen, list) or not isinstance(rejected, list):
        return 0
    return shared_prompt_length(chosen, rejected)


def _assistant_turns(side: str, messages: list, start: int) -> Iterator[tuple[str, dict]]:
    for i in range(start, len(messages)):
        message = messages[i]
        if isinstance(message, dict) and message.get("role") == "assistant":
            yield f"{side}[{i}]", message


# The last row's answer traces: each rule of the family, and the scan's count of traced rows, ask for the same row
# in turn. The row itself is kept, so that `is` tells it apart from any later row.
_last: list = [None, ()]


def answer_traces(trl_row: dict) -> tuple[tuple[str, Trace], ...]:
    """(where, trace) for each of the row's answers (`answers`), described once for all the rules."""
    if _last[0] is not trl_row:
        _last[:] = trl_row, tuple((where, describe(answer)) for where, answer in answers(trl_row))
    return _last[1]


def faults_of(trl_row: dict, fault: str) -> Iterator[str]:
    """The details of `fault` in the row's answers, each with where it is."""
    for where, trace in answer_traces(trl_row):
        if trace.faults:
            detail = trace.has(fault)
            if detail is not None:
                yield f"{where}: {detail}"


def holds_trace(trl_row: dict) -> bool | None:
    """Whether one of the row's answers holds a trace; None when the row has no answer (a prompt, a `text`).

    >>> holds_trace({"prompt": "2+2?", "completion": "<think>2+2</think>4"}), holds_trace({"prompt": "2+2?"})
    (True, None)
    """
    traces = answer_traces(trl_row)
    return any(trace.form is not None for _, trace in traces) if traces else None


def no_trace_marker(text: str) -> bool:
    """The text proof of the trace rules: a text without a marker holds no inline trace.

    >>> no_trace_marker("a < b"), no_trace_marker("<think>")
    (True, False)
    """
    return not find_markers(text)


def _arrow_no_trace_marker(texts: Any) -> Any:
    from trlprep.inspector.arrow import without

    return without(texts, *(marker for pair in MARKERS for marker in pair))


TRACE_MARKERS = by_text("a text the fast paths accept holds no trace marker (they refuse every `<`, and take no "
                        "message with a `reasoning_content`)", no_trace_marker, _arrow_no_trace_marker)


def _answer(content: str, **fields: Any) -> dict:
    return chat(USER, {"role": "assistant", "content": content, **fields})


TRACED = _answer("<think>\n2+2 is 4.\n</think>\n\n4")

TRACE_UNCLOSED = register(Rule("TP801", "trace-unclosed", ERROR,
         "an answer's reasoning trace is opened and never closed (`<think>` with no `</think>`, or the other "
         "markers), or closed with no opening",
         "close the trace where the reasoning ends, or drop the row: it was most often cut off by a length cap",
         "trl",
         why="the model learns to open a trace and never close it, so it thinks until max_new_tokens; Qwen3's "
             "template splits on `</think>` and takes a stray closing marker's whole text before it for the trace",
         check=lambda row, shape: faults_of(row, UNCLOSED),
         example=flagged(TRACED, _answer("<think>\n2+2 is")), proof=TRACE_MARKERS))

TRACE_EMPTY = register(Rule("TP802", "trace-empty", WARNING,
         "an answer's reasoning trace is empty (`<think></think>`, white space only, or `reasoning_content: \"\"`)",
         "nothing to do when the rows train a hybrid model's no-thinking mode (Qwen3 writes `<think>\\n\\n</think>` "
         "for it); otherwise fill the trace or drop it (`convert --reasoning drop`)",
         "trl",
         why="a warning, not an error: an empty trace is how Qwen3's template writes the non-thinking mode, and "
             "data for a hybrid model holds it on purpose; elsewhere it is a trace lost on export, and the model "
             "learns to skip thinking where the rest of the data thinks",
         check=lambda row, shape: faults_of(row, EMPTY),
         example=flagged(TRACED, _answer("4", reasoning_content="")), proof=TRACE_MARKERS))

TRACE_MISPLACED = register(Rule("TP803", "trace-misplaced", WARNING,
         "an answer's reasoning trace does not open its content: text comes before the `<think>`",
         "move the trace to the start of the turn, or into `reasoning_content` (`convert --reasoning field`)", "trl",
         why="Qwen3's template keeps what is inside the tags as the trace and what follows as the answer: the text "
             "before `<think>` is lost; templates that render content as written train the model to think in the "
             "middle of its answer",
         check=lambda row, shape: faults_of(row, MISPLACED),
         example=flagged(TRACED, _answer("Let me see. <think>2+2 is 4.</think>4")), proof=TRACE_MARKERS))

TRACE_WITHOUT_ANSWER = register(Rule("TP804", "trace-without-answer", WARNING,
         "an answer holds a reasoning trace and nothing after it", "drop the row, or regenerate its answer: the "
         "generation most often stopped at a length cap after the thinking", "trl",
         why="the model learns to end its turn once it has thought, never giving the answer",
         check=lambda row, shape: faults_of(row, NO_ANSWER),
         example=flagged(TRACED, _answer("<think>\n2+2 is 4.\n</think>\n\n")), proof=TRACE_MARKERS))


def _prompt_traces(row: dict, shape: Any) -> Iterator[str]:
    for where, turn in prompt_side(row):
        trace = describe(turn)
        if trace.form is not None:
            yield f"{where} holds a reasoning trace ({'reasoning_content' if trace.form == 'field' else 'inline'})"


TRACE_IN_PROMPT = register(Rule("TP805", "trace-in-prompt", WARNING,
         "the prompt of a preference pair holds a reasoning trace (a turn of its `prompt`, or of the turns chosen "
         "and rejected share)",
         "drop the traces from the prompt's turns (`convert --reasoning drop` drops every trace) and keep them in "
         "the answers", "trl",
         why="the pair is scored conditioned on another model's thinking, which the trained model never wrote and "
             "will not have at inference; templates that strip earlier turns' thinking (Qwen3) render the prompt "
             "without it, so the data and the training disagree",
         types=frozenset({"preference"}), check=_prompt_traces,
         example=flagged({"prompt": "2+2?", "chosen": "4", "rejected": "5"},
                         {"prompt": [USER, {"role": "assistant", "content": "<think>easy</think>4"},
                                     {"role": "user", "content": "And 3+3?"}],
                          "chosen": [{"role": "assistant", "content": "6"}],
                          "rejected": [{"role": "assistant", "content": "7"}]}), proof=TRACE_MARKERS))

MIXED_TRACES = register(Rule("TP806", "mixed-traces", WARNING,
         "some rows' answers hold a reasoning trace and others' hold none; reported with both counts, naming the "
         "rows of the smaller group", "give every row a trace (an empty one for a hybrid model's no-thinking "
         "mode), or drop the traces (`convert --reasoning drop`)", "dataset",
         why="the model learns to think on some prompts and not on others, with nothing in the prompt to say "
             "which: at inference it thinks, or does not, by chance",
         example=Example((TRACED, TRACED, CHAT), (3,))))
