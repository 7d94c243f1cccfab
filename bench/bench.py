"""Benchmarks: trlprep against baselines run in the same process, as ratios (these machines are noisy).

    uv run python bench/bench.py                 # 100,000 generated chat rows (87 MB: past the parallel threshold)
    uv run python bench/bench.py --rows 200000   # the size the performance issue names

Generates, under bench/data/ (kept between runs), a ShareGPT chat JSONL (2-6 turns, lognormal content lengths),
the same rows as Parquet, and an implicit-prompt preference JSONL. Then times, best of --repeat runs each:
- reading every row and checking roles, contents and turn order: msgspec typed decode of blocks of lines (the
  reference: `inspect` decodes blocks too), msgspec, orjson and json per line, jsonschema per row, `pyarrow.json.read_json` alone, `datasets.load_dataset` + `.map` (how the
  peers walk rows), and `inspect` (every rule) in one and two processes, and in one on a copy where 40% of the
  conversations end on a user turn (a TP205 warning each: rows the fast path refuses);
- Parquet: `pyarrow.parquet.read_table` alone against `inspect` (checks a column at a time);
- `convert` ShareGPT -> messages against `datasets.map(trl.maybe_convert_to_chatml)`, and implicit -> explicit
  prompt against `datasets.map(trl.extract_prompt)` (both include reading the file and writing the result);
- `inspect --model`'s tokenization under a chat template (a tiny in-process tokenizer), one and two cores;
- near-duplicates (`inspect --near-duplicates`, and its pass alone), `inspect --cut-off` and `inspect --html` (with
  the page's size) against the exact-duplicate scan (TP401);
- what the text hygiene rules add to the fast path, on the chat rows and on Chinese rows (non-ASCII text);
- `inspect` of the shared real datasets when ../shared/data is there.
Peak RSS is that of this process and its worker processes together during one more run, untimed, above this
process's resting size: this process's own peak (Linux resets it through /proc/self/clear_refs), or, sampled
every few ms, this process's RSS plus each worker's unique pages (USS: a forked worker shares the rest with this
process), whichever is higher.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import msgspec
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / "bench" / "data"
TOOL_ROWS = 30_000
TOKENIZED_ROWS = 5000  # tokenizing is ~100x slower than checking: a slice gives its rate
SCHEMA_ROWS = 20_000  # jsonschema is ~30x slower than the others: a slice gives its rate
ROW_GROUP_ROWS = 20_000  # of the Parquet copies (and the record batches of the Arrow ones, bench/formats.py)
WORDS = ("the of and to in is that it for on with as was at by this be from or have an are not but what all "
         "were when we there can more if no out so said about up into them some could time would make like").split()
ROLES = {"human", "gpt", "system"}


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(max(1, int(rng.lognormvariate(3.5, 0.8)))))


def generate(rows: int, seed: int = 0, folder: Path = DATA) -> tuple[Path, Path, Path]:
    """A ShareGPT chat file, the same rows as Parquet, and an implicit-prompt preference file (cached in `folder`)."""
    folder.mkdir(parents=True, exist_ok=True)
    chat, parquet = folder / f"chat-{rows}.jsonl", folder / f"chat-{rows}.parquet"
    pairs = folder / f"pairs-{rows}.jsonl"
    if not (chat.exists() and pairs.exists()):
        rng = random.Random(seed)
        with open(chat, "wb") as c, open(pairs, "wb") as p:
            for _ in range(rows):
                turns = [{"from": "human" if i % 2 == 0 else "gpt", "value": _text(rng)}
                         for i in range(2 * rng.randint(1, 3))]
                c.write(orjson.dumps({"conversations": turns}) + b"\n")
                prompt = [{"role": "user", "content": _text(rng)}]
                p.write(orjson.dumps({"chosen": prompt + [{"role": "assistant", "content": _text(rng)}],
                                      "rejected": prompt + [{"role": "assistant", "content": _text(rng)}]}) + b"\n")
    if not parquet.exists():
        import pyarrow.json
        import pyarrow.parquet as pq

        pq.write_table(pyarrow.json.read_json(chat), parquet, row_group_size=ROW_GROUP_ROWS)
    return chat, parquet, pairs


def _cached_rows(name: str, rows: int, seed: int, row: Callable[[random.Random, int], dict],
                 folder: Path = DATA) -> Path:
    """A JSON-lines file of `rows` rows made by `row(rng, index)`, written once under `folder` and reused."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{rows}.jsonl"
    if not path.exists():
        rng = random.Random(seed)
        with open(path, "wb") as out:
            for i in range(rows):
                out.write(orjson.dumps(row(rng, i)) + b"\n")
    return path


