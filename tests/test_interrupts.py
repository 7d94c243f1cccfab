"""Interrupting `convert` (SIGINT, SIGTERM, SIGKILL) leaves no partial output and the input untouched."""

import hashlib
import json
import signal
import subprocess
import sys
import time

import pytest

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
