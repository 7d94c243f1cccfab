"""The rule catalog: every check trlprep runs, with a stable id, a severity and a fix hint.

Ids are never renumbered. Prefixes group the rules: TP0xx reading a row, TP1xx structure,
TP2xx conversation content, TP3xx preference data, TP4xx dataset-level checks.

>>> RULES["TP301"].name
'chosen-equals-rejected'
>>> RULES["TP301"].severity
'error'
"""

from __future__ import annotations

from dataclasses import dataclass

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: str
    summary: str
    fix: str


_CATALOG = [
    Rule("TP001", "invalid-json", ERROR, "the row is not valid JSON", "repair or remove the line"),
    Rule("TP002", "not-an-object", ERROR, "the row is not a JSON object (null, a list or a scalar)",
         "every row must be an object with named fields"),
    Rule("TP003", "duplicate-key", WARNING, "the row's object repeats a key; the last value is used",
         "remove the repeated key: other readers may keep the first value"),
    Rule("TP101", "missing-field", ERROR, "a required field is missing or null",
         "fill the field or drop the row (`convert` rejects such rows into the rejects file)"),
    Rule("TP102", "wrong-type", ERROR, "a field holds the wrong type of value",
         "store text as strings and conversations as lists of {role, content} objects"),
    Rule("TP103", "message-not-object", ERROR, "a message in a conversation is not an object",
         "each message must be an object such as {\"role\": \"user\", \"content\": \"...\"}"),
    Rule("TP104", "message-missing-role", ERROR, "a message has no role", "give every message a role"),
    Rule("TP105", "message-missing-content", ERROR, "a message has no content (and no tool calls)",
         "give every message a content string"),
    Rule("TP106", "unknown-role", ERROR, "a message uses a role chat templates do not know",
         "rename the role, e.g. `convert --roles bot=assistant`"),
    Rule("TP107", "mixed-row-format", ERROR,
         "a string prompt sits beside message-list completions in the same row",
         "`convert` wraps the string prompt into a user message"),
    Rule("TP108", "mixed-dataset-format", ERROR,
         "some rows are standard (strings) where the rest are conversational (message lists), or the reverse",
         "`convert` writes every row in one format"),
    Rule("TP109", "stepwise-length-mismatch", ERROR, "`completions` and `labels` have different lengths",
         "give one boolean label per completion step"),
    Rule("TP110", "label-not-boolean", ERROR, "the KTO label is not a boolean (e.g. the string \"true\" or 1)",
         "`convert --to kto` turns \"true\"/\"false\" and 1/0 into booleans"),
    Rule("TP111", "empty-conversation", ERROR, "a conversation is an empty list", "drop the row"),
    Rule("TP201", "empty-content", ERROR, "a text field or message content is empty or whitespace only",
         "fill it or drop the row"),
    Rule("TP202", "system-not-first", ERROR, "a system message appears after the first turn",
         "most chat templates reject this: move the system message to the start"),
    Rule("TP203", "same-role-twice", WARNING, "two consecutive turns have the same role",
         "many templates require user and assistant to alternate: merge the turns"),
    Rule("TP204", "no-assistant-turn", ERROR, "the conversation has no assistant turn, so nothing is trained",
         "add the assistant answer or drop the row"),
    Rule("TP205", "not-ending-with-assistant", WARNING,
         "the conversation does not end with the assistant; SFT trains nothing after the last assistant turn",
         "drop the trailing turns, or use the data for GRPO as prompts"),
    Rule("TP206", "tool-result-without-call", ERROR,
         "a tool result is not preceded by an assistant tool call",
         "add the assistant `tool_calls` turn before the tool result"),
    Rule("TP207", "template-markup-in-content", WARNING,
         "content holds chat-template markup (<|im_start|>, [INST], ...), which the template will add again",
         "store plain text and let the chat template add the markup"),
    Rule("TP301", "chosen-equals-rejected", ERROR, "chosen and rejected are identical, so the pair teaches nothing",
         "drop the pair"),
    Rule("TP302", "empty-preference-side", ERROR, "chosen or rejected is empty", "drop the pair"),
    Rule("TP303", "no-shared-prompt", WARNING,
         "implicit prompt: chosen and rejected share no prefix, so TRL extracts an empty prompt",
         "give an explicit `prompt` column"),
    Rule("TP304", "prompt-extraction-edge", WARNING,
         "implicit prompt: one side is a prefix of the other, where TRL's extract_prompt splits wrongly",
         "`convert --to dpo` extracts the prompt message by message"),
    Rule("TP401", "duplicate-row", WARNING, "the row repeats an earlier row exactly", "`convert --dedup` drops repeats"),
    Rule("TP402", "single-label-class", WARNING, "every KTO label has the same value",
         "KTO needs both desirable (true) and undesirable (false) examples"),
    Rule("TP403", "label-imbalance", WARNING, "KTO labels are strongly imbalanced",
         "set desirable_weight / undesirable_weight so the weighted classes are within 1:1 to 4:3"),
    Rule("TP404", "mixed-shape", ERROR, "the row has a different shape from most rows (other columns or dialect)",
         "`convert` rejects rows that do not fit the dataset's shape"),
]

