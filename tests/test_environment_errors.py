"""What is the user's environment or setup, not a bug of ours: a missing package or command, a folder to create,
a check that found nothing. Each answered in one line with the way out, exit 2 where nothing could run."""

import importlib.util
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from trlprep.converters.cli import main as convert_main
from trlprep.inspector.cli import main as inspect_main
from tests.conftest import REPO


def one_line_error(done) -> str:
    """The refusal a command printed: one line on stderr, no traceback."""
    assert "Traceback" not in done.output and "internal error" not in done.output, done.output
    (line,) = done.stderr.strip().splitlines()
    return line


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed here")
@pytest.mark.parametrize("main,arguments", [
    (inspect_main, []),
    (convert_main, ["--to", "sft", "--output", "converted"]),
])
@pytest.mark.parametrize("url", ["s3://bucket/data/*.jsonl", "s3://bucket/x.jsonl", "s3://bucket/**/*.jsonl.gz"])
@pytest.mark.parametrize("sharded", [True, False])
def test_an_s3_url_without_s3fs_names_the_package_to_install(main, arguments, url, sharded, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    executor = ["--executor", "local", "--work-dir", str(tmp_path / "work")] if sharded else []
    done = CliRunner().invoke(main, ["--dataset", url, *executor, *arguments])
    assert done.exit_code == 2
    assert one_line_error(done) == (f"error: {url}: reading s3:// URLs needs s3fs, which is not installed: pip "
                                    "install s3fs (or uv add s3fs), or copy the shards to a local folder and pass "
                                    "that")


@pytest.mark.parametrize("command,arguments", [
    ("trlprep.inspector.cli", []),
    ("trlprep.converters.cli", ["--to", "sft", "--output", "converted.jsonl"]),
])
@pytest.mark.parametrize("executor", ["local", "slurm"])
def test_executor_without_the_distributed_extra_names_the_install(command, arguments, executor, tmp_path):
    # A fresh interpreter in which `import datatrove` fails, as where the extra is not installed.
    hidden = (f"import sys; sys.modules['datatrove'] = None; sys.argv[0] = 'trlprep'\n"
              f"from {command} import main; main()")
    done = subprocess.run([sys.executable, "-c", hidden, "--dataset", "examples/sharegpt_chat.jsonl",
                           "--executor", executor, "--work-dir", str(tmp_path / "work"), *arguments],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == ("error: --executor needs the distributed extra: uv run --extra distributed ... "
                                   "(or pip install 'trlprep[distributed]')")
    assert not (REPO / "converted.jsonl").exists()


@pytest.mark.skipif(shutil.which("sbatch") is not None, reason="this machine has Slurm's sbatch")
def test_executor_slurm_without_sbatch_says_where_to_run_it(shared_data, tmp_path):
    done = CliRunner().invoke(inspect_main, ["--dataset", str(shared_data / "c4_demo.jsonl"), "--executor", "slurm",
                                             "--slurm-partition", "cpu", "--work-dir", str(tmp_path / "work")])
    assert done.exit_code == 2
    assert one_line_error(done) == ("error: --executor slurm submits its tasks with Slurm's sbatch, which is not on "
                                    "this machine's PATH: run it on a Slurm login node, or use --executor local")
    assert not (tmp_path / "work" / "logs").exists()  # refused before any task was set up


def test_convert_creates_the_output_folder_and_names_output_when_it_cannot(shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = str(shared_data / "dpo_en_demo.json")
    done = CliRunner().invoke(convert_main, ["--dataset", source, "--to", "dpo", "--output", "out/x.jsonl"])
    assert done.exit_code == 0, done.output
    assert sum(1 for _ in open(tmp_path / "out" / "x.jsonl")) == 38  # the slice's 38 pairs, every one usable
    (tmp_path / "blocker").write_text("a file where a folder would go")
    refused = CliRunner().invoke(convert_main, ["--dataset", source, "--to", "dpo", "--output", "blocker/x.jsonl"])
    assert refused.exit_code == 2
    assert one_line_error(refused) == ("error: --output blocker/x.jsonl: cannot create its folder blocker: a file is "
                                       "in its place")
    assert (tmp_path / "blocker").read_text() == "a file where a folder would go"


def test_against_says_when_no_row_shares_an_ngram(shared_data):
    gsm8k = str(shared_data / "gsm8k_test.jsonl")
    done = CliRunner().invoke(inspect_main, ["--dataset", str(shared_data / "alpaca_en_demo.json"),
                                             "--against", gsm8k])
    assert done.exit_code == 0, done.output
    assert f"• 0 rows share 13-word n-grams with {gsm8k} (TP405)" in done.stdout.splitlines()


def test_a_url_without_executor_says_it_is_read_as_shards():
    done = CliRunner().invoke(inspect_main, ["--dataset", "memory://bucket/chat.jsonl"])
    assert done.exit_code == 2
    assert one_line_error(done) == ("error: memory://bucket/chat.jsonl: a URL is read as shards, each copied here "
                                    "first: add --executor local (docs/sharded.md)")
