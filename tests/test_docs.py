"""The docs' shell examples run as printed: every fenced example in README.md and docs/**/*.md, from a copy of the
repository's root, with the exit code the page implies and, where the page shows what a command prints, that
output; and the site has a page for every rule of the catalog.

A page marks an example with an HTML comment on the line before its fence, which the site does not show:
`<!-- docs: exit 1 -->` (the exit code it gives; 0 otherwise), `<!-- docs: slow -->` (it loads torch: the
`slow` marker), `<!-- docs: not run: REASON -->` (a cluster, the Hub, a long benchmark: never run, the reason
said). A `bash` block is commands, a `text` block that opens with `$ COMMAND` is one command and its output, where
`...` stands for lines left out. `uv run [its options]` is the environment these tests run in, so a command runs
as the tool `uv run` would start, from this interpreter's folder.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
FENCE = re.compile(r"^(?:<!-- docs: (?P<notes>[^>]*) -->\n)?(?P<indent> *)```(?P<lang>\w*)\n(?P<body>.*?)^(?P=indent)```",
                   re.M | re.S)
UV_RUN = re.compile(r"^uv run(?: --(?:all-extras|extra \S+|group \S+))* ")
TINY_MODEL = "out/tiny-model"  # where the docs save the offline model (examples/README.md)


@dataclass(frozen=True)
class Example:
    page: Path
    line: int
    commands: tuple[str, ...]
    output: tuple[str, ...] | None  # the lines the page shows the command printing
    exit_code: int
    slow: bool
    not_run: str | None

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def _commands(body: str) -> tuple[str, ...]:
    """A bash block's commands: continuation lines joined, comments left out."""
    joined = re.sub(r"\\\n\s*", " ", body)
    return tuple(re.sub(r"\s+#\s.*$", "", line).strip() for line in joined.splitlines()
                 if line.strip() and not line.lstrip().startswith("#"))


def examples(page: Path) -> list[Example]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        lang, body, notes = match["lang"], match["body"], match["notes"] or ""
        lines = [line[len(match["indent"]):] for line in body.splitlines()]
        if lang in ("bash", "sh", "console"):
            commands, output = _commands("\n".join(lines)), None
        elif lines and lines[0].startswith("$ "):
            commands, output = (lines[0][2:],), tuple(lines[1:])
        else:
            continue  # not a shell example: a YAML file, program output without its command, Python
        exit_code = re.search(r"exit (\d+)", notes)
        not_run = re.search(r"not run: (.+)", notes)
        found.append(Example(page, text.count("\n", 0, match.start("lang")) + 1, commands, output,
                             int(exit_code[1]) if exit_code else 0, "slow" in notes,
                             not_run[1].strip() if not_run else None))
    return found


EXAMPLES = [example for page in PAGES for example in examples(page)]


def _normal(line: str) -> str:
    """A line with the run's speed, which varies, made constant."""
    return re.sub(r"[\d,.]+ rows/s", "N rows/s", line.rstrip())


def _as_printed(expected: tuple[str, ...], printed: list[str]) -> None:
    """Each shown line is printed, in order; `...` stands for lines left out."""
    printed = [_normal(line) for line in printed]
    position = 0
    for line in expected:
        if line.strip() == "...":
            continue
        assert _normal(line) in printed[position:], f"{line!r} is not printed (in order); printed:\n" + "\n".join(
            printed)
        position = printed.index(_normal(line), position) + 1


