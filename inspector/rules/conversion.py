"""What a conversion for one method leaves out of otherwise valid rows (TC1xx): `inspect` counts them per method
and `convert --to` rejects exactly these rows; and the guards on what a conversion writes (TC103, TC104)."""

from __future__ import annotations

from typing import Iterator

from trlprep.inspector.rules.catalog import ERROR, WARNING, Rule, by_structure, by_value_tests, register, unproven
from trlprep.inspector.rules.examples import ASSISTANT, CHAT, USER, chat, flagged

KTO = frozenset({"unpaired_preference"})


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


LABEL_FALSE_NOT_FOR_SFT = register(Rule("TC101", "label-false-not-for-sft", WARNING, "SFT trains only on completions labelled true",
         "nothing to fix: the row is used by KTO, not by SFT", "method", types=KTO, methods=frozenset({"sft"}),
         check=lambda row, shape: () if row.get("label") is True else ("label is false",),
         example=flagged({"prompt": "q", "completion": "a", "label": True},
                       {"prompt": "q", "completion": "b", "label": False}),
         why="training on undesirable completions teaches the model to produce them",
         proof=by_structure("no fast shape is of the unpaired preference type")))

NO_PROMPT = register(Rule("TC102", "no-prompt", WARNING, "no turn before the last assistant turn to use as the GRPO prompt",
         "add the user turn the answer replies to", "method", types=frozenset({"language_modeling"}),
         methods=frozenset({"grpo"}), why="GRPO generates from the prompt; an empty prompt has nothing to answer",
         check=lambda row, shape: ("no turn before the last assistant turn",)
         if isinstance(row.get("messages"), list) and last_answer(row["messages"]) == 0 else (),
         example=flagged(CHAT, chat(ASSISTANT)),
         proof=by_value_tests("a fast conversation has turns before its answer")))

CONVERTED_ROW_INVALID = register(Rule("TC103", "converted-row-invalid", ERROR,
         "the converted row breaks a rule of its own (a guard: `inspect` should have predicted it)",
         "report it to trlprep's developers with the row; the rejects file names the rule", "output",
         why="wrong training data must never be written"))

CONVERSION_FAILED = register(Rule("TC104", "conversion-failed", ERROR, "the conversion of this row raised an error (a guard)",
         "report it to trlprep's developers with the row; the rejects file has the error", "output",
         why="one bad row must not stop the conversion of the others"))

FLAGS_NOT_EXPRESSIBLE = register(Rule("TC105", "flags-not-expressible", WARNING,
         "per-turn training flags TRL cannot express: a trained user, system or tool turn, a weight other than 0 "
         "or 1, or no trained assistant turn after a prompt", "set the flags to 0/1 on assistant turns, or drop "
         "the row", "method", types=frozenset({"language_modeling"}), methods=frozenset({"sft"}),
         why="TRL trains completions, not arbitrary turns, and has no fractional loss weights: approximating "
             "the flags would train what they keep out",
         check=lambda row, shape: _unexpressible_flags(row),
         example=flagged(chat({**USER, "loss_weight": 0.0}, {**ASSISTANT, "loss_weight": 1.0}),
                       chat({**USER, "loss_weight": 1.0}, {**ASSISTANT, "loss_weight": 1.0})),
         proof=by_structure("the typed messages take no training flag")))


def first_wrong_step(row: dict) -> int | None:
    """The index of the first step a stepwise row labels wrong; None when every step is labelled correct (the
    solution is a desirable one).

    >>> first_wrong_step({"prompt": "Q", "completions": ["a", "b"], "labels": [True, False]})
    1
    """
    return next((i for i, correct in enumerate(row["labels"]) if correct is not True), None)


def _wrong_step(row: dict, shape) -> Iterator[str]:
    wrong = first_wrong_step(row)
    if wrong is not None:
        yield f"step {wrong + 1} of {len(row['labels'])} is labelled wrong: {str(row['completions'][wrong])[:80]}"


WRONG_STEP = register(Rule("TC106", "solution-with-wrong-step", WARNING,
         "a stepwise solution with a step labelled wrong: not a demonstration to imitate, nor a worked answer to "
         "reward against", "nothing to fix: `convert --to kto` takes it as an undesirable example, cut after its "
         "first wrong step", "method", types=frozenset({"stepwise_supervision"}), methods=frozenset({"sft", "grpo"}),
         check=_wrong_step,
         example=flagged({"prompt": "2+3?", "completions": ["2+3 = 5", "The answer is 5"], "labels": [True, True]},
                         {"prompt": "2+3?", "completions": ["2+3 = 6", "The answer is 6"], "labels": [False, False]}),
         why="SFT would teach the wrong step, and GRPO's reference answer would be a wrong one",
         proof=by_structure("no fast shape is of the stepwise supervision type")))


def _reference_faults(row: dict, shape) -> Iterator[str]:
    """A TPO row's `reference` (its gold completion) as TPOTrainer cannot read it: missing or empty, or not in the
    form of the pair's answers (text beside text, messages beside messages), which it concatenates with the prompt."""
    if "reference" not in row:  # a row without the column: the verdict says the data lacks it
        return
    reference, chosen = row["reference"], row.get("chosen")
    if not reference or not isinstance(reference, (str, list)):
        yield f"reference is {reference!r}: TPO needs the gold completion"
    elif isinstance(reference, str) != isinstance(chosen, str):
        yield (f"reference is {'text' if isinstance(reference, str) else 'a message list'} where chosen is "
               f"{'text' if isinstance(chosen, str) else 'a message list'}: write it in the answers' form")
    elif isinstance(reference, list) and not all(isinstance(m, dict) and m.get("role") for m in reference):
        yield "reference is a list of something other than messages with a role"


REFERENCE_UNUSABLE = register(Rule("TC107", "tpo-reference-unusable", WARNING,
         "TPO's gold `reference` completion is missing, empty, or not in the form of the pair's answers",
         "give each pair its gold completion, as text beside text answers or as messages beside message answers",
         "method", types=frozenset({"preference"}), methods=frozenset({"tpo"}), check=_reference_faults,
         columns=frozenset({"reference"}),
         example=flagged({"prompt": "2+3?", "chosen": "5", "rejected": "6", "reference": "2+3 = 5"},
                         {"prompt": "2+3?", "chosen": "5", "rejected": "6", "reference": None}),
         why="TPOTrainer adds the reference to the prompt and trains on it: a missing one stops training, a "
             "reference of another form than the prompt cannot be joined to it",
         proof=unproven("the fast paths do not read `reference`: rows with it take the full checks")))


def _context_faults(row: dict, shape) -> Iterator[str]:
    if "privileged_context" not in row:  # a row without the column: the verdict says the data lacks it
        return
    context = row["privileged_context"]
    if not isinstance(context, str) or not context.strip():
        yield f"privileged_context is {context!r}: SDFT's teacher needs the text it is shown"


CONTEXT_UNUSABLE = register(Rule("TC108", "sdft-context-unusable", WARNING,
         "SDFT's `privileged_context` is missing or empty", "give each prompt the demonstration or hint its teacher "
         "sees, as text", "method",
         methods=frozenset({"sdft"}), check=_context_faults, columns=frozenset({"privileged_context"}),
         example=flagged({"prompt": "2+3?", "privileged_context": "2+3 = 5"},
                         {"prompt": "2+3?", "privileged_context": None}),
         why="SDFTTrainer stops mid-training at a row without one (\"privileged_context must not be None\"), and "
             "an empty one teaches the student nothing",
         proof=unproven("the fast paths do not read `privileged_context`: rows with it take the full checks")))
