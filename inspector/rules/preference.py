"""Preference data (TP3xx): identical or empty sides, prompts that cannot be extracted or do not open the answers,
tied scores, answers that repeat the prompt, prompts with no ranked pair.

>>> row = {"prompt": [{"role": "user", "content": "Q"}], "chosen": [{"role": "assistant", "content": "A"}],
...        "rejected": [{"role": "assistant", "content": "A"}]}
>>> list(check_pair(row, type("Shape", (), {"format": "conversational", "implicit_prompt": False})))
[('TP301', 'chosen and rejected are identical')]
"""

from __future__ import annotations

from typing import Any, Iterator

from trlprep.inspector.dialects import shared_prompt_length
from trlprep.inspector.rules.catalog import ERROR, WARNING, by_structure, by_value_tests, register, Rule, unproven
from trlprep.inspector.rules.content import EMPTY_CONTENT, NOT_BLANK, Issue, check_conversation, has_assistant, no_answer
from trlprep.inspector.rules.examples import ASSISTANT, PAIR, TREE_QUESTION, USER, Example, flagged, tree

PREFERENCE = frozenset({"preference"})
# The columns that hold a preference pair's sides, in the dialects that write them: an empty one is TP302.
PREFERENCE_SIDES = ("chosen", "rejected", "preferred_output", "non_preferred_output", "answer_w", "answer_l")


CHOSEN_EQUALS_REJECTED = register(Rule("TP301", "chosen-equals-rejected", ERROR, "chosen and rejected are identical, so the pair teaches nothing",
         "drop the pair", "trl", why="the DPO loss of an identical pair is constant: no signal, only cost",
         types=PREFERENCE, example=flagged(PAIR, {"prompt": "2+2?", "chosen": "4", "rejected": "4"}),
         proof=by_value_tests("chosen and rejected differ")))

EMPTY_PREFERENCE_SIDE = register(Rule("TP302", "empty-preference-side", ERROR,
         "chosen or rejected is empty (or its answer turn is: a transcript ending in `Assistant:` and nothing)",
         "drop the pair", "field",
         why="an empty side trains the model to prefer, or avoid, saying nothing", blocking=True, structural=True,
         types=PREFERENCE,
         example=flagged({"chosen": "\n\nHuman: 2+2?\n\nAssistant: 4", "rejected": "\n\nHuman: 2+2?\n\nAssistant: 5"},
                       {"chosen": "\n\nHuman: 2+2?\n\nAssistant: ", "rejected": "\n\nHuman: 2+2?\n\nAssistant: 5"}),
         proof=NOT_BLANK))

NO_SHARED_PROMPT = register(Rule("TP303", "no-shared-prompt", WARNING,
         "implicit prompt: chosen and rejected share no prefix, so TRL extracts an empty prompt",
         "give an explicit `prompt` column (`convert` rejects the row for every method that needs the prompt)",
         "trl", why="with an empty prompt the whole conversation is scored as the answer", types=PREFERENCE,
         methods=frozenset({"sft", "dpo", "grpo", "kto"}),
         example=flagged({"chosen": "Q: 2+2? A: 4", "rejected": "Q: 2+2? A: 5"}, {"chosen": "four", "rejected": "5"}),
         proof=by_value_tests("an implicit prompt's sides share their first message")))

PROMPT_EXTRACTION_EDGE = register(Rule("TP304", "prompt-extraction-edge", WARNING,
         "implicit prompt: one side is a prefix of the other, where TRL's extract_prompt splits wrongly",
         "`convert --to dpo` extracts the prompt message by message", "trl",
         why="TRL's character-wise extraction leaves one side empty", types=PREFERENCE,
         example=flagged({"chosen": [USER, ASSISTANT], "rejected": [USER, {"role": "assistant", "content": "5"}]},
                       {"chosen": [USER, ASSISTANT], "rejected": [USER, ASSISTANT, USER, ASSISTANT]}),
         proof=by_value_tests("neither side of an implicit prompt is a prefix of the other")))

PROMPT_NOT_OPENING_ANSWERS = register(Rule("TP305", "prompt-not-opening-answers", ERROR,
         "a string prompt beside answer conversations (chosen/rejected), one of which does not open with that "
         "prompt turn",
         "give both sides the same opening user turn, or drop the row", "field",
         why="the prompt is cut from each side's opening: a side that holds another question would be trained "
             "as the answer to this one", blocking=True,
         example=flagged({"prompt": "2+2?", "chosen": [{"role": "user", "content": "2+2?"}, ASSISTANT],
                        "rejected": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "5"}]},
                       {"prompt": "2+2?", "chosen": [{"role": "user", "content": "2+2?"}, ASSISTANT],
                        "rejected": [{"role": "user", "content": "3+3?"}, {"role": "assistant", "content": "6"}]}),
         proof=by_structure("no fast shape is of the `ultrafeedback` dialect")))

