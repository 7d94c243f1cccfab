"""Interrupting `convert` (SIGINT, SIGTERM, SIGKILL) leaves no partial output and the input untouched; interrupting
`inspect` in a split scan (SIGINT, SIGTERM) leaves none of its worker processes."""

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import interrupted, session_processes

ROWS = 120_000


@pytest.fixture(scope="module")
def big_chat(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "chat.jsonl"
    turn = [{"from": "human", "value": "What is the capital of France? " * 3},
            {"from": "gpt", "value": "Paris is the capital of France. " * 5}]
    with open(path, "w") as handle:
        for i in range(ROWS):
            handle.write(json.dumps({"conversations": turn, "id": i}) + "\n")
    return path


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM",
                                                                                          "SIGKILL"])
def test_interrupted_convert_leaves_no_output(big_chat, tmp_path, signum):
    before = _digest(big_chat)
    output = tmp_path / "out.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-c", "from trlprep.converters.cli import main; main()", "-d", str(big_chat), "--to", "sft",
         "-o", str(output)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A test run in a background job inherits SIGINT ignored, and Python keeps ignoring it: as a user's would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not any(tmp_path.glob(".out.jsonl.*")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "convert finished before it could be interrupted; make the input bigger"
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert not output.exists() and not (tmp_path / "out.rejects.jsonl").exists()
    if signum != signal.SIGKILL:  # a killed process cannot clean up; its hidden staging file is all it leaves
        assert list(tmp_path.iterdir()) == []
        assert "Traceback" not in stderr and "interrupted" in stderr
    assert _digest(big_chat) == before


# `inspect` with the split thresholds lowered: a file of two row groups (or lines) or more is scanned by two worker
# processes, whatever the machine's cores.
SPLIT_INSPECT = """
import os
import trlprep.inspector.scan as scan
scan.PARALLEL_FROM_BYTES = scan.PARALLEL_FROM_FLAGGED = 0
os.cpu_count = lambda: 2
from trlprep.inspector.cli import main
main()
"""


@pytest.fixture(scope="module")
def long_scans(big_chat):
    """`big_chat` three times over as JSON lines and as Parquet: a scan the tests can catch in its workers, with
    time to spare on a fast machine (it is stopped soon after they start)."""
    import pyarrow as pa
    import pyarrow.json
    import pyarrow.parquet

    lines, parquet = big_chat.with_name("long.jsonl"), big_chat.with_name("long.parquet")
    lines.write_bytes(big_chat.read_bytes() * 3)
    pyarrow.parquet.write_table(pa.concat_tables([pyarrow.json.read_json(big_chat)] * 3), parquet,
                                row_group_size=5000)
    return {".jsonl": lines, ".parquet": parquet}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the processes left from /proc")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_interrupted_split_inspect_stops_its_workers(long_scans, suffix, signum):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) or SIGTERM (to `inspect` alone, as `kill` sends
    it) while two workers scan the file: exit 130 with the one line "interrupted", no worker left running (a hang
    check, not a timing: 30 s)."""
    process = subprocess.Popen([sys.executable, "-c", SPLIT_INSPECT, "--dataset", str(long_scans[suffix])],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while len(session_processes(process.pid)) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    assert process.poll() is None, "inspect finished before its workers could be interrupted; make the input bigger"
    assert len(session_processes(process.pid)) == 3  # inspect and its two workers
    stderr = interrupted(process, signum, timeout=30)
    assert (process.returncode, stderr) == (130, "interrupted\n")
    assert session_processes(process.pid) == []
