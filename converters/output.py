"""Writing converted rows: staged beside the output, verified, then moved into place in one rename
(`trlprep.files` stages and publishes).

A crash, Ctrl-C or SIGTERM leaves at most a hidden staging file, never a partial output (the next run writing the
same output removes a killed run's); inputs are never written to.
"""

from __future__ import annotations

import itertools
import os
import random
import stat
from array import array
from contextlib import suppress
from pathlib import Path
from typing import Any, Callable

import orjson

from trlprep.errors import OutputError
from trlprep.files import (check_output_name, check_replaceable, check_writable, create_staged_file,
                           create_staged_folder, publish, remove_quietly, remove_stale_staging,
                           running_out_of_room, writing)


def output_kind(path: Path) -> str:
    """jsonl, parquet, or folder (a `save_to_disk` dataset), from the extension.

    >>> output_kind(Path("out.jsonl")), output_kind(Path("out.parquet")), output_kind(Path("out_dir"))
    ('jsonl', 'parquet', 'folder')
    """
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".parquet"):
        return suffix[1:]
    if suffix:
        raise OutputError(f"{path}: write .jsonl, .parquet, or a folder name without extension (save_to_disk)")
    return "folder"


def split_paths(output: Path, splits: tuple[str, ...]) -> dict[str, Path]:
    """Where each split goes: the output itself, or `<stem>.train<suffix>` and `<stem>.test<suffix>`.

    >>> split_paths(Path("d/out.jsonl"), ("train", "test"))
    {'train': PosixPath('d/out.train.jsonl'), 'test': PosixPath('d/out.test.jsonl')}
    """
    if splits == ("all",):
        return {"all": output}
    if output_kind(output) == "folder":
        return {name: output for name in splits}
    return {name: output.with_name(f"{output.stem}.{name}{output.suffix}") for name in splits}


def rejects_path(output: Path) -> Path:
    """`<output stem>.rejects.jsonl` beside the output.

    >>> rejects_path(Path("d/out.parquet"))
    PosixPath('d/out.rejects.jsonl')
    """
    return output.with_name(f"{output.stem if output.suffix else output.name}.rejects.jsonl")


def guard_paths(outputs: list[Path], inputs: list[str], overwrite: bool, source: Any = None) -> None:
    """Refuse to write onto an input (or a folder holding one), into the folder the dataset is (`source`, when it
    is one: reading it again would take the output in), onto what is not ours to replace (`files.check_replaceable`:
    without `overwrite`, anything) or into a folder that takes no file; then create the folders the outputs go in.
    `inputs` are the source's files; `outputs[0]` is the `--output`."""
    resolved_inputs = {Path(p).resolve() for p in inputs}
    folder = Path(source).resolve() if isinstance(source, (str, Path)) and Path(source).is_dir() else None
    for path in outputs:
        check_output_name(path)
        target = path.resolve()
        if target in resolved_inputs or any(target in p.parents for p in resolved_inputs):
            raise OutputError(f"{path}: is the input (or holds it); write the output elsewhere")
        if folder is not None and folder in target.parents:
            raise OutputError(f"{path}: is inside the dataset folder {source}, whose next read would take it in; "
                              f"write the output elsewhere")
        check_replaceable(path, overwrite)
    for parent in dict.fromkeys(path.parent for path in outputs):  # created as most tools create it
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            reason = "a file is in its place" if isinstance(error, FileExistsError) else error.strerror or error
            raise OutputError(f"--output {outputs[0]}: cannot create its folder {parent}: {reason}") from None
        check_writable(parent / outputs[0].name)


def dumps(row: Any) -> bytes:
    return orjson.dumps(row, default=str, option=orjson.OPT_NON_STR_KEYS) + b"\n"


