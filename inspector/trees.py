"""OpenAssistant conversation trees, read as rows: one row a prompt, with the thread before it and its replies.

oasst1's exports (and the OpenAssistant backend's seed data) hold one *message* a row: `text`, `role`
(`prompter` or `assistant`), the id of the message it answers, and for assistant replies a `rank` among their
siblings (0 is best). A message is no training example; a prompt in its thread, with the replies it got, is:

- SFT trains each prompt's best-ranked reply (the lowest `rank`; when no reply is ranked, the first in the file),
  with the thread before it as the prompt, so a reply is only ever trained where it was judged best among its
  siblings.
- Preference methods take the best- against the worst-ranked reply (one pair a prompt); replies without a rank
  stay out of the pair, and a prompt with fewer than two replies of different rank gives no pair (TP308).
- Messages `deleted` or with `review_result: false` are left out with everything below them: a reply of that kind
  is dropped from its prompt's replies (TP209 counts them), a prompt of that kind is rejected (TP113), and so is a
  prompt whose thread runs through one, or through a message the data does not hold (an export filtered by
  language has such gaps). Unreviewed messages (`review_result: null`) are kept, as oasst1's own exports keep them.

An assistant message whose prompt is not in the data is a row of its own, rejected (TP113), so that every message
is accounted for: rows are the prompts plus those orphans, each numbered by its own line.

oasst's `*.trees.jsonl` exports write each tree whole on one line, nested: `{"message_tree_id", "tree_state",
"prompt": {message..., "replies": [{message..., "replies": [...]}, ...]}}`. `tree_rows` reads such a line as the
flat export would write its messages (`tree_messages`), so the rule above is the only one: a line gives a row for
each of its prompts (and each orphan); the scan numbers them in order and names the line each came from.

>>> rows = [(1, {"message_id": "q", "parent_id": None, "role": "prompter", "text": "Hi?"}),
...         (2, {"message_id": "a", "parent_id": "q", "role": "assistant", "text": "Hello.", "rank": 1}),
...         (3, {"message_id": "b", "parent_id": "q", "role": "assistant", "text": "Hi!", "rank": 0})]
>>> [(n, row["prompt"], [r["text"] for r in row["replies"]]) for n, row in thread_rows(iter(rows))]
[(1, [{'role': 'user', 'content': 'Hi?'}], ['Hello.', 'Hi!'])]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

PARENT_KEYS = ("parent_id", "parent_message_id")
# The key other messages' parent ids name: oasst1's `message_id`; the backend's seed data links `user_message_id`.
ID_KEYS = ("message_id", "user_message_id", "task_message_id", "id")
ROLES = {"prompter": "user", "assistant": "assistant"}
KEPT_COLUMNS = ("message_tree_id", "lang")


def is_tree_message(row: Any) -> bool:
    """Whether a row is one message of a conversation tree (text, prompter/assistant role, a parent id). A message
    with oasst's `message_id` is one without its text too: read in its tree, it is refused for the text it lacks
    (its prompt's row by TP101, a prompt below it by TP113), not taken for a row of another shape.

    >>> is_tree_message({"message_id": "a", "parent_id": None, "role": "prompter", "text": "Hi?"})
    True
    >>> is_tree_message({"message_id": "a", "parent_id": "q", "role": "assistant"})
    True
    >>> is_tree_message({"role": "user", "text": "Hi?"})
    False
    """
    return (isinstance(row, dict) and row.get("role") in ROLES and any(key in row for key in PARENT_KEYS)
            and (isinstance(row.get("text"), str) or (row.get("text") is None and "message_id" in row)))


def is_message_tree(row: Any) -> bool:
    """Whether a row is one whole conversation tree, nested (`message_tree_id`, and a prompt message holding its
    replies).

    >>> is_message_tree({"message_tree_id": "q", "prompt": {"message_id": "q", "role": "prompter", "text": "Hi?"}})
    True
    >>> is_message_tree({"message_tree_id": "q", "prompt": "Hi?"})
    False
    """
    prompt = row.get("prompt") if isinstance(row, dict) else None
    return (isinstance(prompt, dict) and "message_tree_id" in row and isinstance(prompt.get("text"), str)
            and prompt.get("role") in ROLES)


def tree_messages(tree: dict) -> list[Any]:
    """A nested tree's messages as the flat export writes them: each message without its `replies`, after the one
    it answers (depth first, replies in their order), `parent_id` the id of the message it is nested in (None for
    the prompt), `message_tree_id` the tree's. A reply that is no object is kept as it is, a row of its own.

    >>> tree = {"message_tree_id": "q", "prompt": {"message_id": "q", "role": "prompter", "text": "Hi?", "replies": [
    ...     {"message_id": "a", "role": "assistant", "text": "Hello.", "replies": [
    ...         {"message_id": "q2", "role": "prompter", "text": "Why?", "replies": []}]},
    ...     {"message_id": "b", "role": "assistant", "text": "Hi!"}]}}
    >>> [(m["message_id"], m["parent_id"]) for m in tree_messages(tree)]
    [('q', None), ('a', 'q'), ('q2', 'a'), ('b', 'q')]
    """
    messages: list[Any] = []
    stack: list[tuple[Any, Any]] = [(tree["prompt"], None)]
    while stack:
        node, parent = stack.pop()
        if not isinstance(node, dict):
            messages.append(node)
            continue
        message = {key: value for key, value in node.items() if key != "replies"}
        messages.append({**message, "parent_id": parent,
                         "message_tree_id": message.get("message_tree_id", tree["message_tree_id"])})
        replies = node.get("replies")
        if isinstance(replies, list):
            stack.extend((reply, node.get("message_id")) for reply in reversed(replies))
    return messages


def tree_rows(rows: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    """A file of nested trees, one a line, as rows of prompts: each tree's messages (`tree_messages`) read by
    `thread_rows`, every row numbered by its tree's line; rows that are not trees pass through where they are.

    >>> tree = {"message_tree_id": "q", "prompt": {"message_id": "q", "role": "prompter", "text": "Hi?", "replies": [
    ...     {"message_id": "a", "role": "assistant", "text": "Hello.", "rank": 0, "replies": [
    ...         {"message_id": "q2", "role": "prompter", "text": "Why?", "replies": []}]}]}}
    >>> [(n, row["prompt"][-1]["content"], len(row["replies"])) for n, row in tree_rows(iter([(1, tree)]))]
    [(1, 'Hi?', 1), (1, 'Why?', 0)]
    """
    for number, value in rows:
        if is_message_tree(value):
            yield from thread_rows((number, message) for message in tree_messages(value))
        else:
            yield number, value


def _id_key(messages: list[dict], parent_key: str) -> str:
    """The id key that most parent ids name."""
    parents = {m.get(parent_key) for m in messages} - {None}
    present = [key for key in ID_KEYS if any(key in m for m in messages)] or ["message_id"]
    return max(present, key=lambda key: sum(1 for m in messages if m.get(key) in parents))


def _left_out(message: dict) -> str | None:
    if message.get("deleted") is True:
        return "deleted"
    if message.get("review_result") is False:
        return "failed review"
    return None


def thread_rows(rows: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    """A file of tree messages as rows of prompts: `{"prompt": thread messages, "replies": [{"text", "rank"}],
    "message_id", ...}`, in file order; rows that are not tree messages pass through where they are."""
    numbered = list(rows)
    messages = [value for _, value in numbered if is_tree_message(value)]
    parent_key = next((key for key in PARENT_KEYS if any(key in m for m in messages)), PARENT_KEYS[0])
    id_key = _id_key(messages, parent_key)
    by_id = {m.get(id_key): m for m in messages}
    replies: dict[Any, list[dict]] = {}
    for message in messages:
        if message["role"] == "assistant":
            replies.setdefault(message.get(parent_key), []).append(message)

    def thread(message: dict) -> tuple[list[dict], str | None]:
        """The messages from the root down to `message`, and what breaks the chain (None: nothing)."""
        chain, seen = [], set()
        while message is not None:
            if id(message) in seen:
                return [], "its thread loops"
            seen.add(id(message))
            reason = _left_out(message)
            if reason:
                return [], f"message {message.get(id_key)} in its thread is {reason}"
            if message.get("text") is None:
                return [], f"message {message.get(id_key)} in its thread has no text"
            chain.append({"role": ROLES[message["role"]], "content": message["text"]})
            parent = message.get(parent_key)
            if parent is None:
                return chain[::-1], None
            message = by_id.get(parent)
            if message is None:
                return [], f"its thread runs through message {parent}, which the data does not hold"
        return chain[::-1], None

    for number, value in numbered:
        if not is_tree_message(value):
            yield number, value
            continue
        ids = {"message_id": value.get(id_key), **{k: value[k] for k in KEPT_COLUMNS if k in value}}
        if value["role"] == "assistant":
            if value.get(parent_key) not in by_id:
                yield number, {"prompt": [], "replies": [_reply(value)], **ids,
                               "thread_problem": f"a reply to message {value.get(parent_key)}, which the data "
                                                 "does not hold"}
            continue
        prompt, problem = thread(value)
        answers = replies.get(value.get(id_key), [])
        kept = [_reply(m) for m in answers if _left_out(m) is None]
        row = {"prompt": prompt, "replies": kept, **ids}
        if len(kept) < len(answers):
            row["replies_left_out"] = len(answers) - len(kept)
        if problem:
            row["thread_problem"] = problem
        yield number, row


def _reply(message: dict) -> dict:
    """A reply as its prompt's row lists it; one without text keeps None, which its row is refused for."""
    return {"text": message.get("text"), "rank": message.get("rank"), **(
        {} if isinstance(message.get("text"), str) else {"message_id": message.get("message_id")})}


def best_and_worst(replies: list[dict]) -> tuple[str, str | None]:
    """The best-ranked reply's text, and the worst-ranked one's when it ranks differently (else None).

    >>> best_and_worst([{"text": "b", "rank": 1}, {"text": "a", "rank": 0}, {"text": "c", "rank": None}])
    ('a', 'b')
    >>> best_and_worst([{"text": "x", "rank": None}, {"text": "y", "rank": None}])
    ('x', None)
    """
    ranked = [r for r in replies if isinstance(r.get("rank"), (int, float)) and not isinstance(r["rank"], bool)]
    if not ranked:
        return replies[0]["text"], None
    best = min(ranked, key=lambda r: r["rank"])
    worst = max(ranked, key=lambda r: r["rank"])
    return best["text"], (worst["text"] if worst["rank"] != best["rank"] else None)
