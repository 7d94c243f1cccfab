"""Every docstring example of the package, run as the module it documents (`trlprep.inspector.fast`, ...)."""

from __future__ import annotations

import doctest
import importlib

import pytest

from tests.conftest import REPO

PACKAGES = ("trlprep", "inspector", "converters", "train")


def module_names() -> list[str]:
    """The package's modules by the names they are imported as: the stages are `trlprep.inspector`, ..."""
    names = []
    for folder in PACKAGES:
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            if parts[-1] != "__main__":
                names.append(".".join(parts if parts[0] == "trlprep" else ("trlprep", *parts)))
    return names


@pytest.mark.parametrize("name", module_names())
def test_docstring_examples(name):
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) of {name} failed (printed above)"