def split_key(row: dict) -> tuple[str, int]:
    """What keeps rows in one split: the prompt (pairs and completions of one prompt), or the whole content
    (conversations, texts), id-like columns aside.

    >>> split_key({"prompt": "2+2?", "chosen": "4", "rejected": "5"}) == split_key({"prompt": "2+2?", "chosen": "four"})
    True
    >>> split_key({"messages": [], "id": 1}) == split_key({"messages": [], "id": 2})
    True
    """
    from trlprep.inspector.dialects import without_ids

    if "prompt" in row:
        return "prompt", hash(orjson.dumps(row["prompt"], option=orjson.OPT_SORT_KEYS))
    return "content", hash(orjson.dumps(without_ids(row), option=orjson.OPT_SORT_KEYS))


class Staging:
    """Converted rows written to a hidden JSONL file next to the output, with each input row's block offsets,
    so they can be shuffled and split without holding them in memory; with `grouped`, each block's split key
    (`split_key` of its first row) and near-duplicate cluster, so that a test split never shares a prompt, a row or
    a near-copy of a row with the train split."""

    def __init__(self, folder: Path, name: str, grouped: bool = False):
        self.folder, self.name = folder, name
        self.paths: list[Path] = []
        self._files: list[StagedFile] = []
        try:
            remove_stale_staging(folder, name)  # what a killed run writing this output left
            self._handle = self.open_file("rows", ".jsonl")
        except BaseException:  # an interrupt before the caller holds this staging: it cannot clean up, so here
            self.cleanup()
            raise
        self.main = self._handle.path
        self.offsets = array("q", [0])
        self.block_rows = array("q")  # rows each block holds: 2 for a pair KTO unpairs, 1 mostly
        self.rows = 0
        self.keys: list[int] | None = [] if grouped else None
        self.clusters: dict[int, int] = {}  # block -> the first input row of its near-duplicate cluster
        self.key_kinds: set[str] = set()
        self.grouping: dict[str, Any] | None = None  # how the last split was grouped

    def open_file(self, part: str, suffix: str = ".jsonl") -> StagedFile:
        """A new staging file open for writing, closed (and removed) by `cleanup`."""
        staged = StagedFile(*create_staged_file(self.folder, self.name, part, suffix), self.folder / self.name)
        self.paths.append(staged.path)
        self._files.append(staged)
        return staged

    def new_path(self, part: str, suffix: str) -> Path:
        """A new, empty staging file for others to write (pyarrow, datasets)."""
        fd, path = create_staged_file(self.folder, self.name, part, suffix)
        self.paths.append(path)
        os.close(fd)
        return path

    def new_dir(self, part: str) -> Path:
        path = create_staged_folder(self.folder, self.name, part)
        self.paths.append(path)
        return path

    def write_block(self, rows: list[dict], cluster: int | None = None) -> None:
        """One input row's output rows; `cluster`: the near-duplicate cluster it belongs to, if any."""
        for row in rows:
            self._handle.write(dumps(row))
        self.rows += len(rows)
        self.block_rows.append(len(rows))
        self.offsets.append(self._handle.tell())
        if self.keys is not None:
            self._key(rows[0])
            if cluster is not None:
                self.clusters[self.blocks - 1] = cluster

    def _key(self, row: dict) -> None:
        kind, key = split_key(row)
        self.key_kinds.add(kind)
        self.keys.append(key)

    def write_lines(self, lines: list[bytes]) -> None:
        """Rows already encoded as JSON lines (without their newlines), each its own block."""
        start = self._handle.tell()
        self._handle.write(b"\n".join(lines) + b"\n")
        self.rows += len(lines)
        self.block_rows.extend(itertools.repeat(1, len(lines)))
        ends = itertools.accumulate((len(line) + 1 for line in lines), initial=start)
        next(ends)  # the start: the last offset already
        self.offsets.extend(ends)
        if self.keys is not None:
            for line in lines:
                self._key(orjson.loads(line))

    def close(self) -> None:
        self._handle.close()

    @property
    def blocks(self) -> int:
        return len(self.offsets) - 1

    def write_splits(self, sizes: dict[str, int], shuffle: bool, seed: int) -> dict[str, Path]:
        """JSONL files holding the blocks of each split, in shuffled order when asked (always for a test split)."""
        self.close()
        order = list(range(self.blocks))
        if shuffle:
            random.Random(seed).shuffle(order)
        if list(sizes) == ["all"] and not shuffle:
            return {"all": self.main}
        if self.keys is not None and "test" in sizes:
            order, sizes = self._grouped(order, sizes["test"])
        paths, start = {}, 0
        with open(self.main, "rb") as source:
            for split, size in sizes.items():
                sink = self.open_file(split)
                paths[split] = sink.path
                for block in order[start:start + size]:
                    source.seek(self.offsets[block])
                    sink.write(source.read(self.offsets[block + 1] - self.offsets[block]))
                sink.close()
                start += size
        return paths

    def _grouped(self, order: list[int], test: int) -> tuple[list[int], dict[str, int]]:
        """The blocks in test-then-train order, whole groups of one split key to a split: groups in the shuffled
        order of their first block go to test until it holds `test` rows or more."""
        groups: dict[int, list[int]] = {}
        group_of = self._group_of_key()
        for block in order:
            groups.setdefault(group_of(self.keys[block]), []).append(block)
        test_blocks: list[int] = []
        test_groups = 0
        for members in groups.values():
            if len(test_blocks) >= test:
                break
            test_blocks += members
            test_groups += 1
        if len(test_blocks) >= self.blocks:
            raise OutputError(f"--test-size: the rows share {'prompts' if 'prompt' in self.key_kinds else 'content'}"
                              f" so much that {len(groups)} group(s) leave no train rows")
        chosen = set(test_blocks)
        test_rows = sum(self.block_rows[block] for block in test_blocks)
        # `train` and `test` count the rows written to each file; `*_kept` the kept input rows they came from,
        # which differ where one input row became several (a pair unpaired for KTO stays in one split).
        self.grouping = {"by": " and ".join(sorted(self.key_kinds)), "groups": len(groups),
                         "near_duplicate_rows": len(self.clusters),
                         "test_groups": test_groups, "train": self.rows - test_rows, "test": test_rows,
                         "train_kept": self.blocks - len(test_blocks), "test_kept": len(test_blocks)}
        return [b for b in order if b not in chosen] + test_blocks, {"train": self.blocks - len(test_blocks),
                                                                     "test": len(test_blocks)}

    def _group_of_key(self) -> Callable[[int], int]:
        """The group of a split key: keys of the blocks of one near-duplicate cluster are one group (union-find)."""
        parent: dict[int, int] = {}

        def root(key: int) -> int:
            while parent.get(key, key) != key:
                key = parent[key]
            return key

        first_key: dict[int, int] = {}
        for block, cluster in self.clusters.items():
            parent[root(self.keys[block])] = root(first_key.setdefault(cluster, self.keys[block]))
        return root

    def cleanup(self) -> None:
        """Close and remove every staging file; never raises, so that a full disk (whose close fails again)
        still leaves nothing behind."""
        for staged in self._files:
            staged.close_quietly()
        for path in self.paths:
            remove_quietly(path)


