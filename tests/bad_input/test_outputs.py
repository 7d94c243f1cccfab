"""Files that are not ours: an output never removes or replaces what trlprep could not have written (device nodes,
FIFOs, sockets, symlinks, folders of other files), never writes through a planted symlink, never replaces an
output that appeared meanwhile, and says in one line (exit 2) why an output cannot be written, leaving nothing
behind. Run as root where root matters: a device node made with mknod, a tmpfs mounted full or read-only."""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.bad_input import refused
from trlprep.converters.api import convert
from trlprep.converters.cli import main as convert_main
from trlprep.errors import OutputError
from trlprep.files import copy_atomically, create_staged_file, publish, write_atomically
from trlprep.inspector.cli import main as inspect_main
from trlprep.train.cli import main as train_main

CHATS = [{"conversations": [{"from": "human", "value": f"What is {n} + {n}?"},
                            {"from": "gpt", "value": f"{n} + {n} is {2 * n}."}]} for n in range(12)]
UNANSWERED = {"messages": [{"role": "user", "content": "Question?"}, {"role": "assistant", "content": ""}]}
CONVERT = [sys.executable, "-c", "from trlprep.converters.cli import main; main()"]
BIG_ROWS = 60_000


@pytest.fixture
def chats(write_jsonl):
    return write_jsonl(CHATS + [UNANSWERED])  # one row rejected: a rejects file is written too


@pytest.fixture(scope="module")
def big_chat(tmp_path_factory):
    """Enough rows that a convert is still running when the test acts on its staging file."""
    path = tmp_path_factory.mktemp("big") / "chat.jsonl"
    with open(path, "w") as handle:
        for n in range(BIG_ROWS):
            handle.write(json.dumps({"conversations": [{"from": "human", "value": f"Tell me about {n}. " * 4},
                                                       {"from": "gpt", "value": f"{n} is a number. " * 6}]}) + "\n")
    return path


def converted(*args) -> None:
    result = CliRunner().invoke(convert_main, [str(a) for a in args])
    assert result.exit_code == 0, result.stderr


