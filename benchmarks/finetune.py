"""Fine-tuning on one writer's digits: accuracy on that writer's other pictures, before and after, by examples per class.

A "writer" here is one handwriting font of benchmarks/synth_digits.py, rendered as phone photos, scans and
canvas drawings (each picture slanted, rotated, thickened or thinned differently). For each writer the script
renders a pool of training pictures and, with another seed, 30 test pictures per digit; fine-tunes the given
run with K = 1, 5, 20 and 100 pictures per digit; and reports accuracy on the writer's test pictures and on
MNIST's test set, with the time each fine-tuning took. Nothing here is tuned on MNIST's test set: it is only
reported.

    mnistlab train --recipe cnn --out runs/cnn
    PYTHONPATH=src python benchmarks/finetune.py runs/cnn --data-dir ../shared/data --writers 3 --out .bench/finetune
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from synth_digits import available_fonts, render_sample  # noqa: E402

import mnistlab  # noqa: E402


def write_folder(root: Path, font: Path, per_digit: int, seed: int) -> Path:
    """Render `per_digit` pictures of each digit in `font` into root/<digit>/<n>.<ext> (the Keras layout)."""
    from mnistlab.errors import ImageError

    for digit in range(10):
        (root / str(digit)).mkdir(parents=True, exist_ok=True)
        for n in range(per_digit):
            # A labelled folder must hold readable digits (labelled.py refuses the others), so a rendering
            # that preprocessing finds no digit in (a few percent: faint ink under heavy noise) is drawn again.
            for attempt in range(20):
                sample = render_sample(digit, font, np.random.default_rng([seed, digit, n, attempt]))
                try:
                    mnistlab.preprocess(sample.data)
                    break
                except ImageError:
                    continue
            (root / str(digit) / f"{n:03d}.{sample.fmt.lower()}").write_bytes(sample.data)
    return root


def held_out_accuracy(run, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of a run on MNIST images given as uint8 arrays."""
    return float((run.predict_proba(x).argmax(axis=1) == y).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a trained run directory (e.g. a full-size cnn)")
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--writers", type=int, default=3, help="how many fonts (the worst-read ones first)")
    ap.add_argument("--shots", type=int, nargs="+", default=[1, 5, 20, 100], help="pictures per digit")
    ap.add_argument("--out", type=Path, default=Path(".bench/finetune"))
    args = ap.parse_args()

    fonts = available_fonts()
    if not fonts:
        sys.exit("no handwriting fonts installed (see synth_digits.FONT_PACKAGES)")
    base = mnistlab.load_run(args.run)
    # What fine-tuning forgets, for choosing its settings: MNIST training images the run never trained on
    # (cnn holds out the last 10% for validation), never the test set.
    (x_train, y_train), _ = mnistlab.load_data(data_dir=args.data_dir)
    x_held, y_held = x_train[54000:], y_train[54000:]
    held_before = held_out_accuracy(base, x_held, y_held)
    # Rank writers by how badly the run reads them (a small probe set, another seed than the test pictures).
    scores = []
    for font in fonts:
        probe = write_folder(args.out / "probe" / font.stem, font, 3, seed=7)
        scores.append((mnistlab.evaluate(args.run, images=probe, plots=args.out / "plots")["test_accuracy"], font))
    rows = []
    for before_probe, font in sorted(scores, key=lambda s: s[0])[: args.writers]:
        test = write_folder(args.out / "test" / font.stem, font, 30, seed=2)
        before = mnistlab.evaluate(args.run, images=test, plots=args.out / "plots")["test_accuracy"]
        for k in args.shots:
            pool = write_folder(args.out / f"train-{k}" / font.stem, font, k, seed=1)
            start = time.perf_counter()
            tuned = mnistlab.finetune(args.run, pool, out=args.out / "runs" / f"{font.stem}-{k}", force=True,
                                      data_dir=args.data_dir, verbose=0, log=lambda msg: None)
            took = time.perf_counter() - start
            after = mnistlab.evaluate(tuned.path, images=test, plots=args.out / "plots")["test_accuracy"]
            held_after = held_out_accuracy(tuned, x_held, y_held)
            rows.append({"writer": font.stem, "per_digit": k, "before": before, "after": after,
                         "mnist_held_out_before": held_before, "mnist_held_out_after": held_after,
                         "mnist_before": base.metrics["test_accuracy"], "mnist_after": tuned.metrics["test_accuracy"],
                         "seconds": round(took, 1)})
            print(json.dumps(rows[-1]), flush=True)
    print("\n| writer | pictures per digit | writer's test pictures before | after | MNIST held-out before | after | "
          "MNIST test before | after | fine-tuning time |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['writer']} | {r['per_digit']} | {r['before']:.1%} | {r['after']:.1%} | "
              f"{r['mnist_held_out_before']:.2%} | {r['mnist_held_out_after']:.2%} | {r['mnist_before']:.2%} | "
              f"{r['mnist_after']:.2%} | {r['seconds']} s |")


if __name__ == "__main__":
    main()