class StagedFile:
    """A staging file open for writing, whose failures (a full disk) are its output's (`files.writing`: exit 2)."""

    def __init__(self, fd: int, path: Path, target: Path):
        self.path, self.target = path, target
        self._file = open(fd, "wb")

    def write(self, data: bytes) -> None:
        with writing(self.target):
            self._file.write(data)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        with writing(self.target):
            self._file.close()

    def close_quietly(self) -> None:
        with suppress(OSError):  # a failed flush still closes the file
            self._file.close()


def split_sizes(blocks: int, test_size: float | None) -> dict[str, int]:
    """Rows per split; a fraction or a count for the test split.

    >>> split_sizes(10, None), split_sizes(10, 0.2), split_sizes(10, 3)
    ({'all': 10}, {'train': 8, 'test': 2}, {'train': 7, 'test': 3})
    >>> split_sizes(10, 5000)
    Traceback (most recent call last):
    trlprep.errors.OutputError: --test-size 5000 asks for 5000 test rows of the 10 kept; leave at least 1 for train
    """
    if not test_size:
        return {"all": blocks}
    test = round(blocks * test_size) if test_size < 1 else int(test_size)
    if test >= blocks:
        raise OutputError(f"--test-size {test_size:g} asks for {test} test rows of the {blocks} kept; leave at least 1 "
                          f"for train")
    if test < 1:
        raise OutputError(f"--test-size {test_size:g} of the {blocks} rows kept is no test row; ask for a larger "
                          f"share or a count")
    return {"train": blocks - test, "test": test}