def hidden(folder: Path) -> list[str]:
    """What a run left behind: the hidden (staging) names in `folder`."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def device(path: Path) -> Path:
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # the numbers of /dev/null, made here
    return path


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def unix_socket(path: Path) -> Path:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()  # the socket file stays
    return path


NODES = {"character device": device, "FIFO": fifo, "socket": unix_socket}


# 1. `convert --output <device> --overwrite` (root) deleted the device node and put a folder there, exit 0.
@pytest.mark.parametrize("kind", NODES)
@pytest.mark.parametrize("where", ["output folder", "output file", "rejects file", "split file", "html page"])
def test_overwrite_never_replaces_a_device_fifo_or_socket(chats, tmp_path, where, kind):
    args = {"output folder": ["-o", tmp_path / "out"], "output file": ["-o", tmp_path / "out.jsonl"],
            "rejects file": ["-o", tmp_path / "out.jsonl"], "split file": ["-o", tmp_path / "out.jsonl",
                                                                             "--test-size", "2"],
            "html page": ["-o", tmp_path / "out.jsonl", "--html", tmp_path / "page.html"]}[where]
    node = {"output folder": "out", "output file": "out.jsonl", "rejects file": "out.rejects.jsonl",
            "split file": "out.test.jsonl", "html page": "page.html"}[where]
    made = NODES[kind](tmp_path / node)
    before = os.lstat(made)
    line = refused(convert_main, "-d", chats, "--to", "sft", "--overwrite", *args)
    assert line == f"error: {made}: is a {kind}, not a file; it is never replaced"
    after = os.lstat(made)
    assert (after.st_mode, after.st_rdev, after.st_ino) == (before.st_mode, before.st_rdev, before.st_ino)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["data.jsonl", node])


@pytest.mark.parametrize("kind", NODES)
def test_run_files_and_exported_configs_never_replace_a_node(tmp_path, kind):
    """run.json, recipe.json, report.json, result.json and the exported configs and their data go through
    write_atomically and copy_atomically."""
    made = NODES[kind](tmp_path / "run.json")
    source = tmp_path / "train.jsonl"
    source.write_text("{}\n")
    for write in (lambda: write_atomically(made, "{}"), lambda: copy_atomically(source, made)):
        with pytest.raises(OutputError, match=f"run.json: is a {kind}, not a file; it is never replaced"):
            write()
    assert stat.S_IFMT(os.lstat(made).st_mode) != stat.S_IFREG and hidden(tmp_path) == []


# 2. A symlink planted at the fixed staging name (.page.html.staging, .run.json.staging) made us write through it.
def test_a_symlink_at_a_staging_name_is_never_written_through(chats, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours\n")
    for name in (".page.html.staging", ".run.json.staging", ".out.jsonl.staging"):
        (tmp_path / name).symlink_to(victim)
    converted("-d", chats, "--to", "sft", "-o", tmp_path / "out.jsonl", "--html", tmp_path / "page.html")
    write_atomically(tmp_path / "run.json", "{}")
    copy_atomically(chats, tmp_path / "out.jsonl", replace=True)
    assert victim.read_text() == "not yours\n"
    assert (tmp_path / "page.html").read_text().startswith("<!DOCTYPE html>")
    assert hidden(tmp_path) == [".out.jsonl.staging", ".page.html.staging", ".run.json.staging"]  # the plants alone


def test_staging_names_say_their_output_and_stay_within_255_bytes(tmp_path):
    fd, path = create_staged_file(tmp_path, "out.jsonl", "rows", ".jsonl")
    os.close(fd)
    assert stat.S_ISREG(os.lstat(path).st_mode) and path.name.startswith(".out.jsonl.rows.")
    assert len(create_staged_file(tmp_path, "é" * 127, "rows", ".jsonl")[1].name.encode()) <= 255


# 3. Two converts to one new output: both said "wrote", the later silently replaced the other's.
def test_an_output_that_appears_while_converting_is_kept(big_chat, tmp_path):
    output = tmp_path / "out.jsonl"
    process = subprocess.Popen([*CONVERT, "-d", str(big_chat), "--to", "sft", "-o", str(output)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not hidden(tmp_path) and process.poll() is None:  # its guard has passed once it stages
        time.sleep(0.05)
    # Created after its guard, exclusively: if this succeeds, the run has not published yet.
    with open(output, "x") as other_run:
        other_run.write("another run's output\n")
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 2 and stderr.strip().splitlines() == [
        f"error: {output}: appeared while this run wrote it; nothing written"]
    assert output.read_text() == "another run's output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_two_converts_to_one_new_output_one_wins(big_chat, tmp_path):
    output = tmp_path / "out.jsonl"
    runs = [subprocess.Popen([*CONVERT, "-d", str(big_chat), "--to", "sft", "-o", str(output)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    done = sorted((run.wait(timeout=300), run.stderr.read()) for run in runs)
    assert [code for code, _ in done] == [0, 2]
    assert done[1][1].strip().startswith(f"error: {output}: ")  # "appeared while ...", or "exists" when not at once
    assert sum(1 for _ in open(output)) == BIG_ROWS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_publishing_onto_a_target_created_after_the_guard_refuses(tmp_path):
    staged = tmp_path / ".out.jsonl.staged"
    staged.write_text("ours\n")
    (tmp_path / "out.jsonl").write_text("theirs\n")
    with pytest.raises(OutputError, match="appeared while this run wrote it; nothing written"):
        publish(staged, tmp_path / "out.jsonl", replace=False)
    assert (tmp_path / "out.jsonl").read_text() == "theirs\n"
    folder = tmp_path / "staged_folder"
    folder.mkdir()
    (tmp_path / "dataset").mkdir()
    with pytest.raises(OutputError, match="appeared while"):
        publish(folder, tmp_path / "dataset", replace=False)


# 4. --html replaced an existing page without --overwrite, in convert and in inspect.
def test_html_page_is_not_replaced_without_overwrite(chats, tmp_path):
    page = tmp_path / "page.html"
    page.write_text("my page\n")
    line = refused(convert_main, "-d", chats, "--to", "sft", "-o", tmp_path / "out.jsonl", "--html", page)
    assert line == f"error: {page}: exists; pass --overwrite to replace it"
    assert not (tmp_path / "out.jsonl").exists()  # refused before any row was converted
    assert refused(inspect_main, "-d", chats, "--html", page) == line
    with pytest.raises(OutputError, match="exists; pass --overwrite"):
        convert(chats, to="sft", output=tmp_path / "out.jsonl", html=page)
    assert page.read_text() == "my page\n"
    result = CliRunner().invoke(inspect_main, ["-d", str(chats), "--html", str(page), "--overwrite"])
    assert result.exit_code in (0, 1) and page.read_text().startswith("<!DOCTYPE html>")


# 5. --overwrite deleted a non-empty folder bearing the output's name.
def test_overwrite_keeps_a_folder_of_unrelated_files(chats, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes\n")
    line = refused(convert_main, "-d", chats, "--to", "sft", "-o", folder, "--overwrite")
    assert line == (f"error: {folder}: is a folder that holds notes.txt, which is not a saved dataset; --overwrite "
                    f"replaces only a dataset folder")
    assert (folder / "notes.txt").read_text() == "my notes\n"


@pytest.mark.parametrize("test_size", [None, "2"], ids=["Dataset", "DatasetDict"])
def test_overwrite_replaces_a_dataset_folder_it_wrote(chats, tmp_path, test_size):
    split = ["--test-size", test_size] if test_size else []
    converted("-d", chats, "--to", "sft", "-o", tmp_path / "out", *split)
    converted("-d", chats, "--to", "sft", "-o", tmp_path / "out", "--overwrite", *split)
    assert hidden(tmp_path) == []
    (tmp_path / "out" / ("train" if test_size else ".") / "mine.txt").write_text("x")
    assert "mine.txt, which is not a saved dataset" in refused(
        convert_main, "-d", chats, "--to", "sft", "-o", tmp_path / "out", "--overwrite", *split)


# 6. Exit 3 for the user's environment: each is exit 2, one line, nothing left behind.
def test_an_output_that_is_a_symlink_to_a_folder(chats, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "real")
    assert refused(convert_main, "-d", chats, "--to", "sft", "-o", tmp_path / "out", "--overwrite") == (
        f"error: {tmp_path / 'out'}: is a symlink (to {tmp_path / 'real'}); write to a path of its own, not "
        f"through a link")
    assert (tmp_path / "out").is_symlink() and list((tmp_path / "real").iterdir()) == []


@contextmanager
def mounted_tmpfs(folder: Path, options: str):
    """A tmpfs mounted at `folder` (we run as root), unmounted after."""
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): needs root in a container that allows "
                    f"mount")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)  # detached even while a file is open


def test_publishing_from_another_file_system_leaves_no_copy(tmp_path):
    """A distributed run's work folder on another file system: its output is copied beside the target first."""
    with mounted_tmpfs(tmp_path / "work", "size=1m") as work:
        for name in ("out.jsonl", "taken.jsonl"):
            (work / name).write_text("ours\n")
        publish(work / "out.jsonl", tmp_path / "out.jsonl", replace=False)
        (tmp_path / "taken.jsonl").write_text("theirs\n")
        with pytest.raises(OutputError, match="appeared while"):
            publish(work / "taken.jsonl", tmp_path / "taken.jsonl", replace=False)
    assert [(tmp_path / n).read_text() for n in ("out.jsonl", "taken.jsonl")] == ["ours\n", "theirs\n"]
    assert hidden(tmp_path) == []


