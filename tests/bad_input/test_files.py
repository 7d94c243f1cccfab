"""Hardening: files, folders and encodings (issue 32). Each case is a break found by an adversary, named after it,
run through `inspect` and `convert` as a user runs them: the exit code, the one line said, what is left on disk.

Where root matters it is real: an unreadable file is read by a process running as `nobody` (root reads anything),
and a device node is made with `mknod` in a temp folder, never the real /dev/null.
"""

import codecs
import gzip
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from trlprep.converters.cli import main as convert_main
from trlprep.inspector.cli import main as inspect_main
from tests.bad_input import refused

ROWS = [{"prompt": "What is 2+2?", "completion": "4, as café owners know"},
        {"prompt": "Name a colour.", "completion": "Blue."}]
JSONL = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in ROWS)
CSV = "prompt,completion\n" + "".join(f'"{row["prompt"]}","{row["completion"]}"\n' for row in ROWS)
NOBODY = 65534
AS_ROOT = os.geteuid() == 0


def inspect_json(*args: str) -> dict:
    result = CliRunner().invoke(inspect_main, [*args, "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def convert(source, output: Path, *args: str):
    return CliRunner().invoke(convert_main, ["--dataset", str(source), "--to", "sft", "--output", str(output), *args])


def written_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def assert_refused(result, name, said: str) -> None:
    """Exit 2, one line naming the path and what is wrong, no traceback."""
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {name}: {said}\n"


def left_beside(output: Path) -> list[str]:
    return sorted(p.name for p in output.parent.iterdir() if p.name.startswith((output.name, f".{output.name}")))


# 1. A valid CSV with a 200 KB cell was refused: the csv module's field limit (128 KiB) was never raised.

@pytest.mark.parametrize("size", [200_000, 5_000_000], ids=["200-kb-cell", "5-mb-cell"])
def test_csv_with_a_large_cell(tmp_path, size):
    long = "word " * (size // 5)
    path = tmp_path / "long.csv"
    path.write_text(f"prompt,completion\nSummarise this.,{long}\nAnd this?,Short.\n", encoding="utf-8")
    assert inspect_json("--dataset", str(path))["rows_checked"] == 2
    output = tmp_path / "long.sft.jsonl"
    assert convert(path, output).exit_code == 0
    assert written_rows(output)[0]["completion"] == long


@pytest.mark.parametrize("compressed", [False, True], ids=["csv", "csv.gz"])
def test_a_csv_line_past_the_row_bound_is_refused_as_it_is_read(tmp_path, monkeypatch, compressed):
    """A 1 GB line was held whole (2 GB of memory) before its cell was found too long; the bound, lowered here
    so that kilobytes stand for the 64 Mi characters, refuses it as it is read. bench/memory.py measures it."""
    from trlprep.inspector import sources

    monkeypatch.setattr(sources, "CSV_CELL_CHARS", 1_000)
    text = f"prompt,completion\nShort?,Yes.\nLong?,{'a' * 5_000}\n".encode()
    path = tmp_path / ("long.csv.gz" if compressed else "long.csv")
    path.write_bytes(gzip.compress(text) if compressed else text)
    assert_refused(CliRunner().invoke(inspect_main, ["--dataset", str(path)]), str(path),
                   "line 3 is longer than 1,000 characters, the bound on one row (an unclosed quote?)")


# 2. A `**` glob through a symlink loop read one file 41 times.

def _looped_folder(root: Path) -> Path:
    """data/sub/d.jsonl, with a link back up (data/sub/up -> data), and a link to a real folder beside it
    (data/more -> ../more, holding e.jsonl), which is read once like any folder. (One link up is enough: glob.glob
    read d.jsonl 41 times through it, and two made its walk exponential.)"""
    (root / "data" / "sub").mkdir(parents=True)
    (root / "data" / "sub" / "d.jsonl").write_text(JSONL)
    (root / "data" / "sub" / "up").symlink_to("..")
    (root / "more").mkdir()
    (root / "more" / "e.jsonl").write_text(json.dumps(ROWS[0]) + "\n")
    (root / "data" / "more").symlink_to(root / "more")
    return root / "data"


@pytest.mark.parametrize("given", ["glob", "folder"])
def test_glob_through_a_symlink_loop_reads_each_file_once(tmp_path, given):
    data = _looped_folder(tmp_path)
    source = f"{data}/**/*.jsonl" if given == "glob" else str(data)
    report = inspect_json("--dataset", source)
    assert report["files"] == [str(data / "more" / "e.jsonl"), str(data / "sub" / "d.jsonl")]
    assert report["rows_checked"] == 3
    output = tmp_path / "out.jsonl"
    result = convert(source, output)
    assert result.exit_code == 0, result.output
    assert len(written_rows(output)) == 3


def test_two_names_of_one_file_are_one_file(tmp_path):
    (tmp_path / "a.jsonl").write_text(JSONL)
    (tmp_path / "b.jsonl").symlink_to(tmp_path / "a.jsonl")
    report = inspect_json("--dataset", f"{tmp_path}/*.jsonl")
    assert report["rows_checked"] == 2 and report["files"] == [str(tmp_path / "a.jsonl")]


# 3. An unreadable file was exit 3 ("a bug of ours"); a FIFO or a device given as --dataset must not be read.

@pytest.fixture
def public_folder():
    """A folder anyone may enter (tmp_path's parents are root's alone), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="trlprep-files-"))
    folder.chmod(0o755)
    yield folder
    for path in (folder, *folder.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(folder)


def _not_ours(path: Path) -> None:
    """Makes `path` unreadable to a command run `as_nobody`: root's alone (it runs as nobody), or, for a user who is
    not root, nobody's at all."""
    path.chmod((0o700 if path.is_dir() else 0o600) if AS_ROOT else 0)


def run_cli(command: str, *args: str, cwd: Path, as_nobody: bool = False) -> subprocess.CompletedProcess:
    """`inspect`, `convert` or `train` in a process of its own; `as_nobody`: as the user nobody when we are root, so that
    permissions hold (through util-linux's setpriv: a `preexec_fn` dropping to nobody cannot exec a Python
    installed under root's home). The timeout only keeps a regression (a FIFO read forever) from hanging the
    suite."""
    module = {"inspect": "trlprep.inspector.cli", "convert": "trlprep.converters.cli", "train": "trlprep.train.cli"}[command]
    code = f"import sys; sys.argv[0] = {command!r}; from {module} import main; main()"
    drop = [shutil.which("setpriv"), f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] \
        if as_nobody and AS_ROOT else []
    return subprocess.run([*drop, sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env={**os.environ, "HOME": str(cwd)})


@pytest.fixture
def runnable_as_nobody(public_folder):
    """A folder anyone may enter, where a command run `as_nobody` works (nobody can run this Python)."""
    if AS_ROOT and shutil.which("setpriv") is None:
        pytest.skip("running a command as nobody needs setpriv (util-linux)")
    probe = run_cli("inspect", "--help", cwd=public_folder, as_nobody=True)
    if probe.returncode != 0:
        pytest.skip(f"nobody cannot run this Python ({sys.executable}): {probe.stderr.strip()[-200:]}")
    return public_folder


def _unreadable_file(folder: Path) -> Path:
    path = folder / "secret.jsonl"
    path.write_text(JSONL)
    _not_ours(path)
    return path


def _unreadable_folder(folder: Path) -> Path:
    (folder / "locked").mkdir()
    (folder / "locked" / "d.jsonl").write_text(JSONL)
    _not_ours(folder / "locked")
    return folder / "locked"


def _folder_with_an_unreadable_folder(folder: Path) -> tuple[Path, Path]:
    (folder / "data" / "private").mkdir(parents=True)
    (folder / "data" / "d.jsonl").write_text(JSONL)
    (folder / "data" / "private" / "e.jsonl").write_text(JSONL)
    _not_ours(folder / "data" / "private")
    return folder / "data", folder / "data" / "private"


UNREADABLE = {
    "file": lambda folder: (_unreadable_file(folder),) * 2,
    "file-in-a-glob": lambda folder: (f"{_unreadable_file(folder).parent}/*.jsonl", folder / "secret.jsonl"),
    "folder": lambda folder: (_unreadable_folder(folder),) * 2,
    "folder-inside-the-folder": _folder_with_an_unreadable_folder,
    "folder-inside-a-glob": lambda folder: (f"{_folder_with_an_unreadable_folder(folder)[0]}/**/*.jsonl",
                                            folder / "data" / "private"),
}


@pytest.mark.parametrize("command", ["inspect", "convert"])
@pytest.mark.parametrize("case", UNREADABLE)
def test_an_unreadable_file_is_exit_2(runnable_as_nobody, case, command):
    given, named = UNREADABLE[case](runnable_as_nobody)
    output = runnable_as_nobody / "out.jsonl"
    args = ["--dataset", str(given)] + (["--to", "sft", "--output", str(output)] if command == "convert" else [])
    result = run_cli(command, *args, cwd=runnable_as_nobody, as_nobody=True)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"error: {named}: cannot read it: permission denied\n"
    assert not output.exists() and not left_beside(output)


def _fifo(folder: Path) -> Path:
    os.mkfifo(folder / "pipe.jsonl")
    return folder / "pipe.jsonl"


def _device(folder: Path) -> Path:
    if not AS_ROOT:
        pytest.skip("making a device node (mknod) needs root")
    os.mknod(folder / "null.jsonl", 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers, our own node
    return folder / "null.jsonl"


@pytest.mark.parametrize("command", ["inspect", "convert"])
@pytest.mark.parametrize("make", [_fifo, _device], ids=["fifo", "char-device"])
def test_a_fifo_or_device_is_refused_unread(tmp_path, make, command):
    path = make(tmp_path)
    output = tmp_path / "out.jsonl"
    args = ["--dataset", str(path)] + (["--to", "sft", "--output", str(output)] if command == "convert" else [])
    result = run_cli(command, *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"error: {path}: not a regular file or folder\n"
    assert not output.exists() and not left_beside(output)
    assert stat.S_ISFIFO(path.stat().st_mode) or stat.S_ISCHR(path.stat().st_mode)  # left as it was


@pytest.mark.parametrize("make", [_fifo, _device], ids=["fifo", "char-device"])
@pytest.mark.parametrize("command,option", [("inspect", "--settings"), ("train", "--config"), ("train", "--recipe")])
def test_a_fifo_or_device_named_as_a_config_file_is_refused_unread(tmp_path, make, command, option):
    """A FIFO blocked the read of a settings file, a config or a recipe for ever; a device filled memory."""
    (tmp_path / "d.jsonl").write_text(JSONL)
    path = make(tmp_path)
    args = {"inspect": ["--dataset", "d.jsonl"], "train": ["--method", "sft", "--model", "m", "--dataset",
                                                             "d.jsonl", "--dry-run"]}[command]
    result = run_cli(command, *(args if option != "--recipe" else []), option, path.name, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    label = "config file" if option == "--settings" else option
    assert result.stderr.endswith(f"error: {label} {path.name}: is a {'FIFO' if make is _fifo else 'character device'}, "
                                  f"not a file\n"), result.stderr


def test_a_fifo_or_device_in_a_folder_is_not_data(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d.jsonl").write_text(JSONL)
    _fifo(tmp_path / "data")
    result = run_cli("inspect", "--dataset", str(tmp_path / "data"), "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["files"] == [str(tmp_path / "data" / "d.jsonl")]


# 4. A UTF-16 file was reported as binary.

MARKED = {"utf-16": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE,
          "utf-32": codecs.BOM_UTF32_LE, "utf-32-be": codecs.BOM_UTF32_BE}


@pytest.mark.parametrize("name,text", [("d.jsonl", JSONL), ("d.csv", CSV)], ids=["jsonl", "csv"])
@pytest.mark.parametrize("encoding", MARKED)
def test_utf16_file_with_a_byte_order_mark_is_read(tmp_path, encoding, name, text):
    path = tmp_path / name
    path.write_bytes(MARKED[encoding] + text.encode(encoding.replace("-be", "") + ("-be" if "-be" in encoding
                                                                                  else "-le")))
    report = inspect_json("--dataset", str(path))
    assert report["rows_checked"] == 2 and report["type"] == "prompt_completion"
    assert f"{path}: read as {encoding.removesuffix('-be').upper()}, as its byte-order mark says" in report["notes"]
    output = tmp_path / "out.jsonl"
    result = convert(path, output)
    assert result.exit_code == 0, result.output
    assert "as its byte-order mark says" in result.stdout
    assert written_rows(output) == ROWS


@pytest.mark.parametrize("name,text", [("d.jsonl", JSONL), ("d.csv", CSV)], ids=["jsonl", "csv"])
@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le"])
def test_utf16_file_without_a_byte_order_mark_is_refused(tmp_path, encoding, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    said = (f"looks like {encoding.upper()} text without a byte-order mark (NUL bytes beside its ASCII characters); "
            f"read it so: uv run inspect --dataset {path} --encoding {encoding}")
    assert_refused(CliRunner().invoke(inspect_main, ["--dataset", str(path)]), path, said)
    output = tmp_path / "out.jsonl"
    assert_refused(convert(path, output), path, said)
    assert not output.exists() and not left_beside(output)
    assert inspect_json("--dataset", str(path), "--encoding", encoding)["rows_checked"] == 2  # as the line says


# 5. Escape sequences in column names reached the terminal raw in the text and Markdown reports.

RED, TITLE = "\x1b[31mred", "\x1b]0;title\x07"


def _escaping_rows(tmp_path) -> Path:
    """A folder named with an escape sequence, of two files with columns so named, one of them so named too."""
    chat = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    broken = {"messages": [{"role": "user", "content": "Hi"}, {"role": "bot", "content": "Hello"}]}
    folder = tmp_path / f"data{TITLE}"
    folder.mkdir()
    (folder / "a.jsonl").write_text(json.dumps({**chat, RED: "x", TITLE: "y"}) + "\n")
    (folder / f"{RED}.jsonl").write_text(json.dumps({**broken, RED: "x", TITLE: "y"}) + "\n")
    return folder


@pytest.mark.parametrize("output_format", ["text", "markdown", "github"])
def test_escape_sequences_in_column_names_are_shown_not_sent(tmp_path, output_format):
    folder = _escaping_rows(tmp_path)
    result = CliRunner().invoke(inspect_main, ["--dataset", str(folder), "--format", output_format])
    assert result.exit_code == 1, result.output  # the row whose role is not a chat role (TP106)
    assert "\x1b" not in result.output and "\x07" not in result.output
    if output_format == "github":  # a CI log is drawn as a terminal draws it; the annotations name the file
        assert r"file=" in result.output and r"\x1b[31mred.jsonl" in result.output
        return
    assert r"other columns: \x1b[31mred, \x1b]0;title\x07" in result.output
    assert r"data\x1b]0;title\x07" in result.output  # the folder's name


def test_escape_sequences_stay_exact_in_json(tmp_path):
    folder = _escaping_rows(tmp_path)
    report = inspect_json("--dataset", str(folder))
    assert report["extra_columns"] == [RED, TITLE]
    assert f"{folder}/{RED}.jsonl:1" in report["findings"][0]["where"]


def test_escape_sequences_in_convert_and_error_lines(tmp_path):
    folder = _escaping_rows(tmp_path)
    output = tmp_path / "out.jsonl"
    result = convert(folder, output, "--map", f"{RED}=colour")
    assert result.exit_code == 0 and "\x1b" not in result.output, result.output
    assert r"\x1b[31mred" in result.stdout
    assert written_rows(output)[0]["colour"] == "x"  # the data itself is written as it was
    missing = tmp_path / f"{TITLE}.jsonl"
    assert_refused(CliRunner().invoke(inspect_main, ["--dataset", str(missing)]),
                   str(missing).replace("\x1b", r"\x1b").replace("\x07", r"\x07"), "no such file or folder")


def _chat_batch(contents: list[str]):
    """A batch of `messages` rows, each a user turn then an assistant turn holding `contents[i]`."""
    import pyarrow as pa

    return pa.RecordBatch.from_pylist([{"messages": [{"role": "user", "content": "Say it."},
                                                     {"role": "assistant", "content": text}]} for text in contents])


def _with_bytes(batch, old: bytes, new: bytes):
    """The batch with `old` replaced by `new` (as long) in the assistant turns' text bytes, as a writer that does
    not check UTF-8 would leave them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    turns = pc.list_flatten(batch.column("messages"))
    content = turns.field("content")
    validity, offsets, data = content.buffers()
    broken = pa.Array.from_buffers(pa.string(), len(content), [validity, offsets,
                                                               pa.py_buffer(data.to_pybytes().replace(old, new))])
    rebuilt = pa.StructArray.from_arrays([turns.field("role"), broken], ["role", "content"])
    return pa.RecordBatch.from_arrays([pa.ListArray.from_arrays(batch.column("messages").offsets, rebuilt)],
                                      ["messages"])


@pytest.mark.parametrize("suffix", [".parquet", ".arrow"])
@pytest.mark.parametrize("kernels", [True, False], ids=["columns", "rows"])
def test_text_that_is_not_utf8_in_parquet_or_arrow_is_one_line(tmp_path, monkeypatch, suffix, kernels):
    """A Parquet or Arrow writer does not check UTF-8: a row of such text was an internal error (Python could not
    read it), or, through the column kernels, taken unseen. Both paths refuse the file in one line, exit 2."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import trlprep.inspector.scan

    monkeypatch.setattr(trlprep.inspector.scan, "COLUMN_KERNELS", kernels)
    batch = _with_bytes(_chat_batch([f"answer {i} caf\u00e9" for i in range(40)]), "\u00e9".encode(), b"\xe9\xe9")
    path = tmp_path / f"latin{suffix}"
    if suffix == ".parquet":
        pq.write_table(pa.Table.from_batches([batch]), path, row_group_size=10)
    else:
        with pa.ipc.new_file(path, batch.schema) as writer:
            writer.write_batch(batch)
    assert refused(inspect_main, "--dataset", path) == \
        f"error: {path}: unreadable data (column 'messages' holds text that is not UTF-8)"


@pytest.mark.parametrize("suffix", [".parquet", ".arrow"])
def test_a_struct_with_two_fields_of_one_name_is_one_line(tmp_path, suffix):
    """Python rows cannot hold both of a turn's two `role` fields: it was an internal error (exit 3)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    turn = pa.struct([("role", pa.string()), ("content", pa.string()), ("role", pa.string())])
    messages = pa.array([[("user", "Hi", "user"), ("assistant", "Hello", "assistant")]], pa.list_(turn))
    table = pa.table({"messages": messages})
    path = tmp_path / f"twice{suffix}"
    if suffix == ".parquet":
        pq.write_table(table, path)
    else:
        with pa.ipc.new_file(path, table.schema) as writer:
            writer.write_table(table)
    assert refused(inspect_main, "--dataset", path) == f"error: {path}: column 'messages' holds two fields named 'role'"
