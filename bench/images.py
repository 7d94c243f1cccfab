"""Image checks (inspector/images.py) against reading the files' bytes, in one process, as ratios (the machine is noisy).

    uv run python bench/images.py                # 2,000 generated JPEGs
    uv run python bench/images.py --images 500 --repeat 1

Generates, under bench/data/images-N/ (kept between runs), N real-size JPEGs: 1024x768 and 1920x1080 crops of
the shared photos (../shared/data/vision/images/*.jpg, or tests/data/vision/dog_on_skateboard.jpg without
../shared), mirrored or not, at qualities from 70 to 95, so that no two files are the same bytes. Then times, best
of --repeat runs each, every file in the page cache (the first, untimed, run puts them there):
- reading each file's bytes: the baseline;
- what the default check is made of: hashing the bytes (blake2b, the brief's first idea, and XXH3-128, the one
  used) and `Image.open` of the bytes (the header);
- `ImageChecker.check`, header only (the default), and with `full_decode=True`, each on a fresh checker (its cache
  empty).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / "bench" / "data"
SIZES = ((1024, 768), (1920, 1080))


def photos() -> list[Path]:
    shared = sorted((ROOT.parent / "shared" / "data" / "vision" / "images").glob("*.jpg"))
    return shared or [ROOT / "tests" / "data" / "vision" / "dog_on_skateboard.jpg"]


def generate(count: int, seed: int = 0) -> list[Path]:
    """`count` JPEGs, each a crop of a photo resized to one of SIZES (cached: the folder is reused)."""
    from PIL import Image, ImageOps

    folder = DATA / f"images-{count}"
    paths = [folder / f"{number:05d}.jpg" for number in range(count)]
    if all(path.exists() for path in paths):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    sources = [Image.open(path).convert("RGB") for path in photos()]
    for path in paths:
        photo, (width, height) = rng.choice(sources), rng.choice(SIZES)
        crop_width = rng.randint(photo.width // 2, photo.width)
        crop_height = min(photo.height, round(crop_width * height / width))
        left, top = rng.randint(0, photo.width - crop_width), rng.randint(0, photo.height - crop_height)
        image = photo.crop((left, top, left + crop_width, top + crop_height)).resize((width, height))
        if rng.random() < 0.5:
            image = ImageOps.mirror(image)
        image.save(path, format="JPEG", quality=rng.randint(70, 95))
    return paths


def read_bytes(paths: list[Path]) -> None:
    for path in paths:
        path.read_bytes()


def hashed(paths: list[Path], digest) -> None:
    for path in paths:
        digest(path.read_bytes())


def headers(paths: list[Path]) -> None:
    from PIL import Image

    for path in paths:
        Image.open(io.BytesIO(path.read_bytes()))  # reads the header: size, mode, format


def checks(paths: list[Path], full_decode: bool) -> None:
    from trlprep.inspector.images import ImageChecker, image_source

    checker = ImageChecker(None, full_decode=full_decode)
    for path in paths:
        found = checker.check(image_source(str(path)))
        assert found.problem is None, found.detail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import xxhash

    started = time.perf_counter()
    paths = generate(args.images)
    print(f"{args.images:,} JPEGs ready in {time.perf_counter() - started:.1f} s (from {len(photos())} photos)")
    megabytes = sum(path.stat().st_size for path in paths) / 1e6
    read_bytes(paths)  # into the page cache
    runs = {
        "read each file's bytes (baseline)": lambda: read_bytes(paths),
        "read + blake2b (16 B)": lambda: hashed(paths, lambda data: hashlib.blake2b(data, digest_size=16).digest()),
        "read + XXH3-128 (the digest used)": lambda: hashed(paths, xxhash.xxh3_128_digest),
        "read + Image.open (header)": lambda: headers(paths),
        "ImageChecker.check, header only (default)": lambda: checks(paths, full_decode=False),
        "ImageChecker.check, full_decode=True": lambda: checks(paths, full_decode=True),
    }
    seconds = {}
    for name, run in runs.items():
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        seconds[name] = min(times)
    baseline = next(iter(seconds.values()))
    print(f"{args.images:,} JPEGs ({', '.join(f'{w}x{h}' for w, h in SIZES)}), {megabytes:.0f} MB, "
          f"{megabytes / args.images * 1000:.0f} KB each on average; best of {args.repeat}; ratio = time / baseline")
    print(f"| {'what':<42} | {'seconds':>8} | {'images/s':>9} | {'MB/s':>7} | {'ratio':>6} |")
    print(f"| {'-' * 42} | {'-' * 7}: | {'-' * 8}: | {'-' * 6}: | {'-' * 5}: |")
    for name, took in seconds.items():
        print(f"| {name:<42} | {took:>8.3f} | {args.images / took:>9,.0f} | {megabytes / took:>7.0f} | "
              f"{took / baseline:>6.2f} |")


if __name__ == "__main__":
    main()
