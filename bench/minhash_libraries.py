"""The MinHash libraries for `inspect --near-duplicates`, on the same shingles: rensa (the one used) and datasketch.

    uv run --with datasketch python bench/minhash_libraries.py            # 20,000 rows of the bench chat file
    uv run --with datasketch python bench/minhash_libraries.py --rows 50000

Each library, in a process of its own, signs every row's 3-word shingles (128 permutations, each library hashing
the shingle bytes its own way), then indexes the signatures in its LSH (threshold 0.8) and asks for each row's
candidates. Printed: seconds, rows/s and the process's peak RSS above its start, with rensa's ratios to
datasketch. Run bench/bench.py once first: it writes the chat file.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import resource
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PERMUTATIONS = 128


def shingles(path: Path, rows: int) -> list[list[bytes]]:
    from trlprep.inspector.ngrams import row_text, words

    out = []
    for line in itertools.islice(path.open("rb"), rows):
        row_words = words(row_text(orjson.loads(line)))
        out.append([b" ".join(row_words[i:i + 3]) for i in range(max(len(row_words) - 2, 1))])
    return out


def with_rensa(tokens: list[list[bytes]]) -> int:
    import rensa

    matrix = rensa.RMinHash.digest_matrix_from_token_byte_sets(tokens, PERMUTATIONS, 1)
    index = rensa.RMinHashLSH(0.8, PERMUTATIONS, 16)
    return sum(index.insert_matrix_and_query_duplicate_flags(matrix))


def with_datasketch(tokens: list[list[bytes]]) -> int:
    from datasketch import MinHash, MinHashLSH

    signatures = MinHash.bulk(tokens, num_perm=PERMUTATIONS)
    index = MinHashLSH(threshold=0.8, num_perm=PERMUTATIONS)
    with index.insertion_session() as session:
        for key, signature in enumerate(signatures):
            session.insert(key, signature, check_duplication=False)
    return sum(len(index.query(signature)) > 1 for signature in signatures)


def _run(name: str, tokens: list[list[bytes]], results) -> None:
    start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    flagged = globals()[name](tokens)
    seconds = time.perf_counter() - started
    results.put((name, seconds, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start_rss) / 1024, flagged))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    chat = next(iter(sorted((ROOT / "bench" / "data").glob("chat-*.jsonl"))), None)
    if chat is None:
        sys.exit("run bench/bench.py first: it writes bench/data/chat-*.jsonl")
    tokens = shingles(chat, args.rows)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    measured = {}
    for name in ("with_rensa", "with_datasketch"):
        process = context.Process(target=_run, args=(name, tokens, results))
        process.start()
        measured[name] = results.get()
        process.join()
    print(f"{len(tokens):,} rows of {chat.name}, 3-word shingles, {PERMUTATIONS} permutations, LSH at 0.8")
    print("| library | seconds | rows/s | peak RSS MB | rows with candidates |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, seconds, megabytes, flagged in measured.values():
        print(f"| {name.removeprefix('with_')} | {seconds:.2f} | {len(tokens) / seconds:,.0f} | {megabytes:,.0f} | "
              f"{flagged} |")
    rensa, datasketch = measured["with_rensa"], measured["with_datasketch"]
    print(f"rensa vs datasketch: {datasketch[1] / rensa[1]:.0f}x the speed, "
          f"{rensa[2] / max(datasketch[2], 1):.2f}x the memory")


if __name__ == "__main__":
    main()