TIED_SCORES = register(Rule("TP306", "tied-scores", WARNING, "the pair's scores are equal (score_chosen = score_rejected)",
         "drop tied pairs (`convert` rejects them for DPO, Reward and KTO)", "trl",
         why="with tied scores which side is chosen is arbitrary: the pair teaches a preference nobody had",
         types=PREFERENCE, methods=frozenset({"dpo", "reward", "kto"}),
         columns=frozenset({"score_chosen", "score_rejected"}),
         check=lambda row, shape: ((f"both sides score {row['score_chosen']}",)
                                   if isinstance(row.get("score_chosen"), (int, float))
                                   and row.get("score_chosen") == row.get("score_rejected") else ()),
         example=flagged({**PAIR, "score_chosen": 8.0, "score_rejected": 3.0},
                       {**PAIR, "score_chosen": 5.0, "score_rejected": 5.0}),
         proof=unproven("the fast paths do not read scores: a shape with both score columns takes the full checks")))

ANSWER_REPEATS_PROMPT = register(Rule("TP307", "answer-repeats-prompt", ERROR,
         "a conversational answer (completion, chosen or rejected) opens with the prompt's messages again",
         "keep only the answer's own turns (the prompt is rendered before it)", "trl",
         why="the prompt is rendered twice, and the copy in the answer is trained as the model's own output",
         types=frozenset({"prompt_completion", "preference", "unpaired_preference"}),
         check=lambda row, shape: (f"{side} opens with the {len(row['prompt'])} prompt message(s)"
                                   for side in ("completion", "chosen", "rejected")
                                   if isinstance(row.get("prompt"), list) and row["prompt"]
                                   and isinstance(row.get(side), list)
                                   and row[side][: len(row["prompt"])] == row["prompt"]),
         example=flagged({"prompt": [USER], "completion": [ASSISTANT]},
                       {"prompt": [USER], "completion": [USER, ASSISTANT]}),
         proof=by_value_tests("a fast answer is one assistant turn after turns that alternate")))

NO_RANKED_PAIR = register(Rule("TP308", "no-ranked-pair", WARNING,
         "a prompt with fewer than two replies of different rank: an answer to train on, no chosen/rejected pair",
         "nothing to do for SFT and GRPO; `convert` rejects the row for DPO, Reward and KTO", "trl",
         why="a pair needs a better and a worse answer; inventing the worse one would teach a preference nobody had",
         types=PREFERENCE, methods=frozenset({"dpo", "reward", "kto"}),
         check=lambda row, shape: ("only one answer, no ranked pair",) if row.get("rejected", ()) is None else (),
         example=Example(tree(TREE_QUESTION, ("a", "q", "assistant", "4", 0), ("b", "q", "assistant", "5", 1),
                               ("q2", "a", "prompter", "Why?", None), ("a2", "q2", "assistant", "Because.", 0)),
                         (4,)),
         proof=by_structure("the typed decode takes no null `rejected`")))


def empty_rule(column: str) -> str:
    """The rule an empty text of this column breaks: TP302 for a side of a preference pair, TP201 otherwise.

    >>> empty_rule("chosen"), empty_rule("completion")
    ('TP302', 'TP201')
    """
    return EMPTY_PREFERENCE_SIDE.id if column in PREFERENCE_SIDES else EMPTY_CONTENT.id


def _shared_prefix(a: list | str, b: list | str) -> int:
    length = 0
    for x, y in zip(a, b):
        if x != y:
            break
        length += 1
    return length


def check_pair(trl_row: dict, shape: Any) -> Iterator[Issue]:
    """A preference row read as its TRL type: each side's conversation, then the pair itself."""
    chosen, rejected = trl_row["chosen"], trl_row["rejected"]
    if rejected is None:  # one answer read from a dialect that may have no pair (TP308 keeps it from pairs)
        sides = (("chosen", chosen),)
    else:
        sides = (("chosen", chosen), ("rejected", rejected))
    if shape.format == "conversational":
        prompt = trl_row.get("prompt") or []
        for side, messages in sides:
            yield from check_conversation(prompt + messages, f"prompt+{side}")
            if not has_assistant(messages):
                yield no_answer(side)
    if rejected is None:
        return
    if chosen == rejected:
        yield CHOSEN_EQUALS_REJECTED.id, "chosen and rejected are identical"
    elif shape.implicit_prompt:
        # The prompt `convert` extracts, the same function: a row flagged here is the row it cannot split.
        if shared_prompt_length(chosen, rejected) == 0:
            yield NO_SHARED_PROMPT.id, "chosen and rejected share no prompt (" + (
                "no first message" if shape.format == "conversational" else "no words") + " in common)"
        shared = _shared_prefix(chosen, rejected)
        if shared and shared in (len(chosen), len(rejected)):
            shorter = "chosen" if shared == len(chosen) else "rejected"
            yield PROMPT_EXTRACTION_EDGE.id, f"{shorter} is a prefix of the other side"
