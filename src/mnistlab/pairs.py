"""Reading two touching digits as one pair: a small network that names both digits of a merged piece.

`read` cuts touching digits apart along least-ink paths (reading.py), but some pairs have no path that separates
them (a 1 leaning into a 0, a 2's top bar lying on a 9), and some cuts leave one digit's stroke on the other's side
("1405" read "6405"). A pair reader takes such a piece whole: the same 28x28 rendering `read` gives any candidate
(the longer side, here the width, fitted to 20 pixels). After its Viterbi choice, `read` shows it the runs of
pieces that make one or two digits of the best reading, and puts the pair in their place where it is sure
(`reading._pair_candidates`, `reading._read_pairs`).

The network is the `cnn` recipe's layers with 101 outputs ("00"-"99" and `NOT_A_PAIR`), fitted at the end of
training beside the not-a-digit detector (`fit`), on pairs of the run's own training digits and, for a quarter,
of digits in the detector's training fonts and pens: half placed as people's touching digits touch, by ink (a 1
slid under a 7's bar), half as the detector's pair negatives (`rejection._pair`: boxes overlapping by up to a
fifth of the narrower digit, or a little apart); see `_pair`. One digit
alone, three digits and a pair cut inside a digit are "not a pair", so that its confidence says whether a
candidate is a pair at all. A temperature fitted on pairs of held-out digits calibrates it as the model is. It
runs in NumPy (`PairReader.proba`, the detector's layers), so the TensorFlow-free path reads pairs too.

Measured in docs/benchmarks.md ("Pairs read whole", "Pairs placed as people's touch"; benchmarks/pair_reader.py
measured the idea first: 15 epochs named 94.5% of pairs of digits the run never trained on, against 97.3% for the
model reading each digit alone after a perfect cut).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

VERSION = 1
WIDTHS = (32, 64)  # the two convolutions: the `cnn` recipe's
# Pairs drawn: two per training digit, at most MAX_PAIRS (a full-size run: 97,200, about 6 minutes on 2 cores).
# benchmarks/pair_reader.py, 60,000 pairs: 6 epochs named 91.5% of held-out pairs, 15 epochs 94.5% (92 and 219 s of
# CPU on 2 cores). One per digit (48,600), all placed by box, read 1.0 point fewer development numbers and 2.5
# fewer touching ones (the mean of both halves; docs/benchmarks.md, "Pairs placed as people's touch").
MAX_PAIRS = 100000
PAIRS_PER_DIGIT = 2
# Class 100 is "not a pair": one digit alone, three digits, or a pair cut off inside a digit (what a candidate of
# the wrong width renders as), this many per pair, so that the reader's confidence says whether it is a pair.
OTHERS = 0.4
NOT_A_PAIR = 100
# This share of the pairs is of digits in the detector's training fonts and pens (`rejection.font_digits`, none of
# the benchmarks' fonts), drawn from FONT_DIGITS of them: people's digits are not all MNIST's.
FONT_PAIRS = 0.25
FONT_DIGITS = 6000
EPOCHS = 12
# A small training set (tests, `--limit`) draws PAIRS_PER_DIGIT pairs a digit, and proportionally fewer epochs.
FULL_SIZE, MIN_EPOCHS = 40000, 2
HELD_PAIRS = 3000  # pairs of held-out digits the temperature is fitted on


@dataclass(frozen=True)
class PairReader:
    """A fitted pair reader: its weights (by layer name) and the temperature of its softmax."""

    weights: dict[str, np.ndarray] = field(repr=False)
    temperature: float = 1.0
    version: int = VERSION

    def proba(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (N, 101) of each (N, 28, 28) picture in [0, 1] being the pair 10 * a + b, or
        (the last) not a pair."""
        from .rejection import _conv_relu_pool

        x = np.asarray(x, np.float32).reshape(-1, 28, 28)
        w = self.weights
        out = []
        for i in range(0, len(x), 256):  # in batches: bounded memory for large inputs
            h = _conv_relu_pool(x[i: i + 256, ..., None], w["conv1_k"], w["conv1_b"])
            h = _conv_relu_pool(h, w["conv2_k"], w["conv2_b"]).reshape(len(h), -1)
            out.append((h @ w["out_k"] + w["out_b"]) / np.float32(self.temperature))
        logits = np.concatenate(out) if out else np.zeros((0, NOT_A_PAIR + 1), np.float32)
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def save(self, path: Path) -> None:
        """Write the reader to an .npz file atomically."""
        from .fsutil import save_arrays

        save_arrays(path, self.weights, temperature=np.float32(self.temperature), version=np.int32(self.version))

    @classmethod
    def load(cls, path: Path) -> "PairReader":
        """Read a reader written by `save`."""
        from .fsutil import load_arrays

        weights, settings = load_arrays(path, ("temperature", "version"))
        return cls(weights, float(settings["temperature"]), int(settings["version"]))


