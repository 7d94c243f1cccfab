"""The README's examples are the code's: its output snippets are what the commands print, and every file and
command it names exists."""

import re

from click.testing import CliRunner

from trlprep.inspector import inspect_dataset
from trlprep.inspector.methods import METHODS
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def _normal(line: str) -> str:
    """A line with the run's speed, which varies, made constant."""
    return re.sub(r"[\d,.]+ rows/s", "N rows/s", line.rstrip())


def test_the_tour_is_what_inspect_prints(monkeypatch):
    snippet = README.split("## A short tour of the report")[1].split("```text\n")[1].split("```")[0]
    command, *expected = snippet.splitlines()
    assert command == "$ uv run inspect --dataset examples/broken_chat.jsonl"
    monkeypatch.chdir(REPO)  # the path as the command gives it: where lines wrap depends on its length
    printed = [_normal(line) for line in inspect_dataset("examples/broken_chat.jsonl").to_text(width=110).splitlines()]
    position = 0
    for line in expected:  # in order; `...` stands for lines left out
        if line == "...":
            continue
        assert _normal(line) in printed[position:], line
        position = printed.index(_normal(line), position) + 1


def test_every_example_file_named_in_the_readme_and_the_help_exists():
    from trlprep.converters.cli import main as convert_main
    from trlprep.inspector.cli import main as inspect_main
    from trlprep.train.cli import main as train_main

    helps = "".join(CliRunner().invoke(command, ["--help"]).output for command in (inspect_main, convert_main,
                                                                                    train_main))
    named = {name for name in re.findall(r"examples/[\w.-]+\.\w+", README + helps)
             if not re.search(rf"\.({'|'.join(METHODS)})\.jsonl$", name)}  # what `convert` would write
    assert named and all((REPO / name).is_file() for name in named), sorted(n for n in named
                                                                               if not (REPO / n).is_file())


def test_the_python_api_runs_as_printed(monkeypatch):
    """The README's `inspect_dataset` example, on the files it names, with the options dataclass it shows."""
    monkeypatch.chdir(REPO)
    code = README.split("## `inspect` options")[1].split("```python\n")[1].split("```")[0]
    scope: dict = {}
    exec(code, scope)
    assert scope["report"].type == "language_modeling" and scope["report"].exit_code == 1
