"""How well `mnistlab.read` reads whole numbers, against the bound of perfect segmentation; and how fast.

The numbers (2 to 8 digits) are composed from real handwritten digits the model never trained on: MNIST
test digits (`--source mnist`; or, with `--dev`, the last 6,000 MNIST training digits, which the default
recipe holds out for validation and never fits) and digits in 22 handwriting fonts (synth_digits.py; one
font per number, as one writer). Each number is written with realistic variation: digit heights 80-120% of
the line's, a wandering baseline and a slight slope, gaps from none to wide, and in about 40% of the
numbers one or two pairs of neighbours that touch or slightly overlap. Then it is "photographed" like the
single-digit benchmark: paper colour and texture, ink colour, pencil, uneven light and shadows, sometimes a
ruled line or specks, defocus blur, sensor noise, JPEG (q35-95); 15% are light ink on a dark board.

The bound: every digit photographed alone (the same paper, light, blur, noise and JPEG, without its
neighbours' ink), cut out by hand (its box plus 15% of the line height), and predicted alone with
`mnistlab.predict`; a number is right under the bound when all its digits are. `read` gets the whole photo.

    mnistlab train --recipe cnn --seed 1 --out runs/cnn
    PYTHONPATH=src python benchmarks/read_numbers.py runs/cnn --count 400 --seed 1 --speed 50   # the reported figures
    PYTHONPATH=src python benchmarks/read_numbers.py runs/cnn --count 400 --seed 0 --dev --speed 0  # development
    PYTHONPATH=src python benchmarks/read_numbers.py runs/cnn --count 400 --seed 0 --dev --fit  # reading's scorer
    PYTHONPATH=src python benchmarks/read_numbers.py runs/cnn --count 0 --speed 50           # the speed figure only

Never part of the test suite.
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from PIL import Image, ImageFilter

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import synth_digits  # noqa: E402


@dataclass
class NumberSample:
    """One photographed number: encoded bytes, the true text, digit boxes, and the bound's per-digit crops."""

    data: bytes
    text: str
    boxes: list[list[int]]
    touching: bool
    source: str
    inverted: bool
    crops: list[bytes] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- the digits


def mnist_ink(x: np.ndarray, height: int) -> np.ndarray:
    """An MNIST digit as ink coverage in [0, 1], cropped and scaled to `height` pixels, edges sharpened."""
    rows, cols = np.flatnonzero(x.max(axis=1) > 30), np.flatnonzero(x.max(axis=0) > 30)
    crop = x[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1].astype(np.float32) / 255.0
    scale = height / crop.shape[0]
    im = Image.fromarray(crop, "F").resize((max(1, round(crop.shape[1] * scale)), height), Image.Resampling.BICUBIC)
    # Upscaled MNIST is soft; a pen's stroke has a sharp edge (an S-curve keeps it anti-aliased).
    return np.clip((np.asarray(im) - 0.25) / 0.5, 0, 1).astype(np.float32)


def _touch_offset(a: np.ndarray, b: np.ndarray, ya: int, yb: int) -> int:
    """How far right of a's left edge b's left edge goes so that b just touches a (rows aligned by ya, yb)."""
    top, bottom = max(ya, yb), min(ya + a.shape[0], yb + b.shape[0])
    best = None
    for y in range(top, bottom):
        ra, rb = np.flatnonzero(a[y - ya] > 0.3), np.flatnonzero(b[y - yb] > 0.3)
        if ra.size and rb.size:
            need = ra[-1] + 1 - rb[0]  # b's left ink meets a's right ink on this row
            best = need if best is None else max(best, need)
    return int(best) if best is not None else a.shape[1]


