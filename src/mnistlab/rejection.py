"""Knowing when a picture is not a digit: a small detector over the 28x28 input and the model's probabilities.

The score of a picture is the log-odds, from small convolutional networks evaluated in NumPy (`MEMBERS` of them,
each fitted on its own draw of negatives, their log-odds averaged), that it is *not* one of the training images'
kind. Its inputs are things every inference engine gives: the preprocessed 28x28 image, and beside it
(`extras`) the model's sorted log-probabilities and ink shape statistics. No layer inside the model is read, so
the same score works for a Keras model, an ensemble or an exported one (onnxruntime), and a server needs no Keras
for it.

It is fitted at the end of training (`fit`, with Keras: seconds for a small run, about three minutes for a
full-size one on 2 cores) on the run's training images (positives) against negatives drawn here at 28x28
(`negatives`): letters and symbols in 16 fonts that are none of the benchmark's (`TRAIN_FONTS`) and as
hand-drawn pen strokes (`PEN_LETTERS`), doodles, grids and ruled lines,
blobs, stains and textures, and Fashion-MNIST's training items where Debian's dataset-fashion-mnist is
installed; and pairs of training digits side by side (`pairs`: what `read` renders when it takes two touching
neighbours for one digit). Digits in the same fonts and pens are positives too, so the detector learns shapes, not a font's or
a pen's style. Half of the generated pictures (`PHOTOGRAPHED`) reach it through `images.preprocess`'s own steps,
as a user's picture does, rather than framed here. The threshold is the score that refuses `REFUSE_SHARE` of held-out training digits (never the
test set). Measured in docs/benchmarks.md (benchmarks/not_digits.py).

Runs fitted before the convolutional detector hold a version-1 file (a one-hidden-layer network over PCA
coordinates and the same extras), runs fitted before the averaged networks a version-3 file (one network);
`Rejector.load` reads every version and each scores as it was fitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

# 1: the first detector (PCA features, one hidden layer); 3: one convolutional network (16-32-64); 4: MEMBERS wider
# convolutional networks (WIDTHS), each fitted on its own draw of negatives, their log-odds averaged (2 never shipped)
VERSION = 4
# Development sets (benchmarks/rejection_dev.py, seeds 100 / 200, `cnn`): one 16-32-64 network refused 74.4 / 69.6%
# (seed 1) and 77.4 / 73.7% (seed 3) of non-digits, one 32-64-128 network 78.1 / 72.6% and 78.9 / 77.0%, those two
# averaged 81.1 / 77.8%, and the two that `fit` draws for a run of seed 1, 75.2 / 76.3%: a single network's
# refusals moved by up to 8 points with its seed, the average less. A third network added 0.5 points. Each member
# costs about a minute and a half of fitting for a full-size run on 2 cores.
MEMBERS = 2
WIDTHS = (32, 64, 128)  # the members' first and second convolutions and hidden layer
# Share of held-out training digits the threshold refuses. Chosen on the development sets of
# benchmarks/rejection_dev.py (seeds 100 and 200; never MNIST's test set): see docs/benchmarks.md.
REFUSE_SHARE = 0.003
MAX_NEGATIVES = 8000
PAIRS = 0.2  # and, on top of the negatives, this many pairs of digits per negative (`pairs`)
MAX_POSITIVES = 16000
EPOCHS = 10  # development set seed 100, cnn: 6 epochs on half these images refused 71% of non-digits, this 77%
# A small training set (tests, `--limit`) gets proportionally fewer epochs, at least MIN_EPOCHS: the fit stays
# cheap beside that run's own training.
FULL_SIZE, MIN_EPOCHS = 40000, 3
# Characters that are (or are written like) digits are left out of the negatives: O, I, l, S, Z, b, q, ... Near
# lookalikes a font draws differently from its digits (B, G, Q, Y, T, L, brackets) stay in: the font's own
# digits are positives beside them.
LOOKALIKES = set("OoIilJ|SsZzbgq/\\()-_.,:;'`\"!")
LETTERS = "".join(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz@#$%&*+=<>?~^[]{}" if c not in LOOKALIKES)


@dataclass(frozen=True)
class Rejector:
    """A fitted not-a-digit detector: its weights (by name), the refusal threshold and its feature set."""

    weights: dict[str, np.ndarray] = field(repr=False)
    threshold: float  # a score above this is refused
    version: int = VERSION
    # Where the run has a checked ONNX copy of this detector (`keras_scorer`, written by `mnistlab export`):
    # a function (x, proba) -> log-odds running it with onnxruntime, used instead of the NumPy layers.
    runtime: Any = field(default=None, repr=False, compare=False)

    def score(self, x: np.ndarray, proba: np.ndarray) -> np.ndarray:
        """Log-odds that each (N, 28, 28) image in [0, 1] with probabilities (N, 10) is not a digit."""
        w = self.weights
        x = np.asarray(x, np.float32).reshape(-1, 28, 28)
        if self.runtime is not None:
            return self.runtime(x, np.asarray(proba, np.float32))
        if self.version == 1:
            f = (_features_v1(x, proba, w["mean"], w["components"], w["variances"]) - w["feat_mean"]) / w["feat_std"]
            return (np.maximum(f @ w["w1"] + w["b1"], 0) @ w["w2"] + w["b2"])[:, 0]
        raw = extras(x, proba)
        scores = []
        for m in self.members():
            e = (raw - m["feat_mean"]) / m["feat_std"]
            # In batches: bounded memory for large inputs.
            scores.append(np.concatenate([_conv_forward(x[i: i + 256], e[i: i + 256], m)
                                          for i in range(0, len(x), 256)] or [np.zeros(0, np.float32)]))
        return scores[0] if len(scores) == 1 else np.mean(scores, axis=0, dtype=np.float32)

    def members(self) -> list[dict[str, np.ndarray]]:
        """The weights of each convolutional network (one for version 3, `MEMBERS` for version 4), by layer name."""
        if self.version == 3:
            return [self.weights]
        count = sum(1 for k in self.weights if k.endswith("_conv1_k"))
        return [{k[len(f"m{i}_"):]: v for k, v in self.weights.items() if k.startswith(f"m{i}_")} for i in range(count)]

    def with_threshold_for(self, held: np.ndarray, held_proba: np.ndarray) -> "Rejector":
        """This detector with its threshold set to refuse `REFUSE_SHARE` of these held-out digits (and their
        model's probabilities): how `fit` sets it, and how a fine-tuned run sets it again for its own model."""
        score = self.score(held, held_proba)
        threshold = float(np.quantile(score, 1 - REFUSE_SHARE)) if len(score) else 0.0
        return Rejector(self.weights, threshold, self.version)

    def refuse(self, x: np.ndarray, proba: np.ndarray) -> np.ndarray:
        """Whether each image is refused as not a digit."""
        return self.score(x, proba) > self.threshold

    def save(self, path: Path) -> None:
        """Write the detector to an .npz file atomically."""
        from .fsutil import save_arrays

        save_arrays(path, self.weights, threshold=np.float32(self.threshold), version=np.int32(self.version))

    @classmethod
    def load(cls, path: Path) -> "Rejector":
        """Read a detector written by `save` (any version; version 1 files have no "version")."""
        from .fsutil import load_arrays

        weights, settings = load_arrays(path, ("threshold", "version"))
        return cls(weights, float(settings["threshold"]), int(settings.get("version", 1)))


def keras_scorer(rejector: Rejector) -> Any:
    """The whole score of a version-3 or -4 detector as one Keras model: inputs "image" (N, 28, 28) in [0, 1] and
    "probabilities" (N, 10), output the log-odds (N, 1); what `mnistlab export` converts to ONNX with Keras' own
    exporter, so that a server runs the detector in one onnxruntime call instead of some fifty small NumPy ones per
    network (version 3: 0.06 against 0.15 ms for one picture). The extras are the same formulas as `extras` in Keras' operations
    (counts are exact in float32; sums and logarithms agree to rounding: `export` checks the scores against NumPy).
    """
    if rejector.version < 3:
        raise ValueError(f"only a convolutional detector (version 3 or later) has a Keras form (this one is version "
                         f"{rejector.version})")
    from .backend import import_keras

    keras = import_keras()
    ops = keras.ops
    members = rejector.members()

    class Extras(keras.layers.Layer):
        """`extras`, normalised for each member as `Rejector.score` normalises it."""

        def call(self, x: Any, p: Any) -> Any:
            m = ops.cast(ops.greater(x, 0.35), "float32")
            area = ops.sum(m, axis=(1, 2)) + 1e-6
            perimeter = ops.sum(ops.abs(m[:, 1:] - m[:, :-1]), axis=(1, 2)) + \
                ops.sum(ops.abs(m[:, :, 1:] - m[:, :, :-1]), axis=(1, 2))
            rows, cols = ops.sum(ops.max(m, axis=2), axis=1), ops.sum(ops.max(m, axis=1), axis=1)
            cross_r = ops.sum(ops.abs(m[:, 14, 1:] - m[:, 14, :-1]), axis=1) / 2
            cross_c = ops.sum(ops.abs(m[:, 1:, 14] - m[:, :-1, 14]), axis=1) / 2
            solid = ops.sum(ops.cast(ops.greater(x, 0.9), "float32"), axis=(1, 2)) / area
            stats = ops.stack([2 * area / ops.maximum(perimeter, 1.0), area / ops.maximum(rows * cols, 1.0),
                               ops.sum(x, axis=(1, 2)) / 100, solid, rows / 20, cols / 20, cross_r, cross_c], axis=1)
            top = ops.log(ops.clip(ops.top_k(p, 4)[0], 1e-12, 1.0))
            raw = ops.concatenate([top, stats], axis=1)
            return [(raw - m["feat_mean"]) / m["feat_std"] for m in members]

    image, proba = keras.Input((28, 28), name="image"), keras.Input((10,), name="probabilities")
    pixels, normalised = keras.layers.Reshape((28, 28, 1))(image), Extras()(image, proba)
    outputs = []
    for m, e in zip(members, normalised):
        net = _keras_net(len(m["feat_mean"]), _widths(m))
        for name in ("conv1", "conv2", "dense", "out"):
            net.get_layer(name).set_weights([m[f"{name}_k"], m[f"{name}_b"]])
        outputs.append(net([pixels, e]))
    out = outputs[0] if len(outputs) == 1 else keras.layers.Average()(outputs)
    model = keras.Model([image, proba], out, name="not_a_digit")
    model([np.zeros((1, 28, 28), np.float32), np.full((1, 10), 0.1, np.float32)])  # exporters need a called model
    return model


def _shape_stats(x: np.ndarray) -> np.ndarray:
    """Ink statistics of (N, 28, 28) images: stroke width, box fill, mass, solid share, rows and columns, pieces."""
    m = x > 0.35
    area = m.sum((1, 2)).astype(np.float32) + 1e-6
    mi = m.astype(np.int8)
    perimeter = np.abs(np.diff(mi, axis=1)).sum((1, 2)) + np.abs(np.diff(mi, axis=2)).sum((1, 2))
    rows, cols = m.any(2).sum(1), m.any(1).sum(1)
    # Crossings along the middle row and column: how many strokes a line through the digit meets.
    cross_r = np.abs(np.diff(mi[:, 14, :], axis=1)).sum(1) / 2
    cross_c = np.abs(np.diff(mi[:, :, 14], axis=1)).sum(1) / 2
    return np.stack([2 * area / np.maximum(perimeter, 1), area / np.maximum(rows * cols, 1), x.sum((1, 2)) / 100,
                     (x > 0.9).sum((1, 2)) / area, rows / 20, cols / 20, cross_r, cross_c], 1).astype(np.float32)


def _log_top(proba: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.sort(proba, axis=1)[:, ::-1], 1e-12, 1.0)).astype(np.float32)[:, :4]


