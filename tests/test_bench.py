"""The benchmark scripts run end to end on small files (their figures are measured by hand: no test is timed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import product
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.slow  # ten seconds and more: four inspect commands and 24 timed runs
def test_formats_bench_reports_every_format_processes_and_memory(tmp_path):
    # bench/memory.py's subprocess runs the `inspect` command: the one of this interpreter's environment.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    done = subprocess.run([sys.executable, str(REPO / "bench" / "formats.py"), "--rows", "2000", "--repeat", "1",
                           "--json", "--data", str(tmp_path)], capture_output=True, text=True,
                          env={**os.environ, "PATH": path})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)

    timings = result["timings"]
    formats = ("Parquet", "Arrow file", "Arrow stream", "JSON lines")
    runs = ("bare read", "inspect, 1 process", "inspect, 2 processes")
    assert [(t["file"], t["format"], t["what"]) for t in timings] == list(product(("chat", "40% warned"), formats,
                                                                                   runs))
    assert {t["rows"] for t in timings if t["file"] == "chat"} == {2000}
    assert {t["rows"] for t in timings if t["file"] == "40% warned"} == {500}  # a quarter, by default
    assert all(t["seconds"] > 0 and t["ratio"] > 0 for t in timings)
    assert all(t["ratio"] == 1 for t in timings if t["what"] == "bare read")
    judged = {(t["file"], t["format"], t["what"]): t["done_when"] for t in timings if t["done_when"]}
    assert judged.keys() == {("chat", "Parquet", "inspect, 1 process"), ("chat", "JSON lines", "inspect, 2 processes")}
    assert set(judged.values()) <= {"PASS", "FAIL"}

    peaks = result["peak_memory"]
    assert [p["rows"] for p in peaks] == [1000, 2000, 4000, 8000]  # resting, then 1x, 2x and 4x --rows
    assert peaks[0]["above_resting_mb"] == 0 and all(p["peak_mb"] > 0 for p in peaks)
    assert peaks[1]["file_mb"] < peaks[2]["file_mb"] < peaks[3]["file_mb"]
    assert peaks[1]["vs_1x"] == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "chat-2000.arrow", "chat-2000.jsonl", "chat-2000.parquet", "chat-2000.stream.arrow", "pairs-2000.jsonl",
        "warned-500.arrow", "warned-500.jsonl", "warned-500.parquet", "warned-500.stream.arrow"]
