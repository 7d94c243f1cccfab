"""A row's own columns (TP1xx), checked as its shape reads them in its dialect: missing fields, wrong types,
messages without a role or content, unknown roles, formats mixed within a row, clashing columns, broken threads.

`check_fields` runs the check of each column's kind (`FIELD_CHECKS`) over the columns the shape reads; texts go
through `inspector.rules.content.check_text`. What these checks say, JSON Schema can say too (`structural`).

>>> from trlprep.inspector.dialects import classify_row
>>> check_fields({"messages": [{"role": "bot", "content": "4"}]}, classify_row({"messages": []}))
[('TP106', "messages[0]: role 'bot' is not a chat role; map it with `--roles bot=assistant`")]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

from trlprep.inspector.dialects import (
    CHAT_ROLES,
    DIALECT_ROLES,
    DIALECT_STYLES,
    ROLE_ALIASES,
    SHAREGPT_ROLES,
    STEP_TAG,
    Field,
    Shape,
    answer_list,
    choice_index,
    choice_letter,
    choice_texts,
    message_style,
    parallel_scores,
    prm800k_steps,
    prompt_turn_end,
    rated_pair,
    sharegpt_tool_calls,
    shepherd_steps,
    single_message_style,
)
from trlprep.inspector.dialects.anthropic import unread_blocks
from trlprep.inspector.dialects.xlam import xlam_calls
from trlprep.inspector.rules.catalog import ERROR, by_structure, by_value_tests, register, Rule
from trlprep.inspector.rules.content import ANSWERS_LEFT_OUT, EMPTY_CONTENT, REPLIES_LEFT_OUT, Issue, check_text
from trlprep.inspector.rules.read import NOT_AN_OBJECT
from trlprep.inspector.rules.examples import ASSISTANT, CHAT, PAIR, TREE_QUESTION, USER, Example, chat, flagged, tree
from trlprep.inspector.rules.preference import (
    CHOSEN_EQUALS_REJECTED,
    EMPTY_PREFERENCE_SIDE,
    PROMPT_NOT_OPENING_ANSWERS,
    empty_rule,
)


# The typed parts of a message TRL's trainers and the chat templates read (vision rows' text and images).
TRL_PARTS = ("text", "image")
# The columns TRL reads to tell a dataset's type, and those each type reads.
TYPE_COLUMNS = {
    "language_modeling": frozenset({"text", "messages"}),
    "prompt_only": frozenset({"prompt"}),
    "prompt_completion": frozenset({"prompt", "completion"}),
    "preference": frozenset({"prompt", "chosen", "rejected"}),
    "unpaired_preference": frozenset({"prompt", "completion", "label"}),
    "stepwise_supervision": frozenset({"prompt", "completions", "labels"}),
}
TRL_COLUMNS = frozenset().union(*TYPE_COLUMNS.values())


def clashing_columns(row: dict, shape: Any) -> list[str]:
    """The columns of `row` that TRL reads for another dataset type than its `shape`'s (TP112).

    >>> from trlprep.inspector.dialects import classify_row
    >>> row = {"text": "Notes.", "label": "owner: bob"}
    >>> clashing_columns(row, classify_row(row))
    ['label']
    """
    return sorted(TRL_COLUMNS.intersection(row) - read_columns(shape))


def read_columns(shape: Any) -> frozenset[str]:
    """The columns TRL reads from a row of this shape once read as its type: language modeling reads `messages`
    or `text`, not both.

    >>> sorted(read_columns(type("S", (), {"type": "language_modeling", "format": "conversational"})))
    ['messages']
    """
    if shape.type == "language_modeling":
        return frozenset({"messages" if shape.format == "conversational" else "text"})
    return TYPE_COLUMNS[shape.type]


MISSING_FIELD = register(Rule("TP101", "missing-field", ERROR, "a required field is missing or null",
         "fill the field or drop the row (`convert` rejects such rows into the rejects file)", "field",
         why="the trainer indexes the column and fails, or trains on the string 'None'",
         blocking=True, structural=True, example=flagged(PAIR, {"prompt": "2+2?", "chosen": None, "rejected": "5"}),
         proof=by_structure("the typed decode holds the shape's columns and their types")))

WRONG_TYPE = register(Rule("TP102", "wrong-type", ERROR, "a field holds the wrong type of value",
         "store text as strings and conversations as lists of {role, content} objects", "field",
         why="a chat template or tokenizer given an object where it expects text raises mid-run",
         blocking=True, structural=True,
         example=flagged({"instruction": "i", "input": "", "output": "o"},
                       {"instruction": "i", "input": "", "output": {"answer": "o"}}),
         proof=by_structure("the typed decode holds the shape's columns and their types")))

MESSAGE_NOT_OBJECT = register(Rule("TP103", "message-not-object", ERROR, "a message in a conversation is not an object",
         "each message must be an object such as {\"role\": \"user\", \"content\": \"...\"}", "field",
         why="chat templates read message['role'] and message['content']", blocking=True, structural=True,
         example=flagged(CHAT, chat("hello", ASSISTANT)),
         proof=by_structure("the typed messages are objects with two keys")))

MESSAGE_MISSING_ROLE = register(Rule("TP104", "message-missing-role", ERROR, "a message has no role", "give every message a role", "field",
         why="without a role the template cannot tell what to train on", blocking=True, structural=True,
         example=flagged(CHAT, chat({"content": "hi"}, ASSISTANT)),
         proof=by_structure("the typed messages are objects with two keys")))

MESSAGE_MISSING_CONTENT = register(Rule("TP105", "message-missing-content", ERROR, "a message has no content (and no tool calls)",
         "give every message a content string", "field",
         why="templates render the missing content as an empty turn or raise", blocking=True, structural=True,
         example=flagged(CHAT, chat({"role": "user"}, ASSISTANT)),
         proof=by_structure("the typed messages are objects with two keys")))

UNKNOWN_ROLE = register(Rule("TP106", "unknown-role", ERROR, "a message uses a role chat templates do not know",
         "rename the role, e.g. `convert --roles bot=assistant`", "field",
         why="templates drop or reject unknown roles, and assistant-only loss never sees a 'bot' turn",
         blocking=True, structural=True, example=flagged(CHAT, chat(USER, {"role": "bot", "content": "4"})),
         proof=by_structure("the typed messages take the chat roles only")))

MIXED_ROW_FORMAT = register(Rule("TP107", "mixed-row-format", ERROR,
         "a string prompt sits beside message-list completions in the same row",
         "`convert` wraps the string prompt into a user message", "field",
         why="TRL applies the chat template to lists only, so the prompt loses its template", blocking=True,
         structural=True, repairable=True,
         example=flagged({"prompt": [USER], "chosen": [ASSISTANT], "rejected": [{"role": "assistant", "content": "5"}]},
                       {"prompt": "2+2?", "chosen": [ASSISTANT],
                        "rejected": [{"role": "assistant", "content": "5"}]}),
         proof=by_structure("the typed decode holds every side of a fast shape to one format")))

MIXED_DATASET_FORMAT = register(Rule("TP108", "mixed-dataset-format", ERROR,
         "some rows are standard (strings) where the rest are conversational (message lists), or the reverse",
         "`convert` writes every row in one format", "dataset",
         why="one Arrow column cannot hold both; `datasets` refuses the file or TRL formats rows differently",
         repairable=True,
         example=flagged(*[{"prompt": [USER], "completion": [ASSISTANT]}] * 3, {"prompt": "2+2?", "completion": "4"})))

STEPWISE_LENGTH_MISMATCH = register(Rule("TP109", "stepwise-length-mismatch", ERROR, "`completions` and `labels` have different lengths",
         "give one boolean label per completion step", "field",
         why="the trainer pairs steps with labels by position", blocking=True,
         example=flagged({"prompt": "p", "completions": ["a", "b"], "labels": [True, False]},
                       {"prompt": "p", "completions": ["a", "b"], "labels": [True]}),
         proof=by_structure("no fast shape is of the stepwise supervision type")))

LABEL_NOT_BOOLEAN = register(Rule("TP110", "label-not-boolean", ERROR, "the KTO label is not a boolean (e.g. the string \"true\" or 1)",
         "`convert --to kto` turns \"true\"/\"false\" and 1/0 into booleans", "field",
         why="KTO splits desirable from undesirable by `label is True`; the string \"false\" counts as desirable",
         structural=True, repairable=True, example=flagged({"prompt": "q", "completion": "a", "label": True},
                                        {"prompt": "q", "completion": "b", "label": "true"}),
         proof=by_structure("no fast shape is of the unpaired preference type")))

EMPTY_CONVERSATION = register(Rule("TP111", "empty-conversation", ERROR, "a conversation is an empty list", "drop the row", "field",
         why="an empty conversation renders as nothing: a row with no tokens", blocking=True, structural=True,
         example=flagged(CHAT, {"messages": []}),
         proof=by_value_tests("a fast conversation has a prompt and an answer")))

CLASHING_COLUMN = register(Rule("TP112", "clashing-column", ERROR,
         "the row keeps a column TRL reads for another dataset type (a `labels` beside `text`, a `messages` beside "
         "prompt/completion)", "rename or drop the column (`inspect` writes the `--map` for the data's own columns, checked "
         "on its first rows)", "trl",
         why="TRL refuses the row's keys, or passes the column to the model: a `labels` column becomes the loss "
             "targets", check=lambda row, shape: (
             f"column {name!r} beside {', '.join(sorted(read_columns(shape) & set(row)))}"
             for name in clashing_columns(row, shape)),
         example=flagged(CHAT, {**CHAT, "labels": {"toxicity": 0.01}}),
         proof=by_structure("a fast path takes rows with exactly the columns of a clean example")))

BROKEN_THREAD = register(Rule("TP113", "broken-thread", ERROR,
         "a conversation-tree prompt whose thread cannot be rebuilt: a message above it is deleted, failed review, "
         "or is not in the data (or it is a reply to such a prompt)", "drop the row, or export the whole tree",
         "field", why="without the turns before it the reply answers a conversation the model never sees",
         blocking=True,
         example=Example(tree(TREE_QUESTION, ("a", "q", "assistant", "4", 0), ("q2", "gone", "prompter", "Why?", None),
                               ("a2", "q2", "assistant", "Because.", 0)), (3,)),
         proof=by_structure("conversation-tree rows are of no fast shape")))


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


def check_message(message: Any, where: str, empty_rule: str = EMPTY_CONTENT.id, style: str = "role",
                  aliases: frozenset = frozenset(), texts: bool = True) -> Iterator[Issue]:
    """Checks on one message in the given style: "role" (role/content) or "from" (ShareGPT from/value); `aliases`
    are the other roles the row's dialect is known to write (and its reading maps). `texts`: whether its texts
    take the text rules (`check_text`), which they need not when the fast path's text proofs hold of them."""
    if not isinstance(message, dict):
        yield MESSAGE_NOT_OBJECT.id, f"{where} is {type_name(message)}"
        return
    if style not in message:
        yield MESSAGE_MISSING_ROLE.id, f"{where} has no {style!r} (keys: {', '.join(map(str, message)) or 'none'})"
        return
    if style == "role":
        role, content_key, known = message["role"], "content", CHAT_ROLES | aliases
    else:  # ShareGPT's `value`, or a `content` beside `from` as ColossalChat writes it
        role, known = message["from"], SHAREGPT_ROLES
        content_key = "content" if "content" in message and "value" not in message else "value"
    if not isinstance(role, str) or role not in known:
        yield UNKNOWN_ROLE.id, f"{where}: {role_hint(role)}"
    content = message.get(content_key)
    if content_key == "value" and role == "function_call":
        if sharegpt_tool_calls(content) is None:
            yield WRONG_TYPE.id, f"{where}: function_call value is not JSON with a 'name' (or a list of such calls)"
        return
    if content is None:
        if not message.get("tool_calls"):
            yield MESSAGE_MISSING_CONTENT.id, f"{where} has no '{content_key}'"
    elif isinstance(content, str):
        if texts and not (message.get("tool_calls") and not content.strip()):
            yield from check_text(content, f"{where}.{content_key}", empty_rule)
    elif isinstance(content, list):
        if not (message.get("tool_calls") and not content):  # a call with no text beside it
            yield from _check_parts(content, f"{where}.{content_key}", empty_rule, texts)
    else:
        yield WRONG_TYPE.id, f"{where}.{content_key} is {type_name(content)}, expected a string"


