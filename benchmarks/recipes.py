"""Full-size recipe benchmark: every recipe, several seeds, optionally several backends, plus the
tutorials' own scripts as the reference, all in one run on one machine. Prints a markdown table.

    MNISTLAB_DATA=../shared/data .venv/bin/python benchmarks/recipes.py --recipes mlp dense512 cnn --seeds 1 2 3

Each training runs in its own process (`mnistlab train`), so backends do not share state.
Never part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(cmd: list[str], backend: str) -> str:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr[-3000:]}")
    return p.stdout


def train(recipe: str, seed: int, backend: str, workdir: Path, extra: list[str]) -> dict:
    out = workdir / f"{recipe}-{backend}-{seed}"
    run([sys.executable, "-m", "mnistlab.cli", "train", "--recipe", recipe, "--seed", str(seed), "--out", str(out),
         "--force", *extra], backend)
    return json.loads((out / "metrics.json").read_text())


def reference(script: str, seed: int, backend: str) -> dict:
    out = run([sys.executable, str(HERE / "tutorial_scripts.py"), script, str(seed)], backend)
    return json.loads(out.strip().splitlines()[-1])


def fmt_range(values: list[float], pattern: str) -> str:
    if len(values) == 1:
        return pattern.format(values[0])
    return f"{pattern.format(statistics.median(values))} ({pattern.format(min(values))}-{pattern.format(max(values))})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", nargs="+", default=["mlp", "dense512", "cnn"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1])
    ap.add_argument("--backends", nargs="+", default=["tensorflow"])
    ap.add_argument("--reference", action="store_true", help="also time the tutorials' own scripts")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more `mnistlab train` options")
    args = ap.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="mnistlab-bench-") as tmp:
        for backend in args.backends:
            results: dict[str, list[dict]] = {}
            # Interleave seeds across recipes so a slow spell on the machine hits every recipe alike.
            for seed in args.seeds:
                for recipe in args.recipes:
                    t0 = time.perf_counter()
                    m = train(recipe, seed, backend, Path(tmp), args.extra)
                    results.setdefault(recipe, []).append(m)
                    print(f"# {backend} {recipe} seed {seed}: {m['test_accuracy']:.4f} in {m['train_seconds']:.1f} s "
                          f"(wall {time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
                    if args.reference and recipe in ("mlp", "dense512", "cnn"):
                        r = reference(recipe, seed, backend)
                        results.setdefault(f"{recipe} (tutorial script)", []).append(
                            {**r, "epochs": m["epochs"], "images_per_second": float("nan")})
                        print(f"# {backend} tutorial {recipe} seed {seed}: {r['test_accuracy']:.4f} in "
                              f"{r['train_seconds']:.1f} s", file=sys.stderr, flush=True)
            cnn = statistics.median(x["train_seconds"] for x in results["cnn"]) if "cnn" in results else None
            for name, ms in results.items():
                secs = [x["train_seconds"] for x in ms]
                accs = [x["test_accuracy"] * 100 for x in ms]
                ips = [x["images_per_second"] for x in ms if x["images_per_second"] == x["images_per_second"]]
                rows.append([name, backend, str(ms[0]["epochs"]), fmt_range(secs, "{:.1f}"), fmt_range(accs, "{:.2f}"),
                             f"{statistics.median(ips):.0f}" if ips else "",
                             f"{statistics.median(secs) / cnn:.2f}" if cnn else "", str(len(ms))])
    head = ["recipe", "backend", "epochs", "train s, median (range)", "test acc %, median (range)", "images/s",
            "time / cnn", "runs"]
    print(f"\nMachine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}; "
          f"seeds {args.seeds}\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