def compose(rng: np.random.Generator, digits: list[int], inks: list[np.ndarray]) -> tuple[np.ndarray, list, bool, list]:
    """Lay the digit inks out on one line; (ink layer, boxes [l, t, r, b], touching?, each digit's own layer)."""
    H = max(m.shape[0] for m in inks)
    n = len(inks)
    touch = set()
    if rng.random() < 0.4 and n >= 2:
        touch = set(rng.choice(n - 1, size=min(n - 1, int(rng.integers(1, 3))), replace=False).tolist())
    slope = np.tan(np.deg2rad(rng.uniform(-4, 4)))
    gap_scale = rng.uniform(0.05, 0.45)
    x, drift = 0, 0.0
    placed = []  # (left, top, ink)
    for k, ink in enumerate(inks):
        drift = float(np.clip(drift + rng.normal(0, 0.04 * H), -0.12 * H, 0.12 * H))
        top = int(round(0.3 * H + (H - ink.shape[0]) * rng.uniform(0.3, 1.0) + drift + slope * x))
        if k > 0:
            pl, pt, pink = placed[-1]
            if k - 1 in touch:
                left = pl + _touch_offset(pink, ink, pt, top) - int(rng.integers(0, max(1, int(0.05 * H))))
            else:
                gap = max(0.02, rng.normal(gap_scale, 0.08)) * H
                left = pl + pink.shape[1] + int(round(gap))
        else:
            left = 0
        placed.append((left, top, ink))
        x = left + ink.shape[1]
    minl = min(p[0] for p in placed)
    mint = min(p[1] for p in placed)
    ml, mr = (int(rng.uniform(0.3, 1.5) * H) for _ in range(2))
    mt, mb = (int(rng.uniform(0.3, 1.2) * H) for _ in range(2))
    width = max(p[0] + p[2].shape[1] for p in placed) - minl + ml + mr
    height = max(p[1] + p[2].shape[0] for p in placed) - mint + mt + mb
    layer = np.zeros((height, width), np.float32)
    own, boxes = [], []
    for left, top, ink in placed:
        l, t = left - minl + ml, top - mint + mt
        one = np.zeros_like(layer)
        one[t: t + ink.shape[0], l: l + ink.shape[1]] = ink
        own.append(one)
        layer = np.maximum(layer, one)
        boxes.append([l, t, l + ink.shape[1], t + ink.shape[0]])
    touching = False
    for k in range(n - 1):
        grown = np.asarray(Image.fromarray((own[k] > 0.3).astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(3))) > 0
        touching |= bool((grown & (own[k + 1] > 0.3)).any())
    return layer, boxes, touching, own


# ------------------------------------------------------------------------------------------- the photograph


@dataclass
class Camera:
    """Everything random about one photo, drawn once so the bound's crops see the same conditions."""

    paper: np.ndarray
    colour: np.ndarray
    inverted: bool
    pencil: bool
    blur: float
    noise: float
    fmt: str
    quality: int
    notes: list[str]


def camera(rng: np.random.Generator, h: int, w: int) -> tuple[Camera, np.ndarray, np.ndarray]:
    """The photo's conditions, its surface (paper x texture x ruled lines, RGB) and its light (H, W)."""
    notes: list[str] = []
    inverted = rng.random() < 0.15
    if inverted:
        paper = np.array([(35, 45, 40), (20, 20, 22), (40, 40, 55)][rng.integers(3)], np.float32)
        colour = np.array([(235, 235, 230), (240, 240, 200)][rng.integers(2)], np.float32)
        notes.append("inverted")
    else:
        paper = np.array(synth_digits.PAPERS[rng.integers(len(synth_digits.PAPERS))], np.float32)
        colour = np.array(synth_digits.INKS[rng.integers(len(synth_digits.INKS))], np.float32)
    pencil = not inverted and rng.random() < 0.15
    if pencil:
        colour = np.array((95, 95, 100), np.float32)
        notes.append("pencil")
    texture = 1 + rng.uniform(0.01, 0.05) * synth_digits.smooth_noise(rng, h, w, max(h, w) / 4) \
        + rng.uniform(0.0, 0.04) * synth_digits.smooth_noise(rng, h, w, 10)
    surface = paper[None, None, :] * texture[..., None]
    if not inverted and rng.random() < 0.15:
        spacing = rng.uniform(0.25, 0.45) * h
        phase = rng.uniform(0, spacing)
        yy = np.arange(h, dtype=np.float32)[:, None]
        dist = np.abs(((yy - phase) % spacing) - spacing / 2) - (spacing / 2 - 1.0)
        line = np.clip(dist + 0.5, 0, 1) * rng.uniform(0.2, 0.4)
        surface = surface * (1 - line[..., None] * (1 - np.array([0.6, 0.75, 1.0], np.float32)))
        notes.append("ruled")
    if rng.random() < 0.3:
        specks = np.zeros((h, w), np.float32)
        for _ in range(int(rng.integers(5, 200))):
            y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
            r = int(rng.integers(0, 3))
            specks[max(0, y - r): y + r + 1, max(0, x - r): x + r + 1] = rng.uniform(0.3, 0.9)
        surface = surface * (1 - specks[..., None] * 0.7)
        notes.append("specks")
    light = synth_digits._lighting(rng, h, w, notes, shadow_p=0.3)
    blur = rng.uniform(0, 1.6) * max(h, w) / 600
    noise = rng.uniform(1, 7)
    fmt = "JPEG" if rng.random() < 0.8 else "PNG"
    quality = int(rng.integers(35, 96))
    if fmt == "JPEG":
        notes.append(f"q{quality}")
    return Camera(paper, colour, inverted, pencil, blur, noise, fmt, quality, notes), surface, light