def test_a_read_only_output_folder(chats, tmp_path):
    with mounted_tmpfs(tmp_path / "ro", "ro,size=1m") as folder:
        line = refused(convert_main, "-d", chats, "--to", "sft", "-o", folder / "out.jsonl")
        assert line == f"error: {folder / 'out.jsonl'}: cannot be written: Read-only file system"


# 20,000 rows fill the disk while the rows are staged; 3,000 fit there, then fill it while datasets writes them.
@pytest.mark.parametrize("kind, rows", [("out.jsonl", 20_000), ("out.parquet", 20_000), ("out", 20_000),
                                        ("out.parquet", 3_000), ("out", 3_000)])
def test_disk_full_is_exit_2_and_leaves_nothing(big_chat, tmp_path, kind, rows):
    with mounted_tmpfs(tmp_path / "full", "size=1m") as folder:
        # In a process of its own: datasets keeps the file it failed to write open until the process ends.
        done = subprocess.run([*CONVERT, "-d", str(big_chat), "--to", "sft", "-o", str(folder / kind), "--limit",
                               str(rows)], capture_output=True, text=True)
        assert (done.returncode, done.stderr.splitlines()) == (
            2, [f"error: {folder / kind}: cannot be written: No space left on device"])
        assert list(folder.iterdir()) == []  # the staging files too, though closing them fails again


