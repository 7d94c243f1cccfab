"""Bad input for `--executor`: a work folder holds data, never code, and is read only as this run's; Ctrl-C stops a
local run whole, even one waiting for a lost task."""

import ast
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import REPO, interrupted, session_processes
from trlprep.converters.cli import main as convert
from trlprep.inspector.cli import main as inspect

pytest.importorskip("datatrove", reason="the distributed extra (uv sync --extra distributed) is not installed")

pytestmark = pytest.mark.slow  # datatrove runs the shard tasks in processes

# Every name a work folder's results had (pickles) or have (msgpack records), for a shard index or none.
OLD_NAMES = ["heads/000000.pkl", "heads/000001.pkl", "plan.pkl", "partials/000000.pkl", "partials/000001.pkl",
             "report.pkl", "converted/000000.pkl", "converted/000001.pkl", "schemas/000000.pkl", "types.pkl"]
RECORDS = ["heads/000000.msgpack", "heads/000001.msgpack", "plan.msgpack", "partials/000000.msgpack",
           "partials/000001.msgpack", "converted/000000.msgpack", "converted/000001.msgpack", "types.msgpack"]


class Payload:
    """A pickle that, loaded, creates the file `marker`: what an attacker plants where a run reads its results."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def write_shards(folder: Path, shards: int = 2, rows: int = 30) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for shard in range(shards):
        (folder / f"part-{shard}.jsonl").write_text("".join(
            json.dumps({"messages": [{"role": "user", "content": f"question {shard}-{n}"},
                                     {"role": "assistant", "content": f"answer {n}"}]}) + "\n" for n in range(rows)))
    return str(folder / "*.jsonl")


def plant(work: Path, names: list[str], payload: bytes) -> None:
    for name in names:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(payload)


def run(command, *arguments: str):
    return CliRunner().invoke(command, [*arguments, "--executor", "local", "--workers", "2"])


def one_line_refusal(done, path: Path) -> str:
    """The refusal `done` printed: one line, naming `path`, saying to start again in a fresh work folder."""
    assert done.exit_code == 2, done.output
    lines = done.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.output, done.output
    assert str(path) in lines[0] and "fresh --work-dir" in lines[0], lines[0]
    return lines[0]


def test_the_modules_that_read_a_work_folder_import_no_pickle():
    for module in ("inspector/shards.py", "converters/shards.py", "inspector/scan/merge.py"):
        tree = ast.parse((REPO / module).read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                    for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
        assert not imported & {"pickle", "dill", "cloudpickle", "marshal", "shelve"}, module


def test_pickles_planted_in_a_new_work_folder_never_run(tmp_path):
    """A work folder on a shared filesystem, with a payload pickle at every name the old and the new code used: the
    run overwrites or ignores them, and ends as it would in an empty folder; no payload ever runs."""
    pattern = write_shards(tmp_path / "shards")
    marker = tmp_path / "payload-ran"
    payload = pickle.dumps(Payload(marker))
    for name, command, arguments in (("inspect", inspect, []),
                                     ("convert", convert, ["--to", "sft", "--output", str(tmp_path / "out")])):
        work = tmp_path / f"work-{name}"
        plant(work, OLD_NAMES + RECORDS, payload)
        done = run(command, "--dataset", pattern, "--work-dir", str(work), *arguments)
        assert done.exit_code == 0, done.output
        assert not marker.exists()
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["train-00000-of-00002.parquet",
                                                                           "train-00001-of-00002.parquet"]


@pytest.mark.parametrize("planted", ["payload", "cut short", "another run's"])
def test_a_record_of_a_resumed_run_that_is_not_its_own_is_refused(tmp_path, planted):
    """A rerun in the same work folder reads the finished tasks' records: one replaced by a pickle, cut short, or
    taken from another run of the same job is refused (exit 2, one line naming it), and nothing is merged."""
    pattern = write_shards(tmp_path / "shards")
    work, other = tmp_path / "work", tmp_path / "other"
    for folder in (work, other):
        assert run(inspect, "--dataset", pattern, "--work-dir", str(folder)).exit_code == 0
    target = work / "partials" / "000001.msgpack"
    marker = tmp_path / "payload-ran"
    if planted == "payload":
        plant(work, OLD_NAMES + RECORDS, pickle.dumps(Payload(marker)))
    elif planted == "cut short":
        target.write_bytes(target.read_bytes()[:40])
    else:
        shutil.copy(other / "partials" / "000001.msgpack", target)
    (work / "report.json").unlink()
    done = run(inspect, "--dataset", pattern, "--work-dir", str(work))
    line = one_line_refusal(done, work / ("plan.msgpack" if planted == "payload" else "partials/000001.msgpack"))
    assert ("another run" in line) == (planted == "another run's")
    assert not (work / "report.json").exists() and not marker.exists()


def test_a_conversion_resumed_over_planted_records_publishes_nothing(tmp_path):
    """`convert`'s publish task reads every shard's record: planted pickles there are refused before anything is
    published, and no payload runs."""
    pattern = write_shards(tmp_path / "shards")
    work, output = tmp_path / "work", tmp_path / "out"
    assert run(convert, "--dataset", pattern, "--to", "sft", "--output", str(output), "--work-dir",
               str(work)).exit_code == 0
    shutil.rmtree(output)
    (work / "result.json").unlink()
    shutil.rmtree(work / "logs" / "publish" / "completions")  # as if the publish task had not run
    marker = tmp_path / "payload-ran"
    plant(work, OLD_NAMES + RECORDS, pickle.dumps(Payload(marker)))
    done = run(convert, "--dataset", pattern, "--to", "sft", "--output", str(output), "--work-dir", str(work))
    one_line_refusal(done, work / "plan.msgpack")
    assert not output.exists() and not marker.exists()


def test_a_work_folder_whose_job_file_is_not_ours_is_refused(tmp_path):
    pattern = write_shards(tmp_path / "shards")
    work = tmp_path / "work"
    work.mkdir()
    (work / "job.json").write_bytes(pickle.dumps(Payload(tmp_path / "payload-ran")))
    one_line_refusal(run(inspect, "--dataset", pattern, "--work-dir", str(work)), work / "job.json")


def test_a_link_planted_at_a_staging_name_is_not_written_through(tmp_path):
    """The fixed staging names the tasks used (`.<name>.staging` beside each result) hold links to a file outside
    the work folder: results are staged under names made for the writer alone, and the file stays as it was."""
    pattern = write_shards(tmp_path / "shards")
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours")
    work = tmp_path / "work"
    links = [f"{folder}.{index:06d}.{suffix}.staging" for folder in ("heads/", "partials/", "converted/")
             for index in (0, 1) for suffix in ("pkl", "msgpack")]
    links += ["progress/.000000.json.staging", "progress/.000001.json.staging", ".plan.msgpack.staging",
              ".plan.pkl.staging", ".types.msgpack.staging", ".types.pkl.staging"]
    for name in links:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).symlink_to(victim)
    done = run(convert, "--dataset", pattern, "--to", "sft", "--output", str(tmp_path / "out"), "--work-dir",
               str(work))
    assert done.exit_code == 0, done.output
    assert victim.read_text() == "not yours"
    assert all((work / name).is_symlink() for name in links)


def lose_a_task(command: list[str], finished: Path, shards: int) -> subprocess.Popen | None:
    """Start `command` in a session of its own and kill one of its datatrove workers by SIGKILL while it converts a
    shard (some have a record in `finished`, not all): the run then waits for the lost task. The run, or None
    when the worker was caught between two shards (the run finishes)."""
    started = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True,
                               # A test in a background job inherits SIGINT ignored: give the run a user's Ctrl-C.
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and started.poll() is None:
        if 1 <= len(list(finished.glob("*.msgpack")) if finished.is_dir() else []) < shards:
            workers = subprocess.run(["pgrep", "-s", str(started.pid), "-f", "forkserver"], capture_output=True,
                                     text=True).stdout.split()
            if workers:
                os.kill(int(workers[-1]), signal.SIGKILL)
                break
        time.sleep(0.05)
    time.sleep(5)  # the other shards end; the lost one never does
    if started.poll() is not None or len(list(finished.glob("*.msgpack"))) == shards:
        started.kill()
        started.communicate()
        return None
    return started


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the processes left from /proc")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_stops_a_local_run_waiting_for_a_lost_task(tmp_path, signum):
    """A worker killed inside a shard: datatrove's pool waits for its task forever. Ctrl-C (or SIGTERM) ends the run
    at once (a hang check, not a timing: 60 s), exit 130 with "interrupted", its workers gone, nothing published."""
    pattern = write_shards(tmp_path / "shards", shards=4, rows=60_000)
    output = tmp_path / "out"
    command = [str(Path(sys.executable).parent / "convert"), "--dataset", pattern, "--to", "sft", "--output",
               str(output), "--executor", "local", "--workers", "2", "--work-dir", str(tmp_path / "work")]
    for _ in range(3):
        waiting = lose_a_task(command, tmp_path / "work" / "converted", 4)
        if waiting is not None:
            break
        shutil.rmtree(tmp_path / "work")
        shutil.rmtree(output, ignore_errors=True)
    else:
        pytest.skip("no worker could be caught inside a shard in three runs")
    stderr = interrupted(waiting, signum, timeout=60)
    assert waiting.returncode == 130 and stderr.strip().splitlines()[-1] == "interrupted", stderr
    deadline = time.monotonic() + 10  # the last of them (a resource tracker) sees its pipe closed, then ends
    while session_processes(waiting.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_processes(waiting.pid) == []
    assert not output.exists() and not (tmp_path / "out.rejects").exists()


def test_a_slurm_work_folder_others_can_write_to_is_refused(tmp_path):
    """datatrove's Slurm jobs load their steps from a pickle datatrove writes in the work folder: one that other
    users can write to is refused before anything is submitted (a folder of one's own passes on to the next check,
    here that sbatch is missing)."""
    pattern = write_shards(tmp_path / "shards")
    work = tmp_path / "work"
    work.mkdir()
    arguments = ["--dataset", pattern, "--executor", "slurm", "--slurm-partition", "cpu", "--work-dir", str(work)]
    work.chmod(0o777)
    done = CliRunner().invoke(inspect, arguments)
    assert done.exit_code == 2 and f"--work-dir {work}: another user can write to it" in done.output, done.output
    assert "executor.pik" in done.output and list(work.iterdir()) == []
    work.chmod(0o755)
    done = CliRunner().invoke(inspect, arguments, env={"PATH": str(tmp_path)})
    assert done.exit_code == 2 and "sbatch" in done.output and "another user" not in done.output, done.output


@pytest.mark.parametrize("name", ["output", "rejects", "rejects.numbered", "converted", "logs"])
def test_a_symlink_planted_in_the_work_folder_is_never_followed(tmp_path, name):
    """A shared work folder where someone linked a name the tasks write (the output shards, the rejects, records,
    logs) to a folder of theirs: refused before any task runs (exit 2, one line naming the link), nothing written
    there, and no output published (never the link itself)."""
    pattern = write_shards(tmp_path / "shards")
    victim, work, output = tmp_path / "victim", tmp_path / "work", tmp_path / "out"
    victim.mkdir()
    work.mkdir()
    (work / name).symlink_to(victim)
    done = run(convert, "--dataset", pattern, "--to", "sft", "--output", str(output), "--work-dir", str(work))
    assert "a symlink" in one_line_refusal(done, work / name)
    assert list(victim.iterdir()) == []
    assert not os.path.lexists(output) and not os.path.lexists(tmp_path / "out.rejects")


def test_a_link_planted_at_the_log_the_run_appends_to_is_never_written_through(tmp_path):
    """The console log a local run appends its tasks' output to, linked to someone's file: refused (exit 2, one
    line naming it), the file as it was."""
    pattern = write_shards(tmp_path / "shards")
    victim, work = tmp_path / "victim.txt", tmp_path / "work"
    victim.write_text("not yours")
    (work / "logs").mkdir(parents=True)
    (work / "logs" / "console.log").symlink_to(victim)
    one_line_refusal(run(inspect, "--dataset", pattern, "--work-dir", str(work)), work / "logs" / "console.log")
    assert victim.read_text() == "not yours"


def appearing_mid_run(tmp_path: Path, arguments: list[str], appear, *, rejects: bool) -> subprocess.CompletedProcess:
    """`convert --executor local` run in a process of its own (with `rejects`, a shard has a row no conversion
    keeps); `appear()` once its first shard is converted (the output is published steps later, after the column
    types of every shard are read): what another run, or a user, puts at the output's names while this one works.
    The run's exit code and output."""
    pattern = write_shards(tmp_path / "shards", rows=500)
    if rejects:
        with open(tmp_path / "shards" / "part-1.jsonl", "a") as shard:
            shard.write('{"messages": []}\n')
    work = tmp_path / "work"
    command = [str(Path(sys.executable).parent / "convert"), "--dataset", pattern, "--to", "sft", "--executor",
               "local", "--workers", "1", "--work-dir", str(work), *arguments]
    started = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while started.poll() is None and not list(work.glob("converted/*.msgpack")):
        time.sleep(0.01)
    if (work / "result.json").exists():
        started.communicate()
        pytest.skip("the run published before anything could appear")
    appear()
    stdout, stderr = started.communicate(timeout=300)
    return subprocess.CompletedProcess(command, started.returncode, stdout, stderr)