def _check_parts(parts: list, where: str, empty_rule: str, texts: bool) -> Iterator[Issue]:
    if not parts:
        yield empty_rule, f"{where} is an empty list"
    for i, part in enumerate(parts):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            yield WRONG_TYPE.id, f"{where}[{i}] is not a typed part such as {{\"type\": \"text\", \"text\": ...}}"
        elif part["type"] == "text":
            text = part.get("text", part.get("value"))
            if not isinstance(text, str):
                yield WRONG_TYPE.id, f"{where}[{i}] text part has no string 'text'"
            elif texts:
                yield from check_text(text, f"{where}[{i}]", empty_rule)


def check_messages(value: Any, where: str, empty_rule: str = EMPTY_CONTENT.id, style: str = "role",
                   aliases: frozenset = frozenset(), texts: bool = True) -> Iterator[Issue]:
    if not isinstance(value, list):
        yield WRONG_TYPE.id, f"{where} is {type_name(value)}, expected a list of messages"
        return
    if not value:
        yield (EMPTY_CONVERSATION.id if empty_rule == EMPTY_CONTENT.id else empty_rule), f"{where} is an empty list"
    for i, message in enumerate(value):
        yield from check_message(message, f"{where}[{i}]", empty_rule, style, aliases, texts)


@dataclass(frozen=True)
class Column:
    """One column of a row, as the field checks see it: its name and value, the row, the rule an empty text of
    it breaks, how the row's dialect writes messages (`style`, `aliases`: see `check_message`), and whether its
    texts take the text rules: not when the fast path's text proofs hold of them (`texts`, which only the fast
    shapes' kinds, text and messages, read: no row of another kind decodes into a fast path's structure)."""

    name: str
    kind: str
    value: Any
    row: dict
    shape: Any
    empty_rule: str
    style: str
    aliases: frozenset
    texts: bool = True