def marginals(pair_proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first and the second digit's probabilities (N, 10) each, from pair probabilities (N, 101): given that
    it is a pair."""
    p = np.asarray(pair_proba, np.float64).reshape(-1, pair_proba.shape[-1])[:, :NOT_A_PAIR]
    p = (p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)).reshape(-1, 10, 10)
    return p.sum(axis=2).astype(np.float32), p.sum(axis=1).astype(np.float32)


# How the two digits of a drawn pair are placed (`_pair`). Most touching pairs people write touch by ink, not by
# box: a 1 slides under a 7's bar, a 4's arm reaches over a 2, so their boxes overlap by half or more and the pair
# is narrower than it is tall. A share TOUCH are placed so (b slid left until its ink meets a's on some row, then
# crossing it by up to INK_OVERLAP of the height); the rest as the detector's pair negatives (`rejection._pair`:
# boxes overlapping by up to a fifth of the narrower digit, or a little apart). Sizes and baselines vary as a line
# of writing does.
TOUCH = 0.5
INK_OVERLAP = 0.08
SIZES = (0.8, 1.2)  # each digit's height, relative
SHIFT = 0.2  # the most one digit's top sits below the other's, as a share of the height


def _ink(d: np.ndarray, height: float) -> np.ndarray:
    """A digit's ink cropped to its box, `height` pixels tall."""
    import cv2

    d = np.asarray(d, np.float32)
    rows, cols = np.flatnonzero(d.max(1) > 0.1), np.flatnonzero(d.max(0) > 0.1)
    if not rows.size:
        return np.zeros((max(1, int(height)), 1), np.float32)
    crop = d[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
    f = height / crop.shape[0]
    return cv2.resize(crop, (max(1, int(round(crop.shape[1] * f))), max(1, int(round(height)))),
                      interpolation=cv2.INTER_LINEAR)


def _touching(a: np.ndarray, b: np.ndarray, ta: int, tb: int) -> int | None:
    """The column of b's left edge (from a's left edge) where b's ink first meets a's on some shared row; None
    when no row holds ink of both."""
    top, bottom = max(ta, tb), min(ta + a.shape[0], tb + b.shape[0])
    if bottom <= top:
        return None
    ra, rb = a[top - ta: bottom - ta] > 0.3, b[top - tb: bottom - tb] > 0.3
    both = ra.any(axis=1) & rb.any(axis=1)
    if not both.any():
        return None
    right = a.shape[1] - np.argmax(ra[:, ::-1], axis=1)  # one past a's last ink on each row
    left = np.argmax(rb, axis=1)  # b's first ink on each row
    return int((right - left)[both].max())


def _pair(rng: np.random.Generator, digits: np.ndarray, pick: tuple[int, int] | None = None) -> np.ndarray:
    """Two `digits` side by side as one picture of ink (see TOUCH); `pick`: their indices (drawn when None)."""
    from .rejection import _pair as box_pair

    i, j = (int(rng.integers(len(digits))) for _ in range(2)) if pick is None else pick
    if rng.random() >= TOUCH:
        return box_pair(rng, digits, (i, j))
    h = 56.0
    a, b = _ink(digits[i], h * rng.uniform(*SIZES)), _ink(digits[j], h * rng.uniform(*SIZES))
    tall = max(a.shape[0], b.shape[0])
    ta, tb = (int(round(rng.uniform(0, SHIFT) * tall)) + tall - q.shape[0] for q in (a, b))
    ta, tb = ta - min(ta, tb), tb - min(ta, tb)
    left = _touching(a, b, ta, tb)
    if left is None:
        return box_pair(rng, digits, (i, j))
    left = max(0, left - int(rng.integers(0, int(INK_OVERLAP * tall) + 1)))
    canvas = np.zeros((max(ta + a.shape[0], tb + b.shape[0]), max(a.shape[1], left + b.shape[1])), np.float32)
    canvas[ta: ta + a.shape[0], : a.shape[1]] = a
    region = canvas[tb: tb + b.shape[0], left: left + b.shape[1]]
    np.maximum(region, b, out=region)
    return canvas


def draw(n: int, rng: np.random.Generator, digits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`n` framed pairs of `digits` (floats in [0, 1]) and their labels, 10 * first + second."""
    from .rejection import _frame

    picks = rng.integers(0, len(digits), (n, 2))
    x = np.stack([_frame(_pair(rng, digits, (int(i), int(j)))) for i, j in picks] or [np.zeros((28, 28), np.float32)])
    return x[:n], (10 * labels[picks[:, 0]] + labels[picks[:, 1]]).astype(np.int64)


def others(n: int, rng: np.random.Generator, digits: np.ndarray) -> np.ndarray:
    """`n` framed pictures that are not a pair: one digit alone, three digits, or a pair cut inside a digit."""
    from .rejection import _frame

    out = []
    for kind in rng.choice(3, n, p=[0.4, 0.2, 0.4]):
        if kind == 0:
            canvas = np.asarray(digits[int(rng.integers(len(digits)))], np.float32)
        elif kind == 1:
            canvas, third = _pair(rng, digits), _pair(rng, digits)
            gap = int(rng.integers(0, 4))
            h = max(canvas.shape[0], third.shape[0])
            joined = np.zeros((h, canvas.shape[1] + gap + third.shape[1]), np.float32)
            joined[: canvas.shape[0], : canvas.shape[1]] = canvas
            joined[: third.shape[0], canvas.shape[1] + gap:] = third
            canvas = joined[:, : int(joined.shape[1] * rng.uniform(0.7, 0.8))]  # three digits, the third cut or not
        else:
            canvas = _pair(rng, digits)
            w = canvas.shape[1]
            at = int(w * rng.uniform(0.4, 0.65))  # a digit and a sliver of its neighbour, or a digit cut
            canvas = canvas[:, :at] if rng.random() < 0.5 else canvas[:, w - at:]
        out.append(_frame(canvas))
    return np.stack(out or [np.zeros((28, 28), np.float32)])[:n]


def _with_others(x: np.ndarray, y: np.ndarray, m: int, rng: np.random.Generator,
                 digits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs `x` (labels `y`) and `m` pictures of `digits` that are not a pair (labelled `NOT_A_PAIR`) after them."""
    return np.concatenate([x, others(m, rng, digits)]), np.concatenate([y, np.full(m, NOT_A_PAIR)])


def _keras_net() -> Any:
    """The network (the `cnn` recipe's layers, 101 outputs as logits), named as `PairReader.proba` reads it."""
    import keras

    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(WIDTHS[0], 3, activation="relu", name="conv1"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(WIDTHS[1], 3, activation="relu", name="conv2"), keras.layers.MaxPooling2D(),
        keras.layers.Flatten(), keras.layers.Dropout(0.5), keras.layers.Dense(NOT_A_PAIR + 1, name="out")])


def fit(x_train: np.ndarray, y_train: np.ndarray, seed: int = 0, log: Callable[[str], None] | None = None) -> PairReader:
    """Fit a pair reader on training digits (uint8 or [0, 1] floats) and their labels.

    Pairs of the first nine tenths train it; pairs of the last tenth fit its temperature.
    """
    import keras

    from .calibration import fit_temperature

    x = np.asarray(x_train)
    x = x.astype(np.float32) / 255 if x.dtype == np.uint8 else x.astype(np.float32)
    y = np.asarray(y_train).astype(np.int64)
    cut = int(len(x) * 0.9)
    rng = np.random.default_rng([seed, 20])
    n = min(MAX_PAIRS, max(PAIRS_PER_DIGIT * cut, 1))
    epochs = max(MIN_EPOCHS, min(EPOCHS, round(EPOCHS * len(x) / FULL_SIZE)))
    if log is not None:
        log(f"mnistlab: fitting the pair reader ({n} pairs, {epochs} epochs)")
    n_font = int(FONT_PAIRS * n) if FONT_PAIRS else 0
    xs, ys = draw(n - n_font, rng, x[:cut], y[:cut])
    if n_font:
        from .rejection import font_digits

        fonts, font_labels = font_digits(min(FONT_DIGITS, n_font), rng, photographed=0.0)  # framed, as `read` renders
        xf, yf = draw(n_font, rng, fonts, font_labels)
        xs, ys = np.concatenate([xs, xf]), np.concatenate([ys, yf])
    xs, ys = _with_others(xs, ys, int(OTHERS * n), rng, x[:cut])
    keras.utils.set_random_seed(seed)
    net = _keras_net()
    net.compile(keras.optimizers.Adam(), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    net.fit(xs[..., None], ys, batch_size=128, epochs=epochs, shuffle=True, verbose=0)
    weights = {}
    for name in ("conv1", "conv2", "out"):
        kernel, bias = net.get_layer(name).get_weights()
        weights[f"{name}_k"], weights[f"{name}_b"] = np.asarray(kernel, np.float32), np.asarray(bias, np.float32)
    reader = PairReader(weights)
    if len(x) - cut >= 10:
        xh, yh = draw(min(HELD_PAIRS, 10 * (len(x) - cut)), rng, x[cut:], y[cut:])
        xh, yh = _with_others(xh, yh, int(OTHERS * len(xh)), rng, x[cut:])
        reader = PairReader(weights, fit_temperature(reader.proba(xh), yh))
    return reader


def fit_run(run: Any, data_dir: str | None = None) -> PairReader:
    """A pair reader for an existing MNIST run (e.g. one trained before pairs were read), fitted as training
    would: on the run's training images, less the validation split it held out."""
    from .data import load_data
    from .recipes import get_recipe

    (x_train, y_train), _ = load_data(run.settings.dataset, data_dir)
    at = get_recipe(run.settings.recipe).fitted_part(len(x_train))
    return fit(x_train[:at], y_train[:at], seed=run.settings.seed)