def test_a_page_that_cannot_be_written_leaves_no_data_published(chats, tmp_path):
    """The data and its --html page publish together: a page on a full disk used to fail after the splits were
    published (exit 2, yet the data written, and a rerun refused for them)."""
    with mounted_tmpfs(tmp_path / "full", "size=1m") as folder:
        with open(folder / "filler", "wb") as filler, suppress(OSError):
            while True:
                filler.write(b"x" * 65536)
                filler.flush()
        line = refused(convert_main, "-d", chats, "--to", "sft", "-o", tmp_path / "out.jsonl", "--test-size", "0.5",
                       "--html", folder / "page.html")
        assert line == f"error: {folder / 'page.html'}: cannot be written: No space left on device"
        assert sorted(p.name for p in folder.iterdir()) == ["filler"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl", "full"]


def test_a_240_character_output_name_is_written(chats, tmp_path):
    output = tmp_path / ("n" * 234 + ".jsonl")
    converted("-d", chats, "--to", "sft", "-o", output, "--html", tmp_path / ("p" * 235 + ".html"))
    assert output.exists() and hidden(tmp_path) == []


@pytest.mark.parametrize("output, message", [
    ("", "--output '': names no file"),
    ("n" * 256 + ".jsonl", "--output nnnnnnnnnnnnnnnnnnnn...: the name is 262 bytes; file names take at most 255"),
    ("/proc/x.jsonl", "/proc/x.jsonl: cannot be written: No such file or directory"),
], ids=["empty", "over 255", "/proc"])
def test_an_output_that_cannot_be_named_or_written(chats, tmp_path, output, message):
    assert refused(convert_main, "-d", chats, "--to", "sft", "-o", output) == f"error: {message}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl"]


def test_an_html_page_in_proc(chats, tmp_path):
    assert refused(inspect_main, "-d", chats, "--html", "/proc/x.html") == (
        "error: /proc/x.html: cannot be written: No such file or directory")
    refused(convert_main, "-d", chats, "--to", "sft", "-o", tmp_path / "out.jsonl", "--html", "/proc/x.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl"]