def _text(column: Column) -> Iterator[Issue]:
    """A text column (kinds text, optional_text, prompt): a string, or a prompt given as messages (TP107)."""
    name, value = column.name, column.value
    if isinstance(value, str):
        if column.kind != "optional_text" and column.texts:
            yield from check_text(value, name, column.empty_rule)
    elif column.kind == "prompt" and isinstance(value, list):
        yield MIXED_ROW_FORMAT.id, f"{name} is a message list where the row's other fields are strings"
    elif isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        yield WRONG_TYPE.id, (f"{name} is a list of {len(value)} strings, expected one: several answers are "
                              "samples or a ranking ([chosen, rejected] in LLaMA-Factory's old format), and "
                              "trlprep does not guess which; write them as chosen/rejected columns or one row per "
                              "answer")
    else:
        yield WRONG_TYPE.id, f"{name} is {type_name(value)}, expected a string"


def _samples(answers: list, where: str, empty_rule: str, texts: bool) -> Iterator[Issue]:
    """A list of answer strings of which the first is read: its text checked, the others counted as left out."""
    if texts:
        yield from check_text(answers[0], f"{where}[0]", empty_rule)
    if len(answers) > 1:
        yield ANSWERS_LEFT_OUT.id, f"{where} holds {len(answers)} answers: the first is read, {len(answers) - 1} left out"