def shoot(cam: Camera, surface: np.ndarray, light: np.ndarray, ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """Photograph an ink layer on the given surface and light: blur, noise, JPEG; encoded bytes."""
    if cam.pencil:
        ink = ink * np.clip(0.7 + 0.4 * synth_digits.smooth_noise(rng, *ink.shape, max(ink.shape) / 2), 0.2, 1)
    img = (surface * (1 - ink[..., None]) + cam.colour[None, None, :] * ink[..., None]) * light[..., None]
    pic = synth_digits._camera(img, rng, [], blur=cam.blur, noise=cam.noise)
    return synth_digits._encode(pic, cam.fmt, cam.quality)


def make_number(seed: int, index: int, source: str, mnist: tuple[np.ndarray, np.ndarray] | None,
                fonts: list[Path], long_side: int | None = None, length: int | None = None) -> NumberSample:
    """One photographed number (and, for the bound, each of its digits photographed alone)."""
    rng = np.random.default_rng([seed, index])
    n = length or int(rng.integers(2, 9))
    H = int(rng.integers(56, 100))
    if source == "mnist":
        x, y = mnist
        picks = rng.integers(0, len(y), n)
        digits = [int(y[i]) for i in picks]
        inks = [mnist_ink(x[i], int(H * rng.uniform(0.8, 1.2))) for i in picks]
    else:
        font = fonts[int(rng.integers(len(fonts)))]
        digits = [int(d) for d in rng.integers(0, 10, n)]
        inks = [synth_digits.glyph(d, font, rng, int(H * rng.uniform(0.8, 1.2))) for d in digits]
    layer, boxes, touching, own = compose(rng, digits, inks)
    # The photo's size: from a small crop to a phone's picture of a sheet.
    h0, w0 = layer.shape
    target = long_side or int(rng.integers(200, 1700))
    f = target / max(h0, w0)
    if long_side:  # the speed set: exactly 1600x600 (the number fitted inside, centred)
        f = min(1600 / w0, 600 / h0)
    size = (max(8, round(w0 * f)), max(8, round(h0 * f)))
    def scale(a: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(Image.fromarray(a, "F").resize(size, Image.Resampling.BILINEAR)), 0, 1)
    layer = scale(layer)
    own = [scale(o) for o in own]
    boxes = [[round(v * f) for v in b] for b in boxes]
    if long_side:
        canvas = np.zeros((600, 1600), np.float32)
        oy, ox = (600 - size[1]) // 2, (1600 - size[0]) // 2
        canvas[oy: oy + size[1], ox: ox + size[0]] = layer
        layer = canvas
        boxes = [[b[0] + ox, b[1] + oy, b[2] + ox, b[3] + oy] for b in boxes]
        own = []
    h, w = layer.shape
    cam, surface, light = camera(rng, h, w)
    data = shoot(cam, surface, light, layer, rng)
    crops = []
    Hs = H * f
    for b, o in zip(boxes, own):
        m = int(round(0.15 * Hs))
        l, t, r, bt = max(0, b[0] - m), max(0, b[1] - m), min(w, b[2] + m), min(h, b[3] + m)
        crops.append(shoot(cam, surface[t:bt, l:r], light[t:bt, l:r], o[t:bt, l:r], rng))
    return NumberSample(data, "".join(map(str, digits)), boxes, touching, source, cam.inverted, crops, cam.notes)


def make_numbers(count: int, seed: int, mnist: tuple[np.ndarray, np.ndarray], fonts: list[Path]) -> list[NumberSample]:
    """`count` numbers, alternately from MNIST digits and from a handwriting font."""
    from tqdm import tqdm

    return [make_number(seed, i, "mnist" if i % 2 == 0 else "font", mnist, fonts)
            for i in tqdm(range(count), desc="rendering", unit="number", leave=False)]


# ---------------------------------------------------------------------------------------------- measuring


def load_digits(dev: bool, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST test digits, or (dev) the 6,000 training digits the default recipe holds out for validation."""
    from mnistlab.data import load_data

    (x_train, y_train), (x_test, y_test) = load_data("mnist", data_dir)
    return (x_train[54000:], y_train[54000:]) if dev else (x_test, y_test)


def accuracy_report(run, samples: list[NumberSample]) -> None:
    """Exact-string accuracy of read and of the bound, overall and by group; a markdown table."""
    from tqdm import tqdm

    import mnistlab

    got, seconds = [], []
    for s in tqdm(samples, desc="reading", unit="number", leave=False):
        t = time.perf_counter()
        got.append(mnistlab.read(run, [s.data])[0]["text"])
        seconds.append(time.perf_counter() - t)
    read_ok = np.array([g == s.text for g, s in zip(got, samples)])
    crops = [c for s in samples for c in s.crops]
    preds = mnistlab.predict(run, crops)
    digit_ok = np.array([r["digit"] == int(ch) for r, ch in zip(preds, "".join(s.text for s in samples))])
    bound_ok, k = [], 0
    for s in samples:
        bound_ok.append(bool(digit_ok[k: k + len(s.text)].all()))
        k += len(s.text)
    bound_ok = np.array(bound_ok)
    count_ok = np.array([g is not None and len(g) == len(s.text) for g, s in zip(got, samples)])

    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        groups["all"].append(i)
        groups["touching" if s.touching else "not touching"].append(i)
        groups[f"source={s.source}"].append(i)
        groups[f"{len(s.text)} digits"].append(i)
        if s.inverted:
            groups["inverted"].append(i)
        for note in s.notes:
            if note in ("ruled", "specks", "pencil") or note.startswith("shadow"):
                groups[note].append(i)
    print("| numbers | n | read | bound | read / bound | digit count right |")
    print("|---|---|---|---|---|---|")
    order = ["all", "touching", "not touching", "source=mnist", "source=font", "inverted", "ruled", "specks",
             "pencil", "shadow-edge", "shadow-blob"] + [f"{d} digits" for d in range(2, 9)]
    for key in order:
        ix = np.array(groups.get(key, []), int)
        if not len(ix):
            continue
        r, b = read_ok[ix].mean(), bound_ok[ix].mean()
        ratio = r / b if b else float("nan")
        print(f"| {key} | {len(ix)} | {r:.1%} | {b:.1%} | {ratio:.1%} | {count_ok[ix].mean():.1%} |")
    print(f"\nsingle digits under the bound: {digit_ok.mean():.2%} of {len(digit_ok)}; "
          f"read: {np.median(seconds) * 1e3:.0f} ms median per number (wall, decoding included)")
    return got


def speed_report(run, count: int, seed: int, mnist, fonts: list[Path]) -> None:
    """CPU and wall time of reading a 1600x600 photo of a 6-digit number, after the model is loaded."""
    from mnistlab.reading import segment

    photos = [make_number(seed + 1000, i, "mnist" if i % 2 == 0 else "font", mnist, fonts, long_side=1600,
                          length=6) for i in range(count)]
    for p in photos[:3]:
        segment(p.data, run)  # load the model and trace its predict step
    cpu, wall, right = [], [], 0
    for p in photos:
        c, t = time.process_time(), time.perf_counter()
        reading = segment(p.data, run)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
        right += "".join(str(int(np.argmax(q))) for q in reading.probabilities) == p.text
    kinds = "/".join(sorted({"JPEG" if p.data[:2] == b"\xff\xd8" else "PNG" for p in photos}))
    print(f"speed: {count} photos 1600x600 of 6-digit numbers ({kinds}): "
          f"CPU {statistics.median(cpu) * 1e3:.1f} ms median (max {max(cpu) * 1e3:.0f}), "
          f"wall {statistics.median(wall) * 1e3:.1f} ms median; read right {right}/{count}; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")


def _iou(a: list[float], b: list[float]) -> float:
    """Intersection over union of two [left, top, right, bottom] boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, w) * max(0.0, h)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _gold(c, truth: list[list[int]]) -> list[int] | None:
    """The partition of the pieces into candidates that matches the true digits' boxes best (IoU >= 0.5 each)."""
    n, m = len(c.pieces), len(truth)
    boxes = [[v * c.scale for v in b] for b in c.boxes]
    best = {(0, 0): (0.0, None)}
    for j in range(1, n + 1):
        for k, (i, jj) in enumerate(c.spans):
            if jj != j:
                continue
            for d in range(m):
                if (i, d) in best:
                    o = _iou(boxes[k], truth[d])
                    if o >= 0.5 and best[(i, d)][0] + o > best.get((j, d + 1), (-1.0,))[0]:
                        best[(j, d + 1)] = (best[(i, d)][0] + o, (i, d, k))
    if (n, m) not in best:
        return None
    chosen, key = [], (n, m)
    while best[key][1] is not None:
        i, d, k = best[key][1]
        chosen.append(k)
        key = (i, d)
    return chosen[::-1]


def fit_scorer(run, samples: list[NumberSample], epochs: int = 30) -> None:
    """Fit reading's candidate scorer on these (development) numbers and print its constants and accuracy.

    The score of a reading is the sum of its digits' scores, each linear in the candidate's `FEATURES`; the
    weights are learnt by the averaged structured perceptron (Collins 2002; a few lines of NumPy): decode each
    number with the current weights and, where the partition differs from the true one (the candidates whose
    boxes match the true digits'), move the weights towards the true partition's features.
    """
    from tqdm import tqdm

    from mnistlab import reading
    from mnistlab.errors import NoDigitError

    found = []
    for s in tqdm(samples, desc="candidates", unit="number", leave=False):
        try:
            c = reading.candidates(s.data, run)
        except NoDigitError:
            c = None
        found.append((s, c, None if c is None else _gold(c, s.boxes)))
    usable = [(s, c, g) for s, c, g in found if g is not None]
    x = np.concatenate([c.features for _, c, _ in usable]).astype(np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6

    def design(c) -> np.ndarray:
        return np.hstack([(c.features - mean) / std, np.ones((len(c.features), 1))])

    w = np.zeros(x.shape[1] + 1)
    w[0] = 1.0  # start from the model's confidence alone
    total, steps = np.zeros_like(w), 0
    rng = np.random.default_rng(0)
    for _ in range(epochs):
        for i in rng.permutation(len(usable)):
            s, c, gold = usable[i]
            f = design(c)
            got = reading._choose(len(c.pieces), c.spans, f @ w)
            if got != gold:
                w += f[gold].sum(axis=0) - f[got].sum(axis=0)
            total += w
            steps += 1
    w = total / steps
    w /= abs(w[0]) if w[0] else 1.0  # the scale is free: one unit of the first feature's weight
    print(f"{len(usable)} of {len(samples)} numbers have a true partition among their candidates")
    print("SCORER_MEAN = np.array([" + ", ".join(f"{v:.4g}" for v in mean) + "], np.float32)")
    print("SCORER_STD = np.array([" + ", ".join(f"{v:.4g}" for v in std) + "], np.float32)")
    print("SCORER_WEIGHTS = np.array([" + ", ".join(f"{v:.4g}" for v in w[:-1]) + "], np.float32)")
    print(f"SCORER_BIAS = {w[-1]:.4g}")
    for name, v in zip(reading.FEATURES, w[:-1]):
        print(f"  {name:>24}: {v:+.3f}")
    ok, touching = [], []
    for s, c, _ in found:
        # Pairs as `read` reads them (the pair candidates are those of the module's own choice).
        chosen = [] if c is None else reading._read_pairs(c, reading._choose(len(c.pieces), c.spans, design(c) @ w),
                                                          None if run.rejector is None else run.rejector.threshold)
        ok.append(c is not None and "".join(str(int(np.argmax(p))) for p, _, _ in c.digits(chosen)) == s.text)
        touching.append(s.touching)
    ok, touching = np.array(ok), np.array(touching)
    print(f"exact strings with these weights (the numbers fitted on): all {ok.mean():.1%}, "
          f"touching {ok[touching].mean():.1%}, not touching {ok[~touching].mean():.1%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="run directory")
    ap.add_argument("--count", type=int, default=600, help="numbers to read (default 600)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dev", action="store_true", help="MNIST training digits held out from fitting (for tuning)")
    ap.add_argument("--speed", type=int, default=50, help="photos for the speed figure (0: skip)")
    ap.add_argument("--save", type=Path, help="write the photos here (PNG/JPEG) with their true text in the name")
    ap.add_argument("--mistakes", action="store_true", help="list the numbers read wrong")
    ap.add_argument("--cache", type=Path, help="keep the rendered numbers in this pickle (rendering takes minutes)")
    ap.add_argument("--data-dir", help="folder holding mnist/ (default: mnistlab's search order)")
    ap.add_argument("--fit", action="store_true", help="fit reading's candidate scorer on these numbers (use --dev)")
    args = ap.parse_args()

    import mnistlab

    fonts = synth_digits.available_fonts()
    if not fonts:
        sys.exit("no handwriting fonts installed: apt-get install " + " ".join(synth_digits.FONT_PACKAGES))
    run = mnistlab.load_run(args.run)
    mnist = load_digits(args.dev, args.data_dir)
    print(f"model: {args.run} ({run.settings.recipe}, test accuracy {run.metrics.get('test_accuracy', 0):.2%}); "
          f"digits: {'MNIST train[54000:] (dev)' if args.dev else 'MNIST test'} and {len(fonts)} fonts; "
          f"seed {args.seed}")
    if args.count:
        t = time.perf_counter()
        if args.cache and args.cache.is_file():
            samples = pickle.loads(args.cache.read_bytes())
        else:
            samples = make_numbers(args.count, args.seed, mnist, fonts)
            if args.cache:
                args.cache.write_bytes(pickle.dumps(samples))
        print(f"{len(samples)} numbers rendered in {time.perf_counter() - t:.0f} s\n")
        if args.fit:
            if not args.dev:
                sys.exit("--fit fits on development numbers only: add --dev (and --seed 0)")
            fit_scorer(run, samples)
            return
        got = accuracy_report(run, samples)
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            for i, s in enumerate(samples):
                ext = "jpg" if s.data[:2] == b"\xff\xd8" else "png"
                (args.save / f"{i:04d}-{s.text}.{ext}").write_bytes(s.data)
        if args.mistakes:
            print("\nmistakes: index, true, read, source, touching, notes")
            for i, (g, s) in enumerate(zip(got, samples)):
                if g != s.text:
                    mark = "T" if s.touching else " "
                    print(f"  {i:4d}  {s.text:>8} {str(g):>9}  {s.source:5s} {mark} {' '.join(s.notes)}")
    if args.speed:
        speed_report(run, args.speed, args.seed, mnist, fonts)


if __name__ == "__main__":
    main()
