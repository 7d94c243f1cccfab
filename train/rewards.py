"""GRPO reward functions: built-ins a user of this field expects, and loading one's own.

TRL calls each with `completions` (strings, or message lists for conversational prompts) plus every dataset
column as a keyword argument, and wants one float (or None to abstain) per completion.
"""

from __future__ import annotations

from trlprep.errors import UsageError

import importlib
import importlib.util
import inspect
import re
from pathlib import Path
from typing import Any, Callable

from trlprep.converters.transforms import text_of

# What TRL passes besides the dataset's columns (GRPOTrainer._calculate_rewards).
TRL_KEYWORDS = frozenset({"prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric",
                          "environments", "tools"})
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def normalize_answer(text: Any) -> str:
    """A final answer in comparable form: after a `####` marker or else the last number, without `$`, `,`
    or a trailing `.0`; other text lower-cased and stripped.

    >>> normalize_answer("So she makes $1,018.00 a day.\\n#### 1018")
    '1018'
    >>> normalize_answer("The total is 18.0 dollars")
    '18'
    >>> normalize_answer(" Paris ")
    'paris'
    """
    text = str(text)
    if "####" in text:
        text = text.rsplit("####", 1)[1]
    numbers = NUMBER.findall(text)
    if not numbers:
        return text.strip().lower()
    number = numbers[-1].replace(",", "")
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    return number


def answer_match(completions: list, answer: list, **kwargs) -> list[float]:
    """1.0 when the completion's final answer equals the `answer` column (numbers normalised), else 0.0.

    >>> answer_match(["... so 9 * 2 = 18. #### 18", "It is 20."], answer=["18", "18"])
    [1.0, 0.0]
    """
    return [float(normalize_answer(text_of(c)) == normalize_answer(a)) for c, a in zip(completions, answer)]


THINK_FORMAT = re.compile(r"^\s*<think>.*?</think>\s*\S", re.DOTALL)


def think_format(completions: list, **kwargs) -> list[float]:
    """1.0 for `<think>…</think>` followed by an answer, else 0.0.

    >>> think_format(["<think>9*2</think> 18", "18"])
    [1.0, 0.0]
    """
    return [float(bool(THINK_FORMAT.match(text_of(c)))) for c in completions]


def length_penalty(completions: list, **kwargs) -> list[float]:
    """Minus the completion length in thousands of characters: shorter answers score higher.

    >>> length_penalty(["a" * 500])
    [-0.5]
    """
    return [-len(text_of(c)) / 1000 for c in completions]


BUILTINS: dict[str, Callable] = {
    "answer_match": answer_match,
    "think_format": think_format,
    "length_penalty": length_penalty,
}


def load_reward(spec: str) -> Callable:
    """A reward function from a built-in name, `path/to/file.py:function` or `module:function`."""
    if spec in BUILTINS:
        return BUILTINS[spec]
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise UsageError(f"--reward-func {spec!r}: use a built-in ({', '.join(BUILTINS)}), "
                         f"path/to/file.py:function or module:function")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise UsageError(f"--reward-func {spec!r}: {path}: no such file")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as error:
            raise UsageError(f"--reward-func {spec!r}: cannot import {target!r} ({error})") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise UsageError(f"--reward-func {spec!r}: {target} has no function {name!r}")
    return function


def missing_columns(function: Callable, columns: list[str]) -> list[str]:
    """Keyword arguments the function needs that neither TRL nor the dataset provides.

    >>> missing_columns(answer_match, ["prompt", "reference"])
    ['answer']
    """
    needed = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        if parameter.default is parameter.empty and parameter.name not in TRL_KEYWORDS:
            needed.append(parameter.name)
    return [name for name in needed if name not in columns]
