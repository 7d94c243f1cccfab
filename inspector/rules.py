"""The rule catalog: every check trlprep runs, declared once with its id, severity, stage, docs and example.

Ids are never renumbered. Prefixes group the rules: TP0xx reading a row, TP1xx structure, TP2xx conversation
content, TP3xx preference data, TP4xx dataset-level checks, TP5xx the model's tokenizer and template, TC1xx what
a conversion for one method leaves out.

Everything else reads this table: the checks that stop a row from being read as its TRL type (`blocking`), the
rules the JSON Schemas express (`structural`), the README's rule table (`markdown_table`), `inspect --explain`,
and the fast paths, which may only skip a row for the rules they prove (`row_rules`). A rule whose check is
declared here (`check`) runs on every scan path without another change: a row that could break it takes the full
checks.

>>> RULES["TP301"].name, RULES["TP301"].severity
('chosen-equals-rejected', 'error')
>>> sorted(r.id for r in RULES.values() if r.blocking)[:3]
['TP001', 'TP002', 'TP101']
"""

from __future__ import annotations

import functools
import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from inspector.toolcalls import invalid_arguments, invalid_tools, unanswered_calls, undeclared_calls

ERROR = "error"
WARNING = "warning"
# Where a rule's check runs: reading the row, its own columns, the row read as its TRL type, the whole dataset,
# the conversion for one method, the model's tokenizer, or the converted row (a guard).
STAGES = ("read", "field", "trl", "dataset", "method", "tokens", "output")


@dataclass(frozen=True)
class Example:
    """Rows as written to a JSON-lines file (objects, or raw strings for broken lines) and the line numbers the
    rule reports; the test suite runs every example."""

    rows: tuple
    flagged: tuple[int, ...]


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: str
    summary: str  # what it catches, one line
    fix: str
    stage: str
    why: str = ""  # why it matters for training
    blocking: bool = False  # the row cannot be read as its TRL type: later checks do not run on it
    structural: bool = False  # the published JSON Schemas say it too
    types: frozenset[str] | None = None  # the TRL types it applies to; None: any
    # The methods whose conversion rejects a row this rule flags (stage "method": checked for those methods
    # only, and counted in their verdicts rather than reported as findings).
    methods: frozenset[str] | None = None
    # A check declared here: (row read as its TRL type, shape) -> a detail for each failure. Stage "trl" checks
    # run on every row of the rule's types; stage "method" checks when converting for its methods.
    check: Callable[[dict, Any], Iterable[str]] | None = field(default=None, compare=False)
    example: Example | None = None
    repairable: bool = False  # `convert` repairs the row (inspector.engine.repair) instead of rejecting it
    # The columns a row must have for the rule to fire (empty: any row): a fast path taking rows without them
    # proves the rule by their absence.
    columns: frozenset[str] = frozenset()

    def applies_to(self, data_type: str) -> bool:
        return self.types is None or data_type in self.types

    def explain(self) -> str:
        """The rule's manual, as `inspect --explain ID` prints it."""
        lines = [f"{self.id} {self.name} ({self.severity}, {self.stage} stage)", "", self.summary + "."]
        if self.why:
            lines += ["", "Why it matters: " + self.why]
        if self.example is not None:
            lines += ["", "Example (the flagged row):"]
            lines += ["  " + (row if isinstance(row, str) else json.dumps(row, ensure_ascii=False))
                      for row in (self.example.rows[i - 1] for i in self.example.flagged or (len(self.example.rows),))]
        lines += ["", "Fix: " + self.fix]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "severity": self.severity, "stage": self.stage,
                "summary": self.summary, "why": self.why, "fix": self.fix, "blocking": self.blocking,
                "structural": self.structural, "types": sorted(self.types) if self.types else None,
                "methods": sorted(self.methods) if self.methods else None,
                "example": list(self.example.rows) if self.example else None}


USER = {"role": "user", "content": "What is 2+2?"}
ASSISTANT = {"role": "assistant", "content": "4"}
CHAT = {"messages": [USER, ASSISTANT]}
PAIR = {"prompt": "2+2?", "chosen": "4", "rejected": "5"}


def _chat(*messages) -> dict:
    return {"messages": list(messages)}


def last_answer(messages: list) -> int:
    """The index of the last assistant message, 0 when there is none.

    >>> last_answer([USER, ASSISTANT, USER]), last_answer([USER])
    (1, 0)
    """
    return max((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "assistant"),
               default=0)