def test_an_output_that_appears_mid_run_is_not_replaced_without_overwrite(tmp_path):
    """Another run's output folder appears at the output's name while this one converts: without --overwrite it
    is kept as it is, and this run says so (exit 2, one line) and leaves nothing beside it (not its rejects)."""
    output = tmp_path / "out"

    def appear():
        output.mkdir()
        (output / "train-00000-of-00001.parquet").write_text("theirs")

    done = appearing_mid_run(tmp_path, ["--output", str(output)], appear, rejects=True)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert f"{output}: appeared while this run wrote it" in lines[0], lines[0]
    assert (output / "train-00000-of-00001.parquet").read_text() == "theirs" and len(list(output.iterdir())) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out", "shards", "work"]


def test_a_rejects_folder_of_other_files_that_appears_mid_run_is_kept(tmp_path):
    """With --overwrite over an earlier output, a `<out>.rejects/` folder of someone's own files appears while a
    run that rejects nothing converts (where an earlier run's rejects would be removed): it is not a rejects folder
    of ours, so it is neither deleted nor replaced (exit 2, one line), and the earlier output stays."""
    output, rejects = tmp_path / "out", tmp_path / "out.rejects"
    output.mkdir()
    (output / "train-00000-of-00001.parquet").write_text("earlier")

    def appear():
        rejects.mkdir()
        (rejects / "notes.txt").write_text("mine")

    done = appearing_mid_run(tmp_path, ["--output", str(output), "--overwrite"], appear, rejects=False)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert f"{rejects}: is a folder that holds notes.txt" in lines[0], lines[0]
    assert (rejects / "notes.txt").read_text() == "mine" and len(list(rejects.iterdir())) == 1
    assert (output / "train-00000-of-00001.parquet").read_text() == "earlier"