def _warned_row(rng: random.Random, index: int) -> dict:
    turns = [{"from": "human" if i % 2 == 0 else "gpt", "value": _text(rng)} for i in range(2 * rng.randint(1, 3))]
    if rng.random() < 0.4:
        turns.append({"from": "human", "value": _text(rng)})
    return {"conversations": turns}


def warned_file(rows: int, seed: int = 1, folder: Path = DATA) -> Path:
    """ShareGPT chat rows, 40% of which end on a user turn: a TP205 warning each, rows the fast path refuses (cached
    in `folder`)."""
    return _cached_rows("warned", rows, seed, _warned_row, folder)


WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def _tool_call_row(rng: random.Random, index: int) -> dict:
    call = {"id": f"call_{index}", "type": "function", "function": {
        "name": "get_weather", "arguments": orjson.dumps({"city": _text(rng)[:20]}).decode()}}
    return {"messages": [{"role": "user", "content": _text(rng)},
                         {"role": "assistant", "content": None, "tool_calls": [call]},
                         {"role": "tool", "tool_call_id": f"call_{index}", "content": _text(rng)},
                         {"role": "assistant", "content": _text(rng)}], "tools": [WEATHER]}


def tool_calls_file(rows: int, seed: int = 2) -> Path:
    """OpenAI chat rows with tools: a call with JSON-string arguments, its result and an answer (TP605 each: rows the
    fast path refuses, their calls put in canonical form and checked against the schema) (cached)."""
    return _cached_rows("tool-calls", rows, seed, _tool_call_row)


# The baselines' checks: every turn has a known role and non-blank string content, and roles alternate.
def best_of(repeat: int, run: Callable, *args, **keywords) -> float:
    """The fastest of `repeat` calls of `run(*args, **keywords)`, in seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run(*args, **keywords)
        times.append(time.perf_counter() - started)
    return min(times)


def check_row(row: dict) -> bool:
    previous = None
    for turn in row["conversations"]:
        role, text = turn.get("from"), turn.get("value")
        if role not in ROLES or type(text) is not str or not text.strip() or role == previous:
            return False
        previous = role
    return True


class Turn(msgspec.Struct):
    role: Literal["human", "gpt", "system"] = msgspec.field(name="from")
    value: str


class Row(msgspec.Struct):
    conversations: list[Turn]


def check_struct(row: Row) -> bool:
    previous = None
    for turn in row.conversations:
        if not turn.value.strip() or turn.role == previous:
            return False
        previous = turn.role
    return True


def read_msgspec(path: Path) -> None:
    decode = msgspec.json.Decoder(Row).decode
    with open(path, "rb") as handle:
        for line in handle:
            check_struct(decode(line))


def read_msgspec_blocks(path: Path) -> None:
    """Blocks of whole lines decoded in one call each, as `inspect` reads JSON lines."""
    from trlprep.inspector.sources import line_blocks

    decode_lines = msgspec.json.Decoder(Row).decode_lines
    with open(path, "rb") as handle:
        for block in line_blocks(handle):
            for row in decode_lines(block):
                check_struct(row)


def read_with(loads: Callable) -> Callable[[Path], None]:
    def read(path: Path) -> None:
        with open(path, "rb") as handle:
            for line in handle:
                check_row(loads(line))

    return read


SHAREGPT_SCHEMA = {
    "type": "object", "required": ["conversations"],
    "properties": {"conversations": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["from", "value"],
        "properties": {"from": {"enum": sorted(ROLES)}, "value": {"type": "string", "pattern": "\\S"}}}}}}


def read_jsonschema(path: Path) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(SHAREGPT_SCHEMA)
    with open(path, "rb") as handle:
        for line in itertools.islice(handle, SCHEMA_ROWS):
            validator.is_valid(orjson.loads(line))


def read_pyarrow_json(path: Path) -> None:
    import pyarrow.json

    pyarrow.json.read_json(path)


def read_parquet(path: Path) -> None:
    import pyarrow.parquet as pq

    pq.read_table(path)


def datasets_map(path: Path, function: Callable) -> None:
    """`load_dataset("json")` + `.map(function)`, in a fresh cache each time (a warm cache would skip the
    conversion to Arrow)."""
    import datasets

    datasets.disable_progress_bars()
    cache = tempfile.mkdtemp(dir=DATA)
    try:
        dataset = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=cache)
        dataset.map(function, load_from_cache_file=False)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _memory(field: str) -> int:
    """This process's VmRSS or VmHWM (peak) in MB."""
    with open("/proc/self/status") as status:
        return int(re.search(rf"{field}:\s+(\d+)", status.read()).group(1)) // 1024


