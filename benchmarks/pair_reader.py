"""Could one network read two touching digits as a pair? A feasibility measurement for `read` (issue 9).

    MNISTLAB_DATA=../shared/data PYTHONPATH=src python benchmarks/pair_reader.py [--train 60000] [--epochs 6]

`read` loses most of its touching numbers where no cut separates two digits, or a cut leaves one digit's stroke
on the other's side (docs/benchmarks.md, "Reading whole numbers"). A reader of pairs would take such a piece
whole and name both digits. This trains one (the `cnn` recipe's layers with 100 outputs, "00" to "99") on pairs of
MNIST training digits 0-53999 drawn and framed exactly as the not-a-digit detector's pair negatives
(`rejection._pair`, `rejection._frame`: touching, overlapping by up to a fifth, or a little apart, as one 28x28
picture), and scores it on pairs of the held-out training digits 54000-59999 (never the test set): the share of
pairs whose two digits it names, against what the `cnn` run in RUN reads from the same two digits alone (the
bound a perfect cut would give). `read` now uses a pair reader built on this measurement (src/mnistlab/pairs.py:
101 classes, "not a pair" among them, fitted with every run). Never part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def labelled_pairs(n: int, digits: np.ndarray, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`n` framed pairs, their labels (10 * first + second) and the two digits' indices."""
    from mnistlab import rejection

    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(digits), (n, 2))
    x = np.stack([rejection._frame(rejection._pair(rng, digits, (int(i), int(j)))) for i, j in picks])
    return x, 10 * labels[picks[:, 0]] + labels[picks[:, 1]], picks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="?", help="a cnn run directory, for the single-digit bound (optional)")
    ap.add_argument("--train", type=int, default=60000, help="training pairs (default 60000)")
    ap.add_argument("--test", type=int, default=5000, help="held-out pairs (default 5000)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--data-dir")
    args = ap.parse_args()

    import keras

    from mnistlab.data import load_data

    (x_train, y_train), _ = load_data("mnist", args.data_dir)
    digits = x_train.astype(np.float32) / 255
    t = time.perf_counter()
    xs, ys, _ = labelled_pairs(args.train, digits[:54000], y_train[:54000], seed=1)
    xt, yt, picks = labelled_pairs(args.test, digits[54000:], y_train[54000:], seed=2)
    print(f"{len(xs)} training and {len(xt)} held-out pairs drawn in {time.perf_counter() - t:.0f} s")
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Flatten(), keras.layers.Dropout(0.5), keras.layers.Dense(100, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    t = time.process_time()
    model.fit(xs[..., None], ys, batch_size=128, epochs=args.epochs, validation_split=0.1, verbose=2)
    print(f"trained in {time.process_time() - t:.0f} s of CPU")
    p = model.predict(xt[..., None], verbose=0)
    right = p.argmax(1) == yt
    print(f"pairs named right: {right.mean():.2%} of {len(yt)} held-out pairs")
    confident = p.max(1) >= 0.9
    print(f"  with confidence >= 0.9: {confident.mean():.1%} of pairs, {right[confident].mean():.2%} of them right")
    if args.run:
        from mnistlab.runs import load_run

        run = load_run(args.run)
        alone = run.predict_proba(digits[54000:][picks.reshape(-1)]).argmax(1).reshape(-1, 2)
        truth = y_train[54000:][picks]
        both = (alone == truth).all(1)
        print(f"the run reading each digit alone (the bound of a perfect cut): {both.mean():.2%}")


if __name__ == "__main__":
    main()
