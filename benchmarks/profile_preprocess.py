"""Where `mnistlab.images.preprocess` spends its time, and how it compares with an earlier version of itself.

    PYTHONPATH=src .venv/bin/python benchmarks/profile_preprocess.py [--baseline GIT_REV] [--repeats 5] [--per-digit 1] [--profile]

Pictures: 50 MNIST test digits as 280x280 canvas PNGs, grey and opaque RGBA (what the web page's canvas sends),
20 as 1200x900 phone-photo JPEGs (benchmarks/load_test.py's), and the handwriting set of benchmarks/synth_digits.py
(seed 1, 1 picture per digit and font). With `--baseline REV`, images.py as committed at REV is loaded beside the
current one and both run on every picture, interleaved (so machine load affects both alike): the table gives each
one's median CPU ms per picture (process time: on a shared machine wall time mostly measures the other jobs) and
the ratio, and how many outputs are identical (otherwise the largest |difference| of a pixel and the lowest
correlation between the two 28x28 inputs). `--profile` prints cProfile's top functions of the current version on
the canvases. Never part of the test suite.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import load_test  # noqa: E402
import synth_digits  # noqa: E402
from mnistlab import images  # noqa: E402
from mnistlab.data import load_dataset  # noqa: E402
from mnistlab.errors import ImageError  # noqa: E402


def baseline_module(rev: str):
    """mnistlab.images as committed at `rev`, imported as a separate module of the mnistlab package."""
    source = subprocess.run(["git", "show", f"{rev}:src/mnistlab/images.py"], cwd=HERE.parent, check=True,
                            capture_output=True, text=True).stdout
    folder = Path(tempfile.mkdtemp())
    path = folder / "images_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("mnistlab.images_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def pictures(data_dir: str | None, per_digit: int = 1) -> dict[str, list[bytes]]:
    """The three sets of pictures, as encoded bytes."""
    data = load_dataset("mnist", data_dir, splits=("test",))
    rng = np.random.default_rng(0)
    canvases, rgba = [], []
    for i in range(50):
        im = Image.fromarray(255 - data.x_test[i]).resize((280, 280), Image.Resampling.BILINEAR)
        for out, picture in ((canvases, im), (rgba, im.convert("RGBA"))):
            buf = io.BytesIO()
            picture.save(buf, format="PNG")
            out.append(buf.getvalue())
    photos = [load_test.photo_jpeg(data.x_test[i], rng) for i in range(20)]
    hand = [s.data for s in synth_digits.make_samples(per_digit=per_digit, seed=1)]
    return {"canvas PNG 280x280": canvases, "canvas RGBA PNG 280x280 (the page's)": rgba,
            "photo JPEG 1200x900": photos, "handwriting set (seed 1)": hand}


def run(fn, picture: bytes) -> tuple[float, np.ndarray | None]:
    start = time.process_time()
    try:
        out = fn(picture)
    except ImageError:
        out = None
    return time.process_time() - start, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", help="git revision whose images.py to compare with (e.g. main, HEAD~3)")
    ap.add_argument("--repeats", type=int, default=5, help="passes over each set (default 5)")
    ap.add_argument("--profile", action="store_true", help="print cProfile's top functions on the canvases")
    ap.add_argument("--per-digit", type=int, default=1,
                    help="handwriting pictures per digit and font (default 1; the handwriting benchmark's is 5)")
    ap.add_argument("--data-dir")
    args = ap.parse_args()

    sets = pictures(args.data_dir, args.per_digit)
    versions = {"current": images.preprocess}
    if args.baseline:
        versions = {f"baseline ({args.baseline})": baseline_module(args.baseline).preprocess, **versions}
    print(f"\n{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} before\n")
    header = "| pictures | n | " + " | ".join(f"{v} CPU ms, median" for v in versions) + " |"
    if args.baseline:
        header += " current / baseline | identical outputs | max abs difference | lowest correlation |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name, items in sets.items():
        times = {v: [] for v in versions}
        outputs = {v: [] for v in versions}
        for r in range(args.repeats):
            for item in items:
                for v, fn in versions.items():  # interleaved: both see the same machine load
                    t, out = run(fn, item)
                    times[v].append(t)
                    if r == 0:
                        outputs[v].append(out)
        medians = {v: statistics.median(t) * 1000 for v, t in times.items()}
        line = f"| {name} | {len(items)} | " + " | ".join(f"{m:.2f}" for m in medians.values()) + " |"
        if args.baseline:
            a, b = outputs.values()
            same = sum((x is None and y is None) or (x is not None and y is not None and np.array_equal(x, y))
                       for x, y in zip(a, b))
            pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
            diffs = [float(np.abs(x - y).max()) for x, y in pairs]
            # How alike two 28x28 inputs are where they differ (1: the same up to brightness).
            lowest = min((float(np.corrcoef(x.ravel(), y.ravel())[0, 1]) for x, y in pairs if not np.array_equal(x, y)),
                         default=1.0)
            m = list(medians.values())
            line += f" {m[1] / m[0]:.2f} | {same}/{len(items)} | {max(diffs, default=0.0):.2g} | {lowest:.3f} |"
        print(line)
    print(f"\nload average {os.getloadavg()[0]:.1f} after")
    if args.profile:
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        for item in sets["canvas PNG 280x280"] * 2:
            images.preprocess(item)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
