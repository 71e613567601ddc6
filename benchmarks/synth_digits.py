"""Synthetic photos of handwritten digits, rendered with handwriting fonts: a realistic test set for images.py.

Each sample imitates one way a user's digit reaches the model: a phone photo of ink on paper (uneven light,
shadows, paper texture, blur, sensor noise, JPEG), a light-on-dark photo (chalk on a board, a gel pen on black
paper), a flatbed scan, a drawing on a canvas, or a drawing exported on a transparent canvas (RGBA). The
digit is a glyph from a handwriting font, slanted, rotated, thickened or thinned, and put off-centre.

Everything is decided by a NumPy generator seeded with (seed, index), so a set is the same on every machine
that has the same fonts. The fonts come from Debian packages (FONT_PACKAGES); `render_sample` falls back to
Pillow's built-in font when a font file is missing, so tests can use it anywhere.

    from synth_digits import make_samples
    samples = make_samples(per_digit=5, seed=0)      # list of Sample(data, label, kind, font, notes)
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

# apt-get install these for the full set; the files below are what they ship.
FONT_PACKAGES = ["fonts-dkg-handwriting", "fonts-breip", "fonts-bwht", "fonts-humor-sans", "fonts-comic-neue",
                 "fonts-dancingscript", "fonts-kaushanscript", "fonts-sjfonts", "fonts-rufscript",
                 "fonts-yusei-magic", "fonts-klee"]
FONT_FILES = [
    "truetype/fifthhorseman/dkg.ttf", "truetype/fifthhorseman/dkgBd.ttf", "truetype/fifthhorseman/dkgBI.ttf",
    "truetype/breip/Breip.ttf",
    "opentype/bwht/BecauseWeBuild-Regular.otf", "opentype/bwht/BecauseWeConnect-Regular.otf",
    "opentype/bwht/BecauseWeCreate-Regular.otf", "opentype/bwht/BecauseWeLearn-Regular.otf",
    "opentype/bwht/BecauseWeMentor-Regular.otf", "opentype/bwht/BecauseWeOrganize-Regular.otf",
    "truetype/humor-sans/Humor-Sans.ttf",
    "opentype/comic-neue/ComicNeue-Regular.otf", "opentype/comic-neue/ComicNeue-Bold.otf",
    "opentype/comic-neue/ComicNeue-Italic.otf",
    "opentype/dancingscript/DancingScript-Regular.otf", "opentype/dancingscript/DancingScript-Bold.otf",
    "opentype/kaushanscript/KaushanScript-Regular.otf",
    "truetype/sjfonts/SteveHand.ttf", "truetype/sjfonts/Delphine.ttf",
    "truetype/rufscript/Rufscript010.ttf",
    "truetype/yusei-magic/YuseiMagic-Regular.ttf",
    "truetype/klee/KleeOne-SemiBold.ttf",
]
FONT_ROOT = Path("/usr/share/fonts")

# How often each kind of picture occurs, and what it is.
KINDS = {
    "photo": 0.50,   # dark ink on paper, phone camera: lighting, shadow, texture, blur, noise, mostly JPEG
    "board": 0.10,   # light ink on a dark surface (chalk, white gel pen on black paper), phone camera
    "scan": 0.10,    # flatbed scan: even light, mild noise, sometimes JPEG or greyscale
    "canvas": 0.18,  # drawn on a screen canvas: clean strokes, white-on-black or black-on-white, PNG
    "rgba": 0.12,    # drawn on a transparent canvas, exported as RGBA PNG or palette GIF
}

GLYPH_PX = 200  # font size the glyphs are rasterised at before being transformed and scaled


@dataclass
class Sample:
    """One test picture: its encoded bytes (or a PIL image), its label and how it was made."""

    data: bytes
    label: int
    kind: str
    font: str
    fmt: str
    notes: list[str] = field(default_factory=list)


def available_fonts() -> list[Path]:
    """The handwriting fonts of FONT_FILES that are installed."""
    return [FONT_ROOT / f for f in FONT_FILES if (FONT_ROOT / f).is_file()]


def _font(path: Path | None, size: int) -> ImageFont.FreeTypeFont:
    if path is not None and path.is_file():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)  # Pillow's own scalable font: lets tests run without the packages


def _stroke_width(mask: np.ndarray) -> float:
    """Typical stroke width of a binary mask: twice its area over its boundary length."""
    m = mask.astype(np.int8)
    edges = np.abs(np.diff(m, axis=0)).sum() + np.abs(np.diff(m, axis=1)).sum()
    return 1.2 * 2.0 * m.sum() / max(int(edges), 1)


def _pieces(mask: np.ndarray) -> int:
    """Connected pieces of a binary mask (8-connected)."""
    from mnistlab.images import _components

    return len(_components(mask)[4])


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: float) -> np.ndarray:
    """Zero-mean, roughly unit-range noise varying over `cells` cells across the longer side."""
    gh = max(2, int(round(cells * h / max(h, w))) + 2)
    gw = max(2, int(round(cells * w / max(h, w))) + 2)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    return np.asarray(Image.fromarray(grid, "F").resize((w, h), Image.Resampling.BICUBIC))


def glyph(digit: int, font_path: Path | None, rng: np.random.Generator, height: int) -> np.ndarray:
    """The digit as ink coverage in [0, 1], slanted, rotated, re-weighted and scaled to `height` pixels."""
    font = _font(font_path, GLYPH_PX)
    text = str(digit)
    x0, y0, x1, y1 = font.getbbox(text)
    pad = GLYPH_PX // 2
    im = Image.new("L", (x1 - x0 + 2 * pad, y1 - y0 + 2 * pad), 0)
    ImageDraw.Draw(im).text((pad - x0, pad - y0), text, font=font, fill=255)
    # Pen width: pick a stroke width relative to the glyph height (fine liner .. marker) and reach it by
    # growing or eroding the font's own strokes.
    native = _stroke_width(np.asarray(im) > 127)
    target = float(np.exp(rng.uniform(np.log(0.05), np.log(0.19)))) * (y1 - y0)
    steps = int(round((target - native) / 2))
    if steps > 0:
        for _ in range(min(steps, 12)):
            im = im.filter(ImageFilter.MaxFilter(3))
    elif steps < 0:
        # Thin the pen, but never so far that a thin part of the glyph (a hairline bar) breaks off.
        pieces = _pieces(np.asarray(im) > 127)
        for _ in range(min(-steps, max(0, int(native / 2) - 2))):
            thinner = im.filter(ImageFilter.MinFilter(3))
            if _pieces(np.asarray(thinner) > 127) != pieces:
                break
            im = thinner
    # Slant (shear), rotation and a little squash, about the glyph's centre.
    shear = rng.uniform(-0.25, 0.25)
    angle = np.deg2rad(rng.uniform(-12, 12))
    sx = rng.uniform(0.85, 1.15)
    c, s = np.cos(angle), np.sin(angle)
    fwd = np.array([[c, -s], [s, c]]) @ np.array([[sx, shear], [0, 1]])
    inv = np.linalg.inv(fwd)
    cx, cy = im.width / 2, im.height / 2
    off = np.array([cx, cy]) - inv @ np.array([cx, cy])
    im = im.transform(im.size, Image.Transform.AFFINE, (inv[0, 0], inv[0, 1], off[0], inv[1, 0], inv[1, 1], off[1]),
                      resample=Image.Resampling.BILINEAR)
    box = im.getbbox()
    if box is None:
        raise RuntimeError(f"font {font_path} draws nothing for {digit}")
    im = im.crop(box)
    scale = height / im.height
    im = im.resize((max(1, round(im.width * scale)), max(1, height)), Image.Resampling.LANCZOS)
    return np.clip(np.asarray(im, np.float32) / 255.0, 0, 1)


def _place(mask: np.ndarray, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Put a glyph mask somewhere on an h x w canvas (off-centre, fully inside with a small margin)."""
    gh, gw = mask.shape
    out = np.zeros((h, w), np.float32)
    my, mx = max(1, int(0.04 * h)), max(1, int(0.04 * w))
    top = int(rng.integers(my, max(my + 1, h - gh - my)))
    left = int(rng.integers(mx, max(mx + 1, w - gw - mx)))
    gh, gw = min(gh, h - top), min(gw, w - left)
    out[top: top + gh, left: left + gw] = mask[:gh, :gw]
    return out


