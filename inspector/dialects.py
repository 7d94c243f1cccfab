"""What shape a row has, told from its values, and how each shape maps onto TRL's dataset types.

A *shape* names the dialect a row is written in (TRL's own columns, alpaca, ShareGPT, ...), the TRL type it
stands for, its format (standard strings or conversational message lists) and the fields it is read from.
Every function here is total: it never raises on a malformed row, it only declines to classify it.

>>> classify_row({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]})
Shape(dialect='trl', type='language_modeling', format='conversational', implicit_prompt=False, fields=(Field(name='messages', kind='messages', required=True),))
>>> classify_row({"instruction": "Add 2 and 2", "input": "", "output": "4"}).dialect
'alpaca'
>>> classify_row({"unrelated": 1}) is None
True
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from typing import Any

import orjson

from inspector.trees import best_and_worst, is_tree_message

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
# Roles a dialect is known to write besides the chat roles, mapped when it is read (no `--roles` needed).
DIALECT_ROLES = {"context_answer": {"bot": "assistant"}}
# Per-message training flags: LLaMA-Factory's `loss_weight`, OpenAI's and axolotl's `weight`, axolotl's `train` /
# `training` (its message_field_training). 0 or false: not trained; 1 or true: trained.
TURN_FLAG_KEYS = ("loss_weight", "weight", "train", "training")
CONVERSATION_COLUMNS = ("messages", "conversations", "conversation", "dialog", "dialogue", "chat", "turns")
LABEL_COLUMNS = ("label", "kto_tag")
PROMPT_COLUMNS = ("prompt", "instruction", "question", "query", "problem")
QUESTION_COLUMNS = ("question", "problem", "Question", "Problem")
# A worked solution is the completion; a short final `answer` beside it stays for GRPO's reward functions.
ANSWER_COLUMNS = ("solution", "chain", "answer", "Solution", "Answer", "Best Answer", "best_answer", "result")
# A short final answer beside a worked solution or chain of reasoning, under another name than `answer`.
FINAL_ANSWER_COLUMNS = ("result", "final_answer")
# TruthfulQA's answers known wrong: a list, or in its CSV one cell of answers separated by `;`.
INCORRECT_COLUMNS = ("Incorrect Answers", "incorrect_answers")
CHOICE_COLUMNS = ("choices", "options")
CHOICE_ANSWER_COLUMNS = ("answer", "answerKey", "label", "target")
TRANSCRIPT_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):[ \t]?")
FINAL_ANSWER = re.compile(r"####\s*(.+?)\s*$")


@dataclass(frozen=True)
class Field:
    """One column a shape reads. kinds: text, optional_text, prompt, messages, message, label,
    text_list, bool_list, history, scored_list, tools, openai_input (an object holding `messages` and perhaps
    `tools`), prompted_messages (messages that open with the row's prompt turn), turn_pairs (one
    `{"human", "assistant"}` object per exchange), message_turns (a list of turns, each a list of messages)."""

    name: str
    kind: str
    required: bool = True


@dataclass(frozen=True)
class Shape:
    dialect: str
    type: str
    format: str
    implicit_prompt: bool
    fields: tuple[Field, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


def is_id_column(name: str) -> bool:
    """Whether a column names the row rather than holds its content: rows that differ only there repeat.

    >>> [is_id_column(n) for n in ("id", "prompt_id", "uuid", "idea", "text")]
    [True, True, True, False, False]
    """
    lower = name.lower()
    return lower in ("id", "_id", "uuid", "guid", "idx") or lower.endswith(("_id", "_uuid", "_idx"))


def without_ids(row: dict) -> dict:
    """The row's content: its columns but the id-like ones, by which repeats are told.

    >>> without_ids({"prompt_id": "p1", "text": "hi"})
    {'text': 'hi'}
    """
    return {key: value for key, value in row.items() if not (isinstance(key, str) and is_id_column(key))}


def shape_key(shape: Shape) -> tuple:
    """Shapes that differ only in optional columns are the same shape."""
    return shape.dialect, shape.type, shape.format, shape.implicit_prompt, tuple(
        f.name for f in shape.fields if f.required)


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


def has_typed_content(messages: list) -> bool:
    """True when message content is a list of typed parts such as {"type": "text", "text": ...}.

    >>> has_typed_content([{"role": "user", "content": [{"type": "text", "value": "hi"}]}])
    True
    >>> has_typed_content([{"role": "user", "content": "hi"}])
    False
    """
    return any(isinstance(m, dict) and isinstance(m.get("content"), list) for m in messages)


def looks_like_transcript(text: Any) -> bool:
    """True for `Human:` / `Assistant:` transcripts (the hh-rlhf style).

    >>> looks_like_transcript("\\n\\nHuman: Hi\\n\\nAssistant: Hello")
    True
    >>> looks_like_transcript("A human and an assistant walk into a bar.")
    False
    """
    if not isinstance(text, str):
        return False
    speakers = {match.group(1) for match in TRANSCRIPT_TURN.finditer(text)}
    return speakers == {"Human", "Assistant"}


def final_answer(text: Any) -> str | None:
    """The final answer after a GSM8K-style `####` marker, or None.

    >>> final_answer("She makes 9 * 2 = $18 a day.\\n#### 18")
    '18'
    >>> final_answer("no marker") is None
    True
    """
    if not isinstance(text, str):
        return None
    match = FINAL_ANSWER.search(text)
    return match.group(1) if match else None


def _format_of(*values: Any) -> str | None:
    """`conversational` if any value is a message list, `standard` if any is a string, else None."""
    kinds = set()
    for value in values:
        if isinstance(value, list) and (message_style(value) or not value):
            kinds.add("conversational")
        elif isinstance(value, str):
            kinds.add("standard")
    if "conversational" in kinds:
        return "conversational"
    return "standard" if kinds else None


def _first_present(row: dict, names: tuple[str, ...]) -> str | None:
    return next((name for name in names if name in row), None)


def find_conversation_column(row: dict, exclude: tuple[str, ...] = ()) -> str | None:
    """The column holding a list of messages: a usual name first, then any column whose value is one.

    >>> find_conversation_column({"id": 3, "dialog": [{"role": "user", "content": "hi"}]})
    'dialog'
    """
    for name in CONVERSATION_COLUMNS:
        if name in row and name not in exclude and isinstance(row[name], list):
            return name
    for name, value in row.items():
        if name not in exclude and message_style(value):
            return name
    return None


def _rated_columns(row: dict) -> tuple[str, str] | None:
    """(prompt column, completions column) for rated or ranked completions.

    Accepts a list of objects with a text and a score (UltraFeedback's `completions`), or a list of strings
    beside a parallel list of scores, ratings or ranks.
    """
    prompt = _first_present(row, PROMPT_COLUMNS)
    if prompt is None:
        return None
    for name in ("completions", "responses", "candidates", "outputs"):
        value = row.get(name)
        if not isinstance(value, list) or len(value) < 2:
            continue
        if all(isinstance(item, dict) for item in value) and scored_item(value[0]) is not None:
            return prompt, name
        if all(isinstance(item, str) for item in value) and parallel_scores(row) is not None:
            return prompt, name
    return None


SCORE_KEYS = ("overall_score", "score", "rating", "reward", "fine-grained_score")
RANK_KEYS = ("rank", "ranking")
TEXT_KEYS = ("response", "text", "completion", "content", "output")


def scored_item(item: dict) -> tuple[str, float] | None:
    """(text, score) of a rated completion, higher is better; ranks are negated so that holds too.

    >>> scored_item({"response": "Paris", "overall_score": 9})
    ('Paris', 9.0)
    >>> scored_item({"text": "Lyon", "rank": 2})
    ('Lyon', -2.0)
    """
    text = next((item[k] for k in TEXT_KEYS if isinstance(item.get(k), str)), None)
    if text is None:
        return None
    for keys, sign in ((SCORE_KEYS, 1.0), (RANK_KEYS, -1.0)):
        for key in keys:
            value = item.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return text, sign * float(value)
    return None


SCORE_COLUMNS = ("scores", "ratings", "rewards", "rankings", "ranks")


def parallel_scores(row: dict) -> list[float] | None:
    """Scores beside a list of completion strings, higher is better (ranks are negated)."""
    for keys, sign in ((SCORE_COLUMNS[:3], 1.0), (SCORE_COLUMNS[3:], -1.0)):
        for key in keys:
            value = row.get(key)
            if isinstance(value, list) and value and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
            ):
                return [sign * float(v) for v in value]
    return None


def _prompt_field(row: dict, fmt: str, required: bool = True) -> Field:
    return Field("prompt", "prompt" if fmt == "standard" else "messages", required)


def _side_kind(fmt: str) -> str:
    return "messages" if fmt == "conversational" else "text"


def classify_row(row: Any) -> Shape | None:
    """The shape of one row, or None when it fits no known shape.

    >>> classify_row({"chosen": "A", "rejected": "B"}).implicit_prompt
    True
    >>> s = classify_row({"question": "1+1?", "answer": "2\\n#### 2"})
    >>> s.dialect, s.type
    ('question_answer', 'prompt_completion')
    """
    if not isinstance(row, dict) or unread_format(row):
        return None
    if isinstance(row.get("prompt"), list) and isinstance(row.get("replies"), list):
        return Shape("message_tree", "preference", "conversational", False, (
            Field("prompt", "thread"), Field("replies", "ranked_replies"),
            Field("thread_problem", "thread_problem", False), Field("replies_left_out", "left_out", False)))
    if "preferred_output" in row and "non_preferred_output" in row:
        return Shape("openai_preference", "preference", "conversational", False, (
            Field("input", "openai_input"), Field("preferred_output", "messages"),
            Field("non_preferred_output", "messages")))
    if isinstance(row.get("input"), str) and isinstance(row.get("label"), str) and STEP_TAG in row["input"]:
        return Shape("math_shepherd", "stepwise_supervision", "standard", False, (
            Field("input", "tagged_steps"), Field("label", "text")))
    if isinstance(row.get("question"), dict) and isinstance(row.get("label"), dict) and "steps" in row["label"]:
        return Shape("prm800k", "stepwise_supervision", "standard", False, (
            Field("question", "prm_question"), Field("label", "prm_steps")))
    if "prompt" in row and "completions" in row and "labels" in row:
        return Shape("trl", "stepwise_supervision", "standard", False, (
            Field("prompt", "text"), Field("completions", "text_list"), Field("labels", "bool_list")))
    if "chosen" in row and "rejected" in row:
        return _classify_preference(row)
    if "chosen_messages" in row and "rejected_messages" in row:
        return Shape("paired_conversations", "preference", "conversational", True, (
            Field("chosen_messages", "messages"), Field("rejected_messages", "messages")))
    if "response_j" in row and "response_k" in row:
        prompt = _first_present(row, PROMPT_COLUMNS) or "question"
        return Shape("paired_responses", "preference", "conversational", False, (
            Field(prompt, "text"), Field("response_j", "text"), Field("response_k", "text")))
    if "completion" in row and "label" in row and single_message_style(row["completion"]) \
            and isinstance(row.get("prompt"), list):
        return Shape("colossalchat", "unpaired_preference", "conversational", False, (
            Field("prompt", "messages"), Field("completion", "message"), Field("label", "label")))
    if "completion" in row and isinstance(row.get("prompt"), str) and prompt_turn_end(row["completion"],
                                                                                       row["prompt"]):
        label = (Field("label", "label"),) if "label" in row else ()
        return Shape("ultrafeedback", "unpaired_preference" if label else "prompt_completion", "conversational",
                     False, (Field("prompt", "text"), Field("completion", "prompted_messages")) + label)
    if "completion" in row and "label" in row:
        fmt = _format_of(row.get("completion"), row.get("prompt")) or "standard"
        return Shape("trl", "unpaired_preference", fmt, False, (
            _prompt_field(row, fmt), Field("completion", _side_kind(fmt)), Field("label", "label")))
    if "prompt" in row and "completion" in row:
        fmt = _format_of(row.get("completion"), row.get("prompt")) or "standard"
        return Shape("trl", "prompt_completion", fmt, False, (
            _prompt_field(row, fmt), Field("completion", _side_kind(fmt))))
    rated = _rated_columns(row)
    if rated:
        return Shape("rated_completions", "preference", "conversational", False, (
            Field(rated[0], "text"), Field(rated[1], "scored_list")))
    if "prompt" in row:
        fmt = _format_of(row.get("prompt")) or "standard"
        return Shape("trl", "prompt_only", fmt, False, (_prompt_field(row, fmt),))
    if _message_turns(row.get("question")) and isinstance(row.get("function"), list):
        return Shape("bfcl", "prompt_only", "conversational", False, (
            Field("question", "message_turns"), Field("function", "tools")))
    turns = row.get("turns")
    if isinstance(turns, list) and turns and all(isinstance(turn, str) for turn in turns):
        return Shape("mt_bench", "prompt_only", "conversational", False, (Field("turns", "text_list"),))
    pairs = next((name for name in CONVERSATION_COLUMNS if turn_pairs(row.get(name))), None)
    if pairs:
        return Shape("turn_pairs", "language_modeling", "conversational", False, (Field(pairs, "turn_pairs"),))
    if isinstance(row.get("context"), list):
        if "answer_w" in row and "answer_l" in row:
            return Shape("context_answer", "preference", "conversational", False, (
                Field("context", "messages"), Field("answer_w", "message"), Field("answer_l", "message")))
        if isinstance(row.get("answer"), dict) and "is_desirable" in row:
            return Shape("context_answer", "unpaired_preference", "conversational", False, (
                Field("context", "messages"), Field("answer", "message"), Field("is_desirable", "label")))
    conversation = find_conversation_column(row)
    if conversation:
        return _classify_conversation(row, conversation)
    if "instruction" in row and "output" in row:
        fields = [Field("instruction", "text"), Field("input", "optional_text", False), Field("output", "text")]
        fields += [Field(n, k, False) for n, k in (("system", "optional_text"), ("history", "history")) if n in row]
        return Shape("alpaca", "prompt_completion", "conversational", False, tuple(fields))
    prompt = _first_present(row, ("instruction", "query", "question"))
    if prompt and "response" in row:
        fields = [Field(prompt, "text"), Field("response", "text")]
        fields += [Field(n, "optional_text", False) for n in ("input", "context", "system") if n in row]
        return Shape("instruction_response", "prompt_completion", "conversational", False, tuple(fields))
    question, answer = _first_present(row, QUESTION_COLUMNS), _first_present(row, ANSWER_COLUMNS)
    incorrect = _first_present(row, INCORRECT_COLUMNS)
    if question and answer and incorrect:
        return Shape("graded_answers", "preference", "conversational", False, (
            Field(question, "text"), Field(answer, "text"), Field(incorrect, "answer_list")))
    choices, choice_answer = _first_present(row, CHOICE_COLUMNS), _first_present(row, CHOICE_ANSWER_COLUMNS)
    if question and choices and choice_answer and choice_texts(row[choices]) is not None:
        return Shape("multiple_choice", "prompt_completion", "conversational", False, (
            Field(question, "text"), Field(choices, "choices"), Field(choice_answer, "choice_answer")))
    if question and answer:
        return Shape("question_answer", "prompt_completion", "conversational", False, (
            Field(question, "text"), Field(answer, "text")))
    if "text" in row:
        if looks_like_transcript(row["text"]):
            return Shape("transcript", "language_modeling", "conversational", False, (Field("text", "text"),))
        return Shape("trl", "language_modeling", "standard", False, (Field("text", "text"),))
    return None


def unread_format(row: dict) -> str | None:
    """What a row is when it is a known format that no TRL type holds row by row, so that no row of it is read as
    something else (an OpenAssistant message's `text` is not a document); None for other rows.

    >>> unread_format({"message_id": "b", "parent_id": "a", "role": "assistant", "text": "Hi"})[:39]
    'an OpenAssistant conversation-tree mess'
    """
    if is_tree_message(row):
        return ("an OpenAssistant conversation-tree message (one message a row, linked by parent id) among rows "
                "of another kind: trees are read into prompts with their replies when a file's first row is one")
    steps = row.get("reasoning_steps")
    if isinstance(steps, list) and steps and isinstance(steps[0], dict) and "mc_value" in steps[0]:
        return ("MATH-APS Monte-Carlo values of solution prefixes (a search tree, not one labelled trajectory a row): "
                "TRL's stepwise supervision needs each row's steps labelled in order, and trlprep does not yet rebuild "
                "the trajectories and choose the threshold that makes a value a label")
    return None


def _classify_preference(row: dict) -> Shape:
    chosen, rejected = row["chosen"], row["rejected"]
    if single_message_style(chosen) or single_message_style(rejected):
        conversation = find_conversation_column(row, exclude=("chosen", "rejected"))
        style = single_message_style(chosen) or single_message_style(rejected)
        fields = (Field("chosen", "message"), Field("rejected", "message"))
        if conversation:
            style = message_style(row[conversation]) or style
            fields = (Field(conversation, "messages"),) + fields
        return Shape("sharegpt" if style == "from" else "message_pair", "preference", "conversational",
                     conversation is None, fields)
    implicit = "prompt" not in row
    prompt = row.get("prompt")
    if isinstance(prompt, str) and (prompt_turn_end(chosen, prompt) or prompt_turn_end(rejected, prompt)):
        return Shape("ultrafeedback", "preference", "conversational", False, (
            Field("prompt", "text"), Field("chosen", "prompted_messages"), Field("rejected", "prompted_messages")))
    if implicit and looks_like_transcript(chosen) and looks_like_transcript(rejected):
        return Shape("transcript", "preference", "conversational", True,
                     (Field("chosen", "text"), Field("rejected", "text")))
    fmt = _format_of(chosen, rejected, row.get("prompt")) or "standard"
    fields = (Field("chosen", _side_kind(fmt)), Field("rejected", _side_kind(fmt)))
    if not implicit:
        fields = (_prompt_field(row, fmt),) + fields
    return Shape("trl", "preference", fmt, implicit, fields)


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


PROMPT_ROLES = frozenset({"user", "system", "developer", "human"})


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


def _message_turns(value: Any) -> bool:
    """A list of turns, each a list of messages (BFCL's `question`)."""
    return isinstance(value, list) and bool(value) and all(isinstance(turn, list) for turn in value) \
        and message_style(value[0]) == "role"


# BFCL writes function parameters in Python's type names; JSON Schema (and chat templates) want its own.
BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array", "list": "array", "int": "integer",
              "str": "string", "bool": "boolean"}


def bfcl_tools(functions: list) -> list[dict]:
    """BFCL function descriptions as OpenAI tool schemas, Python type names made JSON Schema's ("any" dropped).

    >>> bfcl_tools([{"name": "f", "parameters": {"type": "dict", "properties": {"x": {"type": "float"}}}}])
    [{'type': 'function', 'function': {'name': 'f', 'parameters': {'type': 'object', 'properties': {'x': {'type': 'number'}}}}}]
    """
    def schema(value: Any) -> Any:
        if isinstance(value, dict):
            out = {key: schema(item) for key, item in value.items() if not (key == "type" and item == "any")}
            if isinstance(out.get("type"), str):
                out["type"] = BFCL_TYPES.get(out["type"], out["type"])
            return out
        return [schema(item) for item in value] if isinstance(value, list) else value

    return [{"type": "function", "function": schema(function)} for function in functions]


STEP_TAG = "ки"  # Math-Shepherd ends each step with it in `input`, and puts + or - in its place in `label`


def shepherd_steps(text: str, labels: str) -> tuple[str, list[str], list[bool]] | None:
    """A Math-Shepherd row as (question, steps, labels); None when `label` does not mark each step + or -.

    >>> shepherd_steps("Q? Step 1: a ки\\nStep 2: b ки", "Q? Step 1: a +\\nStep 2: b -")
    ('Q?', ['Step 1: a', 'Step 2: b'], [True, False])
    """
    parts = text.split(STEP_TAG)
    marks, position = [], 0
    for part in parts[:-1]:
        position += len(part)
        if position >= len(labels) or labels[position] not in "+-":
            return None
        marks.append(labels[position] == "+")
        position += 1
    question, found, first = parts[0].partition("Step 1:")
    steps = [("Step 1:" + first).strip() if found else parts[0].strip()] + [p.strip() for p in parts[1:-1]]
    return (question.strip() if found else ""), steps, marks


def prm800k_steps(label: dict) -> tuple[list[str], list[bool]]:
    """The steps of a PRM800K trajectory and their labels: each step's chosen completion, rated 1 or 0 (neutral)
    good and -1 bad, or the labeler's own completion where none was chosen (good); it ends where neither is.

    >>> prm800k_steps({"steps": [{"completions": [{"text": "a", "rating": 1}], "chosen_completion": 0},
    ...                          {"completions": [{"text": "b", "rating": -1}], "chosen_completion": None,
    ...                           "human_completion": {"text": "c"}}, {"completions": None}]})
    (['a', 'c'], [True, True])
    """
    steps, labels = [], []
    for step in label.get("steps") or []:
        chosen, completions = step.get("chosen_completion"), step.get("completions") or []
        if isinstance(chosen, int) and 0 <= chosen < len(completions):
            steps.append(completions[chosen].get("text"))
            labels.append((completions[chosen].get("rating") or 0) >= 0)
        elif isinstance(step.get("human_completion"), dict):
            steps.append(step["human_completion"].get("text"))
            labels.append(True)
        else:
            break
    return steps, labels


@functools.lru_cache(maxsize=256)
def _literal(text: str) -> Any:
    """A Python literal written as text, or None: literals only, a cell is never executed. Cached, because a
    row's options are read when it is classified, checked and converted."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return tuple(value) if isinstance(value, list) else value  # immutable, since the cache shares it


def choice_texts(value: Any) -> list[str] | None:
    """The options of a multiple-choice question: a list of strings, ARC's `{"text": [...], "label": [...]}`, or
    either written as text (a CSV cell holds MMLU's `['a', 'b']` Python list); None for anything else.

    >>> choice_texts("['h <= log2(N)', 'h > c log2(N)']")
    ['h <= log2(N)', 'h > c log2(N)']
    >>> choice_texts({"text": ["dry", "wet"], "label": ["A", "B"]}), choice_texts("a; b")
    (['dry', 'wet'], None)
    """
    if isinstance(value, str) and value[:1] in "[{":
        value = _literal(value)
    if isinstance(value, dict):
        value = value.get("text")
    if isinstance(value, (list, tuple)) and len(value) >= 2 and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def answer_list(value: Any) -> list[str]:
    """Answers written as a list, or as one text of answers separated by `;` (TruthfulQA's CSV).

    >>> answer_list("You will get arthritis; Nothing"), answer_list(["a", " b "])
    (['You will get arthritis', 'Nothing'], ['a', 'b'])
    """
    items = value.split(";") if isinstance(value, str) else value if isinstance(value, list) else []
    return [item.strip() for item in items if isinstance(item, str) and item.strip()]


def choice_letter(index: int) -> str:
    return chr(ord("A") + index)


def choice_index(answer: Any, choices: list[str]) -> int | None:
    """Which option the answer names: an index (0-based, as MMLU writes it, also as text), a letter (`C`, ARC's
    `answerKey`) or the option's own text; None when it names none, or two different ones (a CSV's `"2"` among
    the options `1 2 3 4` is option C by index and option B by text: guessing would train a wrong answer).

    >>> choice_index(2, ["a", "b", "c"]), choice_index("2", ["a", "b", "c"]), choice_index("B", ["a", "b"])
    (2, 2, 1)
    >>> choice_index("b", ["a", "b"]), choice_index(4, ["a", "b"]), choice_index(True, ["a", "b"])
    (1, None, None)
    >>> choice_index("2", ["1", "2", "3", "4"]), choice_index(2, ["1", "2", "3", "4"])
    (None, 2)
    """
    if isinstance(answer, bool):
        return None
    if not isinstance(answer, str):
        return answer if isinstance(answer, int) and 0 <= answer < len(choices) else None
    answer = answer.strip()
    readings = set()
    if answer in choices:
        readings.add(choices.index(answer))
    if len(answer) == 1 and "A" <= answer <= choice_letter(len(choices) - 1):
        readings.add(ord(answer) - ord("A"))
    if answer.isdigit() and int(answer) < len(choices):
        readings.add(int(answer))
    return readings.pop() if len(readings) == 1 else None


def multiple_choice_prompt(question: str, choices: list[str]) -> str:
    """The question with its options lettered, the way MMLU-style evaluations show them.

    >>> multiple_choice_prompt("2+2?", ["3", "4"])
    '2+2?\\n\\nA. 3\\nB. 4'
    """
    return question + "\n\n" + "\n".join(f"{choice_letter(i)}. {choice}" for i, choice in enumerate(choices))


def turn_pairs(value: Any) -> bool:
    """Whether a conversation is written as one `{"human": ..., "assistant": ...}` object per exchange.

    >>> turn_pairs([{"human": "Hi", "assistant": "Hello"}]), turn_pairs([{"role": "user", "content": "Hi"}])
    (True, False)
    """
    return isinstance(value, list) and bool(value) and all(
        isinstance(pair, dict) and "human" in pair and "assistant" in pair for pair in value)


def turn_flag(message: Any) -> Any:
    """A message's training flag, or None when it has none."""
    if not isinstance(message, dict):
        return None
    return next((message[key] for key in TURN_FLAG_KEYS if key in message), None)


def trained_turns(messages: list) -> list:
    """Which turns a conversation's flags train: True or False for each message; a turn without a flag is trained
    when it is the assistant's (the convention of every format that has flags); a flag other than 0/1 or a
    boolean is kept as it is, for the checks to name.

    >>> trained_turns([{"role": "user", "content": "a", "loss_weight": 0.0},
    ...                {"role": "assistant", "content": "b", "loss_weight": 1.0}, {"role": "assistant", "content": "c"}])
    [False, True, True]
    >>> trained_turns([{"role": "assistant", "content": "b", "weight": 0.5}])
    [0.5]
    """
    out = []
    for message in messages:
        flag = turn_flag(message)
        if flag is None:
            out.append(isinstance(message, dict) and message.get("role") == "assistant")
        elif isinstance(flag, bool) or flag in (0, 1):
            out.append(bool(flag))
        else:
            out.append(flag)
    return out


def _classify_conversation(row: dict, column: str) -> Shape:
    value = row[column]
    style = message_style(value)
    label = _first_present(row, LABEL_COLUMNS)
    fields = [Field(column, "messages")]
    if label:
        fields.append(Field(label, "label"))
    if "tools" in row:
        fields.append(Field("tools", "tools", False))
    if not label and user_turns_only(value):
        # A prompt set: nothing to train on, prompts to generate from.
        return Shape("sharegpt" if style == "from" else "prompt_messages", "prompt_only", "conversational", False,
                     tuple(fields))
    if style == "from":
        dialect = "sharegpt"
    elif not label and isinstance(value, list) and any(turn_flag(m) is not None for m in value):
        dialect = "turn_flags"
    elif isinstance(value, list) and has_typed_content(value):
        dialect = "typed_content"
    elif label:
        dialect = "messages_label"
    else:
        dialect = "trl" if column == "messages" else "messages_column"
    kind = "unpaired_preference" if label else "language_modeling"
    return Shape(dialect, kind, "conversational", False, tuple(fields))


# --- Reading a dialect's row as TRL's shape ------------------------------------------------------------


REASONING_PARTS = ("reasoning", "thinking")


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


def split_reasoning(content: Any) -> tuple[Any, str | None]:
    """Typed content whose parts are text and reasoning (LLaMA-Factory's `{"type": "reasoning", "value": ...}`)
    as (text, reasoning); other content as (content, None). The reasoning goes to a message's
    `reasoning_content`, the key chat templates of reasoning models (Qwen3, DeepSeek-R1) read.

    >>> split_reasoning([{"type": "reasoning", "value": "2+2 is 4"}, {"type": "text", "value": "4"}])
    ('4', '2+2 is 4')
    """
    if not isinstance(content, list) or not any(_part_text(p, REASONING_PARTS) is not None for p in content):
        return content, None
    texts = [_part_text(p, ("text",)) for p in content if not _part_text(p, REASONING_PARTS)]
    if None in texts:
        return content, None
    return "".join(texts), "".join(_part_text(p, REASONING_PARTS) or "" for p in content)


def sharegpt_tool_call(value: Any) -> dict | None:
    """A ShareGPT `function_call` value as an OpenAI tool call, or None when it is not {name, arguments} JSON.

    >>> sharegpt_tool_call('{"name": "f", "arguments": {"x": 1}}')
    {'type': 'function', 'function': {'name': 'f', 'arguments': {'x': 1}}}
    """
    try:
        call = orjson.loads(value) if isinstance(value, str) else value
    except orjson.JSONDecodeError:
        return None
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        return None
    arguments = call.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            pass
    return {"type": "function", "function": {"name": call["name"], "arguments": arguments}}


def parse_tools(tools: Any) -> Any:
    """ShareGPT's `tools` (a JSON string, or a list) as the tool schemas TRL documents and chat templates read:
    `{"type": "function", "function": {name, description, parameters}}`, the form
    `transformers.utils.get_json_schema` writes; bare function schemas are wrapped. Anything else is returned as
    it is.

    >>> parse_tools('[{"name": "weather", "parameters": {}}]')
    [{'type': 'function', 'function': {'name': 'weather', 'parameters': {}}}]
    >>> parse_tools("not json")
    'not json'
    """
    if isinstance(tools, str):
        try:
            parsed = orjson.loads(tools)
        except orjson.JSONDecodeError:
            return tools
        tools = parsed
    if not isinstance(tools, list):
        return tools
    return [{"type": "function", "function": tool} if isinstance(tool, dict) and "type" not in tool and "name" in tool
            else tool for tool in tools]


def name_tool_results(messages: list[dict]) -> list[dict]:
    """Tool results named after the call they answer, as TRL's tool-calling examples write them (templates such
    as Llama 3.1's and Qwen's render the name): the calls of an assistant turn are answered in order.

    >>> call = {"type": "function", "function": {"name": "add", "arguments": {}}}
    >>> name_tool_results([{"role": "assistant", "tool_calls": [call]}, {"role": "tool", "content": "4"}])[1]
    {'role': 'tool', 'content': '4', 'name': 'add'}
    """
    pending: list[str] = []
    out = []
    for message in messages:
        if message.get("role") == "assistant" and message.get("tool_calls"):
            pending = [call.get("function", {}).get("name") for call in message["tool_calls"]
                       if isinstance(call, dict) and isinstance(call.get("function"), dict)]
        elif message.get("role") == "tool" and "name" not in message and pending:
            message = {**message, "name": pending.pop(0)}
        out.append(message)
    return out


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
            call = sharegpt_tool_call(message.get("value"))
            if call is not None:
                return {"role": "assistant", "tool_calls": [call]}
        role = roles.get(source_role, SHAREGPT_ROLES.get(source_role, source_role))
        return {"role": role, "content": message.get("value", message.get("content"))}
    out = {key: value for key, value in message.items() if key not in TURN_FLAG_KEYS}
    out["role"] = roles.get(message.get("role"), message.get("role"))
    if "content" in out:
        text, reasoning = split_reasoning(out["content"])
        out["content"] = content_text(text)
        if reasoning is not None:
            out["reasoning_content"] = reasoning
    return out


def to_messages(value: list, roles: dict[str, str] | None = None) -> list[dict]:
    return name_tool_results([to_chat_message(m, roles) for m in value])


def transcript_to_messages(text: str) -> list[dict]:
    """A `Human:` / `Assistant:` transcript as messages.

    >>> transcript_to_messages("\\n\\nHuman: Hi\\n\\nAssistant: Hello!")
    [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello!'}]
    """
    parts = TRANSCRIPT_TURN.split(text)
    # split() alternates text, speaker, text...; text before the first marker is a preamble.
    messages = []
    if parts[0].strip():
        messages.append({"role": "system", "content": parts[0].strip()})
    for speaker, content in zip(parts[1::2], parts[2::2]):
        messages.append({"role": "user" if speaker == "Human" else "assistant", "content": content.strip()})
    return messages


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


def _user(text: str) -> dict:
    return {"role": "user", "content": text}


def _assistant(text: Any) -> dict:
    return {"role": "assistant", "content": text}


def _instruction_prompt(row: dict, shape: Shape) -> list[dict]:
    """Messages before the answer for alpaca and instruction/response rows: system, history, instruction."""
    names = shape.columns
    messages = []
    if row.get("system"):
        messages.append({"role": "system", "content": row["system"]})
    for pair in row.get("history") or []:
        messages += [_user(pair[0]), _assistant(pair[1])]
    query = "\n".join(
        row[n] for n in (names[0], "input", "context") if n in names and isinstance(row.get(n), str) and row[n]
    )
    messages.append(_user(query))
    return messages


def _extras(row: dict, shape: Shape) -> dict:
    """Columns the shape does not read; TRL passes them to GRPO reward functions and they are kept."""
    used = {f.name for f in shape.fields if f.kind != "tools"}
    return {key: value for key, value in row.items() if key not in used}


def rated_pair(row: dict, shape: Shape) -> tuple[str, str, float] | None:
    """(best, worst, margin) of a rated-completions row; None when all scores tie."""
    items = row[shape.fields[1].name]
    if all(isinstance(item, dict) for item in items):
        scored = [s for s in map(scored_item, items) if s is not None]
    else:
        scored = list(zip(items, parallel_scores(row) or []))
    if len(scored) < 2:
        return None
    best = max(scored, key=lambda s: s[1])
    worst = min(scored, key=lambda s: s[1])
    if best[1] == worst[1]:
        return None
    return best[0], worst[0], best[1] - worst[1]


def to_trl(row: dict, shape: Shape, roles: dict[str, str] | None = None) -> dict:
    """The row in the TRL type its shape stands for; columns the shape does not read are kept.

    Expects a row that passed the shape's field checks.

    >>> shape = classify_row({"instruction": "Add", "input": "2 and 2", "output": "4"})
    >>> to_trl({"instruction": "Add", "input": "2 and 2", "output": "4"}, shape)
    {'prompt': [{'role': 'user', 'content': 'Add\\n2 and 2'}], 'completion': [{'role': 'assistant', 'content': '4'}]}
    >>> shape = classify_row({"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]})
    >>> to_trl({"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]}, shape)
    {'messages': [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Yo'}]}
    """
    names = shape.columns
    extras = _extras(row, shape)
    dialect = shape.dialect
    if dialect == "trl" and not roles:
        return dict(row)
    if dialect == "trl":
        converted = {n: to_messages(row[n], roles) if message_style(row[n]) else row[n] for n in names if n in row}
        return {**converted, **extras}
    if dialect in ("alpaca", "instruction_response"):
        answer = row["output" if dialect == "alpaca" else "response"]
        out = {"prompt": _instruction_prompt(row, shape), "completion": [_assistant(answer)]}
        return {**out, **{k: v for k, v in extras.items() if k not in ("input", "context", "system", "history")}}
    if dialect == "message_tree":
        best, worst = best_and_worst(row["replies"])
        return {"prompt": row["prompt"], "chosen": [_assistant(best)],
                "rejected": None if worst is None else [_assistant(worst)],
                **extras}
    if dialect == "graded_answers":
        question, best, incorrect = names
        return {"prompt": [_user(row[question])], "chosen": [_assistant(row[best])],
                "rejected": [_assistant(answer_list(row[incorrect])[0])], **extras}
    if dialect == "multiple_choice":
        question, choices, answer = names
        options = choice_texts(row[choices])
        index = choice_index(row[answer], options)
        return {"prompt": [_user(multiple_choice_prompt(row[question], options))],
                "completion": [_assistant(f"{choice_letter(index)}. {options[index]}")],
                "answer": choice_letter(index), **extras}
    if dialect == "question_answer":
        short = _first_present(extras, FINAL_ANSWER_COLUMNS)
        if short and "answer" not in extras:  # what GRPO reward functions compare with, under the name they read
            extras["answer"] = extras.pop(short)
        return {"prompt": [_user(row[names[0]])], "completion": [_assistant(row[names[1]])], **extras}
    if dialect == "transcript":
        if shape.type == "language_modeling":
            return {"messages": transcript_to_messages(row["text"]), **extras}
        return {"chosen": transcript_to_messages(row["chosen"]), "rejected": transcript_to_messages(row["rejected"]),
                **extras}
    if dialect == "paired_responses":
        return {"prompt": [_user(row[names[0]])], "chosen": [_assistant(row["response_j"])],
                "rejected": [_assistant(row["response_k"])], **extras}
    if dialect == "math_shepherd":
        question, steps, labels = shepherd_steps(row["input"], row["label"])
        return {"prompt": question, "completions": steps, "labels": labels, **extras}
    if dialect == "prm800k":
        steps, labels = prm800k_steps(row["label"])
        return {"prompt": row["question"].get("problem"), "completions": steps, "labels": labels,
                **({"answer": row["question"]["ground_truth_answer"]}
                   if "ground_truth_answer" in row["question"] else {}), **extras}
    if dialect == "mt_bench":  # a later turn follows the model's answer to the one before: only the first prompts
        return {"prompt": [_user(row["turns"][0])], "turns": row["turns"], **extras}
    if dialect == "bfcl":
        # Later turns answer what the model did with the first: only the first is a prompt.
        return {"prompt": to_messages(row["question"][0], roles), "tools": bfcl_tools(row["function"]),
                **{k: v for k, v in extras.items() if k != "function"}}
    if dialect == "turn_pairs":
        messages = []
        for pair in row[names[0]]:
            messages += [_user(pair["human"]), _assistant(pair["assistant"])]
        return {"messages": messages, **extras}
    if dialect == "context_answer":
        roles = {**DIALECT_ROLES[dialect], **(roles or {})}
        prompt = to_messages(row["context"], roles)
        if shape.type == "preference":
            return {"prompt": prompt, "chosen": [to_chat_message(row["answer_w"], roles)],
                    "rejected": [to_chat_message(row["answer_l"], roles)], **extras}
        return {"prompt": prompt, "completion": [to_chat_message(row["answer"], roles)],
                "label": row["is_desirable"], **extras}
    if dialect == "colossalchat":
        return {"prompt": to_messages(row["prompt"], roles), "completion": [to_chat_message(row["completion"], roles)],
                "label": row["label"], **extras}
    if dialect == "openai_preference":
        request = row["input"]
        out = {"prompt": to_messages(request["messages"], roles),
               "chosen": to_messages(row["preferred_output"], roles),
               "rejected": to_messages(row["non_preferred_output"], roles)}
        if request.get("tools"):
            out["tools"] = request["tools"]
        return {**out, **extras}
    if dialect == "ultrafeedback" and shape.type != "preference":
        completion = row["completion"]
        opening = prompt_turn_end(completion, row["prompt"])
        label = {"label": row["label"]} if shape.type == "unpaired_preference" else {}
        return {"prompt": to_messages(completion[:opening], roles),
                "completion": to_messages(completion[opening:], roles), **label, **extras}
    if dialect == "ultrafeedback":
        chosen, rejected = row["chosen"], row["rejected"]
        opening = prompt_turn_end(chosen, row["prompt"])
        if extras.get("messages") == chosen:  # the chosen conversation again, as UltraFeedback ships it
            del extras["messages"]
        return {"prompt": to_messages(chosen[:opening], roles), "chosen": to_messages(chosen[opening:], roles),
                "rejected": to_messages(rejected[prompt_turn_end(rejected, row["prompt"]):], roles), **extras}
    if dialect == "paired_conversations":
        return {"chosen": to_messages(row["chosen_messages"], roles),
                "rejected": to_messages(row["rejected_messages"], roles), **extras}
    if dialect == "rated_completions":
        pair = rated_pair(row, shape)
        best, worst, margin = pair if pair else (None, None, 0.0)
        return {"prompt": [_user(row[names[0]])], "chosen": [_assistant(best)], "rejected": [_assistant(worst)],
                "margin": margin, **{k: v for k, v in extras.items() if k not in SCORE_COLUMNS}}
    if shape.type == "preference":  # sharegpt / message_pair: chosen and rejected are single messages
        out = {"chosen": [to_chat_message(row["chosen"], roles)], "rejected": [to_chat_message(row["rejected"], roles)]}
        if not shape.implicit_prompt:
            out = {"prompt": to_messages(row[names[0]], roles), **out}
        return {**out, **extras}
    # A conversation column, with or without a KTO label.
    messages = to_messages(row[names[0]], roles)
    if dialect == "sharegpt" and "tools" in extras:
        extras["tools"] = parse_tools(extras["tools"])
    if shape.type == "unpaired_preference":
        return {"prompt": messages[:-1], "completion": messages[-1:], "label": row[names[1]], **extras}
    if shape.type == "prompt_only":
        return {"prompt": messages, **extras}
    if dialect == "turn_flags":  # the flags leave the messages, their meaning stays beside them
        return {"messages": messages, "trained_turns": trained_turns(row[names[0]]), **extras}
    return {"messages": messages, **extras}
