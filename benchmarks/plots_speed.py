"""CPU time of each figure a run draws at the end of training (plots.py), medians of several draws.

    MNISTLAB_DATA=../shared/data PYTHONPATH=src .venv/bin/python benchmarks/plots_speed.py [--repeat 5]

Draws from 200 real MNIST test digits with every 7th prediction made wrong, into a temporary folder, and prints a
markdown table of process CPU ms per figure (medians of --repeat draws, after one warm-up draw). Run it at two
commits in one session to compare. Never part of the test suite.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mnistlab import plots  # noqa: E402
from mnistlab.data import load_dataset  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--data-dir", type=Path, default=None)
    args = ap.parse_args()
    d = load_dataset("mnist", args.data_dir, splits=("test",))
    x, y = d.x_test[:200], d.y_test[:200]
    pred = y.copy()
    pred[::7] = (pred[::7] + 1) % 10
    proba = np.eye(10)[pred] * 0.9 + 0.01
    names = [str(i) for i in range(10)]
    cm = np.bincount(y * 10 + pred, minlength=100).reshape(10, 10)
    history = [{"accuracy": [0.9, 0.95, 0.97], "loss": [0.3, 0.2, 0.1],
                "val_accuracy": [0.92, 0.96, 0.97], "val_loss": [0.25, 0.15, 0.1]}]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        figures = {
            "prediction grid (36 digits)": lambda: plots.prediction_grid(x, y, pred, names, out / "g.png"),
            "confident mistakes (24 digits)": lambda: plots.confident_mistakes(x, y, proba, names, out / "m.png"),
            "confusion matrix": lambda: plots.confusion_matrix_plot(cm, names, out / "c.png"),
            "curves": lambda: plots.history_curves(history, out / "h.png"),
            "calibration": lambda: plots.calibration_plot(proba, proba, y, out / "r.png"),
        }
        print("| figure | CPU ms (median of %d) |\n|---|---|" % args.repeat)
        total = 0.0
        for name, draw in figures.items():
            draw()
            times = []
            for _ in range(args.repeat):
                start = time.process_time()
                draw()
                times.append((time.process_time() - start) * 1000)
            total += statistics.median(times)
            print(f"| {name} | {statistics.median(times):.0f} |")
        print(f"| **all five** | **{total:.0f}** |")


if __name__ == "__main__":
    main()