def _is_text_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, str) for item in value)


def _answers(column: Column) -> Iterator[Issue]:
    """alpaca's `output`: a text, or a list of samples whose first is read; a list of two is refused (TP102), since
    LLaMA-Factory's old ranking format writes [chosen, rejected] so, and which is meant cannot be told."""
    if _is_text_list(column.value) and len(column.value) != 2:
        yield from _samples(column.value, column.name, column.empty_rule, column.texts)
    else:
        yield from _text(column)


def _instance(column: Column) -> Iterator[Issue]:
    """One instance of a task: an object with a string `input` and an `output`, a text or (SNI's) a list of
    reference outputs whose first is read. Both task formats write every instance's `input`, "" when the
    instruction needs none (Self-Instruct's seed tasks), so one without is broken: read, it would train the
    instruction alone as the prompt of an answer to an input it never saw."""
    name, value = column.name, column.value
    if not isinstance(value, dict):
        yield WRONG_TYPE.id, f"{name} is {type_name(value)}, expected an object with `input` and `output`"
        return
    given, output = value.get("input"), value.get("output")
    if given is None:
        yield MISSING_FIELD.id, (f"{name}.input is {'null' if 'input' in value else 'missing'} (an instance "
                                 f"without one writes \"\"): its output answers an input the row does not hold")
    elif not isinstance(given, str):
        yield WRONG_TYPE.id, f"{name}.input is {type_name(given)}, expected a string"
    if output is None:
        yield MISSING_FIELD.id, f"{name}.output is {'null' if 'output' in value else 'missing'}"
    elif output == []:
        yield column.empty_rule, f"{name}.output is an empty list"
    elif _is_text_list(output):
        yield from _samples(output, f"{name}.output", column.empty_rule, column.texts)
    elif not isinstance(output, str):
        yield WRONG_TYPE.id, f"{name}.output is {type_name(output)}, expected a string or a list of strings"
    elif column.texts:
        yield from check_text(output, f"{name}.output", column.empty_rule)


