"""Parity of every export format against Keras, for several runs: the table of docs/benchmarks.md.

    PYTHONPATH=src .venv/bin/python benchmarks/export_parity.py runs/cnn runs/fast runs/best runs/fast-ens2 \\
        [--data-dir ../shared/data] [--force]

For each run directory: `mnistlab export RUN --format onnx`, `saved_model`, `litert` and `litert --quantize int8`
(mnistlab.export.export_run, into RUN/export/), then one markdown row per export from its check record: same digit
on the first 1,000 MNIST test images, largest probability difference from Keras, size, and for int8 the accuracy
on the whole test set against the float model's. An export that fails its check is a row marked FAILED.
Never part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mnistlab.errors import MnistlabError  # noqa: E402
from mnistlab.export import export_run  # noqa: E402
from mnistlab.runs import load_run  # noqa: E402

EXPORTS = [("onnx", None), ("saved_model", None), ("litert", None), ("litert", "int8")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--data-dir")
    ap.add_argument("--force", action="store_true", help="export again over existing exports")
    args = ap.parse_args()

    rows = []
    for run_dir in args.runs:
        run = load_run(run_dir, engine="keras")
        name = f"`{run.settings.recipe}`" + (f" ensemble of {run.settings.ensemble}" if run.settings.ensemble > 1 else "")
        name += f" ({run.metrics['test_accuracy']:.2%})"
        for fmt, quantize in EXPORTS:
            label = fmt + (f" {quantize}" if quantize else "")
            try:
                r = export_run(run_dir, fmt, quantize=quantize, force=args.force, data_dir=args.data_dir,
                               log=lambda msg: print(msg, file=sys.stderr))
            except MnistlabError as exc:
                rows.append(f"| {name} | {label} | FAILED: {exc} | | | | |")
                continue
            full = r.get("full_test")
            accuracy = (f"{full['accuracy_export']:.2%} vs {full['accuracy_float']:.2%} ({-full['drop_points']:+.2f} pt)"
                        if full else "")
            rows.append(f"| {name} | {label} | {r['same_digit']}/{r['images']} | {r['max_abs_diff']:.1e} | "
                        f"{accuracy} | {r['bytes'] / 1024:.0f} | {'yes' if r['passed'] else 'NO'} |")
    print(f"\n{os.cpu_count()} cores\n")
    print("| run (Keras test accuracy) | export | same digit (1,000 test images) | max abs prob. diff | "
          "int8: accuracy on 10,000 vs float | KiB | passed |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