def extras(x: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """What the convolutional detector takes beside the image: the 4 largest log-probabilities, ink statistics."""
    return np.concatenate([_log_top(proba), _shape_stats(x.reshape(-1, 28, 28))], 1)


def _features_v1(x: np.ndarray, proba: np.ndarray, mean: np.ndarray, components: np.ndarray,
                 variances: np.ndarray) -> np.ndarray:
    """Version 1's inputs: PCA coordinates, the distance from the PCA basis, log-probabilities, ink statistics."""
    flat = x.reshape(len(x), -1).astype(np.float32) - mean
    z = flat @ components.T
    residual = np.maximum((flat * flat).sum(1) - (z * z).sum(1), 0)
    return np.concatenate([z / np.sqrt(variances), np.log1p(residual)[:, None], _log_top(proba),
                           _shape_stats(x.reshape(-1, 28, 28))], 1)


def _conv_relu_pool(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """A 3x3 'valid' convolution (N, H, W, C) -> ReLU -> 2x2 max pooling, as Keras' Conv2D and MaxPooling2D.

    Every product is one 2-D matrix product (BLAS once, not once per image row as a 4-D operand gets from
    `np.matmul`), with the same sums in the same order: the values are those of the per-row products, bit for bit.
    """
    n, h, w, c_in = x.shape
    h, w = h - 2, w - 2
    if c_in == 1:  # one channel: one product with the 9 taps side by side (nine with 1 would be slow)
        taps = np.lib.stride_tricks.sliding_window_view(x[..., 0], (3, 3), axis=(1, 2)).reshape(n * h * w, 9)
        y = taps @ kernel.reshape(9, -1)
    else:  # nine shifted matrix products, one per kernel tap, summed in the order i, j
        y = None
        for i in range(3):
            for j in range(3):
                tap = np.ascontiguousarray(x[:, i: i + h, j: j + w]).reshape(-1, c_in) @ kernel[i, j]
                y = tap if y is None else np.add(y, tap, out=y)
    y += bias
    np.maximum(y, 0, out=y)
    y = y.reshape(n, h, w, -1)[:, : h // 2 * 2, : w // 2 * 2]
    return np.maximum(np.maximum(y[:, 0::2, 0::2], y[:, 0::2, 1::2]), np.maximum(y[:, 1::2, 0::2], y[:, 1::2, 1::2]))


def _conv_forward(x: np.ndarray, e: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    """The detector network's logit, in NumPy (the same layers as `_keras_net`)."""
    h = _conv_relu_pool(x[..., None], w["conv1_k"], w["conv1_b"])
    h = _conv_relu_pool(h, w["conv2_k"], w["conv2_b"]).reshape(len(x), -1)
    h = np.maximum(np.concatenate([h, e], 1) @ w["dense_k"] + w["dense_b"], 0)
    return (h @ w["out_k"] + w["out_b"])[:, 0]


# --- negatives ----------------------------------------------------------------------------------------------------


def _ink_box(ink: np.ndarray) -> np.ndarray | None:
    """Ink coverage cropped to the box of its visible ink (above 0.05); None where there is none."""
    rows, cols = np.flatnonzero(ink.max(1) > 0.05), np.flatnonzero(ink.max(0) > 0.05)
    return ink[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1] if rows.size else None


def _frame(ink: np.ndarray) -> np.ndarray:
    """Crop ink coverage to its box, fit the longer side to 20 px and centre it by mass in 28x28 (as MNIST)."""
    from PIL import Image

    out = np.zeros((28, 28), np.float32)
    v = _ink_box(ink)
    if v is None:
        return out
    h, w = v.shape
    nh, nw = max(1, round(h * 20 / max(h, w))), max(1, round(w * 20 / max(h, w)))
    small = np.clip(np.asarray(Image.fromarray(v.astype(np.float32), "F").resize((nw, nh), Image.Resampling.BOX)), 0, 1)
    mass = small.sum()
    cy = (small.sum(1) * np.arange(nh)).sum() / mass if mass else nh / 2
    cx = (small.sum(0) * np.arange(nw)).sum() / mass if mass else nw / 2
    top, left = int(np.clip(round(14 - cy), 0, 28 - nh)), int(np.clip(round(14 - cx), 0, 28 - nw))
    out[top: top + nh, left: left + nw] = small
    # Strokes saturate like MNIST's: the median of the ink is full strength.
    level = np.median(out[out > 0.2]) if (out > 0.2).any() else 1.0
    return np.clip(out / max(level, 0.3), 0, 1)


# Share of the generated pictures (negatives, font and redrawn digits alike) that reach the detector as a user's do:
# drawn on paper at a random size, with lighting and noise, and cut out by `images.preprocess` itself rather than
# framed here. The detector scores what preprocessing makes of a picture (its thresholds, thickened strokes, specks
# dropped), so it should learn from that too. A small training set (tests, `--limit`) photographs proportionally
# fewer (`_fit_member`): each costs a preprocessing call, about 7 ms.
PHOTOGRAPHED = 0.5


def _look(ink: np.ndarray, rng: np.random.Generator, photographed: float) -> np.ndarray:
    """Ink coverage as the detector sees it: `_photographed` for a `photographed` share, otherwise `_frame`d."""
    # (No draw when none is: the pair reader's font digits, `pairs.py`, stay what they were.)
    return _photographed(ink, rng) if photographed > 0 and rng.random() < photographed else _frame(ink)


def _photographed(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage put on paper (random size, margin, ink and paper levels, lighting, blur, noise; now and then
    bright on dark, as a canvas) and turned into 28x28 by `images.preprocess`'s own steps; `_frame` where those
    find no digit in it."""
    import cv2

    from .errors import NoDigitError
    from .images import preprocess

    v = _ink_box(ink)
    if v is None:
        return _frame(ink)
    v = v.astype(np.float32)
    # Development sets (docs/benchmarks.md): pictures 60-220 px long, always unevenly lit, gained more than cheaper
    # ones of 40-140 px lit so a third of the time, which also refused more real digits at the same threshold.
    f = rng.uniform(60, 220) / max(v.shape)
    v = cv2.resize(v, (max(1, round(v.shape[1] * f)), max(1, round(v.shape[0] * f))), interpolation=cv2.INTER_LINEAR)
    m = int(rng.uniform(0.1, 0.6) * max(v.shape))
    v = np.clip(np.pad(v, m), 0, 1)
    h, w = v.shape
    paper, ink_level = rng.uniform(0.7, 1.0), rng.uniform(0.0, 0.4)
    light = (1 + rng.uniform(-0.12, 0.12) * np.linspace(-1, 1, w)[None, :]
             + rng.uniform(-0.12, 0.12) * np.linspace(-1, 1, h)[:, None])
    grey = (paper + (ink_level - paper) * v) * light
    if rng.random() < 0.5:
        grey = cv2.GaussianBlur(grey.astype(np.float32), (0, 0), rng.uniform(0.5, 1.5))
    grey = grey + rng.normal(0, rng.uniform(0.0, 0.03), grey.shape)
    if rng.random() < 0.15:
        grey = 1 - grey
    try:
        return preprocess(np.clip(grey, 0, 1).astype(np.float32))
    except NoDigitError:
        return _frame(ink)


def _affine(im: Any, rng: np.random.Generator) -> Any:
    from PIL import Image

    a, shear, sx = np.deg2rad(rng.uniform(-15, 15)), rng.uniform(-0.3, 0.3), rng.uniform(0.8, 1.2)
    c, s = np.cos(a), np.sin(a)
    inv = np.linalg.inv(np.array([[c, -s], [s, c]]) @ np.array([[sx, shear], [0, 1]]))
    cx, cy = im.width / 2, im.height / 2
    off = np.array([cx, cy]) - inv @ np.array([cx, cy])
    return im.transform(im.size, Image.Transform.AFFINE, (inv[0, 0], inv[0, 1], off[0], inv[1, 0], inv[1, 1], off[1]),
                        resample=Image.Resampling.BILINEAR)


# Fonts the negatives' letters and the positives' font digits are drawn in. None of them is a font of the
# benchmark (benchmarks/synth_digits.py's FONT_FILES and synth_nondigits.py's DejaVu): the published refusal rates
# are on fonts the detector never saw. Debian packages (apt-get install): fonts-femkeklaver fonts-kristi
# fonts-cabinsketch fonts-ecolier-court fonts-leckerli-one fonts-freefont-ttf fonts-liberation fonts-dosis
# fonts-isabella fonts-lobster. Missing ones are skipped; Pillow's bundled font is always among them.
TRAIN_FONTS = ["truetype/femkeklaver/femkeklaver.ttf", "truetype/kristi/Kristi.ttf",
               "truetype/cabinsketch/CabinSketch-Regular.ttf", "truetype/cabinsketch/CabinSketch-Bold.ttf",
               "truetype/ecolier-court/Ecolier-court.ttf", "truetype/leckerli-one/LeckerliOne-Regular.ttf",
               "truetype/freefont/FreeSans.ttf", "truetype/freefont/FreeSerifItalic.ttf",
               "truetype/freefont/FreeMonoBold.ttf", "truetype/freefont/FreeSansBoldOblique.ttf",
               "truetype/liberation/LiberationSerif-Regular.ttf", "truetype/liberation/LiberationSansNarrow-Bold.ttf",
               "opentype/dosis/Dosis-Medium.otf", "opentype/dosis/Dosis-ExtraLight.otf",
               "truetype/isabella/Isabella.ttf", "opentype/lobster/lobster.otf"]
FONT_ROOT = Path("/usr/share/fonts")


def train_fonts() -> list[Path | None]:
    """The installed fonts of TRAIN_FONTS, and None for Pillow's bundled font."""
    return [FONT_ROOT / f for f in TRAIN_FONTS if (FONT_ROOT / f).is_file()] + [None]


def _font(path: Path | None, size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.truetype(str(path), size) if path is not None else ImageFont.load_default(size=size)


def _pen_width(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Re-draw a glyph's strokes with another pen: thin them to a core, then grow them to a random width."""
    import cv2

    m = (ink > 0.5).astype(np.uint8)
    height = int(np.ptp(np.flatnonzero(m.any(1)))) + 1 if m.any() else 1
    area, edges = m.sum(), np.abs(np.diff(m.astype(np.int8), axis=0)).sum() + np.abs(np.diff(m.astype(np.int8), axis=1)).sum()
    native = 2 * area / max(edges, 1)
    target = float(np.exp(rng.uniform(np.log(0.05), np.log(0.2)))) * height
    steps = int(round((target - native) / 2))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    if steps > 0:
        ink = cv2.dilate(ink, kernel, iterations=steps)
    elif steps < 0:
        thinner = cv2.erode(ink, kernel, iterations=min(-steps, max(0, int(native / 2) - 1)))
        ink = thinner if (thinner > 0.5).any() else ink
    return ink


def _elastic(ink: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """A smooth random displacement field (Simard et al. 2003): the wobble of a hand instead of a font's lines."""
    import cv2

    h, w = ink.shape
    coarse = rng.normal(0, strength * max(h, w), (2, 4, 4)).astype(np.float32)
    dx, dy = (cv2.resize(c, (w, h), interpolation=cv2.INTER_CUBIC) for c in coarse)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(ink, xx + dx, yy + dy, cv2.INTER_LINEAR, borderValue=0)


def _glyph(text: str, rng: np.random.Generator, font: Path | None = None) -> np.ndarray:
    """A character in `font`, drawn with a random pen width, wobbled, slanted and rotated."""
    from PIL import Image, ImageDraw

    f = _font(font, 64)
    x0, y0, x1, y1 = f.getbbox(text)
    im = Image.new("L", (max(1, x1 - x0) + 48, max(1, y1 - y0) + 48), 0)
    ImageDraw.Draw(im).text((24 - x0, 24 - y0), text, font=f, fill=255)
    ink = _pen_width(np.asarray(im, np.float32) / 255, rng)
    if rng.random() < 0.7:
        ink = _elastic(ink, rng, rng.uniform(0.005, 0.02))
    return np.asarray(_affine(Image.fromarray(ink, "F"), rng), np.float32)


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float) -> list[tuple[float, float]]:
    t = np.deg2rad(np.linspace(a0, a1, max(4, int(abs(a1 - a0) / 15))))
    return list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t)))


# Letters, symbols and doodles as pen strokes in a unit box (x right, y down), as commonly handwritten; and
# the ten digits the same way (positives: the detector learns shapes, not the pen). Hand-written here because no
# library ships stroke skeletons of the Latin alphabet.
PEN_LETTERS: dict[str, list[list[tuple[float, float]]]] = {
    "A": [[(0.1, 1), (0.5, 0), (0.9, 1)], [(0.28, 0.6), (0.72, 0.6)]],
    "E": [[(0.8, 0), (0.15, 0), (0.15, 1), (0.8, 1)], [(0.15, 0.5), (0.65, 0.5)]],
    "F": [[(0.85, 0), (0.2, 0), (0.2, 1)], [(0.2, 0.5), (0.65, 0.5)]],
    "H": [[(0.15, 0), (0.15, 1)], [(0.85, 0), (0.85, 1)], [(0.15, 0.5), (0.85, 0.5)]],
    "K": [[(0.2, 0), (0.2, 1)], [(0.8, 0), (0.22, 0.55), (0.8, 1)]],
    "M": [[(0.05, 1), (0.15, 0), (0.5, 0.65), (0.85, 0), (0.95, 1)]],
    "N": [[(0.15, 1), (0.15, 0), (0.85, 1), (0.85, 0)]],
    "R": [[(0.2, 1), (0.2, 0)] + _arc(0.45, 0.25, 0.35, 0.25, -90, 90)[1:] + [(0.2, 0.5), (0.85, 1)]],
    "P": [[(0.2, 1), (0.2, 0)] + _arc(0.45, 0.25, 0.35, 0.25, -90, 90)[1:] + [(0.2, 0.5)]],
    "C": [_arc(0.55, 0.5, 0.45, 0.5, -45, -315)],
    "U": [[(0.15, 0)] + _arc(0.5, 0.62, 0.35, 0.38, 180, 0) + [(0.85, 0)]],
    "V": [[(0.1, 0), (0.5, 1), (0.9, 0)]],
    "W": [[(0.0, 0), (0.25, 1), (0.5, 0.3), (0.75, 1), (1.0, 0)]],
    "X": [[(0.1, 0), (0.9, 1)], [(0.9, 0), (0.1, 1)]],
    "a": [_arc(0.45, 0.62, 0.35, 0.38, -20, 340), [(0.8, 0.3), (0.8, 0.85), (0.9, 1)]],
    "e": [[(0.12, 0.55), (0.88, 0.55)] + _arc(0.5, 0.55, 0.38, 0.45, 0, -300)],
    "h": [[(0.2, 0), (0.2, 1)], [(0.2, 0.65)] + _arc(0.5, 0.65, 0.3, 0.25, 180, 360) + [(0.8, 1)]],
    "m": [[(0.05, 0.4), (0.05, 1)], _arc(0.27, 0.6, 0.22, 0.2, 180, 360) + [(0.49, 1)],
          _arc(0.71, 0.6, 0.22, 0.2, 180, 360) + [(0.93, 1)]],
    "n": [[(0.2, 0.3), (0.2, 1)], _arc(0.5, 0.55, 0.3, 0.25, 180, 360) + [(0.8, 1)]],
    "r": [[(0.25, 0.3), (0.25, 1)], _arc(0.55, 0.55, 0.3, 0.25, 180, 300)],
    "u": [[(0.2, 0.3)] + _arc(0.5, 0.7, 0.3, 0.3, 180, 0) + [(0.8, 0.3), (0.8, 1)]],
    "w": [[(0.0, 0.3), (0.22, 1), (0.5, 0.45), (0.78, 1), (1.0, 0.3)]],
    "x": [[(0.15, 0.3), (0.85, 1)], [(0.85, 0.3), (0.15, 1)]],
    "k": [[(0.2, 0), (0.2, 1)], [(0.75, 0.35), (0.22, 0.7), (0.8, 1)]],
    "f": [_arc(0.6, 0.2, 0.25, 0.2, -10, -180) + [(0.35, 1)], [(0.1, 0.45), (0.7, 0.45)]],
    "+": [[(0.5, 0.05), (0.5, 0.95)], [(0.05, 0.5), (0.95, 0.5)]],
    "=": [[(0.05, 0.35), (0.95, 0.35)], [(0.05, 0.65), (0.95, 0.65)]],
    "#": [[(0.35, 0), (0.25, 1)], [(0.75, 0), (0.65, 1)], [(0.05, 0.33), (0.95, 0.33)], [(0.05, 0.67), (0.95, 0.67)]],
    "*": [[(0.5, 0), (0.5, 1)], [(0.07, 0.25), (0.93, 0.75)], [(0.93, 0.25), (0.07, 0.75)]],
    "%": [_arc(0.22, 0.2, 0.16, 0.18, 0, 360), [(0.85, 0), (0.15, 1)], _arc(0.78, 0.8, 0.16, 0.18, 0, 360)],
    "<": [[(0.9, 0.1), (0.1, 0.5), (0.9, 0.9)]],
    ">": [[(0.1, 0.1), (0.9, 0.5), (0.1, 0.9)]],
    "^": [[(0.1, 0.8), (0.5, 0.1), (0.9, 0.8)]],
    "~": [list(zip(np.linspace(0, 1, 20), 0.5 - 0.2 * np.sin(np.linspace(0, 2 * np.pi, 20))))],
    "?": [_arc(0.5, 0.28, 0.32, 0.26, 190, 420) + [(0.5, 0.7)], [(0.5, 0.92), (0.5, 0.95)]],
    "@": [_arc(0.52, 0.52, 0.18, 0.2, 0, 360), [(0.7, 0.35), (0.72, 0.7)] + _arc(0.5, 0.5, 0.45, 0.48, 30, 330)],
    "\u221a": [[(0.0, 0.6), (0.15, 0.5), (0.35, 1), (0.6, 0), (1.0, 0)]],
    "\u221e": [list(zip(0.5 + 0.45 * np.cos(t) / (1 + np.sin(t) ** 2), 0.5 + 0.45 * np.sin(t) * np.cos(t) / (1 + np.sin(t) ** 2)))
                for t in [np.linspace(0, 2 * np.pi, 40)]],
    "\u00b1": [[(0.5, 0.05), (0.5, 0.7)], [(0.1, 0.38), (0.9, 0.38)], [(0.1, 0.95), (0.9, 0.95)]],
    "\u00f7": [[(0.05, 0.5), (0.95, 0.5)], [(0.5, 0.15), (0.5, 0.18)], [(0.5, 0.82), (0.5, 0.85)]],
    "\u03c0": [[(0.05, 0.15), (0.95, 0.1)], [(0.32, 0.12), (0.28, 1)], [(0.7, 0.11), (0.72, 0.9), (0.85, 1)]],
    "\u20ac": [_arc(0.6, 0.5, 0.4, 0.5, -50, -310), [(0.0, 0.4), (0.6, 0.4)], [(0.0, 0.6), (0.55, 0.6)]],
    "\u2713": [[(0.0, 0.55), (0.35, 0.95), (1.0, 0.0)]],
    # doodles drawn in a few strokes
    "bolt": [[(0.6, 0.0), (0.15, 0.55), (0.55, 0.5), (0.3, 1.0), (0.9, 0.35), (0.5, 0.42), (0.85, 0.0)]],
    "smiley": [_arc(0.5, 0.5, 0.5, 0.5, 0, 360), [(0.33, 0.33), (0.33, 0.38)], [(0.67, 0.33), (0.67, 0.38)],
               _arc(0.5, 0.55, 0.28, 0.22, 20, 160)],
    "cloud": [_arc(0.25, 0.6, 0.2, 0.2, 90, 270) + _arc(0.5, 0.4, 0.25, 0.25, 180, 360)
              + _arc(0.78, 0.6, 0.2, 0.2, 270, 450) + [(0.25, 0.8)]],
    "flower": [_arc(0.5 + 0.28 * np.cos(a), 0.5 + 0.28 * np.sin(a), 0.2, 0.2, 0, 360) for a in np.arange(6) * np.pi / 3],
    "sun": [_arc(0.5, 0.5, 0.22, 0.22, 0, 360)] + [[(0.5 + 0.32 * np.cos(a), 0.5 + 0.32 * np.sin(a)),
                                                     (0.5 + 0.5 * np.cos(a), 0.5 + 0.5 * np.sin(a))]
                                                    for a in np.arange(8) * np.pi / 4],
}
PEN_DIGITS: dict[int, list[list[tuple[float, float]]]] = {
    0: [_arc(0.5, 0.5, 0.38, 0.5, -90, 275)],
    1: [[(0.3, 0.2), (0.55, 0), (0.55, 1)]],
    2: [_arc(0.5, 0.3, 0.35, 0.3, 200, 380) + [(0.1, 1), (0.9, 1)]],
    3: [_arc(0.5, 0.25, 0.33, 0.25, 200, 450) + _arc(0.5, 0.73, 0.38, 0.27, -90, 160)],
    4: [[(0.65, 1), (0.65, 0), (0.05, 0.7), (0.95, 0.7)]],
    5: [[(0.85, 0), (0.25, 0), (0.2, 0.45)] + _arc(0.5, 0.68, 0.38, 0.32, -130, 160)],
    6: [[(0.75, 0.02)] + _arc(0.5, 0.68, 0.35, 0.32, 230, 590)],
    7: [[(0.1, 0), (0.9, 0), (0.4, 1)]],
    8: [_arc(0.5, 0.25, 0.3, 0.25, 90, 450) + _arc(0.5, 0.73, 0.38, 0.27, -90, 270)],
    9: [_arc(0.5, 0.3, 0.35, 0.3, 20, 380) + [(0.8, 1)]],
}


def _pen(strokes: list[list[tuple[float, float]]], rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """Strokes in a unit box drawn by a hand: stretched, wobbling, with one pen width (OpenCV anti-aliased lines)."""
    import cv2

    ink = np.zeros((size, size), np.float32)
    scale = np.array([rng.uniform(0.45, 0.8), rng.uniform(0.7, 0.8)]) * size
    origin = (size - scale) / 2
    width = max(1, int(round(size * float(np.exp(rng.uniform(np.log(0.04), np.log(0.14)))))))
    for stroke in strokes:
        pts = np.asarray(stroke, np.float64)
        fine = np.linspace(0, len(pts) - 1, max(8, 6 * len(pts)))
        pts = np.stack([np.interp(fine, np.arange(len(pts)), pts[:, i]) for i in (0, 1)], 1)
        pts = pts + np.cumsum(rng.normal(0, 0.008, pts.shape), 0) + rng.normal(0, 0.02, 2)
        xy = np.round((origin + pts * scale) * 16).astype(np.int32)
        cv2.polylines(ink, [xy], False, 1.0, thickness=width, lineType=cv2.LINE_AA, shift=4)
    from PIL import Image

    return np.asarray(_affine(Image.fromarray(_elastic(ink, rng, rng.uniform(0.0, 0.015)), "F"), rng), np.float32)


def _strokes(rng: np.random.Generator) -> np.ndarray:
    """Doodles: smooth random curves, zigzags, stars, spirals, crosses, grids, ruled lines, arrows."""
    from PIL import Image, ImageDraw

    im = Image.new("L", (96, 96), 0)
    d = ImageDraw.Draw(im)
    width = int(rng.integers(3, 10))
    kind = rng.integers(8)
    t = np.linspace(0, 1, 40)
    if kind == 0:  # scribbles: several loops
        n = int(rng.integers(5, 12))
        pts = rng.uniform(10, 86, (n, 2))
        fine = np.linspace(0, n - 1, n * 10)
        xs, ys = np.interp(fine, np.arange(n), pts[:, 0]), np.interp(fine, np.arange(n), pts[:, 1])
        d.line(list(zip(xs, ys)), fill=255, width=width, joint="curve")
    elif kind == 1:  # zigzag
        k = int(rng.integers(3, 8))
        d.line([(10 + 76 * i / k, 48 + (-1) ** i * rng.uniform(10, 35)) for i in range(k + 1)], fill=255, width=width)
    elif kind == 2:  # a star
        k = int(rng.choice([5, 7]))
        r = rng.uniform(25, 40)
        pts = [(48 + r * np.sin(a), 48 - r * np.cos(a)) for a in np.arange(k + 1) * 2 * np.pi * (k // 2) / k]
        d.line(pts, fill=255, width=width, joint="curve")
    elif kind == 3:  # a spiral
        a = np.linspace(0, rng.uniform(2.5, 4.5) * 2 * np.pi, 150)
        d.line([(48 + 38 * u / a[-1] * np.cos(u), 48 + 38 * u / a[-1] * np.sin(u)) for u in a], fill=255, width=width)
    elif kind == 4:  # grid or ruled lines
        step = rng.uniform(10, 25)
        for y in np.arange(rng.uniform(0, step), 96, step):
            d.line([(0, y), (95, y)], fill=255, width=max(1, width // 3))
        if rng.random() < 0.5:
            for x in np.arange(rng.uniform(0, step), 96, step):
                d.line([(x, 0), (x, 95)], fill=255, width=max(1, width // 3))
    elif kind == 5:  # an arrow or a cross
        a = rng.uniform(0, 2 * np.pi)
        tip = (48 + 38 * np.cos(a), 48 + 38 * np.sin(a))
        d.line([(48 - 38 * np.cos(a), 48 - 38 * np.sin(a)), tip], fill=255, width=width)
        for side in (-1, 1):
            b = a + np.pi - side * rng.uniform(0.4, 0.8)
            d.line([tip, (tip[0] + 18 * np.cos(b), tip[1] + 18 * np.sin(b))], fill=255, width=width)
    elif kind == 6:  # a heart, a house or a smiley's outline with details
        x, y = 16 * np.sin(2 * np.pi * t) ** 3, -(13 * np.cos(2 * np.pi * t) - 5 * np.cos(4 * np.pi * t)
                                                  - 2 * np.cos(6 * np.pi * t) - np.cos(8 * np.pi * t))
        if rng.random() < 0.5:
            d.line([(48 + 2.3 * u, 48 + 2.3 * v) for u, v in zip(x, y)], fill=255, width=width)
        else:
            d.line([(12, 84), (12, 44), (48, 10), (84, 44), (84, 84), (12, 84)], fill=255, width=width)
            d.line([(40, 84), (40, 60), (56, 60), (56, 84)], fill=255, width=width)
    else:  # many short strokes (hatching)
        for _ in range(int(rng.integers(4, 12))):
            x0, y0 = rng.uniform(5, 90, 2)
            a = rng.uniform(0, np.pi)
            ln = rng.uniform(10, 40)
            d.line([(x0, y0), (x0 + ln * np.cos(a), y0 + ln * np.sin(a))], fill=255, width=width)
    from PIL import Image

    ink = _elastic(np.asarray(im, np.float32) / 255, rng, rng.uniform(0.0, 0.015))
    return np.asarray(_affine(Image.fromarray(ink, "F"), rng), np.float32)


def _blob(rng: np.random.Generator, digits: np.ndarray) -> np.ndarray:
    """Filled shapes: blots, rings of stain, clothing-like silhouettes, textures, a digit smeared into a blob."""
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
    kind = rng.integers(4)
    if kind == 0:  # a blot with a wavy edge, maybe with droplets
        ang = np.arctan2(yy - 32, xx - 32)
        r = 20 * (1 + sum(rng.normal(0, 0.15 / k) * np.cos(k * ang + rng.uniform(0, 6.3)) for k in range(2, 7)))
        r = r * np.sqrt(rng.uniform(0.5, 1.5) * np.cos(ang) ** 2 + rng.uniform(0.5, 1.5) * np.sin(ang) ** 2)
        ink = np.clip(r - np.hypot(yy - 32, xx - 32), 0, 1) * rng.uniform(0.5, 1)
        if rng.random() < 0.5:
            ink = np.clip(ink * (0.6 + 0.6 * rng.random((64, 64))), 0, 1)
        return ink
    if kind == 1:  # a silhouette: union of boxes and ellipses (shirts, shoes, bags)
        ink = np.zeros((64, 64), np.float32)
        for _ in range(int(rng.integers(2, 5))):
            cy, cx, hy, hx = rng.uniform(16, 48), rng.uniform(16, 48), rng.uniform(6, 22), rng.uniform(6, 22)
            if rng.random() < 0.5:
                ink = np.maximum(ink, ((np.abs(yy - cy) < hy) & (np.abs(xx - cx) < hx)).astype(np.float32))
            else:
                ink = np.maximum(ink, (((yy - cy) / hy) ** 2 + ((xx - cx) / hx) ** 2 < 1).astype(np.float32))
        return ink * rng.uniform(0.4, 1.0, (64, 64)).astype(np.float32) ** rng.uniform(0, 1)
    if kind == 2:  # texture: thresholded noise
        from PIL import Image

        grid = rng.standard_normal((int(rng.integers(3, 12)),) * 2).astype(np.float32)
        field = np.asarray(Image.fromarray(grid, "F").resize((64, 64), Image.Resampling.BICUBIC))
        return np.clip((field - rng.uniform(-0.5, 0.8)) * rng.uniform(1, 4), 0, 1)
    # a digit smeared into a blob: thick enough that its holes close
    from PIL import Image, ImageFilter

    im = Image.fromarray((digits[rng.integers(len(digits))] * 255).astype(np.uint8)).resize((64, 64))
    im = im.filter(ImageFilter.MaxFilter(int(rng.choice([9, 11, 13]))))
    return np.asarray(im, np.float32) / 255


def _pair(rng: np.random.Generator, digits: np.ndarray, pick: tuple[int, int] | None = None) -> np.ndarray:
    """Two training digits side by side, touching, overlapping a little or a little apart: what `read` renders
    when it takes two neighbours for one digit ("14" seen as an 8), which must score as no single digit.
    `pick`: the two digits' indices (drawn from `rng` when None)."""
    import cv2

    def ink(d: np.ndarray, scale: float) -> np.ndarray:
        big = cv2.resize(d, (int(56 * scale), int(56 * scale)), interpolation=cv2.INTER_LINEAR)
        rows, cols = np.flatnonzero(big.max(1) > 0.1), np.flatnonzero(big.max(0) > 0.1)
        return big[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1] if rows.size else big

    a, b = (ink(digits[rng.integers(len(digits)) if pick is None else pick[k]], rng.uniform(0.85, 1.15))
            for k in range(2))
    h = max(a.shape[0], b.shape[0])
    # b's left edge relative to a's right edge: overlapping by up to a fifth of the narrower, or a gap.
    shift = int(round(rng.uniform(-0.2, 0.1) * min(a.shape[1], b.shape[1]) if rng.random() < 0.8
                      else rng.uniform(0.1, 0.3) * h))
    ta, tb = (int(rng.integers(0, max(1, int(0.15 * h)) + h - q.shape[0] + 1)) for q in (a, b))
    canvas = np.zeros((int(1.15 * h) + 2, a.shape[1] + max(0, shift) + b.shape[1]), np.float32)
    canvas[ta: ta + a.shape[0], : a.shape[1]] = a
    left = max(0, a.shape[1] + shift)
    np.maximum(canvas[tb: tb + b.shape[0], left: left + b.shape[1]], b, out=canvas[tb: tb + b.shape[0], left: left + b.shape[1]])
    return canvas


def fashion_items() -> np.ndarray | None:
    """Fashion-MNIST's *training* images (the benchmark draws from its test split), or None where not installed."""
    from .data import load_dataset
    from .errors import MnistlabError

    try:
        return load_dataset("fashion-mnist", splits=("train",), download=False).x_train
    except MnistlabError:
        return None


# Shares of the negatives by kind (without Fashion-MNIST its share goes to the others).
MIX = {"font letter": 0.25, "pen letter": 0.2, "doodle": 0.2, "blob": 0.15, "fashion": 0.2}


def negatives(n: int, rng: np.random.Generator, digits: np.ndarray, fashion: np.ndarray | None = None,
              photographed: float = PHOTOGRAPHED) -> np.ndarray:
    """`n` 28x28 pictures that are not digits: letters and symbols (fonts, pen strokes), doodles and lines, blobs
    and textures, clothing (`fashion`: Fashion-MNIST images); a `photographed` share cut out by preprocessing."""
    kinds = [k for k in MIX if k != "fashion" or fashion is not None]
    share = np.array([MIX[k] for k in kinds])
    fonts = train_fonts()
    pen = [c for c in PEN_LETTERS]
    out = np.zeros((n, 28, 28), np.float32)
    for i, kind in enumerate(rng.choice(kinds, n, p=share / share.sum())):
        if kind == "font letter":
            ink = _glyph(str(rng.choice(list(LETTERS))), rng, fonts[int(rng.integers(len(fonts)))])
        elif kind == "pen letter":
            ink = _pen(PEN_LETTERS[pen[int(rng.integers(len(pen)))]], rng)
        elif kind == "doodle":
            ink = _strokes(rng)
        elif kind == "blob":
            ink = _blob(rng, digits)
        else:
            ink = fashion[int(rng.integers(len(fashion)))].astype(np.float32) / 255  # type: ignore[index]
        out[i] = _look(ink, rng, photographed)
    return out


def pairs(n: int, rng: np.random.Generator, digits: np.ndarray) -> np.ndarray:
    """`n` pairs of `digits` framed as one 28x28 picture (`_pair`): negatives that teach `read` to split them."""
    return np.stack([_frame(_pair(rng, digits)) for _ in range(n)] or [np.zeros((28, 28), np.float32)])[:n]


def font_digits(n: int, rng: np.random.Generator, photographed: float = PHOTOGRAPHED) -> tuple[np.ndarray, np.ndarray]:
    """`n` digits in the fonts and pens of the letter negatives (positives: the detector learns shapes); a
    `photographed` share cut out by preprocessing."""
    labels = rng.integers(0, 10, n)
    fonts = train_fonts()
    ink = [_glyph(str(d), rng, fonts[int(rng.integers(len(fonts)))]) if rng.random() < 0.6 else _pen(PEN_DIGITS[d], rng)
           for d in labels]
    return np.stack([_look(i, rng, photographed) for i in ink]), labels


# --- fitting ------------------------------------------------------------------------------------------------------


def _redraw(digit: np.ndarray, rng: np.random.Generator, photographed: float = PHOTOGRAPHED) -> np.ndarray:
    """A 28x28 training digit drawn again at 4x: another pen width, a hand's wobble, reframed as MNIST."""
    import cv2

    big = cv2.resize(digit, (112, 112), interpolation=cv2.INTER_CUBIC)
    ink = _pen_width(np.clip(big, 0, 1), rng)
    return _look(_elastic(ink, rng, rng.uniform(0.0, 0.015)), rng, photographed)


def _keras_net(n_extras: int, widths: tuple[int, int, int] = WIDTHS) -> Any:
    """One detector network: two small convolutions over the image, joined by the extras, one hidden layer, one
    logit (version 3's were 16-32-64 wide)."""
    import keras

    image, more = keras.Input((28, 28, 1)), keras.Input((n_extras,))
    h = keras.layers.Conv2D(widths[0], 3, activation="relu", name="conv1")(image)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(widths[1], 3, activation="relu", name="conv2")(h)
    h = keras.layers.Flatten()(keras.layers.MaxPooling2D()(h))
    h = keras.layers.Dense(widths[2], activation="relu", name="dense")(keras.layers.Concatenate()([h, more]))
    return keras.Model([image, more], keras.layers.Dense(1, name="out")(h))


def _widths(member: dict[str, np.ndarray]) -> tuple[int, int, int]:
    """A network's layer widths, read off its weights."""
    return member["conv1_k"].shape[-1], member["conv2_k"].shape[-1], member["dense_k"].shape[-1]


def fit(x_train: np.ndarray, proba_train: np.ndarray, predict_proba: Any, seed: int = 0,
        log: Callable[[str], None] | None = None) -> Rejector:
    """Fit the detector on training images (uint8 or [0, 1] floats), their probabilities and the model.

    `predict_proba` maps (N, 28, 28) images to (N, 10) probabilities (for the generated pictures). The last tenth
    of the training images only sets the threshold. `log`, if given, is told as each network starts.
    """
    x = np.asarray(x_train)
    x = x.astype(np.float32) / 255 if x.dtype == np.uint8 else x.astype(np.float32)
    cut = int(len(x) * 0.9)
    weights = {}
    for m in range(MEMBERS):
        if log is not None:
            log(f"mnistlab: fitting the not-a-digit detector: network {m + 1} of {MEMBERS}")
        # Each member draws its own positives and negatives: networks that err on different pictures average out.
        member = _fit_member(x[:cut], proba_train[:cut], predict_proba, np.random.default_rng([seed, 10, m]), len(x),
                             seed=seed * MEMBERS + m)
        weights.update({f"m{m}_{k}": v for k, v in member.items()})
    return Rejector(weights, 0.0).with_threshold_for(x[cut:], proba_train[cut:])


def _fit_member(x: np.ndarray, proba: np.ndarray, predict_proba: Any, rng: np.random.Generator, n_train: int,
                seed: int) -> dict[str, np.ndarray]:
    """One network of the detector, fitted on a draw of positives from `x` and of generated negatives."""
    import keras

    pick = rng.permutation(len(x))[:MAX_POSITIVES]
    pos, pos_p = x[pick], proba[pick]
    n_neg = min(len(pos), MAX_NEGATIVES)
    shot = PHOTOGRAPHED * min(1.0, n_train / FULL_SIZE)
    neg = np.concatenate([negatives(n_neg, rng, pos, fashion_items(), shot), pairs(int(PAIRS * n_neg), rng, pos)])
    # More positives: digits in the negatives' fonts and pens, and training digits with another pen and a wobble
    # (photographed digits reach the detector thicker, thinner and less tidy than MNIST's).
    fonts, _ = font_digits(max(1, n_neg // 2), rng, shot)
    redrawn = np.stack([_redraw(d, rng, shot) for d in pos[: len(pos) // 4]] or [np.zeros((28, 28), np.float32)])
    more = np.concatenate([neg, fonts, redrawn])
    gen_p = predict_proba(more)
    xs = np.concatenate([pos, more])
    e = extras(xs, np.concatenate([pos_p, gen_p]))
    ys = np.concatenate([np.zeros(len(pos)), np.ones(len(neg)), np.zeros(len(fonts) + len(redrawn))]).astype(np.float32)
    feat_mean, feat_std = e.mean(0), e.std(0) + 1e-6
    keras.utils.set_random_seed(seed)
    net = _keras_net(e.shape[1])
    net.compile(keras.optimizers.Adam(2e-3), keras.losses.BinaryCrossentropy(from_logits=True))
    epochs = max(MIN_EPOCHS, min(EPOCHS, round(EPOCHS * n_train / FULL_SIZE)))
    net.fit([xs[..., None], (e - feat_mean) / feat_std], ys, batch_size=128, epochs=epochs, shuffle=True, verbose=0)
    weights = {"feat_mean": feat_mean, "feat_std": feat_std}
    for name in ("conv1", "conv2", "dense", "out"):
        kernel, bias = net.get_layer(name).get_weights()
        weights[f"{name}_k"], weights[f"{name}_b"] = kernel, bias
    return {k: np.asarray(v, np.float32) for k, v in weights.items()}


def fit_run(run: Any, data_dir: str | None = None) -> Rejector:
    """A detector for an existing MNIST run (e.g. one trained before a change here), fitted as training would."""
    from .data import load_data

    (x_train, _), _ = load_data(run.settings.dataset, data_dir)
    return fit(x_train, run.predict_proba(x_train), run.predict_proba, seed=run.settings.seed)