def materialize(split_files: dict[str, Path], kind: str, staging: Staging) -> dict[str, Path]:
    """The staged JSONL splits in the output's format: JSONL as they are; parquet and folders through
    `datasets`, as TRL will load them (several splits in one folder make a DatasetDict)."""
    if kind == "jsonl":
        return split_files
    with running_out_of_room(staging.folder / staging.name):
        return _materialized(split_files, kind, staging)


def _materialized(split_files: dict[str, Path], kind: str, staging: Staging) -> dict[str, Path]:
    import datasets

    datasets.disable_progress_bars()
    cache = str(staging.new_dir("cache"))
    loaded = {split: embed_images(datasets.Dataset.from_json(str(path), cache_dir=cache))
              for split, path in split_files.items()}
    if kind == "parquet":
        targets = {split: staging.new_path(split, ".parquet") for split in loaded}
        for split, dataset in loaded.items():
            dataset.to_parquet(str(targets[split]))
        return targets
    folder = staging.new_dir("dataset")  # saved into as it is: made empty and exclusively, never through a link
    (loaded["all"] if list(loaded) == ["all"] else datasets.DatasetDict(loaded)).save_to_disk(str(folder))
    return {split: folder for split in loaded}


def embed_images(dataset):
    """A converted dataset whose rows hold images (`images`: absolute paths, data URLs or URLs, as
    `converters.conversion.staged_image` writes them) with the images embedded as the `datasets` Image feature,
    which TRL loads as pictures and the Hub's viewer shows; a remote URL stays a path, fetched when loaded. Other
    datasets are returned as they are."""
    if "images" not in dataset.column_names:
        return dataset
    import datasets

    from trlprep.inspector.images import ImageChecker, image_bytes, image_source

    checker = ImageChecker(None)

    def embedded(image: str) -> dict:
        source = image_source(image)
        if source.kind == "url":
            return {"bytes": None, "path": image}
        return {"bytes": image_bytes(source, checker), "path": Path(image).name if source.kind == "path" else None}

    features = dataset.features.copy()
    features["images"] = datasets.List(datasets.Image())
    return dataset.map(lambda row: {"images": [embedded(image) for image in row["images"]]}, features=features)


def publish_all(moves: dict[Path, Path], overwrite: bool) -> None:
    """Publish each staged path (key) to its target (value), as one: without `overwrite`, when one target
    appeared meanwhile, the targets published before it are removed again, so a run that loses a race to another
    leaves nothing."""
    published: list[Path] = []
    try:
        for staged, target in moves.items():
            publish(staged, target, replace=overwrite)
            published.append(target)
    except BaseException:
        if not overwrite:
            for target in published:
                remove_quietly(target)
        raise


def remove_stale_rejects(path: Path) -> None:
    """Remove an earlier run's rejects file beside an output replaced by a run that rejected nothing (a regular
    file: `guard_paths` refused anything else)."""
    with suppress(OSError):
        if stat.S_ISREG(os.lstat(path).st_mode):
            os.unlink(path)