def _lighting(rng: np.random.Generator, h: int, w: int, notes: list[str], shadow_p: float = 0.4) -> np.ndarray:
    """Illumination: exposure, a linear gradient, vignetting and sometimes a soft shadow."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    size = float(max(h, w))
    u, v = (xx - w / 2) / size, (yy - h / 2) / size
    theta = rng.uniform(0, 2 * np.pi)
    light = rng.uniform(0.75, 1.05) * (1 + rng.uniform(0, 0.5) * (u * np.cos(theta) + v * np.sin(theta)))
    light *= 1 - rng.uniform(0, 0.35) * (u * u + v * v) * 2
    if rng.random() < shadow_p:
        depth = rng.uniform(0.2, 0.55)
        soft = rng.uniform(0.02, 0.12) * size
        if rng.random() < 0.6:  # the edge of a hand's or phone's shadow: a soft half-plane
            phi = rng.uniform(0, 2 * np.pi)
            d = (xx - w / 2) * np.cos(phi) + (yy - h / 2) * np.sin(phi) - rng.uniform(0.1, 0.45) * size
            notes.append("shadow-edge")
        else:  # a round blob of shadow
            r = rng.uniform(0.15, 0.4) * size
            d = r - np.hypot(xx - rng.uniform(0, w), yy - rng.uniform(0, h))
            notes.append("shadow-blob")
        light *= 1 - depth / (1 + np.exp(-np.clip(d / soft, -30, 30)))
    return light.astype(np.float32)


def _camera(img: np.ndarray, rng: np.random.Generator, notes: list[str], blur: float, noise: float) -> Image.Image:
    """Defocus blur and sensor noise on an RGB float image in [0, 255]; returns an RGB PIL image."""
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    if blur > 0.3:
        im = im.filter(ImageFilter.GaussianBlur(blur))
        notes.append(f"blur{blur:.1f}")
    arr = np.asarray(im, np.float32)
    if noise > 0:
        grain = noise * rng.standard_normal(arr.shape[:2], np.float32)[..., None] \
            + (noise / 2) * rng.standard_normal(arr.shape, np.float32)
        arr = arr + grain
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _encode(im: Image.Image, fmt: str, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        im.save(buf, "JPEG", quality=quality)
    elif fmt == "PNG":
        im.save(buf, "PNG", compress_level=1)
    else:
        im.save(buf, fmt)
    return buf.getvalue()


PAPERS = [(245, 245, 240), (250, 250, 250), (235, 232, 220), (250, 240, 190), (215, 232, 245), (250, 220, 225),
          (220, 240, 215), (225, 225, 225)]
INKS = [(20, 20, 25), (25, 35, 110), (30, 60, 170), (150, 25, 25), (20, 90, 40), (70, 70, 75), (45, 25, 60)]


def render_sample(digit: int, font_path: Path | None, rng: np.random.Generator, kind: str | None = None) -> Sample:
    """Render one picture of `digit` (encoded as PNG, JPEG, GIF or WebP bytes) with its description."""
    if kind is None:
        kind = str(rng.choice(list(KINDS), p=list(KINDS.values())))
    notes: list[str] = []
    big = rng.random() < 0.12 and kind in ("photo", "board")
    longer = int(rng.integers(1200, 2200)) if big else int(rng.integers(240, 720))
    aspect = rng.uniform(0.7, 1.0)
    h, w = (longer, int(longer * aspect)) if rng.random() < 0.5 else (int(longer * aspect), longer)
    share = rng.uniform(0.12, 0.3) if big else rng.uniform(0.3, 0.8)
    mask = glyph(digit, font_path, rng, max(12, int(share * min(h, w))))
    if mask.shape[1] > 0.92 * w:  # a wide glyph on a narrow canvas: scale it to fit
        mask = np.asarray(Image.fromarray(mask, "F").resize(
            (int(0.9 * w), max(1, int(mask.shape[0] * 0.9 * w / mask.shape[1]))), Image.Resampling.BOX))
    ink = _place(mask, h, w, rng)
    font = font_path.stem if font_path else "default"
    if big:
        notes.append("large")
    return photograph(ink, rng, kind, digit, font, notes)


def photograph(ink: np.ndarray, rng: np.random.Generator, kind: str, label: int = -1, font: str = "",
               notes: list[str] | None = None) -> Sample:
    """Picture ink coverage (h x w in [0, 1]) the way `kind` does: a phone photo, board, scan, canvas or RGBA."""
    notes = [] if notes is None else notes
    h, w = ink.shape
    digit = label

    if kind in ("photo", "board", "scan"):
        if kind == "board":
            paper = np.array([(35, 45, 40), (20, 20, 22), (40, 40, 55), (60, 35, 30)][rng.integers(4)], np.float32)
            colour = np.array([(235, 235, 230), (240, 240, 200), (220, 230, 245)][rng.integers(3)], np.float32)
            # Chalk and gel ink lie unevenly.
            ink = ink * np.clip(0.75 + 0.35 * smooth_noise(rng, h, w, max(h, w) / 3), 0.3, 1)
        else:
            paper = np.array(PAPERS[rng.integers(len(PAPERS))], np.float32)
            colour = np.array(INKS[rng.integers(len(INKS))], np.float32)
            if rng.random() < 0.2:  # pencil: grey and grainy
                colour = np.array((95, 95, 100), np.float32)
                ink = ink * np.clip(0.7 + 0.4 * smooth_noise(rng, h, w, max(h, w) / 2), 0.2, 1)
                notes.append("pencil")
            else:  # pen pressure varies along the stroke
                ink = ink * np.clip(0.85 + 0.15 * smooth_noise(rng, h, w, 6), 0.5, 1)
        texture = 1 + rng.uniform(0.01, 0.05) * smooth_noise(rng, h, w, max(h, w) / 4) \
            + rng.uniform(0.0, 0.04) * smooth_noise(rng, h, w, 10)
        surface = paper[None, None, :] * texture[..., None]
        if kind != "board" and rng.random() < 0.15:  # ruled notebook paper
            spacing = rng.uniform(0.08, 0.16) * min(h, w)
            phase = rng.uniform(0, spacing)
            yy = np.arange(h, dtype=np.float32)[:, None]
            dist = np.abs(((yy - phase) % spacing) - spacing / 2) - (spacing / 2 - 1.0)
            line = np.clip(dist + 0.5, 0, 1) * rng.uniform(0.15, 0.35)
            surface = surface * (1 - line[..., None] * (1 - np.array([0.6, 0.75, 1.0], np.float32)))
            notes.append("ruled")
        img = surface * (1 - ink[..., None]) + colour[None, None, :] * ink[..., None]
        if kind == "scan":
            img = img * rng.uniform(0.95, 1.05)
            pic = _camera(img, rng, notes, blur=rng.uniform(0, 0.8), noise=rng.uniform(0, 3))
        else:
            if kind == "photo" and rng.random() < 0.1:  # the desk shows along one edge of the photo
                # ... on the side with the widest blank margin, the paper's edge clear of the ink
                rows, cols = np.nonzero(ink > 0.05)
                free = [rows.min(), h - 1 - rows.max(), cols.min(), w - 1 - cols.max()]
                side = int(np.argmax(free))
                band = int(min(rng.uniform(0.04, 0.1) * (h if side < 2 else w), 0.7 * free[side]))
                desk = np.array([(90, 60, 40), (40, 40, 45), (150, 120, 90)][rng.integers(3)], np.float32)
                sl = [np.s_[:band, :], np.s_[h - band:, :], np.s_[:, :band], np.s_[:, w - band:]][side]
                img[sl] = desk
                notes.append("desk-edge")
            img = img * _lighting(rng, h, w, notes)[..., None]
            scale = max(h, w) / 500
            pic = _camera(img, rng, notes, blur=rng.uniform(0, 2.0) * scale, noise=rng.uniform(1, 8))
        if kind == "scan" and rng.random() < 0.4:
            pic = pic.convert("L")
            notes.append("grey")
        fmt = "JPEG" if rng.random() < (0.8 if kind != "scan" else 0.4) else "PNG"
        quality = int(rng.integers(35, 96))
        if fmt == "JPEG":
            notes.append(f"q{quality}")
        return Sample(_encode(pic, fmt, quality), digit, kind, font, fmt, notes)

    if kind == "canvas":
        dark = rng.random() < 0.5
        notes.append("white-on-black" if dark else "black-on-white")
        level = ink * 255 if dark else 255 - ink * 255
        pic = Image.fromarray(np.clip(level, 0, 255).astype(np.uint8), "L")
        if rng.random() < 0.5:
            pic = pic.convert("RGB")
        fmt = "PNG" if rng.random() < 0.8 else "WEBP"
        return Sample(_encode(pic, fmt), digit, kind, font, fmt, notes)

    # kind == "rgba": strokes on a transparent canvas; their colour decides the backdrop they need.
    choice = int(rng.integers(3))
    colour = [(0, 0, 0), (255, 255, 255), (30, 60, 200)][choice]
    notes.append(["black-on-clear", "white-on-clear", "blue-on-clear"][choice])
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., :3] = colour
    rgba[..., 3] = np.clip(ink * 255, 0, 255).astype(np.uint8)
    pic = Image.fromarray(rgba, "RGBA")
    if rng.random() < 0.3:
        # Palette GIFs carry one transparent index: threshold the alpha like a paint program does.
        p = Image.new("P", pic.size, 0)
        p.putpalette([255, 255, 255] + list(colour) + [0] * 762)
        p.paste(1, mask=Image.fromarray(((ink > 0.5) * 255).astype(np.uint8), "L"))
        p.info["transparency"] = 0
        buf = io.BytesIO()
        p.save(buf, "GIF", transparency=0)
        return Sample(buf.getvalue(), digit, kind, font, "GIF", notes)
    return Sample(_encode(pic, "PNG"), digit, kind, font, "PNG", notes)


def make_samples(per_digit: int = 5, seed: int = 0, fonts: list[Path] | None = None) -> list[Sample]:
    """`per_digit` pictures of each digit for each font (or Pillow's default font when none is installed)."""
    fonts = available_fonts() if fonts is None else fonts
    chosen: list[Path | None] = list(fonts) or [None]
    samples = []
    index = 0
    for font in chosen:
        for digit in range(10):
            for _ in range(per_digit):
                rng = np.random.default_rng([seed, index])
                samples.append(render_sample(digit, font, rng))
                index += 1
    return samples
