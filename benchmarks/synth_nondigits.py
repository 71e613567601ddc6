"""Synthetic pictures that are not a handwritten digit, photographed like the handwriting set (synth_digits.py).

Kinds (KINDS): letters and symbols in handwriting and print fonts; doodles (stars, arrows, hearts, scribbles,
spirals, smileys, houses, clouds, ticks, lightning); photos of things (scikit-image's bundled sample images,
cropped and re-photographed); clothing (Fashion-MNIST test items drawn on paper); textures (grass, gravel,
brick, wood, cloth, noise); stains (ink blots, coffee rings, splatter); ruled lines (notebook, grid and margin
lines with nothing written). Every ink-on-paper kind goes through `synth_digits.photograph`: phone photos with
uneven light and shadows, boards, scans, screen canvases and transparent canvases, JPEG and PNG.

Everything is drawn from a NumPy generator seeded with (seed, kind, index), so a set is the same on every
machine with the same fonts, scikit-image and Fashion-MNIST copy. Benchmark-only: needs scikit-image
(`pip install -e '.[bench]'`) and Fashion-MNIST (Debian's dataset-fashion-mnist, or mnistlab's download).

    from synth_nondigits import make_nondigits
    samples = make_nondigits(per_kind=50, seed=0)    # list of synth_digits.Sample, label -1, font = the kind
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import synth_digits
from synth_digits import KINDS as PICTURE_KINDS, Sample, photograph, smooth_noise

KINDS = ["letter", "symbol", "doodle", "photo", "fashion", "texture", "stain", "ruled"]
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SYMBOLS = "+=x%#@&?!$*<>{}[]~^\u00f7\u03c0\u00a7\u20ac\u00a3\u2713\u221a\u221e\u00b1"
PRINT_FONTS = ["truetype/dejavu/DejaVuSans.ttf", "truetype/dejavu/DejaVuSerif.ttf",
               "truetype/dejavu/DejaVuSans-Bold.ttf", "truetype/dejavu/DejaVuSansMono.ttf"]
DOODLES = ["star", "arrow", "heart", "scribble", "spiral", "smiley", "house", "cloud", "tick", "lightning",
           "flower", "zigzag"]
PHOTOS = ["astronaut", "camera", "cat", "chelsea", "coffee", "coins", "rocket", "horse", "clock", "moon",
          "hubble_deep_field", "immunohistochemistry", "colorwheel", "page", "text", "cell", "retina", "logo"]
TEXTURES = ["grass", "gravel", "brick", "wood", "cloth", "noise", "checkerboard", "clouds"]


def _fonts() -> list[Path]:
    root = synth_digits.FONT_ROOT
    return synth_digits.available_fonts() + [root / f for f in PRINT_FONTS if (root / f).is_file()]


def _canvas(rng: np.random.Generator) -> tuple[int, int]:
    longer = int(rng.integers(240, 720))
    aspect = rng.uniform(0.7, 1.0)
    return (longer, int(longer * aspect)) if rng.random() < 0.5 else (int(longer * aspect), longer)


def _ink_kind(rng: np.random.Generator) -> str:
    return str(rng.choice(list(PICTURE_KINDS), p=list(PICTURE_KINDS.values())))


def _on_canvas(mask: np.ndarray, h: int, w: int, rng: np.random.Generator, share: float) -> np.ndarray:
    """Scale a coverage mask so its longer side is `share` of the canvas's shorter side and place it."""
    side = max(1, int(share * min(h, w)))
    f = side / max(mask.shape)
    im = Image.fromarray(mask.astype(np.float32), "F").resize(
        (max(1, min(int(0.92 * w), round(mask.shape[1] * f))), max(1, min(int(0.92 * h), round(mask.shape[0] * f)))),
        Image.Resampling.BILINEAR)
    return synth_digits._place(np.clip(np.asarray(im), 0, 1), h, w, rng)