def _messages(column: Column) -> Iterator[Issue]:
    if column.name == "prompt" and isinstance(column.value, str):
        yield MIXED_ROW_FORMAT.id, f"{column.name} is a string where the row's other fields are message lists"
    else:
        yield from check_messages(column.value, column.name, column.empty_rule, column.style, column.aliases,
                                  column.texts)


def _prompted_messages(column: Column) -> Iterator[Issue]:
    """Answer conversations that open with the row's string prompt as a user turn (UltraFeedback)."""
    name, value = column.name, column.value
    yield from check_messages(value, name, column.empty_rule, column.style)
    prompt = column.row.get("prompt")
    opening = prompt_turn_end(value, prompt) if isinstance(prompt, str) else None
    if opening == 0:
        yield PROMPT_NOT_OPENING_ANSWERS.id, f"{name} does not open with the prompt's user turn"
    elif opening is not None and len(value) <= opening:
        yield column.empty_rule, f"{name} holds the prompt and no answer"


def _openai_input(column: Column) -> Iterator[Issue]:
    name, value = column.name, column.value
    if not isinstance(value, dict) or "messages" not in value:
        yield WRONG_TYPE.id, (f"{name} has no `messages`" if isinstance(value, dict)
                              else f"{name} is {type_name(value)}, expected an object with `messages`")
        return
    yield from check_messages(value["messages"], f"{name}.messages", column.empty_rule, column.style)
    if value.get("tools") is not None and not isinstance(value["tools"], list):
        yield WRONG_TYPE.id, f"{name}.tools is {type_name(value['tools'])}, expected a list of tool schemas"


def _message(column: Column) -> Iterator[Issue]:
    yield from check_message(column.value, column.name, column.empty_rule, column.style, column.aliases)


def _tagged_steps(column: Column) -> Iterator[Issue]:
    """Math-Shepherd's steps, each ended by a tag that `label` marks + or -."""
    value, label = column.value, column.row.get("label")
    if shepherd_steps(value, label if isinstance(label, str) else "") is None:
        yield STEPWISE_LENGTH_MISMATCH.id, (f"`label` does not mark each of the {value.count(STEP_TAG)} steps of "
                                            f"`{column.name}` + or -")
    elif not value.partition(STEP_TAG)[0].partition("Step 1:")[1]:
        yield MISSING_FIELD.id, f"{column.name}: no question before `Step 1:`"


def _prm_question(column: Column) -> Iterator[Issue]:
    name, value = column.name, column.value
    if not isinstance(value, dict) or not isinstance(value.get("problem"), str):
        yield WRONG_TYPE.id, f"{name} has no string `problem`"
    else:
        yield from check_text(value["problem"], f"{name}.problem", column.empty_rule)


def _prm_steps(column: Column) -> Iterator[Issue]:
    name = column.name
    steps, _ = prm800k_steps(column.value)
    if not steps:
        yield MISSING_FIELD.id, f"{name}: no step has a chosen or human completion"
    for i, step in enumerate(steps):
        if not isinstance(step, str):
            yield WRONG_TYPE.id, f"{name}: step {i + 1} has no text"
        else:
            yield from check_text(step, f"{name}: step {i + 1}", column.empty_rule)


def _message_turns(column: Column) -> Iterator[Issue]:
    yield from check_messages(column.value[0], f"{column.name}[0]", column.empty_rule, column.style)


def _turn_pairs(column: Column) -> Iterator[Issue]:
    for i, pair in enumerate(column.value):
        for side in ("human", "assistant"):
            if not isinstance(pair.get(side), str):
                yield WRONG_TYPE.id, (f"{column.name}[{i}].{side} is {type_name(pair.get(side))}, expected a "
                                      "string")
            else:
                yield from check_text(pair[side], f"{column.name}[{i}].{side}", column.empty_rule)


def _label(column: Column) -> Iterator[Issue]:
    if not isinstance(column.value, bool):
        yield LABEL_NOT_BOOLEAN.id, (f"{column.name} is {_snippet(column.value)} ({type_name(column.value)}), "
                                     "expected true or false")