def _unexpressible_flags(row: dict) -> Iterator[str]:
    """What per-turn flags ask that one prompt-completion row per trained turn cannot give."""
    flags = row.get("trained_turns")
    if flags is None:
        return
    messages = row["messages"]
    for i, (message, trained) in enumerate(zip(messages, flags)):
        if not isinstance(trained, bool):
            yield f"messages[{i}] has weight {trained!r}; TRL trains a turn fully or not at all"
            return
        if trained and message.get("role") != "assistant":
            yield f"messages[{i}] is a trained {message.get('role')} turn"
            return
        if trained and i == 0:
            yield "messages[0] is a trained turn with nothing before it"
            return
    if not any(flags):
        yield "no turn is trained"


def _flag(*rows, at: tuple[int, ...] | None = None) -> Example:
    """An example whose last row is the one flagged, unless `at` says otherwise."""
    return Example(tuple(rows), (len(rows),) if at is None else at)


def _tree(*messages: tuple) -> tuple[dict, ...]:
    """OpenAssistant message rows: (id, parent id, role, text, rank, and any other keys)."""
    return tuple({"message_id": m[0], "parent_id": m[1], "role": m[2], "text": m[3], "rank": m[4],
                  **(m[5] if len(m) > 5 else {})} for m in messages)


TREE_QUESTION = ("q", None, "prompter", "What is 2+2?", None)


