"""`inspect --executor local`: shards scanned as datatrove tasks give the report of one pass over the same files."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from inspector.cli import main

pytest.importorskip("datatrove", reason="the distributed extra (uv sync --extra distributed) is not installed")


def report_of(arguments: list[str]) -> dict:
    """The JSON report of `inspect`, its timings aside (they are the only thing a sharded run may change)."""
    done = CliRunner().invoke(main, [*arguments, "--format", "json"])
    assert done.exit_code in (0, 1), done.output
    report = json.loads(done.stdout)
    report.pop("stats")
    return report


def chat(number: int, text: str) -> dict:
    return {"messages": [{"role": "user", "content": f"question {number}: {text}"},
                         {"role": "assistant", "content": f"answer {number}"}]}


def write_shards(folder, shards: int, rows: int) -> None:
    """JSON-lines shards of chats, a row of shard 3 repeating one of shard 1 and a broken line in shard 2."""
    folder.mkdir(parents=True, exist_ok=True)
    for shard in range(shards):
        lines = [json.dumps(chat(shard * rows + n, "how many ducks")) for n in range(rows)]
        if shard == 2:
            lines[7] = '{"messages": [{"role": "user", "content": "cut'
        if shard == 3:
            lines[0] = json.dumps(chat(rows + 4, "how many ducks"))  # shard 1's fifth row
        (folder / f"shard-{shard}.jsonl").write_text("\n".join(lines) + "\n")


def test_generated_shards_give_the_single_pass_report_with_duplicates_across_shards(tmp_path):
    write_shards(tmp_path / "shards", shards=4, rows=60)
    pattern = str(tmp_path / "shards" / "*")
    sharded = report_of(["--dataset", pattern, "--executor", "local", "--workers", "2",
                         "--work-dir", str(tmp_path / "work")])
    assert json.dumps(sharded, sort_keys=True) == json.dumps(report_of(["--dataset", pattern]), sort_keys=True)
    duplicates = next(f for f in sharded["findings"] if f["rule"] == "TP401")
    assert f"{tmp_path / 'shards' / 'shard-3.jsonl'}:1" in duplicates["where"]  # repeats shard 1's row 5
    broken = next(f for f in sharded["findings"] if f["rule"] == "TP001")
    assert broken["where"] == [f"{tmp_path / 'shards' / 'shard-2.jsonl'}:8"]
    assert sharded["rows_checked"] == 4 * 60  # the broken line counted, as one pass counts it


def test_the_shared_datasets_give_the_single_pass_report(shared_data, tmp_path):
    pattern = str(shared_data / "*.json*")
    sharded = report_of(["--dataset", pattern, "--executor", "local", "--workers", "2"])
    assert json.dumps(sharded, sort_keys=True) == json.dumps(report_of(["--dataset", pattern]), sort_keys=True)
    assert len(sharded["files"]) == 7


def test_a_corrupt_shard_is_named_and_nothing_is_merged(tmp_path):
    write_shards(tmp_path / "shards", shards=2, rows=20)
    (tmp_path / "shards" / "shard-5.jsonl").write_bytes(b"\x1f\x8b\x08 not gzip after all")
    done = CliRunner().invoke(main, ["--dataset", str(tmp_path / "shards" / "*"), "--executor", "local",
                                     "--work-dir", str(tmp_path / "work")])
    assert done.exit_code == 2 and "shard-5.jsonl" in done.output, done.output
    assert not (tmp_path / "work" / "report.pkl").exists()


def test_a_worker_killed_mid_shard_leaves_no_report_and_a_rerun_finishes_the_rest(tmp_path):
    """A node lost while it scans: its shard has no partial result and no report is merged; the same command with
    the same --work-dir runs only the unfinished tasks and gives the single pass's report."""
    write_shards(tmp_path / "shards", shards=6, rows=150_000)
    pattern, work = str(tmp_path / "shards" / "*"), tmp_path / "work"
    command = [str(Path(sys.executable).parent / "inspect"), "--dataset", pattern, "--executor", "local", "--workers", "2",
               "--work-dir", str(work), "--format", "json"]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and run.poll() is None:
        scanned = list((work / "partials").glob("*.pkl")) if (work / "partials").is_dir() else []
        if 1 <= len(scanned) < 6:  # the scan step runs: a worker is inside a shard
            workers = subprocess.run(["pgrep", "-s", str(os.getsid(run.pid)), "-f", "forkserver"],
                                     capture_output=True, text=True).stdout.split()
            busy = [pid for pid in workers if int(pid) != run.pid]
            if busy:
                killed = int(busy[-1])
                os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    time.sleep(5)  # what the run does without that worker
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    if killed is None:
        pytest.skip("the run ended before a worker could be caught inside a shard")
    assert not (work / "report.pkl").exists()
    assert len(list((work / "partials").glob("*.pkl"))) < 6
    rerun = report_of(["--dataset", pattern, "--executor", "local", "--workers", "2", "--work-dir", str(work)])
    assert json.dumps(rerun, sort_keys=True) == json.dumps(report_of(["--dataset", pattern]), sort_keys=True)


def test_a_remote_shard_is_copied_into_the_work_folder_once(tmp_path):
    """Shards named by an fsspec URL (here fsspec's in-memory filesystem, standing in for hf:// or s3://) are
    listed by their glob and copied by the task that takes them."""
    import fsspec

    from inspector.shards import local_path, shard_urls

    memory = fsspec.filesystem("memory")
    for number in (2, 1):
        memory.pipe(f"/chats/part-{number}.jsonl", json.dumps(chat(number, "remote")).encode() + b"\n")
    urls = shard_urls("memory://chats/*.jsonl")
    assert urls == ["memory:///chats/part-1.jsonl", "memory:///chats/part-2.jsonl"]
    copied = local_path(urls[1], 1, tmp_path)
    assert copied == tmp_path / "shards" / "000001-part-2.jsonl"
    assert json.loads(copied.read_text()) == chat(2, "remote")
    memory.rm("/chats/part-2.jsonl")
    assert local_path(urls[1], 1, tmp_path) == copied  # not fetched again
    assert local_path(str(tmp_path / "x.jsonl"), 0, tmp_path) == tmp_path / "x.jsonl"  # local: used where it is


def test_on_slurm_each_step_is_a_job_array_whose_tasks_hash_with_one_seed(tmp_path):
    """The sbatch script datatrove writes for the scan step (built here, not submitted: no cluster)."""
    from inspector.shards import _executors

    merge = _executors(tmp_path, 1000, 100, "slurm", {"partition": "cpu", "time": "02:00:00"})
    chain = []
    while merge is not None:
        chain.append(merge)
        merge = merge.depends
    assert [(step.job_name, step.tasks) for step in reversed(chain)] == [
        ("trlprep-heads", 1000), ("trlprep-judge", 1), ("trlprep-scan", 1000), ("trlprep-merge", 1)]
    scan = chain[1]
    script = scan.get_launch_file_contents(scan.get_sbatch_args(max_array=1000), "python run.py")
    assert "#SBATCH --array=0-999%100" in script and "#SBATCH --partition=cpu" in script
    assert script.index("export PYTHONHASHSEED=0") < script.index("python run.py")