def _text_list(column: Column) -> Iterator[Issue]:
    value = column.value
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        yield WRONG_TYPE.id, f"{column.name} is not a non-empty list of strings"


def _bool_list(column: Column) -> Iterator[Issue]:
    value, completions = column.value, column.row.get("completions")
    if not isinstance(value, list) or not all(isinstance(v, bool) for v in value):
        yield WRONG_TYPE.id, f"{column.name} is not a list of booleans"
    elif isinstance(completions, list) and len(value) != len(completions):
        yield STEPWISE_LENGTH_MISMATCH.id, f"{len(completions)} completions but {len(value)} labels"


def _history(column: Column) -> Iterator[Issue]:
    value = column.value
    if not isinstance(value, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(t, str) for t in p) for p in value
    ):
        yield WRONG_TYPE.id, f"{column.name} is not a list of [query, answer] string pairs"


def _scored_list(column: Column) -> Iterator[Issue]:
    if rated_pair(column.row, column.shape) is None:
        scores = parallel_scores(column.row)
        rule = CHOSEN_EQUALS_REJECTED if scores or isinstance(column.value[0], dict) else WRONG_TYPE
        yield rule.id, f"{column.name}: no best and worst completion (scores missing or all equal)"


def _thread(column: Column) -> Iterator[Issue]:
    if not column.row.get("thread_problem"):  # else there is no thread to check
        yield from check_messages(column.value, column.name, column.empty_rule, column.style)


def _thread_problem(column: Column) -> Iterator[Issue]:
    yield BROKEN_THREAD.id, column.value


def _left_out(column: Column) -> Iterator[Issue]:
    yield REPLIES_LEFT_OUT.id, f"{column.value} repl(ies) deleted or failed review, left out"


def _ranked_replies(column: Column) -> Iterator[Issue]:
    if not column.value:
        yield EMPTY_PREFERENCE_SIDE.id, f"{column.name}: the prompt has no reply"
    for i, reply in enumerate(column.value):
        text = reply.get("text") if isinstance(reply, dict) else None
        if text is None and isinstance(reply, dict):
            yield MISSING_FIELD.id, (f"{column.name}[{i}] (reply {reply.get('message_id')}) has no text: the "
                                     "prompt's replies cannot be ranked without it")
        elif not isinstance(text, str):
            yield WRONG_TYPE.id, f"{column.name}[{i}] has no string `text`"
        else:
            yield from check_text(text, f"{column.name}[{i}]", EMPTY_PREFERENCE_SIDE.id)


def _answer_list(column: Column) -> Iterator[Issue]:
    if not answer_list(column.value):
        yield EMPTY_PREFERENCE_SIDE.id, f"{column.name} holds no answer"


def _choices(column: Column) -> Iterator[Issue]:
    options = choice_texts(column.value)
    if options is None:
        yield WRONG_TYPE.id, f"{column.name} is not a list of two or more option strings"
        return
    for i, option in enumerate(options):
        yield from check_text(option, f"{column.name}[{i}]", column.empty_rule)


def _choice_answer(column: Column) -> Iterator[Issue]:
    options = choice_texts(column.row.get(column.shape.fields[1].name))
    if options is not None and choice_index(column.value, options) is None:
        yield WRONG_TYPE.id, (f"{column.name} {_snippet(column.value)} names none of the {len(options)} options, "
                              f"or more than one (an index from 0, a letter A-{choice_letter(len(options) - 1)}, or "
                              "an option's text)")


def _images(column: Column) -> Iterator[Issue]:
    """The images a row's reading placed (`inspector.vision.read_images`): a list; each image is checked by the
    image rules (`inspector.rules.images`)."""
    if not isinstance(column.value, list):
        yield WRONG_TYPE.id, f"{column.name} is {type_name(column.value)}, expected a list of images"


def _system(column: Column) -> Iterator[Issue]:
    """A system prompt as Anthropic writes it: a string, or a list of text blocks."""
    value = column.value
    if not isinstance(value, str) and not (isinstance(value, list) and all(
            isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str) for b in value)):
        yield WRONG_TYPE.id, f"{column.name} is {type_name(value)}, expected a string or a list of text blocks"


def _anthropic_messages(column: Column) -> Iterator[Issue]:
    """Messages checked as any are, and block by block as the Anthropic dialect reads them."""
    yield from _messages(column)
    if isinstance(column.value, list):
        for problem in unread_blocks(column.value):
            yield WRONG_TYPE.id, column.name + problem


