import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# The full real datasets, beside some checkouts only; `SLICES` ships a small cut of each, in the same layout.
SHARED_DATA = REPO.parent / "shared" / "data"
SLICES = REPO / "tests" / "data" / "shared"
HEAVY_MODULES = ("datasets", "torch", "transformers", "trl")


def in_fresh_python(code: str, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run `code` (its `sys.argv[1:]` being `args`) in a new interpreter: the finished process, and which of
    HEAVY_MODULES it had imported by the end (its last line of output, not in the process's stdout)."""
    probe = code + f"\nimport json, sys\nprint('loaded:', json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True)
    output, _, loaded = done.stdout.rpartition("loaded: ")
    done.stdout = output
    return done, json.loads(loaded)


def session_processes(session: int) -> list[int]:
    """The live processes of a session (zombies aside): what is left of a run started in a session of its own."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def interrupted(process: subprocess.Popen, signum: int, timeout: float) -> str:
    """Send `signum` to a command started in a session of its own as a user would (Ctrl-C, as a terminal does, to
    its whole process group; another signal to the command alone), and its stderr once it ends. A command still
    running after `timeout` seconds fails the test, its process group killed."""
    if signum == signal.SIGINT:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    try:
        return process.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"{signal.Signals(signum).name} did not stop the command in {timeout:g} s")


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true",
                     help="also run the slow tier, the tests marked `slow` (trainers, recipes, GGUF export, the "
                          "HTML page in a browser, shards): see docs/testing.md")


def pytest_collection_modifyitems(config, items):
    """Without `--slow`, the slow tier is deselected (not skipped: a skip says a test could not run)."""
    if config.getoption("--slow"):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


@pytest.fixture(scope="session", autouse=True)
def working_tree_untouched():
    """No test writes into the checkout: `train` without `--output-dir` writes `runs/<method>` under the working
    directory, so a test that runs it must run in its own `tmp_path`."""
    before = (REPO / "runs").exists()
    yield
    assert before or not (REPO / "runs").exists(), "a test wrote runs/ into the checkout: run it in tmp_path"


@pytest.fixture
def shared_data() -> Path:
    """The shipped slices of `../shared/data` (tests/data/shared/README.md): every figure a test asserts on a
    real dataset is one of these files, so the suite is the same with or without `../shared`."""
    return SLICES


def with_shared(relative: str) -> list[Path]:
    """The data files under `relative` (a folder of `../shared/data`, "" for all of it): the shipped slices, then,
    where `../shared/data` is beside the checkout, its full files as extra cases."""
    from tests.differential import datasets_under

    folders = [SLICES / relative] + ([SHARED_DATA / relative] if SHARED_DATA.is_dir() else [])
    return datasets_under([str(folder) for folder in folders], folders=False)


@pytest.fixture
def write_jsonl(tmp_path):
    """Write rows (objects, or raw strings for broken lines) to a JSONL file and return its path."""

    def write(rows, name="data.jsonl"):
        path = tmp_path / name
        lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write


# The files each scan path reads: JSON lines (in blocks, or split between processes), gzipped lines, Parquet, Arrow.
SCAN_PATHS = ("jsonl", "gzip", "parquet", "arrow", "parallel")


def write_for_scan_path(kind: str, rows: list[dict], folder: Path) -> Path:
    """`rows` written as the file the scan path `kind` reads (`SCAN_PATHS`; "parallel" reads JSON lines)."""
    lines = "".join(json.dumps(row) + "\n" for row in rows)
    if kind in ("jsonl", "parallel"):
        path = folder / "d.jsonl"
        path.write_text(lines, encoding="utf-8")
        return path
    if kind == "gzip":
        path = folder / "d.jsonl.gz"
        path.write_bytes(gzip.compress(lines.encode()))
        return path
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows)
    if kind == "parquet":
        pq.write_table(table, folder / "d.parquet")
        return folder / "d.parquet"
    with pa.ipc.new_file(folder / "d.arrow", table.schema) as writer:
        writer.write_table(table)
    return folder / "d.arrow"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A real 2-layer Qwen2 and BPE tokenizer saved to a folder (offline, ~1 s)."""
    from tests.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory) -> Path:
    """A real tiny LLaVA (48k parameters, 16 image tokens per image) and its processor saved to a folder (offline)."""
    from tests.tiny_vlm import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm"))