_CATALOG += [
    Rule("TP501", "no-chat-template", ERROR, "the tokenizer has no chat template, and the data is conversational",
         "pick a model with a chat template, or set one (--set chat_template_path=...)"),
    Rule("TP502", "template-render-failure", ERROR, "the chat template raises an error on the row",
         "fix the row (the template's own message says what it wants) or use another template"),
    Rule("TP503", "template-drops-role", WARNING, "the chat template ignores or rejects a role the data uses",
         "merge the system message into the first user turn (`convert --drop-system`) or change template"),
    Rule("TP504", "no-generation-markers", WARNING,
         "the chat template has no {% generation %} markers, so assistant_only_loss is impossible",
         "use a training template with markers (TRL's get_training_chat_template)"),
    Rule("TP505", "prompt-not-token-prefix", WARNING,
         "the tokenized prompt is not a prefix of tokenized prompt+completion (TRL warns \"Mismatch between "
         "tokenized prompt\"), so the completion mask is off",
         "use a prefix-preserving template (e.g. one that keeps earlier <think> blocks)"),
    Rule("TP506", "stop-token-not-trained", WARNING,
         "the end-of-turn / EOS token falls outside the trained span, so the model may never learn to stop",
         "put the end-of-turn token inside the template's generation block, or set eos_token to the template's"),
    Rule("TP507", "double-bos", WARNING, "the row starts with the BOS token twice",
         "let either the template or the tokenizer add BOS, not both"),
    Rule("TP508", "special-token-in-content", WARNING,
         "content holds a special token string of this tokenizer, which tokenizes as the control token",
         "remove or escape it"),
    Rule("TP509", "over-max-length", WARNING, "the row is longer than max_length tokens",
         "raise max_length (see recommended_max_length) or shorten the row"),
]

RULES: dict[str, Rule] = {rule.id: rule for rule in _CATALOG}


def select_rules(select: tuple[str, ...] = (), ignore: tuple[str, ...] = ()) -> set[str]:
    """Rule ids kept by `--select` / `--ignore`, each given as an id, an id prefix or a name.

    >>> sorted(select_rules(select=("TP30",)))
    ['TP301', 'TP302', 'TP303', 'TP304']
    >>> "TP401" in select_rules(ignore=("duplicate-row",))
    False
    """

    def matches(rule: Rule, patterns: tuple[str, ...]) -> bool:
        return any(rule.id.startswith(p.upper()) or rule.name == p for p in patterns)

    kept = {r.id for r in _CATALOG if not select or matches(r, select)}
    return {rule_id for rule_id in kept if not matches(RULES[rule_id], ignore)}
