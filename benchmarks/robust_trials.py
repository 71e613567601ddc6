"""Which training augmentations make `best` (and `fast`) read other writers' digits better: train variants, keep
the models, then score them with benchmarks/other_writers.py.

    # 1. the training data as one file (MNIST's training split only; the test split is never loaded)
    PYTHONPATH=src python benchmarks/robust_trials.py data --out /tmp/mnist_train.npz
    # 2. look at what each variant's augmentation does to 8 training digits
    PYTHONPATH=src python benchmarks/robust_trials.py show --data /tmp/mnist_train.npz --out /tmp/aug.png
    # 3. train the variants (any Keras backend; on a GPU with KERAS_BACKEND=jax several run side by side)
    PYTHONPATH=src python benchmarks/robust_trials.py train --data /tmp/mnist_train.npz --out /tmp/trials \\
        --variants base stroke all
    #    (--synthetic 0.1: add 10% digits of other hands, the detector's fonts and pens photographed; docs/benchmarks.md)
    # 4. score them on the development sets (seed 0): other_writers.py, with this module's layers registered
    PYTHONPATH=src python benchmarks/robust_trials.py score --model /tmp/trials/*.keras --seed 0

Every variant trains on MNIST's training images 0-53999 only, as `best` does with its 10% validation split, so
images 54000-59999 (other_writers.py's source digits) stay unseen; `train` reports accuracy on them as it is
(`val_accuracy` in `<variant>-s<seed>.json`). The network, optimiser, schedule, epochs and batch are the recipe's own
(`recipes.best_model`, `recipes.fast_model`); only the augmentation layers in front differ. Never part of the
test suite; never MNIST's test set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

HELD_OUT = 54000  # images from here on are other_writers.py's sources: never trained on


def augmentation(name: str) -> list:
    """The augmentation layers of a variant (its name: base, aspect, shear, stroke, elastic, blur, all)."""
    import keras
    from keras import layers

    from robust_layers import RandomElasticWarp, RandomSlant, RandomStrokeWidth

    base = [layers.RandomRotation(10 / 360, fill_mode="constant"),
            layers.RandomTranslation(0.1, 0.1, fill_mode="constant")]
    zoom = layers.RandomZoom(0.1, fill_mode="constant")
    # Height and width zoomed independently: the digit's aspect changes (a 1 stretched wider, an 0 narrower).
    aspect = layers.RandomZoom(height_factor=(-0.1, 0.1), width_factor=(-0.25, 0.25), fill_mode="constant")
    shear = RandomSlant(0.2, fill_mode="constant")  # slant either way, up to a fifth across
    stroke = RandomStrokeWidth(0.6)
    elastic = RandomElasticWarp(magnitude=1.5, smoothness=4.0, rate=0.5)  # Keras' own: see robust_layers.py
    blur = layers.RandomGaussianBlur(factor=0.5, kernel_size=3, sigma=(0.1, 0.8), value_range=(0, 1))
    variants = {
        "base": [*base, zoom],
        "aspect": [*base, aspect],
        "shear": [*base, zoom, shear],
        "stroke": [*base, zoom, stroke],
        "elastic": [*base, zoom, elastic],
        "blur": [*base, zoom, blur],
        "all": [stroke, elastic, *base, aspect, shear, blur],
        "fast_all": [stroke, elastic, *base, aspect, shear, blur],
        "fast_base": [],
    }
    del keras
    return variants[name]


VARIANTS = ["base", "aspect", "shear", "stroke", "elastic", "blur", "all", "fast_all", "fast_base"]


def build(name: str, steps: int, epochs: int):
    from mnistlab import recipes

    if name.startswith("fast"):
        return recipes.fast_model(steps, epochs, augmentation(name))
    return recipes.best_model(steps, epochs, augmentation(name))


def cmd_data(args: argparse.Namespace) -> None:
    from mnistlab.data import load_dataset

    data = load_dataset("mnist", args.data_dir, splits=("train",))
    np.savez_compressed(args.out, x=data.x_train, y=data.y_train)
    print(f"wrote {args.out}: {len(data.x_train)} training images")


def _load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as z:
        return z["x"], z["y"]


def cmd_show(args: argparse.Namespace) -> None:
    from PIL import Image

    x, _ = _load(args.data)
    sample = (x[:8].astype(np.float32) / 255.0)[..., None]
    rows = [np.concatenate(list(sample[..., 0]), 1)]
    for name in args.variants:
        model_input = sample
        for layer in augmentation(name):
            model_input = layer(model_input, training=True)
        rows.append(np.concatenate(list(np.asarray(model_input)[..., 0]), 1))
    grid = np.clip(np.concatenate(rows, 0), 0, 1)
    Image.fromarray((grid * 255).astype(np.uint8)).resize((grid.shape[1] * 3, grid.shape[0] * 3),
                                                          Image.Resampling.NEAREST).save(args.out)
    print(f"wrote {args.out}: first row the digits, then one row per variant: {', '.join(args.variants)}")


def cmd_train(args: argparse.Namespace) -> None:
    import keras

    from mnistlab.recipes import get_recipe

    x, y = _load(args.data)
    xs = (x.astype(np.float32) / 255.0)[..., None]
    onehot = np.eye(10, dtype=np.float32)[y]
    args.out.mkdir(parents=True, exist_ok=True)
    n = min(args.limit or HELD_OUT, HELD_OUT)
    train_x, train_y = xs[:n], onehot[:n]
    if args.synthetic:
        # Other "writers": digits in the not-a-digit detector's fonts and pens (none of them a benchmark's font),
        # each put on paper and cut out by preprocessing as a user's picture is (rejection._photographed).
        from mnistlab import rejection

        t = time.perf_counter()
        extra, labels = rejection.font_digits(round(args.synthetic * n), np.random.default_rng(args.seed),
                                              photographed=1.0)
        print(f"{len(extra)} synthetic digits in {time.perf_counter() - t:.0f} s", flush=True)
        order = np.random.default_rng(args.seed + 1).permutation(n + len(extra))
        train_x = np.concatenate([train_x, extra[..., None]])[order]
        train_y = np.concatenate([train_y, np.eye(10, dtype=np.float32)[labels]])[order]
    for name in args.variants:
        keras.utils.set_random_seed(args.seed)
        recipe = get_recipe("fast" if name.startswith("fast") else "best")
        epochs = args.epochs or recipe.epochs
        steps = -(-len(train_x) // recipe.batch_size)
        model = build(name, steps, epochs)
        t = time.perf_counter()
        model.fit(train_x, train_y, batch_size=recipe.batch_size, epochs=epochs, verbose=2)
        took = time.perf_counter() - t
        proba = model.predict(xs[HELD_OUT:], batch_size=1000, verbose=0)
        val = float(np.mean(proba.argmax(1) == y[HELD_OUT:]))
        # Saved without the optimiser's state (an uncompiled clone): a third of the size, and all that scoring needs.
        bare = model.__class__.from_config(model.get_config())
        bare.set_weights(model.get_weights())
        tag = f"{name}-s{args.seed}" + (f"-syn{args.synthetic:g}" if args.synthetic else "")
        bare.save(args.out / f"{tag}.keras")
        result = {"variant": name, "recipe": recipe.name, "epochs": epochs, "images": n, "seconds": round(took, 1),
                  "synthetic": len(train_x) - n,
                  "val_accuracy": val, "backend": keras.backend.backend(), "seed": args.seed}
        (args.out / f"{tag}.json").write_text(json.dumps(result, indent=1))
        print(json.dumps(result), flush=True)


def main() -> None:
    if sys.argv[1:2] == ["score"]:  # other_writers.py's own arguments, once the layers are registered
        import other_writers
        import robust_layers  # noqa: F401

        sys.argv = [other_writers.__file__, *sys.argv[2:]]
        return other_writers.main()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("score", help="benchmarks/other_writers.py on trial models (its arguments: --model ... --seed S)")
    d = sub.add_parser("data", help="write MNIST's training split as one .npz")
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--data-dir", default=os.environ.get("MNISTLAB_DATA"))
    s = sub.add_parser("show", help="a PNG of what each variant's augmentation does to 8 digits")
    s.add_argument("--data", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--variants", nargs="+", choices=VARIANTS, default=VARIANTS[1:7])
    t = sub.add_parser("train", help="train variants, save <variant>-s<seed>.keras and .json")
    t.add_argument("--data", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--variants", nargs="+", choices=VARIANTS, default=VARIANTS)
    t.add_argument("--epochs", type=int, help="default: the recipe's")
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--limit", type=int, help="train on the first N images only (a quick check; default all 54,000)")
    t.add_argument("--synthetic", type=float, default=0.0,
                   help="add this share (of the MNIST images) of font and pen digits, photographed (default 0)")
    args = ap.parse_args()
    {"data": cmd_data, "show": cmd_show, "train": cmd_train}[args.cmd](args)


if __name__ == "__main__":
    main()
