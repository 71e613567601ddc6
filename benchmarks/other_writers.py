"""How an MNIST-trained run reads digits acquired the way other handwritten-digit collections were acquired.

MNIST's digits were binarised, size-normalised into a 20x20 box keeping their aspect ratio, anti-aliased and
centred by mass in a 28x28 field, bright ink on black. Other public collections did each step differently,
and a model (or mnistlab.images.preprocess) tuned on MNIST's way can fail on theirs. Each set here takes the
same source digits and acquires them one other way:

    usps        USPS zip codes (Hull 1994): 16x16 greyscale, the digit size-normalised to FILL the box (aspect
                not kept), anti-aliased; half dark on white, half white on black
    semeion     Semeion (Buscema 1998): 16x16 binary, the digit stretched to fill the box, thick strokes,
                black on white
    optdigits   UCI optdigits (Alpaydin & Kaynak 1998, NIST's form software): 32x32 binary bitmaps, the
                digit stretched to fill the box, black on white
    tablet      pen tablets / touch screens (pendigits-like): the digit's skeleton redrawn with a thin
                constant-width pen (1.5-3% of its height) on a 200-400 px white canvas, black, no blur
    marker      a felt marker: the skeleton redrawn with a very thick pen (18-28% of the height), black on
                white, 200 px canvas
    bw_form     a form field scanned in black and white (NIST SD19-like, ~64 px): binary, part of the box
                printed around the field (a horizontal and/or vertical line near the edges, sometimes
                touching the digit), salt noise
    historical  ARDIS (Swedish church records 1895-1970): yellow/brown paper, brown faded ink of uneven
                strength, paper texture, slight blur, JPEG quality 60-90, tightly cropped (box + 2-6%),
                60-120 px
    slanted     clean black on white (200 px) but sheared by 15-30 degrees either way
    tight_crop  greyscale dark on white, cropped exactly to the digit's box (no margin), 40-100 px

plus `mnist`, the source digits as they are (a control row, left out of the mean over sets).

The source digits are MNIST's training images 54000-59999, which the cnn, fast and best recipes hold out
for validation (mlp and dense512 train on them: their figures here are optimistic, and the script says so);
never the test set, which is not even loaded. Each set uses the same source digits (per digit, seeded), so
the sets differ only in how the digits were acquired. `--font-share` replaces a share of them with
handwriting-font digits (synth_digits.glyph: other "writers"). Strokes for tablet, marker, semeion and
bw_form are the source's skeleton (skimage.morphology.skeletonize of the upsampled, thresholded digit)
redrawn with a round pen of constant width. Stretching to fill is capped at 2.5x the other axis' scale so
that a narrow 1 becomes a bar of the box's height, not a filled square.

Every picture is encoded (PNG, JPEG for historical) and decoded by mnistlab like a user's file; a picture
preprocess refuses (no ink found) or the run's not-a-digit detector refuses counts as wrong, and the number
refused is reported. Seed 0 is the development seed; use other seeds to confirm a change.

    MNISTLAB_DATA=/work/shared/data python benchmarks/other_writers.py --model runs/cnn --grid /tmp/ow.png
    python benchmarks/other_writers.py --model runs/cnn --save /tmp/ow
    mnistlab evaluate runs/cnn --images /tmp/ow/tablet --plots /tmp/ow-plots   # (default plots: RUN/evaluations/)

(`mnistlab evaluate --images` counts a picture in which preprocess finds no ink as wrong, as this script does, and
reports the refusals beside.) Never part of the test suite.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import synth_digits  # noqa: E402
from mnistlab import images  # noqa: E402
# What the model sees (N, 28, 28), which pictures preprocess refused (no ink found, unreadable), and each picture's
# inputs as `predict` weighs them: the same as the not-a-digit benchmark's (a Picture has `.data` bytes too).
from not_digits import preprocess_all  # noqa: E402

HELD_OUT = (54000, 60000)  # MNIST training images the validating recipes never train on
BASE = 320  # height in pixels of a source digit at high resolution (every set draws from it, downscaling)
MAX_STRETCH = 2.5  # "fill the box": one axis' scale at most this many times the other's


# ------------------------------------------------------------------------------------------------- source digits


@dataclass
class Source:
    """A source digit at high resolution: `mask` True on ink, cropped to the digit's box, about BASE px tall."""

    label: int
    origin: str  # "mnist:54012" or "font:dkg"
    mask: np.ndarray
    mnist: np.ndarray | None = None  # the 28x28 uint8 original, for an MNIST source
    _skeleton: np.ndarray | None = field(default=None, repr=False)

    @property
    def skeleton(self) -> np.ndarray:
        if self._skeleton is None:
            from skimage.morphology import skeletonize

            self._skeleton = skeletonize(self.mask)
        return self._skeleton