def _stroke_image(draw_fn, rng: np.random.Generator, size: int = 200) -> np.ndarray:
    """Run `draw_fn(draw, size, width)` on a black square and return the coverage in [0, 1]."""
    im = Image.new("L", (size, size), 0)
    width = max(2, int(size * float(np.exp(rng.uniform(np.log(0.04), np.log(0.12))))))
    draw_fn(ImageDraw.Draw(im), size, width)
    box = im.getbbox() or (0, 0, size, size)
    return np.asarray(im.crop(box), np.float32) / 255.0


def _doodle(name: str, rng: np.random.Generator) -> np.ndarray:
    """A hand-drawn doodle as coverage in [0, 1] (lines wobble a little, as a hand's do)."""

    def wobble(points: list[tuple[float, float]], s: int) -> list[tuple[float, float]]:
        jitter = rng.normal(0, 0.012 * s, (len(points), 2))
        return [(x + dx, y + dy) for (x, y), (dx, dy) in zip(points, jitter)]

    def draw(d: ImageDraw.ImageDraw, s: int, width: int) -> None:
        c, r = s / 2, s * 0.4
        line = lambda pts, closed=False: d.line(wobble(pts + (pts[:1] if closed else []), s), fill=255,
                                                width=width, joint="curve")
        t = np.linspace(0, 2 * np.pi, 80)
        if name == "star":
            k = int(rng.integers(5, 7))
            pts = [(c + r * np.sin(a), c - r * np.cos(a)) for a in np.arange(k) * 2 * np.pi * 2 / k]
            line(pts, closed=True)
        elif name == "arrow":
            a = rng.uniform(0, 2 * np.pi)
            tip = (c + r * np.cos(a), c + r * np.sin(a))
            line([(c - r * np.cos(a), c - r * np.sin(a)), tip])
            for side in (-1, 1):
                b = a + np.pi - side * 0.5
                line([tip, (tip[0] + 0.4 * r * np.cos(b), tip[1] + 0.4 * r * np.sin(b))])
        elif name == "heart":
            x, y = 16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
            line([(c + r * u / 17, c + r * v / 17) for u, v in zip(x, y)])
        elif name == "scribble":
            n = int(rng.integers(6, 14))
            pts = rng.uniform(s * 0.1, s * 0.9, (n, 2))
            fine = np.linspace(0, n - 1, n * 12)
            xs, ys = np.interp(fine, np.arange(n), pts[:, 0]), np.interp(fine, np.arange(n), pts[:, 1])
            kernel = np.ones(7) / 7
            xs, ys = np.convolve(xs, kernel, "valid"), np.convolve(ys, kernel, "valid")
            line(list(zip(xs, ys)))
        elif name == "spiral":
            turns = rng.uniform(2, 4)
            a = np.linspace(0, turns * 2 * np.pi, 200)
            line([(c + r * u / a[-1] * np.cos(u), c + r * u / a[-1] * np.sin(u)) for u in a])
        elif name == "smiley":
            line([(c + r * np.cos(u), c + r * np.sin(u)) for u in t])
            for ex in (-0.35, 0.35):
                d.ellipse([c + ex * r - width, c - 0.3 * r - width, c + ex * r + width, c - 0.3 * r + width], fill=255)
            m = np.linspace(0.2 * np.pi, 0.8 * np.pi, 30)
            line([(c + 0.55 * r * np.cos(u), c + 0.55 * r * np.sin(u)) for u in m])
        elif name == "house":
            line([(c - r, c + r), (c - r, c), (c, c - r), (c + r, c), (c + r, c + r)], closed=True)
            line([(c - 0.2 * r, c + r), (c - 0.2 * r, c + 0.4 * r), (c + 0.2 * r, c + 0.4 * r), (c + 0.2 * r, c + r)])
        elif name == "cloud":
            bumps = int(rng.integers(4, 7))
            pts = []
            for k in range(bumps):
                a0 = np.pi + k * np.pi / bumps
                cx, cy = c + 0.7 * r * np.cos(a0 + np.pi / bumps / 2), c + 0.4 * r * np.sin(a0 + np.pi / bumps / 2)
                pts += [(cx + 0.35 * r * np.cos(u), cy + 0.35 * r * np.sin(u)) for u in np.linspace(np.pi, 2 * np.pi, 12)]
            pts += [(c + 0.9 * r, c + 0.3 * r), (c - 0.9 * r, c + 0.3 * r)]
            line(pts, closed=True)
        elif name == "tick":
            line([(c - r, c), (c - 0.3 * r, c + 0.7 * r), (c + r, c - r)])
        elif name == "lightning":
            line([(c + 0.2 * r, c - r), (c - 0.5 * r, c + 0.1 * r), (c + 0.3 * r, c), (c - 0.3 * r, c + r)])
        elif name == "flower":
            k = int(rng.integers(5, 8))
            for a in np.arange(k) * 2 * np.pi / k:
                px, py = c + 0.55 * r * np.cos(a), c + 0.55 * r * np.sin(a)
                line([(px + 0.35 * r * np.cos(u), py + 0.35 * r * np.sin(u)) for u in t])
        elif name == "zigzag":
            k = int(rng.integers(4, 8))
            line([(s * 0.1 + s * 0.8 * i / k, c + (-1) ** i * r * 0.5) for i in range(k + 1)])
        else:
            raise ValueError(name)

    return _stroke_image(draw, rng)


