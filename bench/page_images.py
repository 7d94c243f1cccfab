"""The HTML page of image data, with its thumbnails and image plots, against the same page without them (an earlier
commit's: by default efac90f, the last before the page drew images), in one run, as ratios (the machine is noisy).

    uv run --extra html python bench/page_images.py
    uv run --extra html python bench/page_images.py --rows 20000 --repeat 1

The earlier commit is exported with `git archive` into a temporary folder (no worktree is added) and imported from
there by a subprocess of this environment, so both sides run with the same interpreter and libraries; runs of the
two alternate. Each run times, in its own process and after one untimed run, the best of three
`inspect_dataset(path, profile=True).to_html()`: the scan, the profile pass (which now checks the images of a
sample of rows) and the page (which now embeds thumbnails). On:
- examples/vision_llamafactory.jsonl (4 rows, one image missing);
- --rows generated rows under bench/data/ (kept between runs), LLaMA-Factory style: 1 to 3 `<image>` marks per
  row, each image one of tests/data/vision/'s three, every 100th row naming a missing file.
Prints seconds and the page's size for each side, and the ratios (this checkout's over the commit's).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
IMAGES = ROOT / "tests" / "data" / "vision"
BEFORE_THUMBNAILS = "efac90f"
# Timed runs in a process of their own, after an untimed one (the imports of pandas, Altair and Pillow, ~4 s, are no
# part of a page's cost): prints the best seconds of three, the page's size in bytes and its thumbnails.
RUN = """
import json, sys, time
from trlprep.inspector import inspect_dataset
inspect_dataset(sys.argv[1], profile=True).to_html()
seconds = []
for _ in range(3):
    started = time.perf_counter()
    page = inspect_dataset(sys.argv[1], profile=True).to_html()
    seconds.append(time.perf_counter() - started)
print(json.dumps([min(seconds), len(page.encode()), page.count("<img src='data:image/")]))
"""


def generate(rows: int, seed: int = 0) -> Path:
    """`rows` image rows beside a copy of the test images (cached)."""
    folder = DATA / f"vision-{rows}"
    path = folder / "data.jsonl"
    if path.exists():
        return path
    shutil.copytree(IMAGES, folder / "img", dirs_exist_ok=True)
    rng = random.Random(seed)
    names = sorted(image.name for image in IMAGES.iterdir() if image.suffix in (".jpg", ".png"))
    with open(path, "w") as handle:
        for number in range(rows):
            images = [f"img/{rng.choice(names)}" for _ in range(rng.randint(1, 3))]
            if number % 100 == 99:
                images[0] = f"img/missing-{number}.jpg"
            question = "".join("<image>" for _ in images) + f"What is in picture {number}?"
            handle.write(json.dumps({"messages": [{"role": "user", "content": question},
                                                  {"role": "assistant", "content": f"Answer {number}."}],
                                     "images": images}) + "\n")
    return path


def timed(checkout: Path, path: Path) -> tuple[float, int, int]:
    done = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(checkout)!r})\n" + RUN,
                           str(path)], capture_output=True, text=True, cwd=checkout)
    if done.returncode:
        raise SystemExit(f"{checkout}: {done.stderr.strip().splitlines()[-1]}")
    return tuple(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commit", default=BEFORE_THUMBNAILS)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    files = {"examples/vision_llamafactory.jsonl": ROOT / "examples" / "vision_llamafactory.jsonl",
             f"{args.rows:,} generated image rows": generate(args.rows)}
    with tempfile.TemporaryDirectory() as folder:
        before = Path(folder)
        archive = subprocess.run(["git", "archive", args.commit], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
        print(f"inspect_dataset(profile=True).to_html(): this checkout against {args.commit}, best of "
              f"{args.repeat} processes x 3 runs, alternating")
        print(f"| data | {args.commit} s | page KB | this checkout s | page KB | thumbnails | time ratio | size ratio |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, path in files.items():
            runs: dict[Path, list[tuple[float, int, int]]] = {before: [], ROOT: []}
            for _ in range(args.repeat):
                for checkout in runs:
                    runs[checkout].append(timed(checkout, path))
            (old, old_size, _), (new, new_size, thumbnails) = min(runs[before]), min(runs[ROOT])
            print(f"| {name} | {old:.2f} | {old_size / 1e3:,.0f} | {new:.2f} | {new_size / 1e3:,.0f} | {thumbnails} | "
                  f"{new / old:.2f} | {new_size / old_size:.2f} |", flush=True)


if __name__ == "__main__":
    main()