def _crop(a: np.ndarray, level: float = 0.0) -> np.ndarray:
    """`a` cropped to the box of its values above `level`."""
    rows, cols = np.flatnonzero((a > level).any(1)), np.flatnonzero((a > level).any(0))
    if not len(rows):
        raise RuntimeError("empty digit")
    return a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def from_mnist(x: np.ndarray, label: int, index: int) -> Source:
    """An MNIST digit upsampled (cubic, then smoothed so no pixel steps show) and thresholded at half ink."""
    g = _crop(x.astype(np.float32) / 255.0, 0.1)
    g = np.pad(g, 2)
    f = BASE / max(1, g.shape[0] - 4)
    big = cv2.resize(g, (round(g.shape[1] * f), round(g.shape[0] * f)), interpolation=cv2.INTER_CUBIC)
    big = cv2.GaussianBlur(big, (0, 0), 0.35 * f)
    return Source(label, f"mnist:{index}", _crop(big > 0.5), mnist=x)


def from_font(digit: int, font: Path, rng: np.random.Generator) -> Source:
    """A handwriting-font digit (synth_digits.glyph: its own slant, rotation and pen width)."""
    ink = synth_digits.glyph(digit, font, rng, BASE)
    return Source(digit, f"font:{font.stem}", _crop(np.pad(ink, 2) > 0.5))


def pen(src: Source, width: float) -> np.ndarray:
    """The source's skeleton redrawn with a round pen `width` times the skeleton's height: ink coverage in [0, 1]."""
    skel = _crop(src.skeleton.astype(np.uint8))
    w = max(1.0, width * skel.shape[0])
    pad = int(np.ceil(w / 2)) + 2
    skel = np.pad(skel, pad)
    d = cv2.distanceTransform((skel == 0).astype(np.uint8), cv2.DIST_L2, 5)
    return _crop(np.clip(w / 2 + 0.5 - d, 0, 1).astype(np.float32))


def shape(src: Source) -> np.ndarray:
    """The source's own strokes as ink coverage."""
    return src.mask.astype(np.float32)


# ---------------------------------------------------------------------------------------------------- helpers


def scale_to(ink: np.ndarray, height: int) -> np.ndarray:
    """Ink scaled to `height` pixels, aspect kept (area averaging: anti-aliased)."""
    w = max(1, round(ink.shape[1] * height / ink.shape[0]))
    return cv2.resize(ink, (w, height), interpolation=cv2.INTER_AREA)


def stretch(ink: np.ndarray, size: int) -> np.ndarray:
    """Ink stretched to fill a size x size box (aspect not kept, one axis' scale capped at MAX_STRETCH times the
    other's), centred."""
    h, w = ink.shape
    sy, sx = size / h, size / w
    sx, sy = min(sx, MAX_STRETCH * sy), min(sy, MAX_STRETCH * sx)
    nh, nw = min(size, max(1, round(h * sy))), min(size, max(1, round(w * sx)))
    small = cv2.resize(ink, (nw, nh), interpolation=cv2.INTER_AREA)
    out = np.zeros((size, size), np.float32)
    t, left = (size - nh) // 2, (size - nw) // 2
    out[t:t + nh, left:left + nw] = small
    return out