def _sample_photo(name: str) -> np.ndarray:
    import skimage.data

    a = getattr(skimage.data, name)()
    if a.dtype == bool:
        a = (~a * 255).astype(np.uint8) if name == "horse" else (a * 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[-1] == 4:
        a = a[..., :3]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    return a.astype(np.float32)


def _texture(name: str, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """An RGB float image of a surface texture filling the picture."""
    if name in ("grass", "gravel", "brick"):
        a = _sample_photo(name)
        top, left = rng.integers(0, a.shape[0] // 3), rng.integers(0, a.shape[1] // 3)
        a = a[top:, left:]
        return np.asarray(Image.fromarray(a.astype(np.uint8)).resize((w, h), Image.Resampling.BILINEAR), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if name == "wood":
        rings = np.sin((xx * rng.uniform(0.05, 0.15) + 8 * smooth_noise(rng, h, w, 4)) * rng.uniform(0.5, 1.5))
        base, dark = np.array([190, 140, 90], np.float32), np.array([120, 75, 40], np.float32)
        mix = (rings[..., None] + 1) / 2
        return base * (1 - mix) + dark * mix
    if name == "cloth":
        period = rng.uniform(4, 12)
        weave = (np.sin(xx * 2 * np.pi / period) * np.sin(yy * 2 * np.pi / period) + 1) / 2
        colour = rng.uniform(40, 230, 3).astype(np.float32)
        return colour * (0.7 + 0.3 * weave[..., None])
    if name == "noise":
        return np.clip(128 + 60 * smooth_noise(rng, h, w, max(h, w) / rng.uniform(2, 10))[..., None]
                       + rng.normal(0, 20, (h, w, 1)), 0, 255).repeat(3, -1).astype(np.float32)
    if name == "checkerboard":
        cell = rng.uniform(0.05, 0.2) * min(h, w)
        check = ((xx // cell + yy // cell) % 2).astype(np.float32)
        return (40 + 180 * check)[..., None].repeat(3, -1)
    if name == "clouds":
        return np.clip(150 + 70 * smooth_noise(rng, h, w, rng.uniform(2, 6)), 0, 255)[..., None].repeat(3, -1)
    raise ValueError(name)


def _stain(rng: np.random.Generator) -> np.ndarray:
    """An ink blot, a coffee ring or a splatter, as coverage in [0, 1]."""
    s = 200
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    c = s / 2
    angle = np.arctan2(yy - c, xx - c)
    dist = np.hypot(yy - c, xx - c)
    harmonics = sum(rng.normal(0, 0.12 / k) * np.cos(k * angle + rng.uniform(0, 2 * np.pi)) for k in range(2, 7))
    radius = s * 0.3 * (1 + harmonics)
    kind = rng.integers(3)
    if kind == 0:  # a blot, darker at its rim
        cov = np.clip((radius - dist) / 3, 0, 1) * rng.uniform(0.5, 1.0)
    elif kind == 1:  # a coffee ring: a rim, often incomplete
        rim = rng.uniform(2, 8)
        cov = np.clip(1 - np.abs(dist - radius) / rim, 0, 1) * rng.uniform(0.4, 0.9)
        gap = rng.uniform(0, 2 * np.pi)
        cov *= np.clip(np.abs(np.angle(np.exp(1j * (angle - gap)))) / rng.uniform(0.3, 1.5), 0, 1)
        cov = np.maximum(cov, 0.15 * (dist < radius))
    else:  # a splatter: a blot with droplets around it
        cov = np.clip((radius * 0.6 - dist) / 3, 0, 1)
        for _ in range(int(rng.integers(5, 20))):
            a, r = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 0.48) * s
            dr = rng.uniform(2, 8)
            cov = np.maximum(cov, np.clip(dr - np.hypot(yy - c - r * np.sin(a), xx - c - r * np.cos(a)), 0, 1))
    cov = cov * np.clip(0.8 + 0.3 * smooth_noise(rng, s, s, 8), 0.3, 1)
    rows, cols = np.nonzero(cov > 0.05)
    return cov[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1] if rows.size else cov


def _ruled(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Notebook rules, a grid or a margin line across the whole picture, as coverage in [0, 1]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    spacing = rng.uniform(0.08, 0.25) * min(h, w)
    width = rng.uniform(1.0, 3.0) * max(h, w) / 400

    def lines(v: np.ndarray) -> np.ndarray:
        d = (v - rng.uniform(0, spacing)) % spacing
        return np.clip(width / 2 + 0.5 - np.minimum(d, spacing - d), 0, 1)

    style = rng.integers(3)
    cov = lines(yy)
    if style == 1:
        cov = np.maximum(cov, lines(xx))
    elif style == 2:
        x0 = rng.uniform(0.1, 0.3) * w
        cov = np.maximum(cov * rng.uniform(0.3, 0.7), np.clip(width + 0.5 - np.abs(xx - x0), 0, 1))
    return cov * rng.uniform(0.4, 1.0)


def _photograph_rgb(img: np.ndarray, rng: np.random.Generator, kind: str) -> Sample:
    """A picture of a thing (RGB floats in [0, 255]) taken with a phone camera: light, blur, noise, JPEG."""
    h, w = img.shape[:2]
    notes: list[str] = []
    img = img * synth_digits._lighting(rng, h, w, notes, shadow_p=0.3)[..., None]
    pic = synth_digits._camera(img, rng, notes, blur=rng.uniform(0, 1.5) * max(h, w) / 500, noise=rng.uniform(1, 6))
    fmt = "JPEG" if rng.random() < 0.8 else "PNG"
    return Sample(synth_digits._encode(pic, fmt, int(rng.integers(50, 96))), -1, kind, kind, fmt, notes)


def _fashion_items(data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    from mnistlab.data import load_dataset

    data = load_dataset("fashion-mnist", data_dir, splits=("test",))
    return data.x_test, data.y_test


def render_nondigit(kind: str, rng: np.random.Generator, *, fonts: list[Path], fashion: np.ndarray | None) -> Sample:
    """One picture of `kind` (see KINDS); `fashion` holds Fashion-MNIST images for the clothing kind."""
    h, w = _canvas(rng)
    if kind in ("letter", "symbol"):
        text = str(rng.choice(list(LETTERS if kind == "letter" else SYMBOLS)))
        font = fonts[int(rng.integers(len(fonts)))] if fonts else None
        if not text.isascii():  # the handwriting fonts lack most of these (they would draw a box): DejaVu has them
            font = synth_digits.FONT_ROOT / PRINT_FONTS[int(rng.integers(len(PRINT_FONTS)))]
        try:
            mask = synth_digits.glyph(text, font, rng, 200)  # type: ignore[arg-type]
        except RuntimeError:  # a handwriting font without this character (BecauseWeMentor has no braces)
            mask = synth_digits.glyph(text, synth_digits.FONT_ROOT / PRINT_FONTS[0], rng, 200)  # type: ignore[arg-type]
        sample = photograph(_on_canvas(mask, h, w, rng, rng.uniform(0.3, 0.8)), rng, _ink_kind(rng), -1, kind)
        sample.notes.append(text)
        return sample
    if kind == "doodle":
        name = str(rng.choice(DOODLES))
        sample = photograph(_on_canvas(_doodle(name, rng), h, w, rng, rng.uniform(0.3, 0.8)), rng, _ink_kind(rng), -1,
                            kind)
        sample.notes.append(name)
        return sample
    if kind == "fashion":
        assert fashion is not None
        item = fashion[int(rng.integers(len(fashion)))].astype(np.float32) / 255.0
        up = np.asarray(Image.fromarray(item, "F").resize((200, 200), Image.Resampling.BICUBIC))
        return photograph(_on_canvas(np.clip(up, 0, 1), h, w, rng, rng.uniform(0.3, 0.8)), rng, _ink_kind(rng), -1,
                          kind)
    if kind == "stain":
        return photograph(_on_canvas(_stain(rng), h, w, rng, rng.uniform(0.2, 0.7)), rng,
                          str(rng.choice(["photo", "scan"], p=[0.8, 0.2])), -1, kind)
    if kind == "ruled":
        return photograph(_ruled(rng, h, w), rng, str(rng.choice(["photo", "scan"], p=[0.8, 0.2])), -1, kind)
    if kind == "texture":
        name = str(rng.choice(TEXTURES))
        sample = _photograph_rgb(_texture(name, rng, h, w), rng, kind)
        sample.notes.append(name)
        return sample
    if kind == "photo":
        name = str(rng.choice(PHOTOS))
        a = _sample_photo(name)
        ch, cw = (int(a.shape[i] * rng.uniform(0.6, 1.0)) for i in (0, 1))
        top, left = int(rng.integers(0, a.shape[0] - ch + 1)), int(rng.integers(0, a.shape[1] - cw + 1))
        crop = a[top: top + ch, left: left + cw]
        f = max(h, w) / max(crop.shape[:2])
        img = np.asarray(Image.fromarray(crop.astype(np.uint8)).resize(
            (max(8, round(cw * f)), max(8, round(ch * f))), Image.Resampling.BILINEAR), np.float32)
        sample = _photograph_rgb(img, rng, kind)
        sample.notes.append(name)
        return sample
    raise ValueError(f"unknown kind {kind!r}; one of {KINDS}")


def make_nondigits(per_kind: int = 50, seed: int = 0, data_dir: str | None = None,
                   kinds: list[str] | None = None) -> list[Sample]:
    """`per_kind` pictures of each kind (letters: twice as many), each Sample's `font` naming its kind."""
    kinds = KINDS if kinds is None else kinds
    fonts = _fonts()
    fashion = _fashion_items(data_dir)[0] if "fashion" in kinds else None
    samples = []
    for k, kind in enumerate(KINDS):
        if kind not in kinds:
            continue
        for i in range(per_kind * (2 if kind == "letter" else 1)):
            samples.append(render_nondigit(kind, np.random.default_rng([seed, k, i]), fonts=fonts, fashion=fashion))
    return samples


def mnist_photos(x: np.ndarray, y: np.ndarray, seed: int = 0) -> list[Sample]:
    """MNIST digits (uint8 28x28) photographed, scanned or drawn like the handwriting set."""
    out = []
    for i, (digit, label) in enumerate(zip(x, y)):
        rng = np.random.default_rng([seed, 99, i])
        h, w = _canvas(rng)
        up = np.asarray(Image.fromarray(digit.astype(np.float32) / 255.0, "F").resize((112, 112), Image.Resampling.BICUBIC))
        rows, cols = np.nonzero(up > 0.1)
        up = np.clip(up[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1], 0, 1) if rows.size else up
        out.append(photograph(_on_canvas(up, h, w, rng, rng.uniform(0.3, 0.8)), rng, _ink_kind(rng), int(label), "mnist"))
    return out