@pytest.mark.parametrize("inside", ["", "work"])
@pytest.mark.parametrize("command", [inspect, convert], ids=["inspect", "convert"])
def test_a_work_folder_in_the_dataset_folder_is_refused(tmp_path, command, inside):
    """A work folder that is the dataset's folder, or in it, would be read as rows by the next run over the
    folder: refused (exit 2, one line), nothing written in it."""
    write_shards(tmp_path / "shards")
    before = sorted((tmp_path / "shards").iterdir())
    work = tmp_path / "shards" / inside
    arguments = ["--to", "sft", "--output", str(tmp_path / "out")] if command is convert else []
    done = run(command, "--dataset", str(tmp_path / "shards"), "--work-dir", str(work), *arguments)
    lines = done.output.strip().splitlines()
    assert done.exit_code == 2 and len(lines) == 1, done.output
    assert f"--work-dir {work}: is in the dataset's folder" in lines[0], lines[0]
    assert sorted((tmp_path / "shards").iterdir()) == before and not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [inspect, convert], ids=["inspect", "convert"])
def test_a_work_dir_without_executor_is_refused(tmp_path, command):
    """`--work-dir` means a sharded run: without `--executor` it is refused (exit 2), not ignored."""
    pattern = write_shards(tmp_path / "shards")
    arguments = ["--to", "sft", "--output", str(tmp_path / "out")] if command is convert else []
    done = CliRunner().invoke(command, ["--dataset", pattern, "--work-dir", str(tmp_path / "work"), *arguments])
    assert done.exit_code == 2 and done.output.strip() == "error: --work-dir needs --executor: only a sharded run " \
                                                         "writes a work folder", done.output
    assert not (tmp_path / "work").exists() and not (tmp_path / "out").exists()


def test_a_work_dir_without_executor_is_refused_by_the_python_api(tmp_path):
    from trlprep.converters import convert as convert_api
    from trlprep.errors import UsageError
    from trlprep.inspector.api import inspect_dataset

    pattern = write_shards(tmp_path / "shards")
    with pytest.raises(UsageError, match="^work_dir needs executor"):
        inspect_dataset(pattern, work_dir=str(tmp_path / "work"))
    with pytest.raises(UsageError, match="^work_dir needs executor"):
        convert_api(pattern, to="sft", output=str(tmp_path / "out"), work_dir=str(tmp_path / "work"))
    assert not (tmp_path / "work").exists() and not (tmp_path / "out").exists()
