"""Train a stronger digit model for benchmarks/handwriting.py: a deeper convnet that sees rotated, shifted,
zoomed and thinner or bolder MNIST digits while it trains, so it reads other people's handwriting better.

    PYTHONPATH=src python benchmarks/train_strong.py --out strong.keras      # about 8 min on 2 CPU cores

The augmentation layers are Keras' own and are idle at inference, so the saved .keras file loads in safe
mode like any run's model and takes (28, 28, 1) inputs in [0, 1]. Never part of the test suite.
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


def stroke_variants(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy of uint8 digits (N, 28, 28) where a third are made bolder and a third thinner (3x3 grey max/min)."""
    out = x.copy()
    pad = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    shifted = np.stack([pad[:, i: i + 28, j: j + 28] for i in range(3) for j in range(3)])
    choice = rng.integers(0, 3, len(x))
    out[choice == 1] = shifted.max(axis=0)[choice == 1]
    thin = shifted.min(axis=0)
    keep = choice == 2
    # Thinning must not erase a digit: only where enough ink survives.
    keep &= (thin > 127).sum(axis=(1, 2)) > 0.4 * (x > 127).sum(axis=(1, 2))
    out[keep] = thin[keep]
    return out


def build():
    import keras
    from keras import layers

    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.RandomRotation(0.04, fill_mode="constant"),  # +-14 degrees
            layers.RandomZoom(0.12, fill_mode="constant"),
            layers.RandomTranslation(0.08, 0.08, fill_mode="constant"),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dropout(0.4),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.4),
            layers.Dense(10, activation="softmax"),
        ],
        name="cnn_augmented",
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("strong.keras"))
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data-dir", default=None, help="folder holding mnist/ (default: mnistlab's search order)")
    args = ap.parse_args()

    import keras

    from mnistlab.data import load_data

    keras.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_data("mnist", args.data_dir)
    rng = np.random.default_rng(args.seed)
    x = np.concatenate([x_train, stroke_variants(x_train, rng)])
    y = np.concatenate([y_train, y_train])
    model = build()
    start = time.perf_counter()
    model.fit(x[..., None] / 255.0, y, batch_size=128, epochs=args.epochs, verbose=2,
              validation_data=(x_test[..., None] / 255.0, y_test))
    loss, acc = model.evaluate(x_test[..., None] / 255.0, y_test, verbose=0)
    print(f"test accuracy {acc:.2%}  ({time.perf_counter() - start:.0f} s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