def _tool_row(name: str, arguments: Any) -> dict:
    """A conversation calling `name` with `arguments`, answered, where `tools` declares `add(a: integer)`."""
    return {"messages": [USER, {"role": "assistant", "tool_calls": [
        {"type": "function", "function": {"name": name, "arguments": arguments}}]},
        {"role": "tool", "name": name, "content": "2"}, {"role": "assistant", "content": "It is 2."}],
        "tools": [{"type": "function", "function": {"name": "add", "parameters": {
            "type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}}]}


PREFERENCE = frozenset({"preference"})
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
MESSAGE_COLUMNS = ("messages", "prompt", "completion", "chosen", "rejected")


def read_columns(shape: Any) -> frozenset[str]:
    """The columns TRL reads from a row of this shape once read as its type: language modeling reads `messages`
    or `text`, not both.

    >>> sorted(read_columns(type("S", (), {"type": "language_modeling", "format": "conversational"})))
    ['messages']
    """
    if shape.type == "language_modeling":
        return frozenset({"messages" if shape.format == "conversational" else "text"})
    return TYPE_COLUMNS[shape.type]
KTO = frozenset({"unpaired_preference"})

_CATALOG = [
    Rule("TP001", "invalid-json", ERROR, "the row is not valid JSON", "repair or remove the line", "read",
         why="no reader can load the line; `datasets` stops the whole file at it",
         blocking=True, example=_flag(CHAT, '{"messages": [', CHAT, at=(2,))),
    Rule("TP002", "not-an-object", ERROR, "the row is not a JSON object (null, a list or a scalar)",
         "every row must be an object with named fields", "read",
         why="a trainer reads columns by name; a row without names has none", blocking=True,
         example=_flag(CHAT, "null", "[1, 2]", CHAT, at=(2, 3))),
    Rule("TP003", "duplicate-key", WARNING, "the row's object repeats a key; the last value is used",
         "remove the repeated key: other readers may keep the first value", "read",
         why="readers disagree on which value wins, so what you trained on depends on the library",
         example=_flag(CHAT, '{"text": "first", "text": "second"}', {"text": "third"}, at=(2,))),
    Rule("TP101", "missing-field", ERROR, "a required field is missing or null",
         "fill the field or drop the row (`convert` rejects such rows into the rejects file)", "field",
         why="the trainer indexes the column and fails, or trains on the string 'None'",
         blocking=True, structural=True, example=_flag(PAIR, {"prompt": "2+2?", "chosen": None, "rejected": "5"})),
    Rule("TP102", "wrong-type", ERROR, "a field holds the wrong type of value",
         "store text as strings and conversations as lists of {role, content} objects", "field",
         why="a chat template or tokenizer given an object where it expects text raises mid-run",
         blocking=True, structural=True,
         example=_flag({"instruction": "i", "input": "", "output": "o"},
                       {"instruction": "i", "input": "", "output": {"answer": "o"}})),
    Rule("TP103", "message-not-object", ERROR, "a message in a conversation is not an object",
         "each message must be an object such as {\"role\": \"user\", \"content\": \"...\"}", "field",
         why="chat templates read message['role'] and message['content']", blocking=True, structural=True,
         example=_flag(CHAT, _chat("hello", ASSISTANT))),
    Rule("TP104", "message-missing-role", ERROR, "a message has no role", "give every message a role", "field",
         why="without a role the template cannot tell what to train on", blocking=True, structural=True,
         example=_flag(CHAT, _chat({"content": "hi"}, ASSISTANT))),
    Rule("TP105", "message-missing-content", ERROR, "a message has no content (and no tool calls)",
         "give every message a content string", "field",
         why="templates render the missing content as an empty turn or raise", blocking=True, structural=True,
         example=_flag(CHAT, _chat({"role": "user"}, ASSISTANT))),
    Rule("TP106", "unknown-role", ERROR, "a message uses a role chat templates do not know",
         "rename the role, e.g. `convert --roles bot=assistant`", "field",
         why="templates drop or reject unknown roles, and assistant-only loss never sees a 'bot' turn",
         blocking=True, structural=True, example=_flag(CHAT, _chat(USER, {"role": "bot", "content": "4"}))),
    Rule("TP107", "mixed-row-format", ERROR,
         "a string prompt sits beside message-list completions in the same row",
         "`convert` wraps the string prompt into a user message", "field",
         why="TRL applies the chat template to lists only, so the prompt loses its template", blocking=True,
         structural=True, repairable=True,
         example=_flag({"prompt": [USER], "chosen": [ASSISTANT], "rejected": [{"role": "assistant", "content": "5"}]},
                       {"prompt": "2+2?", "chosen": [ASSISTANT],
                        "rejected": [{"role": "assistant", "content": "5"}]})),
    Rule("TP108", "mixed-dataset-format", ERROR,
         "some rows are standard (strings) where the rest are conversational (message lists), or the reverse",
         "`convert` writes every row in one format", "dataset",
         why="one Arrow column cannot hold both; `datasets` refuses the file or TRL formats rows differently",
         repairable=True,
         example=_flag(*[{"prompt": [USER], "completion": [ASSISTANT]}] * 3, {"prompt": "2+2?", "completion": "4"})),
    Rule("TP109", "stepwise-length-mismatch", ERROR, "`completions` and `labels` have different lengths",
         "give one boolean label per completion step", "field",
         why="the trainer pairs steps with labels by position", blocking=True,
         example=_flag({"prompt": "p", "completions": ["a", "b"], "labels": [True, False]},
                       {"prompt": "p", "completions": ["a", "b"], "labels": [True]})),
    Rule("TP110", "label-not-boolean", ERROR, "the KTO label is not a boolean (e.g. the string \"true\" or 1)",
         "`convert --to kto` turns \"true\"/\"false\" and 1/0 into booleans", "field",
         why="KTO splits desirable from undesirable by `label is True`; the string \"false\" counts as desirable",
         structural=True, repairable=True, example=_flag({"prompt": "q", "completion": "a", "label": True},
                                        {"prompt": "q", "completion": "b", "label": "true"})),
    Rule("TP111", "empty-conversation", ERROR, "a conversation is an empty list", "drop the row", "field",
         why="an empty conversation renders as nothing: a row with no tokens", blocking=True, structural=True,
         example=_flag(CHAT, {"messages": []})),
    Rule("TP112", "clashing-column", ERROR,
         "the row keeps a column TRL reads for another dataset type (a `labels` beside `text`, a `messages` beside "
         "prompt/completion)", "rename or drop the column (`convert --map labels=label_stats`)", "trl",
         why="TRL refuses the row's keys, or passes the column to the model: a `labels` column becomes the loss "
             "targets", check=lambda row, shape: (
             f"column {name!r} beside {', '.join(sorted(read_columns(shape) & set(row)))}"
             for name in sorted(TRL_COLUMNS.intersection(row) - read_columns(shape))),
         example=_flag(CHAT, {**CHAT, "labels": {"toxicity": 0.01}})),
    Rule("TP113", "broken-thread", ERROR,
         "a conversation-tree prompt whose thread cannot be rebuilt: a message above it is deleted, failed review, "
         "or is not in the data (or it is a reply to such a prompt)", "drop the row, or export the whole tree",
         "field", why="without the turns before it the reply answers a conversation the model never sees",
         blocking=True,
         example=Example(_tree(TREE_QUESTION, ("a", "q", "assistant", "4", 0), ("q2", "gone", "prompter", "Why?", None),
                               ("a2", "q2", "assistant", "Because.", 0)), (3,))),
    Rule("TP201", "empty-content", ERROR, "a text field or message content is empty or whitespace only",
         "fill it or drop the row", "field",
         why="an empty answer teaches the model to answer with nothing but the end-of-turn token",
         structural=True, example=_flag(CHAT, _chat({"role": "user", "content": "  "}, ASSISTANT))),
    Rule("TP202", "system-not-first", ERROR, "a system message appears after the first turn",
         "most chat templates reject this: move the system message to the start", "trl",
         why="Llama, Mistral and Gemma templates raise on it; others silently drop it",
         example=_flag(CHAT, _chat(USER, {"role": "system", "content": "be brief"}, ASSISTANT))),
    Rule("TP203", "same-role-twice", WARNING, "two consecutive turns have the same role",
         "many templates require user and assistant to alternate: merge the turns", "trl",
         why="strict templates raise 'roles must alternate'", example=_flag(CHAT, _chat(USER, USER, ASSISTANT))),
    Rule("TP204", "no-assistant-turn", ERROR, "the conversation has no assistant turn, so nothing is trained",
         "add the assistant answer or drop the row", "trl",
         why="with assistant-only or completion-only loss the row contributes no gradient",
         example=_flag(CHAT, _chat({"role": "system", "content": "s"}, USER))),
    Rule("TP205", "not-ending-with-assistant", WARNING,
         "the conversation does not end with the assistant; SFT trains nothing after the last assistant turn",
         "drop the trailing turns, or use the data for GRPO as prompts", "trl",
         why="trailing user turns cost tokens and, without assistant-only loss, are trained as model output",
         example=_flag(CHAT, _chat(USER, ASSISTANT, USER))),
    Rule("TP206", "tool-result-without-call", ERROR,
         "a tool result is not preceded by an assistant tool call",
         "add the assistant `tool_calls` turn before the tool result", "trl",
         why="tool-aware templates pair each result with its call and raise or misrender without one",
         example=_flag(CHAT, _chat(USER, {"role": "tool", "content": "42"}, ASSISTANT))),
    Rule("TP207", "template-markup-in-content", WARNING,
         "content holds chat-template markup (<|im_start|>, [INST], ...), which the template will add again",
         "store plain text and let the chat template add the markup", "trl",
         why="the markup is tokenized as control tokens, so the model learns doubled turn boundaries",
         example=_flag(CHAT, _chat({"role": "user", "content": "<|im_start|>user\nhi"}, ASSISTANT))),
    Rule("TP208", "turn-flags", WARNING,
         "messages carry per-turn training flags (`loss_weight`, `weight: 0`, `train: false`), which TRL's "
         "trainers do not read", "nothing to do for `convert`/`train --method sft`: they carry the flags (one "
         "prompt-completion row per trained turn); another tool must honour them itself", "trl",
         why="a trainer that ignores the flags trains every turn: the user turns LLaMA-Factory's `loss_weight: 0` "
             "keeps out, or an answer OpenAI's `weight: 0` marks as bad", types=frozenset({"language_modeling"}),
         check=lambda row, shape: (
             (f"trains turn(s) {', '.join(str(i + 1) for i, t in enumerate(row['trained_turns']) if t is True)} "
              f"of {len(row['trained_turns'])}",) if "trained_turns" in row else ()),
         example=_flag(CHAT, _chat({**USER, "loss_weight": 0.0}, {**ASSISTANT, "loss_weight": 1.0}))),
    Rule("TP209", "replies-left-out", WARNING,
         "replies of a conversation-tree prompt that are deleted or failed review are left out of its row",
         "nothing to do: they are not trained; the count says how much of the tree is unused", "field",
         why="a deleted or rejected reply is one the tree's own reviewers did not want learned",
         example=Example(_tree(TREE_QUESTION, ("a", "q", "assistant", "4", 0),
                               ("b", "q", "assistant", "5", 1, {"deleted": True})), (1,))),
    Rule("TP210", "mojibake", WARNING,
         "text decoded with the wrong encoding: UTF-8 read as Latin-1 or Windows-1252 (`CafÃ©` for `Café`, `itâ€™s` "
         "for `it’s`), as ftfy's badness measure confirms", "`convert --fix-text` repairs it with ftfy and counts "
         "the rows it changed", "field",
         why="the model learns to write the garbled characters, and the tokenizer spends several tokens on each",
         example=_flag(CHAT, _chat(USER, {"role": "assistant", "content": "Itâ€™s 4, as in CafÃ© 4."}))),
    Rule("TP211", "replacement-character", WARNING,
         "text holds U+FFFD (�), left where a decoder met bytes it could not read", "re-export the text from its "
         "source with the right encoding: what was lost cannot be recovered from the row", "field",
         why="the model learns to write � where the words were",
         example=_flag(CHAT, _chat(USER, {"role": "assistant", "content": "It is 4 \ufffd\ufffd."}))),
    Rule("TP212", "control-character", WARNING,
         "text holds a control character (NUL, a terminal escape, a form feed, C1 controls; tab and line breaks "
         "aside), such as LaTeX's `\\frac` read as a JSON escape (a form feed, then `rac`)", "`convert --fix-text` "
         "removes them, and gives a LaTeX command its backslash back", "field",
         why="invisible in an editor, they are tokenized, trained on and generated",
         example=_flag(CHAT, _chat(USER, {"role": "assistant", "content": "\x1b[1m4\x1b[0m"}))),
    Rule("TP213", "html-leftover", WARNING,
         "text holds HTML entities (`&amp;`, `&#39;`) or layout tags (`<br>`, `<p>`, `<div>`) outside code spans, "
         "left by a scraper or an export", "unescape and strip them where the data is exported (`html.unescape`); "
         "keep them where the text is about HTML", "field",
         why="the model learns to write markup and escaped characters in plain answers",
         example=_flag(CHAT, _chat(USER, {"role": "assistant", "content": "It&#39;s 4.<br>Four."}))),
    Rule("TP214", "cut-off-response", WARNING,
         "a final answer of 20 words or more stops mid-sentence where the data's longest answers stop (the top 1%, "
         "2 or more of them ending so), or at exactly the length of 2 other answers that do: a generation or "
         "export cap; reported with `--cut-off`", "regenerate those answers with a larger cap, or drop them "
         "(`convert --drop-cut-off`)", "dataset",
         why="the model learns to stop mid-sentence, and an EOS after half a word teaches it that such answers are "
             "complete"),
    Rule("TP301", "chosen-equals-rejected", ERROR, "chosen and rejected are identical, so the pair teaches nothing",
         "drop the pair", "trl", why="the DPO loss of an identical pair is constant: no signal, only cost",
         types=PREFERENCE, example=_flag(PAIR, {"prompt": "2+2?", "chosen": "4", "rejected": "4"})),
    Rule("TP302", "empty-preference-side", ERROR,
         "chosen or rejected is empty (or its answer turn is: a transcript ending in `Assistant:` and nothing)",
         "drop the pair", "field",
         why="an empty side trains the model to prefer, or avoid, saying nothing", blocking=True, structural=True,
         types=PREFERENCE,
         example=_flag({"chosen": "\n\nHuman: 2+2?\n\nAssistant: 4", "rejected": "\n\nHuman: 2+2?\n\nAssistant: 5"},
                       {"chosen": "\n\nHuman: 2+2?\n\nAssistant: ", "rejected": "\n\nHuman: 2+2?\n\nAssistant: 5"})),
    Rule("TP303", "no-shared-prompt", WARNING,
         "implicit prompt: chosen and rejected share no prefix, so TRL extracts an empty prompt",
         "give an explicit `prompt` column (`convert` rejects the row for every method that needs the prompt)",
         "trl", why="with an empty prompt the whole conversation is scored as the answer", types=PREFERENCE,
         methods=frozenset({"sft", "dpo", "grpo", "kto"}),
         example=_flag({"chosen": "Q: 2+2? A: 4", "rejected": "Q: 2+2? A: 5"}, {"chosen": "four", "rejected": "5"})),
    Rule("TP304", "prompt-extraction-edge", WARNING,
         "implicit prompt: one side is a prefix of the other, where TRL's extract_prompt splits wrongly",
         "`convert --to dpo` extracts the prompt message by message", "trl",
         why="TRL's character-wise extraction leaves one side empty", types=PREFERENCE,
         example=_flag({"chosen": [USER, ASSISTANT], "rejected": [USER, {"role": "assistant", "content": "5"}]},
                       {"chosen": [USER, ASSISTANT], "rejected": [USER, ASSISTANT, USER, ASSISTANT]})),
    Rule("TP305", "prompt-not-opening-answers", ERROR,
         "a string prompt beside answer conversations (chosen/rejected), one of which does not open with that "
         "prompt turn",
         "give both sides the same opening user turn, or drop the row", "field",
         why="the prompt is cut from each side's opening: a side that holds another question would be trained "
             "as the answer to this one", blocking=True,
         example=_flag({"prompt": "2+2?", "chosen": [{"role": "user", "content": "2+2?"}, ASSISTANT],
                        "rejected": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "5"}]},
                       {"prompt": "2+2?", "chosen": [{"role": "user", "content": "2+2?"}, ASSISTANT],
                        "rejected": [{"role": "user", "content": "3+3?"}, {"role": "assistant", "content": "6"}]})),
    Rule("TP306", "tied-scores", WARNING, "the pair's scores are equal (score_chosen = score_rejected)",
         "drop tied pairs (`convert` rejects them for DPO, Reward and KTO)", "trl",
         why="with tied scores which side is chosen is arbitrary: the pair teaches a preference nobody had",
         types=PREFERENCE, methods=frozenset({"dpo", "reward", "kto"}),
         columns=frozenset({"score_chosen", "score_rejected"}),
         check=lambda row, shape: ((f"both sides score {row['score_chosen']}",)
                                   if isinstance(row.get("score_chosen"), (int, float))
                                   and row.get("score_chosen") == row.get("score_rejected") else ()),
         example=_flag({**PAIR, "score_chosen": 8.0, "score_rejected": 3.0},
                       {**PAIR, "score_chosen": 5.0, "score_rejected": 5.0})),
    Rule("TP307", "answer-repeats-prompt", ERROR,
         "a conversational answer (completion, chosen or rejected) opens with the prompt's messages again",
         "keep only the answer's own turns (the prompt is rendered before it)", "trl",
         why="the prompt is rendered twice, and the copy in the answer is trained as the model's own output",
         types=frozenset({"prompt_completion", "preference", "unpaired_preference"}),
         check=lambda row, shape: (f"{side} opens with the {len(row['prompt'])} prompt message(s)"
                                   for side in ("completion", "chosen", "rejected")
                                   if isinstance(row.get("prompt"), list) and row["prompt"]
                                   and isinstance(row.get(side), list)
                                   and row[side][: len(row["prompt"])] == row["prompt"]),
         example=_flag({"prompt": [USER], "completion": [ASSISTANT]},
                       {"prompt": [USER], "completion": [USER, ASSISTANT]})),
    Rule("TP308", "no-ranked-pair", WARNING,
         "a prompt with fewer than two replies of different rank: an answer to train on, no chosen/rejected pair",
         "nothing to do for SFT and GRPO; `convert` rejects the row for DPO, Reward and KTO", "trl",
         why="a pair needs a better and a worse answer; inventing the worse one would teach a preference nobody had",
         types=PREFERENCE, methods=frozenset({"dpo", "reward", "kto"}),
         check=lambda row, shape: ("only one answer, no ranked pair",) if row.get("rejected", ()) is None else (),
         example=Example(_tree(TREE_QUESTION, ("a", "q", "assistant", "4", 0), ("b", "q", "assistant", "5", 1),
                               ("q2", "a", "prompter", "Why?", None), ("a2", "q2", "assistant", "Because.", 0)),
                         (4,))),
    Rule("TP401", "duplicate-row", WARNING, "the row repeats an earlier row exactly (id-like columns aside)",
         "`convert --dedup` drops repeats", "dataset",
         why="repeats are trained more than once and leak between train and test splits",
         example=_flag(CHAT, _chat(USER, {"role": "assistant", "content": "four"}), CHAT)),
    Rule("TP402", "single-label-class", WARNING, "every KTO label has the same value",
         "KTO needs both desirable (true) and undesirable (false) examples", "dataset",
         why="KTOTrainer's loss needs both classes in a batch", types=KTO,
         example=Example(tuple({"prompt": "q", "completion": c, "label": True} for c in "abc"), ())),
    Rule("TP403", "label-imbalance", WARNING, "KTO labels are strongly imbalanced",
         "set desirable_weight / undesirable_weight so the weighted classes are within 1:1 to 4:3", "dataset",
         why="the KTO paper's weighting assumes balanced classes", types=KTO,
         example=Example(tuple({"prompt": "q", "completion": c, "label": c != "f"} for c in "abcdef"), ())),
    Rule("TP404", "mixed-shape", ERROR, "the row has a different shape from most rows (other columns or dialect)",
         "`convert` rejects rows that do not fit the dataset's shape", "dataset",
         why="a trainer reads one set of columns; a row of another shape is lost or breaks the batch",
         example=_flag(CHAT, CHAT, CHAT, {"instruction": "Add 2 and 2", "input": "", "output": "4"})),
    Rule("TP601", "tool-not-declared", ERROR, "a tool call names a function the row's `tools` does not declare",
         "declare the function in `tools`, or drop the row", "trl",
         why="the model learns to call a function it was never shown: a hallucinated tool",
         check=undeclared_calls, example=_flag(_tool_row("add", {"a": 1}), _tool_row("subtract", {"a": 1}))),
    Rule("TP602", "tool-arguments-invalid", ERROR,
         "a tool call's arguments are not JSON, or break the function's JSON Schema (`parameters`): a missing "
         "required argument, a wrong type, an argument the schema does not name", "fix the call, or drop the row",
         "trl", why="the model learns calls the tool would refuse",
         check=invalid_arguments, example=_flag(_tool_row("add", {"a": 1}), _tool_row("add", '{"a": "one"}'))),
    Rule("TP603", "tool-call-unanswered", WARNING,
         "a tool call is not answered by a tool message before the conversation goes on (or a result names a "
         "call id no pending call has); a call that ends the conversation is the training target, not a fault",
         "add the tool's result after the call, or end the conversation at the call", "trl",
         why="the answer after an unanswered call is learned as if the model knew the tool's result",
         check=unanswered_calls,
         example=_flag(_tool_row("add", {"a": 1}),
                       {**_tool_row("add", {"a": 1}), "messages": _tool_row("add", {"a": 1})["messages"][:2]
                        + [{"role": "assistant", "content": "It is 2."}]})),
    Rule("TP604", "tools-invalid", ERROR,
         "`tools` is not a list of functions, each with a name and a valid JSON Schema of its parameters",
         "write each tool as `transformers.utils.get_json_schema` does", "trl",
         why="chat templates render `tools` into the prompt: a broken schema is what the model is trained to read",
         check=invalid_tools,
         example=_flag(_tool_row("add", {"a": 1}), {**_tool_row("add", {"a": 1}), "tools": [
             {"type": "function", "function": {"name": "add", "parameters": {"type": "objekt"}}}]})),
    Rule("TP405", "eval-contamination", WARNING,
         "the row shares 13-word n-grams with a row of an evaluation set given with `--against` (a verbatim copy "
         "shares them all, a reworded one the stretches it kept)",
         "`convert --against EVAL --drop-contaminated` rejects the rows", "dataset",
         why="a model trained on an evaluation set's questions scores what it memorised, not what it learned"),
    Rule("TP406", "near-duplicate-row", WARNING,
         "the row's prompt and answers both nearly repeat an earlier row's (MinHash estimate of the Jaccard "
         "similarity of their 3-word shingles at least --near-threshold, 0.8 by default); reported with "
         "`--near-duplicates`, exact repeats included", "`convert --dedup near` keeps the first row of each cluster", "dataset",
         why="templated and lightly edited copies are trained many times over and leak between train and test "
             "splits, where exact-duplicate checks do not see them"),
    Rule("TP501", "no-chat-template", ERROR, "the tokenizer has no chat template, and the data is conversational",
         "pick a model with a chat template, or set one (--set chat_template_path=...)", "tokens",
         why="TRL cannot render messages without a template"),
    Rule("TP502", "template-render-failure", ERROR, "the chat template raises an error on the row",
         "fix the row (the template's own message says what it wants) or use another template", "tokens",
         why="the trainer stops at the first such row"),
    Rule("TP503", "template-drops-role", WARNING, "the chat template ignores or rejects a role the data uses",
         "merge the system message into the first user turn (`convert --drop-system`) or change template",
         "tokens", why="the dropped text is never seen by the model"),
    Rule("TP504", "no-generation-markers", WARNING,
         "the chat template has no {% generation %} markers, so assistant_only_loss is impossible",
         "use a training template with markers (TRL's get_training_chat_template)", "tokens",
         why="without them every token of the conversation is trained"),
    Rule("TP505", "prompt-not-token-prefix", WARNING,
         "the tokenized prompt is not a prefix of tokenized prompt+completion (TRL warns \"Mismatch between "
         "tokenized prompt\"), so the completion mask is off",
         "use a prefix-preserving template (e.g. one that keeps earlier <think> blocks)", "tokens",
         why="prompt tokens are trained, or answer tokens masked"),
    Rule("TP506", "stop-token-not-trained", WARNING,
         "the end-of-turn / EOS token falls outside the trained span, so the model may never learn to stop",
         "put the end-of-turn token inside the template's generation block, or set eos_token to the template's",
         "tokens", why="a model that never learned to stop generates until max_new_tokens"),
    Rule("TP507", "double-bos", WARNING, "the row starts with the BOS token twice",
         "let either the template or the tokenizer add BOS, not both", "tokens",
         why="every training row then differs from what the model sees at inference"),
    Rule("TP508", "special-token-in-content", WARNING,
         "content holds a special token string of this tokenizer, which tokenizes as the control token",
         "remove or escape it", "tokens", why="the text is read as a turn boundary or end of sequence"),
    Rule("TP509", "over-max-length", WARNING, "the row is longer than max_length tokens",
         "raise max_length (see recommended_max_length) or shorten the row", "tokens",
         why="trainers truncate it (the answer's end is lost) or drop it"),
    # What a conversion for one method leaves out of otherwise valid rows: `inspect` counts them per method and
    # `convert --to` rejects exactly these rows.
    Rule("TC101", "label-false-not-for-sft", WARNING, "SFT trains only on completions labelled true",
         "nothing to fix: the row is used by KTO, not by SFT", "method", types=KTO, methods=frozenset({"sft"}),
         check=lambda row, shape: () if row.get("label") is True else ("label is false",),
         example=_flag({"prompt": "q", "completion": "a", "label": True},
                       {"prompt": "q", "completion": "b", "label": False}),
         why="training on undesirable completions teaches the model to produce them"),
    Rule("TC102", "no-prompt", WARNING, "no turn before the last assistant turn to use as the GRPO prompt",
         "add the user turn the answer replies to", "method", types=frozenset({"language_modeling"}),
         methods=frozenset({"grpo"}), why="GRPO generates from the prompt; an empty prompt has nothing to answer",
         check=lambda row, shape: ("no turn before the last assistant turn",)
         if isinstance(row.get("messages"), list) and last_answer(row["messages"]) == 0 else (),
         example=_flag(CHAT, _chat(ASSISTANT))),
    Rule("TC105", "flags-not-expressible", WARNING,
         "per-turn training flags TRL cannot express: a trained user, system or tool turn, a weight other than 0 "
         "or 1, or no trained assistant turn after a prompt", "set the flags to 0/1 on assistant turns, or drop "
         "the row", "method", types=frozenset({"language_modeling"}), methods=frozenset({"sft"}),
         why="TRL trains completions, not arbitrary turns, and has no fractional loss weights: approximating "
             "the flags would train what they keep out",
         check=lambda row, shape: _unexpressible_flags(row),
         example=_flag(_chat({**USER, "loss_weight": 0.0}, {**ASSISTANT, "loss_weight": 1.0}),
                       _chat({**USER, "loss_weight": 1.0}, {**ASSISTANT, "loss_weight": 1.0}))),
    Rule("TC103", "converted-row-invalid", ERROR,
         "the converted row breaks a rule of its own (a guard: `inspect` should have predicted it)",
         "report it to trlprep's developers with the row; the rejects file names the rule", "output",
         why="wrong training data must never be written"),
    Rule("TC104", "conversion-failed", ERROR, "the conversion of this row raised an error (a guard)",
         "report it to trlprep's developers with the row; the rejects file has the error", "output",
         why="one bad row must not stop the conversion of the others"),
]

RULES: dict[str, Rule] = {rule.id: rule for rule in _CATALOG}
# The stages whose rules look at one row, before or after it is read as its TRL type: a fast path that skips a
# row's checks must prove each of them.
ROW_STAGES = ("read", "field", "trl", "method")


# The catalog changes only through `registered`, which clears these: rows ask for them millions of times.
@functools.cache
def blocking_rules() -> frozenset[str]:
    return frozenset(r.id for r in RULES.values() if r.blocking)


@functools.cache
def declared_checks(data_type: str) -> tuple[Rule, ...]:
    """Stage "trl" rules whose check is declared in the catalog, for rows of this TRL type."""
    return tuple(r for r in RULES.values() if r.check is not None and r.stage == "trl" and r.applies_to(data_type))


def row_rules(data_type: str, enabled: set[str]) -> frozenset[str]:
    """The enabled row-level rules that can fire on a row of this TRL type."""
    return frozenset(r.id for r in RULES.values()
                     if r.id in enabled and r.stage in ROW_STAGES and r.applies_to(data_type))


@functools.cache
def rejecting_rules(method: str) -> frozenset[str]:
    """The rules whose findings keep a row out of the conversion for `method`: every error, and the warnings
    that name the method."""
    return frozenset(r.id for r in RULES.values() if r.severity == ERROR or (r.methods and method in r.methods))


@functools.cache
def method_checks(method: str, data_type: str) -> tuple[Rule, ...]:
    """Stage "method" rules checked when converting rows of this TRL type for `method`."""
    return tuple(r for r in RULES.values()
                 if r.stage == "method" and method in r.methods and r.applies_to(data_type))


@contextmanager
def registered(rule: Rule) -> Iterator[Rule]:
    """A rule added to the catalog for the duration of the block (for plug-ins and tests)."""
    if rule.id in RULES:
        raise ValueError(f"rule {rule.id} exists already")
    RULES[rule.id] = rule
    _catalog_changed()
    try:
        yield rule
    finally:
        del RULES[rule.id]
        _catalog_changed()


def _catalog_changed() -> None:
    for derived in (blocking_rules, declared_checks, rejecting_rules, method_checks):
        derived.cache_clear()


def select_rules(select: tuple[str, ...] = (), ignore: tuple[str, ...] = ()) -> set[str]:
    """Rule ids kept by `--select` / `--ignore`, each given as an id, an id prefix or a name.

    >>> sorted(select_rules(select=("TP30",)))
    ['TP301', 'TP302', 'TP303', 'TP304', 'TP305', 'TP306', 'TP307', 'TP308']
    >>> "TP401" in select_rules(ignore=("duplicate-row",))
    False
    """

    def matches(rule: Rule, patterns: tuple[str, ...]) -> bool:
        return any(rule.id.startswith(p.upper()) or rule.name == p for p in patterns)

    kept = {r.id for r in RULES.values() if not select or matches(r, select)}
    return {rule_id for rule_id in kept if not matches(RULES[rule_id], ignore)}


def markdown_table() -> str:
    """The README's rule table.

    >>> markdown_table().splitlines()[2]
    '| TP001 | invalid-json | error | read | the row is not valid JSON |'
    """
    lines = ["| id | name | severity | stage | what it catches |", "| --- | --- | --- | --- | --- |"]
    for rule in RULES.values():
        summary = rule.summary.replace("|", "\\|")
        lines.append(f"| {rule.id} | {rule.name} | {rule.severity} | {rule.stage} | {summary} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