# 7. A SIGKILLed run's hidden staging file was never cleaned up by later runs.
def test_a_killed_runs_staging_is_removed_by_the_next_run(big_chat, chats, tmp_path):
    output = tmp_path / "out.jsonl"
    process = subprocess.Popen([*CONVERT, "-d", str(big_chat), "--to", "sft", "-o", str(output)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not hidden(tmp_path) and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    left = hidden(tmp_path)
    assert left and all(f".{process.pid}@" in name for name in left)
    fd, live = create_staged_file(tmp_path, "out.jsonl", "rows", ".jsonl")  # this process's: alive
    os.close(fd)
    subprocess.run([*CONVERT, "-d", str(chats), "--to", "sft", "-o", str(output)], check=True, capture_output=True)
    assert hidden(tmp_path) == [live.name]


# 8. `train --output-dir FILE` was an internal error (NotADirectoryError on FILE/data), exit 3.
@pytest.mark.parametrize("under", ["", "run"], ids=["the file", "a folder under it"])
def test_train_output_dir_that_is_a_file(chats, tmp_path, under):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    output_dir = notes / under if under else notes
    where = "is a file" if not under else f"is in {notes}, which is a file"
    assert refused(train_main, "--method", "sft", "--model", "m", "-d", chats, "--dry-run",
                   "--output-dir", output_dir) == (
        f"error: --output-dir {output_dir}: {where}, not a folder; give a folder (made if missing)")
    assert notes.read_text() == "mine\n" and sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl", "notes.txt"]


# 9. `train --export-trl-config FILE` replaced any FILE (notes, the input) and wrote its data onto the input.
def exported(*args) -> None:
    result = CliRunner().invoke(train_main, ["--method", "sft", *[str(a) for a in args]])
    assert result.exit_code == 0, result.stderr


def test_export_never_replaces_a_file_it_did_not_write(chats, tmp_path):
    notes = tmp_path / "NOTES.md"
    notes.write_text("# notes\n")
    assert refused(train_main, "--method", "sft", "--model", "m", "-d", chats, "--export-trl-config", notes) == (
        f"error: {notes}: exists; it is not a config an export wrote (its first line is not `# trl <method> "
        f"--config NOTES.md   (written by trlprep)`): remove it or export to another name")
    assert notes.read_text() == "# notes\n" and sorted(p.name for p in tmp_path.iterdir()) == ["NOTES.md",
                                                                                               "data.jsonl"]


@pytest.mark.parametrize("flag", ["-d", "--eval-dataset"])
def test_export_never_writes_its_data_onto_the_input(chats, tmp_path, flag):
    data = tmp_path / "run-data"
    data.mkdir()
    exported_input = data / ("train.jsonl" if flag == "-d" else "test.jsonl")
    exported_input.write_bytes(chats.read_bytes())
    assert refused(train_main, "--method", "sft", "--model", "m", "-d", chats, flag, exported_input,
                   "--export-trl-config", tmp_path / "run.yaml") == (
        f"error: {exported_input}: is the input (or holds it); write the output elsewhere")
    assert exported_input.read_bytes() == chats.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl", "run-data"]


@pytest.mark.parametrize("linked", [False, True], ids=["the folder", "a link to it"])
def test_export_never_writes_into_a_folder_of_other_files(chats, tmp_path, linked):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    data = tmp_path / "run-data"
    if linked:
        data.symlink_to(folder)
    else:
        folder.rename(data)
    assert refused(train_main, "--method", "sft", "--model", "m", "-d", chats,
                   "--export-trl-config", tmp_path / "run.yaml") == (
        f"error: {data}: is a symlink (to {folder}); write to a path of its own, not through a link" if linked else
        f"error: {data}: exists and holds notes.txt, which an export does not write: remove it or export to "
        f"another name")
    assert sorted(p.name for p in data.iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["data.jsonl", "run-data"] + ["mine"] * linked)


@pytest.mark.slow
def test_export_replaces_what_an_earlier_export_wrote(chats, tiny_model, tmp_path):
    config = tmp_path / "run.yaml"
    exported("--model", tiny_model, "-d", chats, "--export-trl-config", config, "--test-size", "2")
    assert sorted(p.name for p in (tmp_path / "run-data").iterdir()) == ["test.jsonl", "train.jsonl"]
    exported("--model", tiny_model, "-d", chats, "--export-trl-config", config)
    assert config.read_text().startswith("# trl sft --config run.yaml   (written by trlprep)\n")
    assert "dataset_test_split" not in config.read_text()
    # The earlier test split is gone: TRL would have loaded it with the folder.
    assert sorted(p.name for p in (tmp_path / "run-data").iterdir()) == ["train.jsonl"]
    assert len((tmp_path / "run-data" / "train.jsonl").read_text().splitlines()) == 12
    assert hidden(tmp_path) == [] and hidden(tmp_path / "run-data") == []


def test_a_recipe_export_never_writes_onto_a_stage_input(chats, tmp_path):
    """A recipe's `--export-trl-config FOLDER` writes `<N>-<method>.yaml` and its data there, checked the same way,
    for every stage before any stage's data is converted."""
    stage_input = tmp_path / "exported" / "1-sft-data" / "train.jsonl"
    stage_input.parent.mkdir(parents=True)
    stage_input.write_bytes(chats.read_bytes())
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"model: m\noutput_dir: {tmp_path / 'runs'}\nstages:\n  - method: sft\n"
                      f"    dataset: {stage_input}\n")
    assert refused(train_main, "--recipe", recipe, "--export-trl-config", tmp_path / "exported") == (
        f"error: {stage_input}: is the input (or holds it); write the output elsewhere")
    assert stage_input.read_bytes() == chats.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl", "exported", "recipe.yaml"]