class TreePeak:
    """The highest memory of this process and its children together (see the module's docstring), sampled in a
    thread."""

    def __init__(self):
        import threading

        import psutil

        self.process, self.peak = psutil.Process(), 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        while not self._stop.wait(0.005):
            total = self.process.memory_info().rss
            for child in self.process.children(recursive=True):
                try:
                    total += child.memory_full_info().uss  # its own pages: those it shares with us are counted
                except psutil.Error:  # a worker that ended between the listing and the reading
                    pass
            self.peak = max(self.peak, total // (1 << 20))

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


@dataclass
class Measure:
    name: str
    seconds: float
    rows: int
    megabytes: float
    peak_mb: int | None
    reference: str


def hygiene_proof(path: Path, texts: list[str]) -> None:
    """What the fast path does for the text hygiene rules: control escapes looked for in each block of JSON lines,
    `&` and (for a text that is not ASCII) `plainly_clean` in each text."""
    from trlprep.inspector.rules.hygiene import control_escapes, plainly_clean

    with open(path, "rb") as handle:
        while block := handle.read(1 << 18):
            control_escapes(block)
    for text in texts:
        "&" not in text and (text.isascii() or plainly_clean(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from trlprep.converters import convert
    from trlprep.inspector import inspect_dataset

    chat, parquet, pairs = generate(args.rows)
    out = Path(tempfile.mkdtemp(dir=DATA))
    results: list[Measure] = []

    def measure(name: str, function, reference: str, rows: int = args.rows, path: Path = chat,
                megabytes: float | None = None) -> float:
        """Best of --repeat; `rows` and `megabytes` are what one run reads (all of `path` by default)."""
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            function()
            times.append(time.perf_counter() - started)
        # Memory in a run of its own: sampling the workers takes CPU from them.
        resting = _memory("VmRSS")
        tracked = _reset_peak()
        with TreePeak() as tree:
            function()
        peak = max(_memory("VmHWM") if tracked else 0, tree.peak) - resting
        results.append(Measure(name, min(times), rows, megabytes or path.stat().st_size / 1e6, peak, reference))
        return min(times)

    def convert_to(source: Path, to: str) -> None:
        convert(source, to=to, output=out / f"{source.stem}.{to}.jsonl", overwrite=True)

    read = "msgspec typed decode of line blocks + checks"
    measure(read, lambda: read_msgspec_blocks(chat), read)
    measure("msgspec typed decode per line + checks", lambda: read_msgspec(chat), read)
    measure("orjson per line + checks", lambda: read_with(orjson.loads)(chat), read)
    measure("json per line + checks", lambda: read_with(json.loads)(chat), read)
    schema_rows = min(SCHEMA_ROWS, args.rows)
    measure("jsonschema per row (first 20k rows)", lambda: read_jsonschema(chat), read, rows=schema_rows,
            megabytes=chat.stat().st_size / 1e6 * schema_rows / args.rows)
    measure("pyarrow.json.read_json alone", lambda: read_pyarrow_json(chat), read)
    measure("datasets.load_dataset + map(check)", lambda: datasets_map(chat, lambda row: {"ok": check_row(row)}),
            read)
    measure("trlprep inspect, every rule, 1 process", lambda: inspect_dataset(chat, workers=1), read)
    measure("trlprep inspect, every rule, 2 processes", lambda: inspect_dataset(chat, workers=2), read)
    warned = warned_file(args.rows)
    measure("inspect, 40% of rows with a warning (TP205)", lambda: inspect_dataset(warned, workers=1), read,
            path=warned)

    # Near-duplicates (opt-in) against the exact-duplicate scan (TP401, which every inspect runs).
    from trlprep.inspector.comparisons import compare_rows
    from trlprep.inspector.sources import open_source
    from trlprep.inspector.ngrams import strings

    exact = "exact duplicates: inspect --select TP401"
    measure(exact, lambda: inspect_dataset(chat, workers=1, select=("TP401",)), exact)
    measure("near-duplicate pass alone (MinHash, LSH)", lambda: compare_rows(open_source(chat), near_threshold=0.8),
            exact)
    measure("trlprep inspect --near-duplicates", lambda: inspect_dataset(chat, workers=1, near_duplicates=True),
            exact)
    measure("trlprep inspect --cut-off", lambda: inspect_dataset(chat, workers=1, cut_off=True), exact)
    try:
        import altair  # noqa: F401  (the html extra)

        pages = []
        measure("trlprep inspect --html (profile pass, page)",
                lambda: pages.append(inspect_dataset(chat, workers=1, profile=True).to_html()), exact)
        print(f"inspect --html page on {args.rows:,} rows: {len(pages[-1].encode()) / 1e6:.2f} MB")
    except ImportError:
        print("inspect --html not measured: the html extra is not installed")
    # Text hygiene (TP210-TP213, always on): what the fast path adds, against the whole scan.
    texts = [text for _, row in open_source(chat).rows() for text in strings(row)]
    hygiene = "TP210-TP213 fast proof (blocks, every text)"
    measure(hygiene, lambda: hygiene_proof(chat, texts), "trlprep inspect, every rule, 1 process")

    columns = "pyarrow.parquet.read_table alone"
    measure(columns, lambda: read_parquet(parquet), columns, path=parquet)
    measure("trlprep inspect of the Parquet copy", lambda: inspect_dataset(parquet), columns, path=parquet)

    import trl

    chatml = "datasets.map(trl.maybe_convert_to_chatml)"
    measure(chatml, lambda: datasets_map(chat, trl.maybe_convert_to_chatml), chatml)
    measure("trlprep convert sharegpt -> messages", lambda: convert_to(chat, "sft"), chatml)
    extract = "datasets.map(trl.extract_prompt)"
    measure(extract, lambda: datasets_map(pairs, trl.extract_prompt), extract, path=pairs)
    measure("trlprep convert implicit -> explicit", lambda: convert_to(pairs, "dpo"), extract, path=pairs)

    from trlprep.inspector.sources import open_source
    from trlprep.inspector.tokens import token_preflight
    from tests.tiny_model import build_tiny_model

    model = str(build_tiny_model(DATA / "tiny-model"))
    token_rows = list(itertools.islice(open_source(chat).rows(), TOKENIZED_ROWS))
    token_mb = sum(len(orjson.dumps(row)) + 1 for _, row in token_rows) / 1e6
    tokenize = "tokenize under the chat template, 1 process"
    measure(tokenize, lambda: token_preflight(token_rows, model=model, workers=1), tokenize,
            rows=len(token_rows), megabytes=token_mb)
    measure("tokenize under the chat template, 2 processes",
            lambda: token_preflight(token_rows, model=model, workers=2), tokenize, rows=len(token_rows),
            megabytes=token_mb)

    shared = ROOT.parent / "shared" / "data"
    zh = "inspect Chinese chat rows, every rule"
    if shared.is_dir():
        for path in sorted(shared.iterdir()):
            if path.suffix in (".json", ".jsonl", ".parquet"):
                rows = inspect_dataset(path).rows_checked
                measure(f"inspect {path.name}", lambda p=path: inspect_dataset(p), f"inspect {path.name}",
                        rows=rows, path=path)
        # Non-ASCII text (Chinese) takes the hygiene rules' regular expression, not only their ASCII test.
        chinese = out / "medical_zh.jsonl"
        medical = (shared / "more" / "sharegpt_medical_sft_zh.jsonl").read_bytes().splitlines(keepends=True)
        chinese.write_bytes(b"".join(itertools.islice(itertools.cycle(medical), TOOL_ROWS)))
        measure(zh, lambda: inspect_dataset(chinese, workers=1), zh, rows=TOOL_ROWS, path=chinese)
        zh_texts = [text for _, row in open_source(chinese).rows() for text in strings(row)]
        measure("TP210-TP213 fast proof, those rows", lambda: hygiene_proof(chinese, zh_texts), zh,
                rows=TOOL_ROWS, path=chinese)
        gsm8k = str(shared / "gsm8k_test.jsonl")
        measure("trlprep inspect --against gsm8k_test (leakage)",
                lambda: inspect_dataset(chat, workers=1, against=(gsm8k,)), "trlprep inspect, every rule, 1 process")
        # The tool-call checks' cost, on glaive's tool-calling rows (TRL's form) repeated to TOOL_ROWS rows.
        converted = convert(shared / "glaive_toolcall_en_demo.json", to="sft", output=out / "glaive.jsonl")
        lines = Path(converted.output).read_bytes().splitlines(keepends=True)
        tool_rows = out / "tool_calls.jsonl"
        tool_rows.write_bytes(b"".join(itertools.islice(itertools.cycle(lines), TOOL_ROWS)))
        whole = "inspect tool-call rows, every rule"
        measure(whole, lambda: inspect_dataset(tool_rows), whole, rows=TOOL_ROWS, path=tool_rows)
        from trlprep.inspector.toolcalls import invalid_arguments, invalid_tools, unanswered_calls, undeclared_calls

        parsed = [orjson.loads(line) for line in tool_rows.read_bytes().splitlines()]
        checks = (undeclared_calls, invalid_arguments, unanswered_calls, invalid_tools)
        measure("TP601-TP604 checks alone, on the same rows", lambda: [list(check(row, None)) for row in parsed
                                                                      for check in checks], whole, rows=TOOL_ROWS,
                path=tool_rows)
    shutil.rmtree(out, ignore_errors=True)

    by_name = {m.name: m for m in results}
    seconds_of = {m.name: m.seconds for m in results}
    print(f"{args.rows:,} generated chat rows ({chat.stat().st_size / 1e6:.0f} MB JSONL, "
          f"{parquet.stat().st_size / 1e6:.0f} MB Parquet), best of {args.repeat}; ratio = time per row / that of "
          "the first row of its group")
    print(f"| {'what':<44} | {'seconds':>8} | {'rows/s':>10} | {'MB/s':>7} | {'peak RSS MB':>11} | {'ratio':>6} |")
    print(f"| {'-' * 44} | {'-' * 7}: | {'-' * 9}: | {'-' * 6}: | {'-' * 10}: | {'-' * 5}: |")
    for m in results:
        peak = "" if m.peak_mb is None else f"{m.peak_mb:,}"
        reference = by_name[m.reference]
        ratio = (m.seconds / m.rows) / (reference.seconds / reference.rows)  # per row: a slice stands for the file
        print(f"| {m.name:<44} | {m.seconds:>8.3f} | {m.rows / m.seconds:>10,.0f} | {m.megabytes / m.seconds:>7.1f} | "
              f"{peak:>11} | {ratio:>6.2f} |")
    print()
    print(f"inspect throughput vs msgspec typed decode of line blocks + checks: "
          f"{seconds_of[read] / seconds_of['trlprep inspect, every rule, 1 process']:.0%}")
    from trlprep.inspector.scan import PARALLEL_FROM_BYTES

    print(f"the chat file is {chat.stat().st_size >> 20} MiB; the parallel scan starts at {PARALLEL_FROM_BYTES >> 20} "
          f"MiB: the 2-process run {'splits' if chat.stat().st_size >= PARALLEL_FROM_BYTES else 'does NOT split'} it")
    print(f"inspect, 2 processes vs 1: {seconds_of['trlprep inspect, every rule, 1 process'] / seconds_of['trlprep inspect, every rule, 2 processes']:.2f}x")  # noqa: E501
    print(f"convert sharegpt -> messages vs datasets.map(maybe_convert_to_chatml): "
          f"{seconds_of[chatml] / seconds_of['trlprep convert sharegpt -> messages']:.1f}x")
    print(f"convert implicit -> explicit vs datasets.map(extract_prompt): "
          f"{seconds_of[extract] / seconds_of['trlprep convert implicit -> explicit']:.1f}x")
    if "trlprep inspect --against gsm8k_test (leakage)" in seconds_of:
        print(f"inspect --against gsm8k_test vs inspect: {seconds_of['trlprep inspect --against gsm8k_test (leakage)'] / seconds_of['trlprep inspect, every rule, 1 process']:.1f}x the time")  # noqa: E501
    if "inspect tool-call rows, every rule" in seconds_of:
        print(f"tool-call checks (TP601-TP604): {seconds_of['TP601-TP604 checks alone, on the same rows'] / seconds_of['inspect tool-call rows, every rule']:.0%} of inspect's time on tool-calling rows")  # noqa: E501
    print(f"inspect --near-duplicates vs the exact-duplicate scan: {seconds_of['trlprep inspect --near-duplicates'] / seconds_of[exact]:.1f}x the time")  # noqa: E501
    print(f"inspect --cut-off vs the exact-duplicate scan: {seconds_of['trlprep inspect --cut-off'] / seconds_of[exact]:.1f}x the time")  # noqa: E501
    print(f"text hygiene fast proof: {seconds_of[hygiene] / seconds_of['trlprep inspect, every rule, 1 process']:.0%} of inspect's time on the chat file")  # noqa: E501
    if zh in seconds_of:
        print(f"text hygiene fast proof on Chinese rows: {seconds_of['TP210-TP213 fast proof, those rows'] / seconds_of[zh]:.0%} of inspect's time")  # noqa: E501
    print(f"tokenizing with 2 processes vs 1: "
          f"{seconds_of[tokenize] / seconds_of['tokenize under the chat template, 2 processes']:.2f}x")


if __name__ == "__main__":
    main()