def _calls(column: Column) -> Iterator[Issue]:
    if xlam_calls(column.value) is None:
        yield WRONG_TYPE.id, f"{column.name} is not a list of {{name, arguments}} calls, nor the JSON of one"


def _tools(column: Column) -> Iterator[Issue]:
    if not isinstance(column.value, (str, list)):
        yield WRONG_TYPE.id, f"{column.name} is {type_name(column.value)}, expected a list of tool schemas or a JSON string"


# A field kind (`inspector.dialects.Field.kind`) -> the checks of a present, non-null column of that kind.
FIELD_CHECKS: dict[str, Callable[[Column], Iterator[Issue]]] = {
    "text": _text, "prompt": _text, "optional_text": _text, "messages": _messages,
    "prompted_messages": _prompted_messages, "openai_input": _openai_input, "message": _message,
    "tagged_steps": _tagged_steps, "prm_question": _prm_question, "prm_steps": _prm_steps,
    "message_turns": _message_turns, "turn_pairs": _turn_pairs, "label": _label, "text_list": _text_list,
    "bool_list": _bool_list, "history": _history, "scored_list": _scored_list, "thread": _thread,
    "thread_problem": _thread_problem, "left_out": _left_out, "ranked_replies": _ranked_replies,
    "answer_list": _answer_list, "choices": _choices, "choice_answer": _choice_answer, "tools": _tools,
    "system": _system, "calls": _calls, "anthropic_messages": _anthropic_messages,
    "images": _images, "answers": _answers, "instance": _instance,
}


def _check_field(row: dict, field: Field, shape: Shape, texts: bool) -> Iterator[Issue]:
    value = row.get(field.name)
    if value is None:
        if field.required:
            yield MISSING_FIELD.id, f"{field.name} is {'null' if field.name in row else 'missing'}"
        return
    style = DIALECT_STYLES.get(shape.dialect, "role")
    if style == "either":  # the style the column's own messages are written in
        style = "from" if (message_style(value) or single_message_style(value)) == "from" else "role"
    column = Column(field.name, field.kind, value, row, shape, empty_rule(field.name), style,
                    frozenset(DIALECT_ROLES.get(shape.dialect, ())), texts)
    yield from FIELD_CHECKS[field.kind](column)


def check_fields(row: Any, shape: Shape, texts: bool = True) -> list[Issue]:
    """Checks on the columns the shape reads, in the row's own dialect (their texts too unless `texts` is False:
    see `Column`).

    >>> from trlprep.inspector.dialects import classify_row
    >>> shape = classify_row({"prompt": "Q", "completion": "A", "label": True})
    >>> check_fields({"prompt": "Q", "completion": "A", "label": "true"}, shape)
    [('TP110', "label is 'true' (a string), expected true or false")]
    """
    if not isinstance(row, dict):
        return [(NOT_AN_OBJECT.id, f"the row is {type_name(row)}")]
    return [issue for field in shape.fields for issue in _check_field(row, field, shape, texts)]


def check_read_contents(trl_row: dict) -> Iterator[Issue]:
    """The texts of a row read from another dialect, as TRL will see them: a transcript's last `Assistant:`
    with nothing after it is an empty answer, though the transcript itself is not empty; and typed parts the
    reading left as they were that are neither text nor an image, which no chat template reads (TP102).

    >>> list(check_read_contents({"messages": [{"role": "assistant", "content": [{"type": "code", "value": "1"}]}]}))
    [('TP102', "messages[0].content[0] (as read): a 'code' part, which no chat template reads")]
    """
    for name in ("messages", "prompt", "completion", "chosen", "rejected"):
        value = trl_row.get(name)
        if isinstance(value, str):
            yield from check_text(value, name, empty_rule(name))
        elif isinstance(value, list):
            for i, message in enumerate(value):
                content = message.get("content") if isinstance(message, dict) else None
                if isinstance(content, str) and not (message.get("tool_calls") and not content.strip()):
                    yield from check_text(content, f"{name}[{i}].content (as read)", empty_rule(name))
                for j, part in enumerate(content if isinstance(content, list) else ()):
                    kind = part.get("type") if isinstance(part, dict) else type_name(part)
                    if kind not in TRL_PARTS:
                        yield WRONG_TYPE.id, f"{name}[{i}].content[{j}] (as read): a {kind!r} part, which no chat template reads"