def place(ink: np.ndarray, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Ink put at a random position on an h x w canvas (kept inside it)."""
    out = np.zeros((h, w), np.float32)
    ih, iw = min(h, ink.shape[0]), min(w, ink.shape[1])
    t, left = int(rng.integers(0, h - ih + 1)), int(rng.integers(0, w - iw + 1))
    out[t:t + ih, left:left + iw] = ink[:ih, :iw]
    return out


def dark_on_white(ink: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(255 * (1 - ink)), 0, 255).astype(np.uint8)


def encode(a: np.ndarray | Image.Image, fmt: str = "PNG", quality: int = 90) -> bytes:
    im = a if isinstance(a, Image.Image) else Image.fromarray(a)
    buf = io.BytesIO()
    im.save(buf, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buf.getvalue()


# -------------------------------------------------------------------------------------------------------- sets


def make_mnist(src: Source, rng: np.random.Generator) -> bytes:
    """Control: the MNIST source as it is (a font source put through MNIST's own normalisation)."""
    if src.mnist is not None:
        return encode(src.mnist)
    ink = shape(src)
    h, w = ink.shape
    f = 20 / max(h, w)
    small = cv2.resize(ink, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    cy, cx = np.argwhere(small > 0).mean(0) if small.any() else (0, 0)
    out = np.zeros((28, 28), np.float32)
    t = int(np.clip(round(14 - cy), 0, 28 - small.shape[0]))
    left = int(np.clip(round(14 - cx), 0, 28 - small.shape[1]))
    out[t:t + small.shape[0], left:left + small.shape[1]] = small
    return encode(np.rint(out * 255).astype(np.uint8))


def make_usps(src: Source, rng: np.random.Generator) -> bytes:
    ink = stretch(shape(src), 16)
    return encode(dark_on_white(ink) if rng.random() < 0.5 else dark_on_white(1 - ink))


def make_semeion(src: Source, rng: np.random.Generator) -> bytes:
    ink = stretch(pen(src, rng.uniform(0.14, 0.20)), 16)
    return encode(dark_on_white(ink > 0.5))


def make_optdigits(src: Source, rng: np.random.Generator) -> bytes:
    ink = stretch(shape(src), 32)
    return encode(dark_on_white(ink > 0.5))


def make_tablet(src: Source, rng: np.random.Generator) -> bytes:
    size = int(rng.integers(200, 401))
    ink = scale_to(pen(src, rng.uniform(0.015, 0.03)), int(size * rng.uniform(0.5, 0.8)))
    return encode(Image.fromarray(dark_on_white(place(ink, size, size, rng))).convert("RGB"))


def make_marker(src: Source, rng: np.random.Generator) -> bytes:
    ink = scale_to(pen(src, rng.uniform(0.18, 0.28)), int(200 * rng.uniform(0.55, 0.8)))
    return encode(dark_on_white(place(ink, 200, 200, rng)))


def make_bw_form(src: Source, rng: np.random.Generator) -> bytes:
    size = int(rng.integers(56, 73))
    ink = scale_to(pen(src, rng.uniform(0.08, 0.13)), int(size * rng.uniform(0.55, 0.78)))
    field_ = place(ink, size, size, rng) > 0.5
    rows, cols = np.flatnonzero(field_.any(1)), np.flatnonzero(field_.any(0))
    lines = np.zeros_like(field_)
    which = rng.choice(["h", "v", "hv"], p=[0.45, 0.2, 0.35])
    # A printed box line: beside the digit's box (offset >0), or touching/crossing it (offset <= 0).
    if "h" in which:
        th = int(rng.integers(1, 4))
        off = int(rng.integers(-2, 6))
        y = rows[-1] + 1 + off if rng.random() < 0.7 else rows[0] - off - th
        y = int(np.clip(y, 0, size - th))
        a, b = int(rng.integers(0, size // 6)), size - int(rng.integers(0, size // 6))
        lines[y:y + th, a:b] = True
    if "v" in which:
        th = int(rng.integers(1, 4))
        off = int(rng.integers(-2, 6))
        x = cols[0] - off - th if rng.random() < 0.5 else cols[-1] + 1 + off
        x = int(np.clip(x, 0, size - th))
        a, b = int(rng.integers(0, size // 6)), size - int(rng.integers(0, size // 6))
        lines[a:b, x:x + th] = True
    black = field_ | lines
    rate = rng.uniform(0.002, 0.012)
    black |= rng.random(black.shape) < rate  # dark specks on the paper
    black &= ~(field_ & (rng.random(black.shape) < rate / 2))  # and a few white ones in the ink
    return encode(Image.fromarray(~black).convert("1"))


PAPER = np.array([222, 204, 160], np.float32)  # ARDIS-like aged paper (mean); each picture varies it
BROWN = np.array([85, 55, 30], np.float32)


def make_historical(src: Source, rng: np.random.Generator) -> bytes:
    height = int(rng.integers(60, 121))
    ink = scale_to(shape(src), height)
    m = rng.uniform(0.02, 0.06)
    py, px = max(1, round(m * ink.shape[0])), max(1, round(m * ink.shape[1]))
    ink = np.pad(ink, ((py, py), (px, px)))
    h, w = ink.shape
    strength = rng.uniform(0.45, 0.9) * np.clip(1 + 0.35 * synth_digits.smooth_noise(rng, h, w, 3), 0.35, 1.2)
    a = np.clip(ink * strength, 0, 1)[..., None]
    # Aged paper: lighter or darker, more or less yellow; brown ink, lighter where it faded.
    paper = PAPER * rng.uniform(0.88, 1.06) + np.array([0, 0, -1]) * rng.uniform(-15, 35) + rng.normal(0, 3, 3)
    paper = paper * (1 + 0.06 * synth_digits.smooth_noise(rng, h, w, 4))[..., None]
    brown = BROWN * rng.uniform(0.6, 1.4) + rng.normal(0, 4, 3)
    img = paper * (1 - a) + brown * a
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), rng.uniform(0.4, 1.0))
    img = img + rng.normal(0, rng.uniform(3, 7), img.shape)  # paper grain
    out = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")
    return encode(out, "JPEG", int(rng.integers(60, 91)))


def make_slanted(src: Source, rng: np.random.Generator) -> bytes:
    t = np.tan(np.deg2rad(rng.uniform(15, 30))) * rng.choice([-1, 1])
    ink = shape(src)
    h, w = ink.shape
    extra = int(np.ceil(abs(t) * h))
    # x' = x + t * (h - y): the top leans right for t > 0, like a right-handed slant.
    m = np.float32([[1, -t, t * h + (0 if t > 0 else extra)], [0, 1, 0]])
    sheared = _crop(cv2.warpAffine(ink, m, (w + extra, h), flags=cv2.INTER_LINEAR))
    small = scale_to(sheared, int(200 * rng.uniform(0.55, 0.75)))
    if small.shape[1] > 190:
        small = cv2.resize(small, (190, max(1, round(small.shape[0] * 190 / small.shape[1]))),
                           interpolation=cv2.INTER_AREA)
    return encode(dark_on_white(place(small, 200, 200, rng)))


def make_tight_crop(src: Source, rng: np.random.Generator) -> bytes:
    ink = _crop(scale_to(shape(src), int(rng.integers(40, 101))), 0.02)
    return encode(dark_on_white(ink))


# name -> maker. The order fixes each set's seed stream: append new sets at the end.
SETS: dict[str, Callable[[Source, np.random.Generator], bytes]] = {
    "mnist": make_mnist, "usps": make_usps, "semeion": make_semeion, "optdigits": make_optdigits,
    "tablet": make_tablet, "marker": make_marker, "bw_form": make_bw_form, "historical": make_historical,
    "slanted": make_slanted, "tight_crop": make_tight_crop,
}
CONTROL = "mnist"


@dataclass
class Picture:
    data: bytes
    label: int
    n: int
    origin: str

    @property
    def suffix(self) -> str:
        return ".jpg" if self.data[:2] == b"\xff\xd8" else ".png"


# ------------------------------------------------------------------------------------------------------ making


def load_held_out(data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST training images 54000-59999 and their labels (the test split is not loaded)."""
    from mnistlab.data import load_dataset

    beside = HERE.parent.parent / "shared" / "data"  # the checkout's neighbour, as tests/conftest.py uses
    data_dir = data_dir or os.environ.get("MNISTLAB_DATA") or (str(beside) if (beside / "mnist").is_dir() else None)
    data = load_dataset("mnist", data_dir, splits=("train",))
    lo, hi = HELD_OUT
    return data.x_train[lo:hi], data.y_train[lo:hi]


def make_sources(per_digit: int, seed: int, font_share: float, data_dir: str | None) -> list[list[Source]]:
    """per_digit source digits of each digit 0-9: held-out MNIST images, a `font_share` of them font digits."""
    x, y = load_held_out(data_dir)
    fonts = synth_digits.available_fonts() if font_share > 0 else []
    if font_share > 0 and not fonts:
        sys.exit("--font-share needs handwriting fonts: apt-get install " + " ".join(synth_digits.FONT_PACKAGES))
    n_fonts = round(font_share * per_digit) if fonts else 0
    pick = np.random.default_rng([seed, 7919])
    out = []
    for d in range(10):
        pool = np.flatnonzero(y == d)
        chosen = pick.choice(pool, per_digit - n_fonts, replace=False)
        srcs = [from_mnist(x[i], d, HELD_OUT[0] + int(i)) for i in chosen]
        for k in range(n_fonts):
            font = fonts[int(pick.integers(len(fonts)))]
            srcs.append(from_font(d, font, np.random.default_rng([seed, 7920, d, k])))
        out.append(srcs)
    return out


def make_set(name: str, sources: list[list[Source]], seed: int) -> list[Picture]:
    """The set's pictures, digit by digit; each seeded by (seed, set, digit, n) alone."""
    set_id = list(SETS).index(name)
    maker = SETS[name]
    return [Picture(maker(src, np.random.default_rng([seed, set_id, d, n])), d, n, src.origin)
            for d, srcs in enumerate(sources) for n, src in enumerate(srcs)]


# --------------------------------------------------------------------------------------------------- predicting


@dataclass
class Model:
    """A run directory (with its not-a-digit detector) or a bare .keras file (no refusals but 'no ink')."""

    path: Path
    name: str
    run: object | None = None
    keras: object | None = None
    trained_on_sources: bool = False

    @classmethod
    def open(cls, path: Path, name: str) -> "Model":
        from mnistlab.runs import load_model, load_run

        if path.is_file():
            return cls(path, name, keras=load_model(path))
        from mnistlab.recipes import get_recipe

        run = load_run(path, engine="keras")
        s = run.settings
        trained = (s.finetune is None and get_recipe(s.recipe).validation_split == 0
                   and (s.limit is None or s.limit > HELD_OUT[0]))
        return cls(path, name, run=run, trained_on_sources=trained)

    def classify(self, x: np.ndarray, choices: list | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Predicted digit and not-a-digit refusal for (N, 28, 28) inputs (with a run, for each picture's
        `images.preprocess_choices` where given: the input `predict` takes, `prediction.choose`)."""
        if self.run is not None:
            from mnistlab.prediction import choose, classify

            proba, refused = classify(self.run, x) if choices is None else choose(self.run, choices)[1:]
            return proba.argmax(1), refused
        from mnistlab.runs import to_model_input

        proba = np.asarray(self.keras.predict(to_model_input(self.keras, x), batch_size=256, verbose=0))
        return proba.argmax(1), np.zeros(len(x), bool)


def score(labels: np.ndarray, pred: np.ndarray, no_ink: np.ndarray, not_digit: np.ndarray) -> dict:
    """Accuracy counting a refusal as wrong; per digit; the confusion matrix (refusals in column 10)."""
    answer = np.where(no_ink | not_digit, -1, pred)
    cm = np.zeros((10, 11), np.int64)
    np.add.at(cm, (labels, np.where(answer < 0, 10, answer)), 1)
    return {"n": int(len(labels)), "accuracy": float(np.mean(answer == labels)),
            "refused": int((answer < 0).sum()), "refused_no_ink": int(no_ink.sum()),
            "refused_not_digit": int((not_digit & ~no_ink).sum()),
            "per_digit": [float(np.mean(answer[labels == d] == d)) if (labels == d).any() else 0.0 for d in range(10)],
            "confusion": cm.tolist(), "answers": answer.tolist()}


def top_mistakes(cm: list[list[int]], k: int = 3) -> str:
    pairs = Counter({(t, p): cm[t][p] for t in range(10) for p in range(11) if p != t and cm[t][p]})
    return ", ".join(f"{t}->{'none' if p == 10 else p} x{c}" for (t, p), c in pairs.most_common(k)) or "-"


# ------------------------------------------------------------------------------------------------------- output


def md_table(rows: list[list[str]]) -> str:
    head, *body = rows
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])


def _thumb(data: bytes, side: int) -> Image.Image:
    """The picture fitted into side x side (small ones enlarged without smoothing), framed in grey."""
    im = images.load_image(data).convert("RGB")
    f = side / max(im.size)
    im = im.resize((max(1, round(im.width * f)), max(1, round(im.height * f))),
                   Image.Resampling.NEAREST if f >= 1 else Image.Resampling.LANCZOS)
    tile = Image.new("RGB", (side + 2, side + 2), (150, 150, 150))
    tile.paste(im, (1 + (side - im.width) // 2, 1 + (side - im.height) // 2))
    return tile


def grid(sets: dict[str, list[Picture]], seen: dict[str, np.ndarray], answers: dict[str, np.ndarray],
         path: Path, cols: int = 10) -> None:
    """Per set, a row of its first picture of each digit, then a row of its first mistake of each digit that has
    one (left out when none is wrong); each tile is the picture beside the 28x28 input the model saw (black where
    preprocess refused it), true->answer below (green right, red wrong). Answers are the first run's."""
    side, label_w = 64, 92
    tw, th = 2 * (side + 2) + 6, side + 16
    rows = []
    for name, pics in sets.items():
        labels = np.array([p.label for p in pics])
        ans = answers[name]
        first = [int(np.flatnonzero(labels == d)[0]) for d in range(10)]
        wrong = [int(np.flatnonzero((labels == d) & (ans != d))[0]) for d in range(10)
                 if ((labels == d) & (ans != d)).any()]
        rows += [(name, first)] + ([(f"{name} wrong", wrong[:cols])] if wrong else [])
    sheet = Image.new("RGB", (label_w + cols * tw, len(rows) * th), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (title, chosen) in enumerate(rows):
        y0 = r * th
        draw.text((4, y0 + side // 2), title, fill=(0, 0, 0))
        name = title.split()[0]
        for k, i in enumerate(chosen):
            x0 = label_w + k * tw
            pic = sets[name][i]
            sheet.paste(_thumb(pic.data, side), (x0, y0))
            a = int(answers[name][i])
            small = Image.fromarray(np.rint(seen[name][i] * 255).astype(np.uint8))
            small = small.resize((side, side), Image.Resampling.NEAREST)
            sheet.paste(small.convert("RGB"), (x0 + side + 4, y0 + 1))
            draw.text((x0 + 2, y0 + side + 3), f"{pic.label}->{a if a >= 0 else 'none'}",
                      fill=(0, 128, 0) if a == pic.label else (200, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def save(sets: dict[str, list[Picture]], folder: Path) -> None:
    """DIR/<set>/<digit>/<n>.png (.jpg for JPEG pictures): the Keras layout `mnistlab evaluate --images` reads."""
    for name, pics in sets.items():
        for p in pics:
            d = folder / name / str(p.label)
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{p.n}{p.suffix}").write_bytes(p.data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, nargs="+", required=True, help="run directories (or .keras files)")
    ap.add_argument("--per-digit", type=int, default=20, help="pictures of each digit per set (default 20)")
    ap.add_argument("--seed", type=int, default=0, help="0 is the development seed")
    ap.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS),
                    help=f"sets to make (default all; '{CONTROL}' is the control)")
    ap.add_argument("--font-share", type=float, default=0.0,
                    help="share of each digit's sources drawn from handwriting fonts instead of MNIST (default 0)")
    ap.add_argument("--grid", type=Path, help="write a sample grid PNG here (picture / what the model saw)")
    ap.add_argument("--save", type=Path, help="write the pictures here as DIR/<set>/<digit>/<n>.png")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--data-dir", help="folder holding mnist/ (default: $MNISTLAB_DATA, mnistlab's search order)")
    args = ap.parse_args()
    if args.per_digit < 1 or not 0 <= args.font_share <= 1:
        sys.exit("--per-digit must be at least 1 and --font-share between 0 and 1")

    t_start = time.perf_counter()
    names = [m.name if [p.name for p in args.model].count(m.name) == 1 else str(m) for m in args.model]
    models = [Model.open(p, n) for p, n in zip(args.model, names)]
    t0 = time.perf_counter()
    sources = make_sources(args.per_digit, args.seed, args.font_share, args.data_dir)
    sets = {name: make_set(name, sources, args.seed) for name in SETS if name in args.sets}
    render_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    seen, no_ink, choices = {}, {}, {}
    for name, pics in sets.items():
        seen[name], no_ink[name], choices[name] = preprocess_all(pics)
    pre_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    results: dict[str, dict[str, dict]] = {}
    for m in models:
        results[m.name] = {}
        for name, pics in sets.items():
            pred, not_digit = m.classify(seen[name], choices[name])
            results[m.name][name] = score(np.array([p.label for p in pics]), pred, no_ink[name], not_digit)
    predict_s = time.perf_counter() - t0
    scored = [s for s in sets if s != CONTROL]

    total = sum(len(p) for p in sets.values())
    print(f"{total} pictures: {len(sets)} sets x 10 digits x {args.per_digit}, seed {args.seed}; sources: MNIST "
          f"training images {HELD_OUT[0]}-{HELD_OUT[1] - 1}"
          + (f", {round(args.font_share * args.per_digit)} a digit from handwriting fonts" if args.font_share else ""))
    for m in models:
        if m.trained_on_sources:
            print(f"WARNING: {m.name} ({m.run.settings.recipe}) trained on the source digits (no validation split): "
                  "its figures are optimistic")
    print("\n### accuracy (a refusal counts as wrong; refused = no ink found + not-a-digit detector)\n")
    head = ["set"] + [c for m in models for c in (f"{m.name} acc", "refused")]
    rows = [head]
    for name in sets:
        label = f"{name} (control)" if name == CONTROL else name
        rows.append([label] + [c for m in models for c in (f"{results[m.name][name]['accuracy']:.1%}",
                                                          _refused(results[m.name][name]))])
    means = {m.name: float(np.mean([results[m.name][s]["accuracy"] for s in scored])) if scored else None
             for m in models}
    if scored:
        rows.append([f"**mean of {len(scored)} sets**"] + [c for m in models for c in (
            f"**{means[m.name]:.1%}**", str(sum(results[m.name][s]["refused"] for s in scored)))])
    print(md_table(rows))
    for m in models:
        print(f"\n### {m.name}: accuracy per digit, and the commonest mistakes\n")
        rows = [["set", *map(str, range(10)), "top mistakes (true->answer)"]]
        for name in sets:
            r = results[m.name][name]
            rows.append([name, *(f"{a:.0%}" for a in r["per_digit"]), top_mistakes(r["confusion"])])
        print(md_table(rows))
        if args.font_share:
            origins = [p.origin.startswith("font:") for p in next(iter(sets.values()))]
            fonts = np.array(origins)
            line = []
            for name in scored:
                ans, lab = np.array(results[m.name][name]["answers"]), np.array([p.label for p in sets[name]])
                line.append(f"{name} mnist {np.mean(ans[~fonts] == lab[~fonts]):.0%} / fonts "
                            f"{np.mean(ans[fonts] == lab[fonts]):.0%}")
            print("\nby source: " + "; ".join(line))
    elapsed = time.perf_counter() - t_start
    print(f"\ntime: {render_s:.1f} s making pictures, {pre_s:.1f} s preprocess "
          f"({pre_s / max(1, total) * 1e3:.1f} ms a picture), {predict_s:.1f} s predicting, {elapsed:.1f} s in all "
          f"(model loading included)")

    if args.grid:
        first = models[0].name
        grid(sets, seen, {s: np.array(results[first][s]["answers"]) for s in sets}, args.grid)
        print(f"sample grid ({first}'s answers): {args.grid}")
    if args.save:
        save(sets, args.save)
        print(f"pictures: {args.save}/<set>/<digit>/<n>.png")
    if args.json:
        out = {"seed": args.seed, "per_digit": args.per_digit, "font_share": args.font_share,
               "sources": f"mnist train {HELD_OUT[0]}-{HELD_OUT[1] - 1}", "sets": list(sets),
               "runs": {m.name: {"path": str(m.path), "mean": means[m.name],
                                 "trained_on_sources": m.trained_on_sources,
                                 "sets": {s: {k: v for k, v in r.items() if k != "answers"}
                                          for s, r in results[m.name].items()}} for m in models}}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))
        print(f"figures: {args.json}")


def _refused(r: dict) -> str:
    if not r["refused"]:
        return "0"
    return f"{r['refused']} ({r['refused_no_ink']} no ink, {r['refused_not_digit']} not digit)"


if __name__ == "__main__":
    main()
