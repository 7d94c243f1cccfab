"""Conversation content (TP2xx): empty texts, template markup and placeholders, turn order, training flags,
conversations flattened into a user turn, cut-off answers.

`check_text` is the pass every text of a row goes through (empty, markup, placeholders, then the hygiene rules of
`inspector.rules.hygiene`); `check_turns` checks the conversations of a row read as its TRL type.

>>> list(check_text("<|im_start|>user", "messages[0].content"))
[('TP207', "messages[0].content contains '<|im_start|>'")]
>>> list(check_text("<nooutput>", "output"))
[('TP215', "output contains '<nooutput>'")]
>>> list(check_conversation([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}], "messages"))
[('TP202', 'messages: system message at turn 2')]
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from trlprep.inspector.rules.catalog import ERROR, WARNING, by_structure, by_text, by_value_tests, register, Rule
from trlprep.inspector.rules.examples import ASSISTANT, CHAT, USER, chat, flagged, tree, TREE_QUESTION, Example
from trlprep.inspector.rules.hygiene import text_faults

Issue = tuple[str, str]

TEMPLATE_MARKUP = re.compile(
    r"<\|im_start\|>|<\|im_end\|>|\[INST\]|\[/INST\]|<\|eot_id\|>|<\|start_header_id\|>|<\|end_header_id\|>"
    r"|<\|begin_of_text\|>|<start_of_turn>|<end_of_turn>|<\|user\|>|<\|assistant\|>|<\|system\|>|<\|endoftext\|>"
    r"|<\|im_sep\|>|<s>\s*\[INST\]"
)
EOS_AS_TEXT = "</s>"  # Llama 2's and Mistral's end of sequence, which their templates add after every answer
# Placeholders a pipeline left in the text: "no input" / "no output" markers (Self-Instruct's and Alpaca's
# `<noinput>`, `<nooutput>`), and a special token's name where the token itself should be (`###eos_token###`,
# `{{eos_token}}`, `<eos_token>`). Every one holds `<` or `_token` / `_TOKEN` (`no_placeholder_start`).
PLACEHOLDER = re.compile(
    r"(?i:<\s*no[ _-]?(?:input|output)\s*>)"
    r"|(?:#{2,}|\{\{?|<)\s*(?:eos|bos|pad|unk|sep|EOS|BOS|PAD|UNK|SEP)_(?:token|TOKEN)\s*(?:#{2,}|\}\}?|>)"
)
# A conversation flattened into a user turn: a role's name at a line start, then a colon ("User:", "**Assistant**:",
# "Response assistant:").
USER_LINE = re.compile(r"(?im)^[ \t>#*]*(user|human|prompter|inquirer|customer)[ \t*]*:")
ASSISTANT_LINE = re.compile(r"(?im)^[ \t>#*]*((?:[a-z]+[ \t]+)?(?:assistant|ai|bot|gpt|chatgpt|model))[ \t*]*:")
# ... or a chat template's turn markup that opens an answer, or an answer's reasoning trace at a line start.
ANSWER_MARKUP = re.compile(
    r"<\|im_start\|>\s*assistant|<\|start_header_id\|>\s*assistant|<start_of_turn>\s*model|<\|assistant\|>"
    r"|\[INST\][\s\S]*?\[/INST\]|(?m:^[ \t]*<think>)"
)


def not_blank(text: str) -> bool:
    """The text proof of TP201 and TP302: a text with a character that is not white space is not empty.

    >>> not_blank("4"), not_blank(" \\n")
    (True, False)
    """
    return bool(text) and not text.isspace()


def no_markup_start(text: str) -> bool:
    """The text proof of TP207: every markup pattern holds `<` or `[`, and a text with neither holds none.

    >>> no_markup_start("a plain answer"), no_markup_start("[INST] hi")
    (True, False)
    """
    return "<" not in text and "[" not in text


def no_placeholder_start(text: str) -> bool:
    """The text proof of TP215: every placeholder holds `<`, `_token` or `_TOKEN`.

    >>> no_placeholder_start("a plain answer"), no_placeholder_start("###eos_token###")
    (True, False)
    """
    return "<" not in text and "_token" not in text and "_TOKEN" not in text


def no_flattened_turns(text: str) -> bool:
    """The text proof of TP217: a flattened conversation needs turn markup (which holds `<` or `[`) or an
    assistant's name before a colon at a line start.

    >>> no_flattened_turns("As the assistant said: 4"), no_flattened_turns("User: hi\\nAssistant: yo")
    (True, False)
    """
    return "<" not in text and "[" not in text and (":" not in text or not ASSISTANT_LINE.search(text))


def template_markup(text: str) -> str | None:
    """The first chat-template markup in a text (TP207), or None; `</s>` counts unless an HTML `<s>` (struck-out
    text) opens before it.

    >>> template_markup("Paris.</s>"), template_markup("<s>Lyon</s> Paris"), template_markup("[INST] hi")
    ('</s>', None, '[INST]')
    """
    found = TEMPLATE_MARKUP.search(text)
    if found:
        return found.group(0)
    eos = text.find(EOS_AS_TEXT)
    return EOS_AS_TEXT if eos >= 0 and "<s>" not in text[:eos] else None


def flattened_turns(text: str) -> str | None:
    """How a user turn holds a conversation flattened into it, or None: turn markup that opens an answer, or lines
    that start with a user's name and an assistant's (a user who writes "the assistant said" writes neither).

    >>> flattened_turns("User: 2+2?\\nAssistant: 4\\nUser: and 3+3?")
    "'User:' and 'Assistant:' lines"
    >>> flattened_turns("<|im_start|>assistant\\n4"), flattened_turns("The assistant said: 4. Why?")
    ("'<|im_start|>assistant'", None)
    """
    if no_flattened_turns(text):
        return None
    markup = ANSWER_MARKUP.search(text)
    if markup:
        return repr(" ".join(markup.group(0).split())[:40])
    user, answer = USER_LINE.search(text), ASSISTANT_LINE.search(text)
    if user and answer:
        return f"'{user.group(1)}:' and '{answer.group(1)}:' lines"
    return None


def user_turns(trl_row: dict) -> Iterator[tuple[str, str]]:
    """(where, text) for each user turn with text content of a conversation read as its TRL type, each text once
    (a pair's sides repeat their prompt).

    >>> list(user_turns({"prompt": [{"role": "user", "content": "Hi"}], "completion": []}))
    [('prompt[0]', 'Hi')]
    """
    seen = set()
    for side in ("messages", "prompt", "completion", "chosen", "rejected"):
        value = trl_row.get(side)
        for i, message in enumerate(value if isinstance(value, list) else ()):
            text = message.get("content") if isinstance(message, dict) and message.get("role") == "user" else None
            if isinstance(text, str) and text not in seen:
                seen.add(text)
                yield f"{side}[{i}]", text


def _flattened(trl_row: dict, shape: Any) -> Iterator[str]:
    for where, text in user_turns(trl_row):
        how = flattened_turns(text)
        if how:
            yield f"{where}: a user turn holding a whole conversation ({how})"


def _arrow_not_blank(texts: Any) -> Any:
    from trlprep.inspector.arrow import text_bytes

    return text_bytes(texts).not_blank()


def _arrow_no_markup_start(texts: Any) -> Any:
    from trlprep.inspector.arrow import without

    return without(texts, "<", "[")


def _arrow_no_placeholder_start(texts: Any) -> Any:
    from trlprep.inspector.arrow import without

    return without(texts, "<", "_token", "_TOKEN")


def _arrow_no_flattened_turns(texts: Any) -> Any:
    from trlprep.inspector.arrow import text_bytes, without

    found = text_bytes(texts)  # no colon in the column: no assistant's name before one
    return without(texts, "<", "[") & found.not_matching(ASSISTANT_LINE.pattern, found.holds(b":"))


NOT_BLANK = by_text("a text the fast paths accept holds a character that is not white space", not_blank,
                    _arrow_not_blank)
NO_MARKUP = by_text("a text the fast paths accept holds neither `<` nor `[`, with which every markup pattern starts",
                    no_markup_start, _arrow_no_markup_start)
NO_PLACEHOLDER = by_text("every placeholder holds `<` (which the fast paths refuse), `_token` or `_TOKEN`",
                         no_placeholder_start, _arrow_no_placeholder_start)
NO_FLATTENED_TURNS = by_text("turn markup holds `<` or `[` (which the fast paths refuse); a text proven clean has no "
                             "assistant's name before a colon at a line start", no_flattened_turns,
                             _arrow_no_flattened_turns)

EMPTY_CONTENT = register(Rule("TP201", "empty-content", ERROR, "a text field or message content is empty or whitespace only",
         "fill it or drop the row", "field",
         why="an empty answer teaches the model to answer with nothing but the end-of-turn token",
         structural=True, example=flagged(CHAT, chat({"role": "user", "content": "  "}, ASSISTANT)),
         proof=NOT_BLANK))

SYSTEM_NOT_FIRST = register(Rule("TP202", "system-not-first", ERROR, "a system message appears after the first turn",
         "most chat templates reject this: move the system message to the start", "trl",
         why="Llama, Mistral and Gemma templates raise on it; others silently drop it",
         example=flagged(CHAT, chat(USER, {"role": "system", "content": "be brief"}, ASSISTANT)),
         proof=by_value_tests("the system turn is first, if any")))

SAME_ROLE_TWICE = register(Rule("TP203", "same-role-twice", WARNING, "two consecutive turns have the same role",
         "many templates require user and assistant to alternate: merge the turns", "trl",
         why="strict templates raise 'roles must alternate'", example=flagged(CHAT, chat(USER, USER, ASSISTANT)),
         proof=by_value_tests("user and assistant alternate")))

NO_ASSISTANT_TURN = register(Rule("TP204", "no-assistant-turn", ERROR, "the conversation has no assistant turn, so nothing is trained",
         "add the assistant answer or drop the row", "trl",
         why="with assistant-only or completion-only loss the row contributes no gradient",
         example=flagged(CHAT, chat({"role": "system", "content": "s"}, USER)),
         proof=by_value_tests("a fast conversation ends on the answer")))

NOT_ENDING_WITH_ASSISTANT = register(Rule("TP205", "not-ending-with-assistant", WARNING,
         "the conversation does not end with the assistant; SFT trains nothing after the last assistant turn",
         "drop the trailing turns, or use the data for GRPO as prompts", "trl",
         why="trailing user turns cost tokens and, without assistant-only loss, are trained as model output",
         example=flagged(CHAT, chat(USER, ASSISTANT, USER)),
         proof=by_value_tests("a fast conversation ends on the answer")))

TOOL_RESULT_WITHOUT_CALL = register(Rule("TP206", "tool-result-without-call", ERROR,
         "a tool result is not preceded by an assistant tool call",
         "add the assistant `tool_calls` turn before the tool result", "trl",
         why="tool-aware templates pair each result with its call and raise or misrender without one",
         example=flagged(CHAT, chat(USER, {"role": "tool", "content": "42"}, ASSISTANT)),
         proof=by_structure("the typed messages take no `tool` role")))

TEMPLATE_MARKUP_IN_CONTENT = register(Rule("TP207", "template-markup-in-content", WARNING,
         "content holds chat-template markup (<|im_start|>, [INST], <|im_end|>, </s>, ...), which the template will "
         "add again",
         "store plain text and let the chat template add the markup", "trl",
         why="the markup is tokenized as control tokens, so the model learns doubled turn boundaries",
         example=flagged(CHAT, chat({"role": "user", "content": "<|im_start|>user\nhi"}, ASSISTANT)),
         proof=NO_MARKUP))

PLACEHOLDER_IN_TEXT = register(Rule("TP215", "placeholder-in-text", WARNING,
         "a text holds a placeholder a pipeline left for something else: `<noinput>` / `<nooutput>` (Self-Instruct, "
         "Alpaca), or a special token's name where the token should be (`###eos_token###`, `{{eos_token}}`)",
         "empty an input that says `<noinput>`, drop a row whose answer is `<nooutput>`, and delete token "
         "placeholders: the chat template adds the real tokens", "field",
         why="the chat template trains the placeholder as text: the model learns to answer `<nooutput>` or to "
             "write `###eos_token###` where it should stop",
         example=flagged({"instruction": "Name a colour.", "input": "", "output": "Red."},
                         {"instruction": "Describe the photo.", "input": "", "output": "<nooutput>"}),
         proof=NO_PLACEHOLDER))

CONVERSATION_IN_USER_TURN = register(Rule("TP217", "conversation-in-user-turn", WARNING,
         "a user turn holds a whole conversation: lines that start with `User:` and `Assistant:`, or chat-template "
         "markup that opens an answer (`<|im_start|>assistant`, `[INST] … [/INST]`, a `<think>` trace)", "split "
         "the flattened turns into messages of their own, so the template marks each and the answers are trained",
         "trl",
         why="the template wraps the whole transcript as one user turn: its answers are never trained, and the "
             "model learns to expect conversations typed inside a message",
         check=_flattened,
         example=flagged(CHAT, chat({"role": "user", "content": "User: What is 2+2?\nAssistant: 4\nUser: And 3+3?"},
                                    {"role": "assistant", "content": "6"})),
         proof=NO_FLATTENED_TURNS))

TURN_FLAGS = register(Rule("TP208", "turn-flags", WARNING,
         "messages carry per-turn training flags (`loss_weight`, `weight: 0`, `train: false`), which TRL's "
         "trainers do not read", "nothing to do for `convert`/`train --method sft`: they carry the flags (one "
         "prompt-completion row per trained turn); another tool must honour them itself", "trl",
         why="a trainer that ignores the flags trains every turn: the user turns LLaMA-Factory's `loss_weight: 0` "
             "keeps out, or an answer OpenAI's `weight: 0` marks as bad", types=frozenset({"language_modeling"}),
         check=lambda row, shape: (
             (f"trains turn(s) {', '.join(str(i + 1) for i, t in enumerate(row['trained_turns']) if t is True)} "
              f"of {len(row['trained_turns'])}",) if "trained_turns" in row else ()),
         example=flagged(CHAT, chat({**USER, "loss_weight": 0.0}, {**ASSISTANT, "loss_weight": 1.0})),
         proof=by_structure("the typed messages take no training flag")))

REPLIES_LEFT_OUT = register(Rule("TP209", "replies-left-out", WARNING,
         "replies of a conversation-tree prompt that are deleted or failed review are left out of its row",
         "nothing to do: they are not trained; the count says how much of the tree is unused", "field",
         why="a deleted or rejected reply is one the tree's own reviewers did not want learned",
         example=Example(tree(TREE_QUESTION, ("a", "q", "assistant", "4", 0),
                               ("b", "q", "assistant", "5", 1, {"deleted": True})), (1,)),
         proof=by_structure("conversation-tree rows are of no fast shape")))

ANSWERS_LEFT_OUT = register(Rule("TP216", "answers-left-out", WARNING,
         "an answer column holds several answers where one is read (alpaca's `output` as a list of samples, "
         "Super-NaturalInstructions' reference outputs): the first is the completion, the others are left out",
         "nothing to do when one answer an instruction is meant; to train on every sample, write one row a sample",
         "field",
         why="one row per sample would train the instruction as many times as it has samples; the count says how "
             "much of the data is not trained",
         example=flagged({"instruction": "Name a colour.", "input": "", "output": ["Red."]},
                         {"instruction": "Name a colour.", "input": "", "output": ["Red.", "Blue.", "Green."]}),
         proof=by_structure("alpaca and task-instance rows are of no fast shape")))

CUT_OFF_RESPONSE = register(Rule("TP214", "cut-off-response", WARNING,
         "a final answer of 20 words or more stops mid-sentence where the data's longest answers stop (the top 1%, "
         "2 or more of them ending so), or at exactly the length of 2 other answers that do: a generation or "
         "export cap; reported with `--cut-off`", "regenerate those answers with a larger cap, or drop them "
         "(`convert --drop-cut-off`)", "dataset",
         why="the model learns to stop mid-sentence, and an EOS after half a word teaches it that such answers are "
             "complete"))


def check_text(value: str, where: str, empty_rule: str = EMPTY_CONTENT.id) -> Iterator[Issue]:
    """Every text rule on one text: empty (`empty_rule`: TP201, or TP302 for a preference side), template
    markup, placeholders, then hygiene."""
    if not value.strip():
        yield empty_rule, f"{where} is empty" if not value else f"{where} is whitespace only"
        return
    if "<" in value or "[" in value:  # every markup pattern holds one; most text holds neither
        markup = template_markup(value)
        if markup:
            yield TEMPLATE_MARKUP_IN_CONTENT.id, f"{where} contains {markup!r}"
    if not no_placeholder_start(value):
        placeholder = PLACEHOLDER.search(value)
        if placeholder:
            yield PLACEHOLDER_IN_TEXT.id, f"{where} contains {placeholder.group(0)!r}"
    yield from text_faults(value, where)


def check_conversation(messages: list[dict], where: str) -> Iterator[Issue]:
    """Turn-order checks on a conversation read as TRL messages."""
    previous: dict | None = None
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "system" and i > 0:
            yield SYSTEM_NOT_FIRST.id, f"{where}: system message at turn {i + 1}"
        if previous is not None and role in ("user", "assistant") and role == previous.get("role"):
            yield SAME_ROLE_TWICE.id, f"{where}: turns {i} and {i + 1} are both {role!r}"
        if role == "tool" and not (
            previous is not None and (previous.get("role") == "tool" or
                                      (previous.get("role") == "assistant" and previous.get("tool_calls")))
        ):
            yield TOOL_RESULT_WITHOUT_CALL.id, f"{where}: tool result at turn {i + 1} follows no tool call"
        previous = message


def has_assistant(messages: list[dict]) -> bool:
    return any(m.get("role") == "assistant" for m in messages)


def no_answer(side: str) -> Issue:
    """The finding of a conversation side with no assistant turn."""
    return NO_ASSISTANT_TURN.id, f"{side}: no assistant turn"


def check_turns(trl_row: dict, shape: Any) -> Iterator[Issue]:
    """The conversations of a row read as its TRL type (but preference pairs, `inspector.rules.preference`):
    turn order, an assistant answer, and, for language modeling, the answer last."""
    if shape.format != "conversational":
        return
    if shape.type == "language_modeling":
        messages = trl_row["messages"]
        yield from check_conversation(messages, "messages")
        if not has_assistant(messages):
            yield no_answer("messages")
        if messages and messages[-1].get("role") != "assistant":
            yield NOT_ENDING_WITH_ASSISTANT.id, f"messages: ends with a {messages[-1].get('role')!r} turn"
    elif shape.type == "prompt_only":
        yield from check_conversation(trl_row["prompt"], "prompt")
    elif shape.type in ("prompt_completion", "unpaired_preference"):
        yield from check_conversation(trl_row["prompt"] + trl_row["completion"], "prompt+completion")
        if not has_assistant(trl_row["completion"]):
            yield no_answer("completion")