@pytest.fixture(scope="module")
def sandboxes(tmp_path_factory):
    """One copy of the repository's root a page: its files linked, `examples/` copied (commands write there)."""
    made: dict[Path, Path] = {}

    def sandbox(page: Path) -> Path:
        if page not in made:
            root = tmp_path_factory.mktemp(page.stem)
            for entry in REPO.iterdir():
                if entry.name in ("examples", "out", "site", "runs", ".git"):  # runs: what train writes
                    continue
                (root / entry.name).symlink_to(entry)
            shutil.copytree(REPO / "examples", root / "examples")
            made[page] = root
        return made[page]

    return sandbox


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                   "HF_HUB_OFFLINE": "1"}
    environment.pop("COLUMNS", None)  # piped, tables are drawn 110 wide, as the pages show them
    return subprocess.run(["bash", "-c", UV_RUN.sub("", command)], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("example", [pytest.param(example, id=example.name, marks=[pytest.mark.slow] * example.slow)
                                     for example in EXAMPLES if not example.not_run])
def test_the_example_runs_as_printed(example, sandboxes, request):
    cwd = sandboxes(example.page)
    model = cwd / TINY_MODEL
    if TINY_MODEL in example.page.read_text(encoding="utf-8") and not model.exists() and not any(
            "tests.tiny_model" in command for command in example.commands):
        # the model the documented command saves (a recipe names it in its file), built once for the session
        model.parent.mkdir(exist_ok=True)
        model.symlink_to(request.getfixturevalue("tiny_model"))
    for command in example.commands:
        done = _run(command, cwd)
        assert done.returncode == example.exit_code, f"{command}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        if example.output is not None:
            _as_printed(example.output, (done.stdout + done.stderr).splitlines())


def test_every_shell_example_runs_or_says_why_not():
    assert len(EXAMPLES) >= 15
    for example in EXAMPLES:
        assert example.commands and all(example.commands), example.name
        assert example.not_run or not any(re.search(r"\bhf://|s3://|--launcher hf-jobs", command)
                                          for command in example.commands), example.name


def test_no_two_pages_write_the_same_output():
    """A reader follows the README's tour, then a page, in one checkout: an output name two pages write (without
    --overwrite) makes the second stop with "exists; pass --overwrite"."""
    writers: dict[str, set[str]] = {}
    for example in EXAMPLES:
        for command in example.commands:
            for output in re.findall(r"--output(?:-dir)?[ =](\S+)", command):
                if "--overwrite" not in command:
                    writers.setdefault(output, set()).add(str(example.page.relative_to(REPO)))
    assert {output: pages for output, pages in writers.items() if len(pages) > 1} == {}


def test_every_example_file_named_in_the_docs_and_the_help_exists():
    from click.testing import CliRunner

    from trlprep.converters.cli import main as convert_main
    from trlprep.inspector.cli import main as inspect_main
    from trlprep.inspector.methods import METHODS
    from trlprep.train.cli import main as train_main

    helps = "".join(CliRunner().invoke(command, ["--help"]).output for command in (inspect_main, convert_main,
                                                                                    train_main))
    text = "".join(page.read_text(encoding="utf-8") for page in PAGES) + helps
    written = rf"\.({'|'.join(METHODS)}|rejects|train|test)\.\w+$"  # what `convert` writes
    named = {name for name in re.findall(r"examples/[\w.-]+\.\w+", text) if not re.search(written, name)}
    assert named and all((REPO / name).is_file() for name in named), sorted(n for n in named
                                                                               if not (REPO / n).is_file())


def test_the_python_api_runs_as_printed(monkeypatch):
    """The `inspect_dataset` example of docs/inspect.md, on the files it names."""
    monkeypatch.chdir(REPO)
    page = (REPO / "docs" / "inspect.md").read_text(encoding="utf-8")
    code = page.split("## From Python")[1].split("```python\n")[1].split("```")[0]
    scope: dict = {}
    exec(code, scope)
    assert scope["report"].type == "language_modeling" and scope["report"].exit_code == 1


def test_every_rule_has_its_page_and_its_row_in_the_table():
    """The site's hook writes a page per rule of the catalog and links each from the rules page."""
    from trlprep.inspector.rules import RULES

    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "docs" / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)

    table = hooks.linked_table()
    for rule in RULES.values():
        page = hooks.rule_page(rule)
        assert page.startswith(f"# {rule.id} {rule.name}\n") and rule.fix[1:] in page, rule.id
        assert f"| [{rule.id}]({rule.id}.md) | {rule.name} |" in table
    assert hooks.TABLE_MARKER in (REPO / "docs" / "rules" / "index.md").read_text(encoding="utf-8")


def test_the_site_builds_with_warnings_as_errors(tmp_path):
    """`mkdocs build --strict`, as CI runs it: a broken link or anchor, or a rule without its page, fails."""
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    built = {path.parent.name for path in (tmp_path / "rules").glob("*/index.html")}
    from trlprep.inspector.rules import RULES

    assert set(RULES) <= built, sorted(set(RULES) - built)
