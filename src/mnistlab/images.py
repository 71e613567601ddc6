"""Turning a user's picture of a digit into an MNIST-style 28x28 input.

MNIST's digits were made by scanning pen-written digits, size-normalising each binary digit to fit a 20x20
box (keeping its aspect ratio, anti-aliased, hence grey levels) and centring it by its centre of mass in a
28x28 field, bright ink on a dark background. `preprocess` does the same to a photo, a scan or a drawing:

1. Load and flatten (`load_image`): any format Pillow reads (an animation's first frame), EXIF rotation
   applied, every mode turned into grey or RGB. Transparency is composited onto white when the visible
   pixels are dark and onto black when they are bright, so strokes on a transparent canvas stay visible.
   A picture over `max_pixels` is refused from its header, before any pixel is decoded.
2. Grey levels (ITU-R 601 luma) in [0, 1]. The analysis runs on a copy at most `WORK_SIZE` pixels long;
   large pictures are reduced early (a JPEG is even decoded at 1/2, 1/4 or 1/8 scale), which keeps a
   12-megapixel photo fast. A small picture whose digit touches its sides (cropped to the digit's box, or
   stretched to fill it, as USPS, Semeion and form cells are) first gets back a margin of its paper.
3. Polarity: most of any picture is paper, so its median is the paper's level; the ink is the side of it
   whose clear deviations (beyond what lighting and texture do) weigh more. From here on the picture is
   "ink-positive": ink bright, paper dark.
4. Paper background (uneven light, shadows, the desk beside the paper): a grey opening (minimum, then
   maximum filter) on a coarse grid of cell means, upsampled bilinearly. Its window must be wider than
   the strokes yet narrower than the shadows, so several are tried, down to `STROKE_WINDOW` times the
   width of the strokes each finds, and the one whose ink then separates best from the paper (Otsu's
   between-class share of the variance) wins. (A narrower window hollows bold strokes and junctions, and
   the ink it leaves separates all the better: a faded 7 kept its stem and lost its bar.) The ink strength
   is the contrast relative to the paper (a division: a digit in a shadow is as strong as one in the light).
   Pictures up to `SMALL` pixels have a constant background.
5. Ink: a light blur (noise, JPEG blocks), then Otsu's threshold over the neighbourhood of the likely ink
   (so that a thin digit covering 1% of a photo is not outvoted by paper texture). Printed lines (a form
   field's box, a ruled line: thin, ruler-straight, reaching past the digit or meeting at a corner, see
   `_printed_lines`) are taken out, where strokes cross them excepted; one that may as well be the digit's
   own stroke stays, and `preprocess_choices` gives a second input without it. Connected components
   (8-connected, OpenCV): strips along a side of the picture are its edges, not ink, and the threshold
   is chosen again without them; the digit is the largest remaining component with those near it that
   are not specks, and the fainter ink connected to it (hysteresis, `_faded`: ink fading along a stroke).
   Too little contrast (`MIN_CONTRAST`), or a signal-to-noise ratio under `MIN_SNR` at every scale (and,
   for a bold digit filling a close crop, against the paper beside it: under twice `MIN_SNR`, or under
   `MIN_SNR` or `FINE_SNR` times the paper's fine grain), or only a speck, means there is no digit:
   `NoDigitError` rather than a guess.
6. Grey levels: a ramp from the noise floor to the digit's median stroke strength, so strokes saturate
   like MNIST's and their edges stay anti-aliased; everything away from the digit's components is zero.
   A digit that is small in a large picture is drawn from the full-resolution pixels.
7. Thin strokes (a fine pen, a big digit) are thickened to MNIST's median stroke width relative to the
   digit's size (`TARGET_STROKE`); in a picture of at most `TIGHT_MAX` pixels (a dataset's cell, a form
   field), strokes bolder than nine in ten of MNIST's (over `MAX_STROKE` of the digit's size: a digit
   stretched to fill a small box, as USPS, Semeion and optdigits stored theirs, where a 1 becomes a fat bar)
   are thinned to it by a grey erosion; the others are left alone.
8. Crop to the digit, scale its longer side to 20 px (area averaging), and place it in a 28x28 frame with
   its centre of mass at MNIST's mean position (14, 14), kept inside the frame.

An image that already is an MNIST digit passes through essentially unchanged (the same steps find a
20-pixel digit, nothing to thicken, and its centre of mass already in place).
"""

from __future__ import annotations

import functools
import io
import math
import os
import warnings
from pathlib import Path
from typing import Any, Iterable

import cv2
import numpy as np
from PIL import Image, ImageOps

from .errors import ImageError, ImageNotFoundError, NoDigitError

MAX_PIXELS = 40_000_000
FRAME = 28  # MNIST's field
BOX = 20  # MNIST's size-normalisation box (longer side)
CENTRE = 14.0  # where MNIST's centre of mass lies, in row/column index units (measured mean 13.99, 14.01)
WORK_SIZE = 384  # longer side of the image the analysis runs on
SMALL = 64  # images up to this size have no uneven lighting worth modelling
MIN_CONTRAST = 0.08  # ink must be at least this much darker (relative) than the paper
MIN_SNR = 4.0  # ... and this many noise standard deviations
# A second look, beside the digit: MIN_SNR over the paper's blotches is enough where the ink stands this many
# times over the paper's fine grain (an old record's slow blotches, not a texture's grain; `_paper_snr`).
FINE_SNR = 12.0
SPECK_FRACTION = 0.04  # a component below this fraction of the largest one's area is a speck
NEAR_FRACTION = 0.3  # a component further than this fraction of the digit's size from it is not part of it...
GROWTH = 1.15  # ... unless taking it in grows the digit's box by at most this factor
BORDER_FRACTION = 0.3  # a component running along more than this fraction of a side of the picture ...
STRIP_DEPTH = 0.2  # ... and reaching less than this fraction into it is the picture's edge, not ink
POLARITY_MARGIN = 0.1  # grey-level deviations smaller than this (lighting, texture) do not vote on polarity
WINDOWS = (0.5, 0.3, 0.18, 0.1)  # background windows tried, as fractions of the picture's shorter side ...
STROKE_WINDOW = 2.0  # ... down to this many times the width of the strokes each finds
TIGHT_MAX = 128  # pictures up to this size may be a digit cropped to its box (a dataset's cell, a form field)...
TIGHT_TOUCH = 0.04  # ... when this share of their outermost ring is ink; they get back MARGIN of paper all round
MARGIN = 0.2  # MNIST's: a 20-pixel digit in a 28-pixel field leaves a fifth of its size on each side
TARGET_STROKE = 0.11  # MNIST's typical stroke width over its digit's longer side, measured on the test set
# In a small picture, strokes bolder than this fraction of the digit's longer side are thinned to it (a digit
# stretched to fill its box: USPS, Semeion, optdigits). Measured on the rendered ramp at 80 px: MNIST's held-out
# training digits 0.12 (median), 0.165 (90th percentile), 0.215 (99th); 1s stretched to fill a 16x16 or 32x32 box
# 0.22-0.25; a felt marker's digits 0.17. Chosen on development sets (other_writers.py seed 0 and MNIST's held-out
# training digits): 0.16 read them best, 0.18 and 0.2 gained less (docs/benchmarks.md "Bold strokes").
MAX_STROKE = 0.16
FADED = 0.5  # ink above this fraction of the threshold, connected to the digit, is part of it (`_faded`) ...
FADED_GAIN = 0.1  # ... where beyond the strokes' rim it adds this share of the digit's pixels ...
FADED_REACH = 0.5  # ... and within this fraction of the digit's size around it
LINE_LENGTH = 0.45  # a straight horizontal or vertical run of ink this fraction of the picture's side long ...
LINE_OVERHANG = 0.05  # ... that reaches past the rest of the ink at both ends by this fraction of its length (2 px at least) ...
LINE_REST = 0.25  # ... beside at least this much other ink (of the line's area) ...
LINE_SPAN = 0.9  # ... and at least this many times as long as the rest of the ink is wide (tall, if vertical) ...
LINE_THIN = 0.08  # ... and at most this fraction of its length thick ...
LINE_PEN = 1.3  # ... and thinner than this many times the pen's width in the rest of the ink is a printed line
LINE_THIN_PEN = 1.0  # a line no thicker than the pen whose other end stops on the paper needs to reach past the
#                     ink at one end only (bw_form 78.0 / 72.0% at 0.6 of the pen, 81.0 / 77.5% at 1.0, seeds 0 / 1) ...
LINE_HAIR = 0.3  # ... and a line this thin needs only that, whatever its other end meets
LUMA = np.array([0.299, 0.587, 0.114], np.float32)

_RESAMPLE = Image.Resampling
_NO_ORIENTATION = ("PNG", "GIF", "BMP")  # formats whose orientation can only come from an "exif" chunk
# One OpenCV thread: the images here are small (under WORK_SIZE), and a server's other cores serve other requests;
# OpenCV's thread pool made connected components slower, not faster, on a busy 2-core machine.
cv2.setNumThreads(1)


# ----------------------------------------------------------------------------------------------------- loading


def load_image(source: Any, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Read a picture (path, bytes, file-like, PIL image or NumPy array) as an 'L' or 'RGB' PIL image."""
    if isinstance(source, Image.Image):
        _check_size(source.size, "image", max_pixels)
        try:
            source.load()  # an image from Image.open() decodes only now
            source = ImageOps.exif_transpose(source)
        except Exception as e:
            raise ImageError(f"image: cannot decode the image: {_reason(e)}; save the picture again as PNG or JPEG") from None
        return _flatten(source, "image")
    if isinstance(source, np.ndarray):
        return _array_to_image(source, max_pixels)
    return _open(source, max_pixels)


def _describe(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    name = getattr(source, "name", None)
    return str(name) if isinstance(name, (str, os.PathLike)) else f"<{type(source).__name__}>"


def _open(source: Any, max_pixels: int, draft: int | None = None) -> Image.Image:
    """Open, size-check, decode and flatten one image; `draft` lets JPEG decode at a reduced scale."""
    name = _describe(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            raise ImageError(f"{path}: is a directory, not an image file")
        try:
            with open(path, "rb") as fp:
                if os.fstat(fp.fileno()).st_size == 0:
                    raise ImageError(f"{path}: empty file (0 bytes), not an image; save the picture again as PNG or JPEG")
                return _decode(fp, name, max_pixels, draft)
        except FileNotFoundError as e:
            raise ImageNotFoundError(f"{path}: no such file; check the path") from e
        except OSError as e:
            raise ImageError(f"{path}: cannot read: {e.strerror or e}; check the path") from e
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ImageError("<0 bytes>: empty input, not an image")
        return _decode(io.BytesIO(bytes(source)), name, max_pixels, draft)
    if hasattr(source, "read"):
        return _decode(source, name, max_pixels, draft)
    raise ImageError(f"cannot read an image from a {type(source).__name__}; give a path, bytes, a file object, "
                     "a PIL image or a NumPy array")


def _decode(fp: Any, name: str, max_pixels: int, draft: int | None) -> Image.Image:
    """Image.open (header only), the size check, then the pixels; every Pillow failure becomes an ImageError."""
    # PIL's own limits would warn or raise at sizes we decide on ourselves; the check below is ours.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        # Pillow warns about damaged metadata (corrupt EXIF, ...); the picture either decodes or is an ImageError.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        try:
            im = Image.open(fp)
        except Image.DecompressionBombError:
            raise ImageError(f"{name}: image too large (over {max_pixels:,} pixels); resize it first") from None
        except Image.UnidentifiedImageError:
            raise ImageError(f"{name}: not an image Pillow can read (PNG, JPEG, BMP, GIF, WebP, TIFF, ...)") from None
        except Exception as e:  # Pillow raises many types for a damaged header; all mean the same to a user.
            raise ImageError(f"{name}: cannot read the image: {_reason(e)}") from None
        opened = im
        with opened:
            _check_size(im.size, name, max_pixels)
            try:
                if draft and im.format == "JPEG":
                    # Decode at 1/2, 1/4 or 1/8 scale when that still leaves `draft` pixels on the longer side.
                    scale = max(im.size) / draft
                    if scale >= 2:
                        im.draft(im.mode if im.mode in ("L", "RGB") else "RGB",
                                 (int(im.width / scale), int(im.height / scale)))
                im.load()
                if im.format not in _NO_ORIENTATION or "exif" in im.info:  # parsing EXIF costs ~0.3 ms
                    im = ImageOps.exif_transpose(im)
            except ImageError:
                raise
            except Exception as e:  # truncated data, bad chunks, unsupported codec options, ...
                raise ImageError(f"{name}: cannot decode the image: {_reason(e)}; save the picture again as PNG or JPEG") from None
            flat = _flatten(im, name)
            return flat.copy() if flat is opened else flat  # `opened` is closed on leaving this block


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


def _check_size(size: tuple[int, int], name: str, max_pixels: int) -> None:
    w, h = size
    if w < 1 or h < 1:
        raise ImageError(f"{name}: image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise ImageError(f"{name}: image too large ({w}x{h} = {w * h:,} pixels, the limit is {max_pixels:,}); "
                         "resize it first")


def _flatten(im: Image.Image, name: str) -> Image.Image:
    """Any mode -> 'L' or 'RGB', with transparency composited onto a backdrop that contrasts with the ink."""
    mode = im.mode
    try:
        if mode in ("L", "RGB"):
            return im
        if mode == "1":
            return im.convert("L")
        if mode.startswith("I") or mode == "F":
            return Image.fromarray(_wide_to_uint8(np.asarray(im), mode), "L")
        if mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif mode in ("PA", "RGBa", "RGBA", "La", "LA"):
            im = im.convert("LA" if mode in ("La", "LA") else "RGBA")
        elif mode != "RGB":
            im = im.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX
    except ImageError:
        raise
    except Exception as e:
        raise ImageError(f"{name}: cannot convert {mode} pixels: {_reason(e)}") from None
    if im.mode in ("RGBA", "LA"):
        # The alpha band's minimum alone: getextrema() of the whole image scanned every band (0.20 against
        # 0.04 ms for a 280x280 canvas).
        if im.getchannel("A").getextrema()[0] == 255:
            # Opaque (the page's canvas: browsers send RGBA PNGs): the colour as it is, which is what `_composite`
            # gives too, here without the round trip through NumPy (0.30 against 0.37 ms for a 280x280 canvas).
            return im.convert("RGB" if im.mode == "RGBA" else "L")
        arr = np.asarray(im)
        return Image.fromarray(_composite(arr[..., :-1], arr[..., -1]), "L" if im.mode == "LA" else "RGB")
    return im


def _wide_to_uint8(a: np.ndarray, mode: str) -> np.ndarray:
    """16/32-bit integer or float grey levels -> uint8: 16-bit modes by their range, others by their values."""
    a = a.astype(np.float64)
    if mode.startswith("I;16"):
        scale = 65535.0
    elif mode == "F":
        finite = a[np.isfinite(a)]
        top = float(finite.max()) if finite.size else 0.0
        scale = 1.0 if top <= 1.0 else 255.0 if top <= 255.0 else top
        a = np.nan_to_num(a, nan=0.0, posinf=scale, neginf=0.0)
    else:  # 'I': 32-bit ints; PNG stores 16-bit grey this way in older Pillow
        top = float(a.max()) if a.size else 0.0
        scale = 255.0 if top <= 255 else 65535.0 if top <= 65535 else top
    return np.clip(np.rint(a / scale * 255.0), 0, 255).astype(np.uint8)


def _composite(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Blend `colour` (H, W[, C] uint8) over white or black, whichever contrasts with the visible pixels
    (`alpha`: H, W uint8)."""
    if alpha.min() == 255:  # opaque: the colour as it is, found before any float work
        return colour.squeeze(-1) if colour.ndim == 3 and colour.shape[-1] == 1 else colour
    a = alpha.astype(np.float32) / 255.0
    a3 = a[..., None] if a.ndim == colour.ndim - 1 else a
    c = colour.astype(np.float32)
    luma = c @ LUMA if c.ndim == 3 and c.shape[-1] == 3 else c.reshape(a.shape)
    weight = float(a.sum())
    ink_level = float((luma * a).sum() / weight) if weight > 0 else 0.0
    backdrop = 255.0 if ink_level < 128.0 else 0.0
    out = c * a3 + backdrop * (1.0 - a3)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.squeeze(-1) if out.ndim == 3 and out.shape[-1] == 1 else out


def _array_to_image(a: np.ndarray, max_pixels: int) -> Image.Image:
    """A 2-D grey or HxWx{1,3,4} array (uint8, bool, other ints in 0..255, uint16, floats in [0, 1]) -> PIL."""
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] in (3, 4))):
        raise ImageError(f"array of shape {a.shape} is not an image: give (H, W) grey or (H, W, 3|4) colour")
    _check_size((a.shape[1], a.shape[0]), f"array {a.shape}", max_pixels)
    if a.dtype == np.uint8:
        u8 = a
    elif a.dtype == np.bool_:
        u8 = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        u8 = np.rint(a / 257.0).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer):
        if a.min() < 0 or a.max() > 255:
            raise ImageError(f"array of {a.dtype} holds values {a.min()}..{a.max()}; expected 0..255 (or uint16)")
        u8 = a.astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ImageError(f"array of shape {a.shape} holds NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0 or hi > 255:
            raise ImageError(f"float array holds values {lo:g}..{hi:g}; expected [0, 1] (or 0..255)")
        u8 = np.rint(a * (255.0 if hi <= 1.0 else 1.0)).astype(np.uint8)
    else:
        raise ImageError(f"array of dtype {a.dtype} is not an image; use uint8 or floats in [0, 1]")
    if a.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(u8), "L")
    if u8.shape[-1] == 4:
        return Image.fromarray(_composite(u8[..., :3], u8[..., 3]), "RGB")
    return Image.fromarray(np.ascontiguousarray(u8), "RGB")


def _float_grey(source: Any, max_pixels: int) -> np.ndarray:
    """Any accepted source as a float32 grey array in [0, 1], keeping a float array's precision."""
    if isinstance(source, np.ndarray) and source.ndim == 2 and np.issubdtype(source.dtype, np.floating):
        _check_size((source.shape[1], source.shape[0]), f"array {source.shape}", max_pixels)
        if not np.isfinite(source).all():
            raise ImageError(f"array of shape {source.shape} holds NaN or infinite values")
        lo, hi = float(source.min()), float(source.max())
        if lo < 0 or hi > 255:
            raise ImageError(f"float array holds values {lo:g}..{hi:g}; expected [0, 1] (or 0..255)")
        return (source / (255.0 if hi > 1.0 else 1.0)).astype(np.float32)
    if isinstance(source, (Image.Image, np.ndarray)):
        im = load_image(source, max_pixels=max_pixels)
    else:
        im = _open(source, max_pixels, draft=4 * WORK_SIZE)
    return _pil_grey(im)


def _pil_grey(im: Image.Image) -> np.ndarray:
    """An 'L' or 'RGB' image as float32 grey in [0, 1], reduced early (by integer steps) when it is large."""
    factor = max(im.size) // (2 * WORK_SIZE)
    if factor >= 2:
        im = im.reduce(factor)  # box average: cheap, and keeps 2x WORK_SIZE to draw a small digit from
    if im.mode != "L":
        im = im.convert("L")  # ITU-R 601-2 luma
    # One table lookup (OpenCV's LUT) instead of a conversion and a division: the same float32 values.
    return cv2.LUT(np.asarray(im), _GREY_LEVELS)


_GREY_LEVELS = np.arange(256, dtype=np.float32) / 255.0  # what `uint8 / 255.0` gives, level by level


# ------------------------------------------------------------------------------------------------ preprocessing


def preprocess(image: Any, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Turn a picture of a digit into an MNIST-style (28, 28) float32 array in [0, 1], bright ink on dark."""
    grey = _float_grey(image, max_pixels)
    return _digit(grey)[0]


def preprocess_choices(image: Any, *, max_pixels: int = MAX_PIXELS) -> list[np.ndarray]:
    """`preprocess`'s 28x28 input, and a second one where a printed line touching the digit may be the digit's
    own stroke or a form's box: with that line taken out too.

    `_printed_lines` leaves in a line that reaches past the digit at one end only and, at the other, runs into its
    strokes or is as thick as the pen: that is what the bar of a 7, the foot of a 2 or the top of a 5 look like,
    and what a box's side looks like where the digit touches it. Nothing in the picture tells them apart; the
    model can. The second input exists only for such pictures, and `prediction.choose` weighs the two: the
    first stands unless it is refused, flagged LOW or far less digit-like than the second.
    """
    grey = _float_grey(image, max_pixels)
    first, doubtful = _digit(grey)
    if not doubtful:
        return [first]
    try:
        second = _digit(grey, lenient=True)[0]
    except NoDigitError:
        return [first]
    return [first] if np.array_equal(first, second) else [first, second]


def digit_png(digit: np.ndarray) -> bytes:
    """A preprocessed (28, 28) image in [0, 1] as grey PNG file bytes (what the model saw, to look at or keep).

    OpenCV's encoder: about a quarter of Pillow's time, which the server pays on every answer.
    """
    ok, png = cv2.imencode(".png", np.round(np.clip(digit, 0, 1) * 255).astype(np.uint8))
    if not ok:
        raise ValueError(f"cannot encode an image of shape {np.shape(digit)} as PNG")
    return png.tobytes()


def preprocess_many(images: Iterable[Any], *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Preprocess several pictures into an (N, 28, 28) float32 array; the first unreadable one raises."""
    out = [preprocess(image, max_pixels=max_pixels) for image in images]
    return np.stack(out) if out else np.zeros((0, FRAME, FRAME), np.float32)


def _digit(grey: np.ndarray, lenient: bool = False) -> tuple[np.ndarray, bool]:
    """Steps 2-8 of the module docstring on a grey picture in [0, 1], and whether a printed line was left in for
    reaching past the digit at one end only (`lenient`: take such lines out too; `preprocess_choices`)."""
    h, w = grey.shape
    if min(h, w) < 4:
        raise NoDigitError(f"no digit found: the image is only {w}x{h} pixels")
    # Only a small picture can be a dataset's cell or a form field stretched to fill its box (`_with_margin`'s
    # case): only there are strokes far bolder than MNIST's thinned. In a photo or a canvas a bold blob is more
    # often not a digit at all (a garment, a stain), which thinning would make look like one.
    thin_bold = max(h, w) <= TIGHT_MAX
    grey = _with_margin(grey)
    h, w = grey.shape
    scale = max(h, w) / WORK_SIZE
    work = _resize(grey, (max(1, round(w / scale)), max(1, round(h / scale)))) if scale > 1 else grey
    found = _find_ink(work, lenient)
    near = _dilate(found["keep"], max(1, min(3, round(found["stroke"] / 2))))
    top, left, bottom, right = found["bbox"]
    size = max(bottom - top, right - left)
    if scale <= 1.25 or size >= 0.5 * WORK_SIZE:
        return (_render(found["strength"], near, found["stroke"], found["floor"], found["ink_level"], thin_bold),
                found["doubtful"])
    # The digit is small inside a large picture: draw it from the full-resolution pixels rather than from a
    # handful of working ones, with the polarity, background, threshold and components found above.
    wh, ww = work.shape
    sy, sx = h / wh, w / ww
    margin = 0.25 * size + 4
    t, l = max(0, int((top - margin) * sy)), max(0, int((left - margin) * sx))
    b, r = min(h, math.ceil((bottom + margin) * sy)), min(w, math.ceil((right + margin) * sx))
    box = (l / sx, t / sy, r / sx, b / sy)  # the same region in working coordinates
    crop = grey[t:b, l:r]
    p = crop if found["bright"] else 1.0 - crop
    background = found["background"]
    if np.ndim(background):
        background = _resize(background, (r - l, b - t), _RESAMPLE.BILINEAR, box=box)
    strength = _smooth(_strength(p, background))
    near_full = _resize(near.astype(np.float32), (r - l, b - t), _RESAMPLE.BILINEAR, box=box) > 0.25
    return (_render(strength, near_full, found["stroke"] * sx, found["floor"], found["ink_level"], thin_bold),
            found["doubtful"])


def _with_margin(grey: np.ndarray) -> np.ndarray:
    """A small picture whose digit touches its sides (cropped to the digit's box, or stretched to fill it, as
    USPS, Semeion and form-field scans are), with a margin of its paper's level added all round.

    Without it the picture's median, which the analysis takes for paper, can be ink (a bold 0 filling a 16x16
    cell is more ink than paper), and strokes along the sides read as the picture's edges. The paper is the level
    of the outermost ring, which only a few strokes cross; a picture whose ring holds no ink is returned as it is
    (an MNIST digit, with its own margin, passes through unchanged).
    """
    h, w = grey.shape
    if max(h, w) > TIGHT_MAX:
        return grey
    if float(grey.max()) - float(grey.min()) < MIN_CONTRAST:
        return grey  # flat: nothing to give a margin to
    ring = np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]])
    paper = float(_median(ring))
    t = _otsu(grey)[0]
    ink_in_ring = ring < t if paper >= t else ring >= t
    if float(ink_in_ring.mean()) < TIGHT_TOUCH:
        return grey
    m = max(2, round(MARGIN * max(h, w)))
    return cv2.copyMakeBorder(np.ascontiguousarray(grey, np.float32), m, m, m, m, cv2.BORDER_CONSTANT, value=paper)


def _find_ink(g: np.ndarray, lenient: bool = False) -> dict:
    """Polarity, background, threshold and the digit's components on the working image (`lenient`: see
    `_select`)."""
    h, w = g.shape
    bright = _ink_is_bright(g)
    p = g if bright else 1.0 - g  # ink-positive: ink bright, paper dark

    if max(h, w) <= SMALL:
        k = max(1, round(0.03 * min(h, w)))
        border = np.concatenate([p[:k].ravel(), p[-k:].ravel(), p[k:-k, :k].ravel(), p[k:-k, -k:].ravel()])
        background = np.full_like(p, _median(border))
        smooth = _strength(p, background)
        t, _, level, noise = _threshold_stats(smooth)
    else:
        # The window must be wider than the strokes (or the ink is taken for paper) and narrower than the
        # shadows (or they are taken for ink). Try several and keep the one whose ink separates best from
        # the paper: a shadow left in, or a stroke hollowed out, blurs the two classes together.
        best = None
        for fraction in WINDOWS:
            window = fraction * min(h, w)
            if window < 8 and best is not None:
                break
            candidate_bg = _opening_background(p, window)
            candidate = _smooth(_strength(p, candidate_bg))
            t, separation, level, noise = _threshold_stats(candidate)
            if best is not None and window < STROKE_WINDOW * _stroke_width(candidate > t):
                break  # hollows the strokes it finds (smaller windows only more so)
            if best is None or separation > best[0]:
                best = (separation, candidate, t, candidate_bg, level, noise)
            if fraction == WINDOWS[0] and np.ptp(candidate_bg) < 0.02:
                break  # even paper: a smaller window would find the same background
        _, smooth, t, background, level, noise = best

    if t <= 0 or float(smooth.max()) - level < MIN_CONTRAST:
        raise NoDigitError("no digit found: the image is blank (one flat colour)")
    found = _select(smooth, t, level, noise, lenient)
    if found["edges"].any():
        # The picture's edge (a desk beside the paper, a shadow's rim) took part in choosing the threshold,
        # or was taken for the digit: look again without it, and keep the first look if nothing is left.
        without = np.where(_dilate(found["edges"], 2), np.float32(0), smooth)
        try:
            again = _select(without, _ink_threshold(without)[0], level, noise, lenient)
            if "error" in again:
                raise again["error"]
            found = again
        except NoDigitError:
            pass
    if "error" in found:
        raise found["error"]
    found.update(bright=bright, background=background)
    return found


def _select(s: np.ndarray, t: float, level: float, noise: float, lenient: bool = False) -> dict:
    """Threshold, pick the digit's components and check that they stand out; a NoDigitError is returned
    (not raised) when only the picture's edges stand out, so that the caller can look again without them.
    "doubtful": a printed line was left in for reaching past the digit at one end only (`lenient`: taken out)."""
    h, w = s.shape
    mask = s > t
    doubts: list[int] = []
    lines = _printed_lines(mask, doubts, lenient)
    if lines is not None:
        # Remove the line from the strength too (with its anti-aliased rim), so that rendering does not bring
        # back the part of it beside the digit.
        mask &= ~lines
        s = np.where(_dilate(lines, 1) & ~mask, np.float32(0), s)
    keep, bbox, edges = _digit_components(mask)
    try:
        if not keep.any():
            raise NoDigitError("no digit found: the image is blank (one flat colour)")
        ink_level = float(_median(s[keep]))
        contrast = ink_level - level
        snr = _snr(s, keep, level, noise, ink_level)
        if contrast >= MIN_CONTRAST and snr < MIN_SNR:
            # A second look at the paper beside the digit; overruling the first needs twice the evidence.
            paper_snr, fine_snr = _paper_snr(s, keep, ink_level)
            if paper_snr >= 2 * MIN_SNR or (paper_snr >= MIN_SNR and fine_snr >= FINE_SNR):
                snr = max(snr, paper_snr)
        if contrast < MIN_CONTRAST or snr < MIN_SNR:
            raise NoDigitError(f"no digit found: nothing stands out from the background's noise "
                               f"(contrast {contrast:.2f}, signal-to-noise {snr:.1f})")
        bh, bw = bbox[2] - bbox[0], bbox[3] - bbox[1]
        if max(bh, bw) < max(3, 0.03 * max(h, w)):
            raise NoDigitError(f"no digit found: the only ink is a speck of {bw}x{bh} pixels")
    except NoDigitError as e:
        if edges.any():
            return {"error": e, "edges": edges}
        raise
    stroke = _stroke_width(keep)
    grown, bbox = _faded(s, keep, bbox, max(FADED * t, level + 4.0 * noise), stroke)
    if grown is not keep:
        keep, stroke = grown, _stroke_width(grown)
    return {"strength": s, "keep": keep, "bbox": bbox, "ink_level": ink_level, "stroke": stroke,
            "edges": edges, "doubtful": bool(doubts),
            # Below this, a pixel is paper: the noise floor, but never above half the threshold.
            "floor": min(0.5 * t, max(level + 3.0 * noise, 0.0))}


def _faded(s: np.ndarray, keep: np.ndarray, bbox: tuple[int, int, int, int], low: float, stroke: float | None = None
           ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The digit with the parts of its strokes where the ink fades (hysteresis thresholding, as Canny's edges):
    ink above `low` connected to the digit, where it adds more than the strokes' anti-aliased rim.

    One threshold splits ink whose darkness varies along the stroke (a dip pen running dry, faded ink on an
    old record) into a dark part that is kept and a light one that is lost: a 7 read from its stem alone.
    A digit drawn in even ink gains only its rim here and is returned unchanged (`keep` itself), after one
    threshold and one dilation (`stroke`: `_stroke_width(keep)`, when the caller has it): a canvas pays 0.05 ms.
    """
    weak = s > low
    rim = _dilate(keep, max(1, round((_stroke_width(keep) if stroke is None else stroke) / 2)) + 1)
    outside = weak & ~rim
    need = FADED_GAIN * np.count_nonzero(keep)
    if np.count_nonzero(outside) < need:
        return keep, bbox  # too little weak ink beyond the rim, connected or not
    n, labels = cv2.connectedComponents(weak.view(np.uint8), connectivity=8)
    ids = np.unique(labels[keep])
    grown = _labelled(labels, ids[ids > 0], n) | keep
    if np.count_nonzero(grown & outside) < need:
        return keep, bbox
    # Within reach of the digit only: weak ink can run on into a shadow or a stain beside it.
    top, left, bottom, right = bbox
    reach = round(FADED_REACH * max(bottom - top, right - left))
    window = np.zeros_like(keep)
    window[max(0, top - reach): bottom + reach, max(0, left - reach): right + reach] = True
    grown &= window
    rows, cols = np.flatnonzero(grown.any(1)), np.flatnonzero(grown.any(0))
    return grown, (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)


def _snr(s: np.ndarray, keep: np.ndarray, level: float, noise: float, ink_level: float | None = None) -> float:
    """The digit's contrast over the paper's noise, at the scale where it is clearest (1, 1/2 or 1/4):
    averaging raises a stroke's signal-to-noise ratio, and leaves pure noise's unchanged. `ink_level`: the
    median of `s[keep]`, when the caller has it already."""
    ink_level = float(_median(s[keep])) if ink_level is None else ink_level
    best = (ink_level - level) / max(noise, 1e-6)
    for factor in (2, 4):
        h, w = s.shape[0] // factor, s.shape[1] // factor
        if min(h, w) < 8 or best >= MIN_SNR:
            break
        s2 = _resize(s[: h * factor, : w * factor], (w, h))
        k2 = _resize(keep[: h * factor, : w * factor].astype(np.float32), (w, h)) > 0.5
        if not k2.any():
            break
        level2, noise2 = _level_and_noise(s2)
        best = max(best, (float(_median(s2[k2])) - level2) / max(noise2, 1e-6))
    return best


def _paper_snr(s: np.ndarray, keep: np.ndarray, ink_level: float) -> tuple[float, float]:
    """The digit's signal-to-noise ratio against the paper away from it (its median and MAD-based sigma).

    A second look before "nothing stands out": the first measures the paper over the whole picture, and where
    the digit covers much of it (a bold digit in a tight crop: ARDIS' records, a form's cell) the ink's own
    pixels inflate that noise, so a plainly legible digit read as noise (contrast 0.3, signal-to-noise 1-4).
    Pictures that passed the first look are untouched, and the caller takes this one only at twice MIN_SNR
    (textures and ruled paper come close to MIN_SNR here). Needs a tenth of the picture as paper.
    """
    paper = ~_dilate(keep, 2)
    if np.count_nonzero(paper) < max(64, 0.1 * paper.size):
        return 0.0, 0.0
    values = s[paper]
    level = float(_median(values))
    noise = 1.4826 * float(_median(np.abs(values - level)))
    # The paper's fine grain: what is left of it beside its own 5x5 mean (blotches and uneven light are slow).
    grain = (s - cv2.blur(s, (5, 5)))[paper]
    fine = 1.4826 * float(_median(np.abs(grain - float(_median(grain)))))
    return (ink_level - level) / max(noise, 1e-6), (ink_level - level) / max(fine, 1e-6)


def _strength(p: np.ndarray, background: np.ndarray | np.float32) -> np.ndarray:
    # Relative contrast: for dark ink on paper this is 1 - grey / paper, which a shadow does not change.
    if np.ndim(background) == 0 and p.dtype == np.float32 and isinstance(background, np.float32):
        # Even paper (`_opening_background`'s scalar): the same float32 operations with one paper level.
        if background == 0:  # p - 0 and p / 1 change nothing
            return np.clip(p, 0.0, 1.0)
        out = np.subtract(p, background)
        np.divide(out, np.maximum(np.float32(1.0) - background, np.float32(0.2)), out=out)
        return np.clip(out, 0.0, 1.0, out=out)
    background = np.asarray(background)
    if p.dtype != np.float32 or background.dtype != np.float32:
        return np.clip((p - background) / np.maximum(1.0 - background, 0.2), 0.0, 1.0).astype(np.float32)
    # The same float32 operations in the same order, in place: no full-size temporaries.
    out = np.subtract(p, background)
    paper = np.subtract(1.0, background, dtype=np.float32)
    np.maximum(paper, 0.2, out=paper)
    np.divide(out, paper, out=out)
    return np.clip(out, 0.0, 1.0, out=out)


def _resize(a: np.ndarray, size: tuple[int, int], resample: int = _RESAMPLE.BOX,
            box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """Resize a float array (or its `box` region) with Pillow ('F' mode); size is (width, height)."""
    im = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), "F")
    return np.asarray(im.resize(size, resample, box=box))


def _opening_background(p: np.ndarray, window: float) -> np.ndarray | np.float32:
    """The paper's level under ink-positive `p`: a grey opening with a `window`-pixel square, on cell means
    (a float32 scalar when it is the same everywhere)."""
    h, w = p.shape
    cell = max(1.0, window / 5.0)
    gw, gh = max(1, round(w / cell)), max(1, round(h / cell))
    grid = _resize(p, (gw, gh))
    opened = _rank_filter(_rank_filter(grid, 5, np.minimum), 5, np.maximum)
    level = opened.flat[0]
    if (opened == level).all():
        # Even paper (a canvas, a clean scan): the level itself, which is what resizing a constant gives (checked
        # on 3,000 sizes and levels); resizing it to the full picture cost a sixth of a canvas' preprocessing.
        return np.float32(level)
    return _resize(opened, (w, h), _RESAMPLE.BILINEAR)


def _rank_filter(a: np.ndarray, size: int, reduce: Any) -> np.ndarray:
    """Square minimum or maximum filter (`reduce` is np.minimum or np.maximum), edges repeated.

    OpenCV's erode/dilate with a rectangle (separable, SIMD) gives exactly the same values as the two
    sliding passes of NumPy it replaced, 5-20 times faster (benchmarks/profile_preprocess.py).
    """
    if size // 2 == 0 or a.size == 0:
        return a
    if a.dtype == np.bool_:
        return _rank_filter(a.astype(np.uint8), size, reduce).astype(bool)
    kernel = _square(size)
    op = cv2.erode if reduce is np.minimum else cv2.dilate
    src = a if a.dtype in (np.uint8, np.float32) else a.astype(np.float32)
    return op(np.ascontiguousarray(src), kernel, borderType=cv2.BORDER_REPLICATE).astype(a.dtype, copy=False)


def _median(a: np.ndarray) -> Any:
    """np.median of an array without NaNs, the same value without its per-call overhead (0.17 ms against 0.23).

    When more than half of a large float array is its minimum (or its maximum), that is the median, found with a
    reduction and a count instead of a partition: so it is on a canvas or a clean scan, whose paper is one level
    (white, or 0 once the background is taken away). A canvas' three medians over 19,600 samples cost 0.13 ms that
    way, 0.03 ms this way; elsewhere the check costs about 5 us.
    """
    a = np.asarray(a).ravel()
    k = a.size // 2
    if a.size >= _MEDIAN_SHORTCUT and a.dtype.kind == "f":
        for extreme in (a.min(), a.max()):
            if np.count_nonzero(a == extreme) > k:
                return extreme  # the middle value(s): the same scalar type that indexing the partition gives
    if a.size % 2:
        return np.partition(a, k)[k]
    p = np.partition(a, (k - 1, k))
    return (p[k - 1] + p[k]) / 2


_MEDIAN_SHORTCUT = 1024  # below this many values a partition is as quick as the check


@functools.lru_cache(maxsize=64)
def _square(size: int) -> np.ndarray:
    """A size x size structuring element (made once per size: building one cost as much as using it)."""
    kernel = np.ones((size, size), np.uint8)
    kernel.flags.writeable = False
    return kernel


def _smooth(a: np.ndarray) -> np.ndarray:
    """A light [1, 2, 1] binomial blur in both directions (sigma about 0.7 px) against noise and JPEG blocks.

    Hand-written rather than cv2.sepFilter2D: OpenCV sums the three taps in another order, which moves values
    by a rounding step and so, rarely, a pixel across the ink threshold. This gives the values of NumPy's
    0.25 / 0.5 / 0.25 sums bit for bit (below), with few temporaries (edges repeated by OpenCV's border copy, faster
    than np.pad).
    """
    if a.dtype != np.float32 or a.ndim != 2 or min(a.shape) == 0:
        b = np.pad(a, 1, mode="edge")
        b = 0.25 * b[:-2] + 0.5 * b[1:-1] + 0.25 * b[2:]
        return (0.25 * b[:, :-2] + 0.5 * b[:, 1:-1] + 0.25 * b[:, 2:]).astype(np.float32)
    # The same sums, with the quarters and halves taken out: scaling by a power of two is exact, so
    # (0.25 x + 0.5 y) + 0.25 z == 0.25 ((x + 2 y) + z) bit for bit (values here are 0..1, far from float32's
    # subnormals), and both passes' quarters become one sixteenth at the end: 7 passes over the picture, not 10.
    b = cv2.copyMakeBorder(np.ascontiguousarray(a), 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    rows = np.multiply(b[1:-1], 2.0, dtype=np.float32)
    rows += b[:-2]
    rows += b[2:]
    out = np.multiply(rows[:, 1:-1], 2.0, dtype=np.float32)
    out += rows[:, :-2]
    out += rows[:, 2:]
    out *= np.float32(0.0625)
    return out


def _level_and_noise(a: np.ndarray) -> tuple[float, float]:
    """The paper's level and noise (median and MAD-based sigma over a subsample; paper is most of any picture)."""
    sample = a[:: max(1, a.shape[0] // 128), :: max(1, a.shape[1] // 128)]
    level = float(_median(sample))
    return level, 1.4826 * float(_median(np.abs(sample - level)))


def _ink_threshold(s: np.ndarray) -> tuple[float, float]:
    """Otsu's threshold, and how well it separates ink from paper (between-class over total variance, 0..1).

    Computed over the neighbourhood of the likely ink only, so that a thin digit in a big picture (ink under
    1% of the pixels) is not split off by the paper's own texture instead.
    """
    return _threshold_stats(s)[:2]


def _threshold_stats(s: np.ndarray) -> tuple[float, float, float, float]:
    """`_ink_threshold`'s threshold and separation, and the paper's level and noise it measured on the way."""
    level, noise = _level_and_noise(s)
    likely = s > level + max(4.0 * noise, 0.5 * MIN_CONTRAST)
    if not likely.any() or s.ndim != 2:
        return (*_otsu(s), level, noise)
    h, w = s.shape
    cell = max(2, round(max(h, w) / 48))
    # Which cell x cell blocks hold likely ink: a maximum filter anchored at each block's corner, read at the
    # corners (outside the picture counts as no ink), then those blocks and their 8 neighbours.
    cells = cv2.dilate(likely.view(np.uint8), _square(cell), anchor=(0, 0), borderType=cv2.BORDER_CONSTANT,
                       borderValue=0)[::cell, ::cell]
    cells = _rank_filter(cells, 3, np.maximum)
    near = np.repeat(np.repeat(cells, cell, axis=0), cell, axis=1)[:h, :w]
    return (*_otsu_histogram(_histogram(s, np.ascontiguousarray(near))), level, noise)


def _ink_is_bright(g: np.ndarray) -> bool:
    """Whether the ink is brighter than the paper: the picture's median is paper, and the ink is the side
    of it whose clear deviations (beyond gradients and noise) carry more weight.

    In a picture of at most `TIGHT_MAX` pixels (a dataset's cell, a form field, a close crop) the paper is the
    level of the outermost ring instead, as for `_with_margin`: a bold digit cropped close can be more ink than
    paper without touching the sides much (a historical record's 0: half the picture), and there the median is
    ink, which made the paper the "ink"."""
    h, w = g.shape
    if max(h, w) <= TIGHT_MAX and min(h, w) > 2:
        paper = float(_median(np.concatenate([g[0], g[-1], g[1:-1, 0], g[1:-1, -1]])))
    else:
        paper = None
    sample = g[:: max(1, g.shape[0] // 128), :: max(1, g.shape[1] // 128)]
    r = sample - (float(_median(sample)) if paper is None else paper)
    # np.maximum(x, 0) is np.clip(x, 0, None) (no NaNs here), in place and without clip's wrapper.
    bright, dark = r - POLARITY_MARGIN, np.negative(r)
    dark -= POLARITY_MARGIN
    return float(np.maximum(bright, 0, out=bright).sum()) > float(np.maximum(dark, 0, out=dark).sum())


def _otsu(a: np.ndarray) -> tuple[float, float]:
    """Otsu's threshold on values in [0, 1] over 256 bins, and its between-class share of the variance."""
    if a.ndim == 2 and a.dtype == np.float32:
        return _otsu_histogram(_histogram(a))
    q = np.minimum((a.ravel() * 255.0).astype(np.int32), 255)
    return _otsu_histogram(np.bincount(q, minlength=256).astype(np.float64))


def _histogram(a: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Counts of a 2-D float32 array's values in [0, 1] in 256 bins (bin floor(255 v), 1.0 in the last), under
    `mask` (uint8) if given: OpenCV's calcHist, the same counts as np.bincount without building the index array."""
    q = np.multiply(a, 255.0)
    bins = np.empty(a.shape, np.uint8)
    np.minimum(q, 255.0, out=bins, casting="unsafe")  # the capped value truncated to uint8, as .astype would
    hist = cv2.calcHist([bins], [0], mask, [256], [0, 256])
    return hist.ravel().astype(np.float64)


_LEVELS = (np.arange(256) + 0.5) / 255.0


def _otsu_histogram(hist: np.ndarray) -> tuple[float, float]:
    """`_otsu` from the 256-bin histogram."""
    levels = _LEVELS
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * levels)
    mu0 = m0 / np.maximum(w0, 1e-12)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1e-12)
    between = w0 * w1 * (mu0 - mu1) ** 2
    k = int(np.argmax(between[:-1]))
    total = w0[-1] * (hist * levels ** 2).sum() - m0[-1] ** 2  # n^2 times the variance, like `between`
    return float((k + 1) / 255.0), float(between[k] / total) if total > 0 else 0.0


def _stroke_width(mask: np.ndarray) -> float:
    """A mask's typical stroke width: twice its area over its boundary length (x1.2 for the city-block bias)."""
    mask = mask.astype(bool, copy=False)
    area = int(np.count_nonzero(mask))
    if area == 0:
        return 1.0
    # Boundary length: pixels whose neighbour below or to the right differs, and mask pixels on the border.
    edges = np.count_nonzero(mask[1:] != mask[:-1]) + np.count_nonzero(mask[:, 1:] != mask[:, :-1])
    edges += sum(np.count_nonzero(side) for side in (mask[0], mask[-1], mask[:, 0], mask[:, -1]))
    return 1.2 * 2.0 * area / max(edges, 1)


def _printed_lines(mask: np.ndarray, doubts: list[int] | None = None, lenient: bool = False) -> np.ndarray | None:
    """The pixels of printed lines beside or across the digit (a form field's box, a ruled line), or None.

    A line is a straight horizontal or vertical run of ink at least `LINE_LENGTH` of the picture's side (found by
    a morphological opening with a 1-pixel-wide bar, OpenCV), not along the picture's own edge, thin (at most
    `LINE_THIN` of its length and under `LINE_PEN` times the pen width of the other ink), at least `LINE_SPAN`
    times as long as the rest of the ink is wide, with other ink beside it worth `LINE_REST` of its area, and
    either standing apart beside that ink (`_beside`) or reaching past it at both ends (`LINE_OVERHANG` of its
    length, 2 px at least; an end that meets the other direction's line, a box's corner, counts). "The rest" is
    the digit `_digit_components` would keep from it, so that a scan's salt noise does not widen it. At one end
    is enough for a line no thicker than the writing (`LINE_THIN_PEN` of the pen) whose other end stops on the
    paper, and for a hairline (`LINE_HAIR`) whatever its other end meets: the digit written in the box's
    corner, its foot on the line. A digit's own straight strokes fail all that: the bar of a 7 or a 5, the foot
    of a 2 and the stem of a 9 go on into another stroke where they stop, the stem of a 1 or a 4 is the ink's
    whole height, a lone stroke has no other ink beside it, and a pen's strokes are as thick as its others.
    Where a stroke crosses the line (its run across the line is longer than the line is thick), its pixels stay.
    Every threshold was set on development pictures so that none of MNIST's held-out training digits changes and
    the handwriting benchmark's results do not (4 of its 1,100 pictures lose a dark strip along the photo's
    side, which the extent rule now takes for a line; docs/benchmarks.md).

    A line that reaches past the digit at one end only and fails the rest is noted in `doubts` (its axis), and
    taken out as well when `lenient` (`preprocess_choices`' second input).
    """
    mask = mask.astype(bool, copy=False)
    h, w = mask.shape
    u8 = mask.view(np.uint8)
    bars = {}
    for axis in (0, 1):  # 0: horizontal lines (runs along a row), 1: vertical ones
        n_lines, along = (h, w) if axis == 0 else (w, h)
        length = max(8, round(LINE_LENGTH * along))
        # Along the picture's own edge a line is its edge (a scan's border, the paper's rim): `_digit_components`
        # sets those aside. Only rows (columns) beyond that band holding `length` ink pixels can hold a line.
        band = max(2, round(0.04 * n_lines))
        sums = cv2.reduce(u8, 1 - axis, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()[band: n_lines - band]
        rows = np.flatnonzero(sums >= length) + band
        if not rows.size or _longest_run(mask[rows] if axis == 0 else mask[:, rows].T) < length:
            continue  # no run of ink that long: the usual case (a digit's strokes), for the cost of a sum
        # A morphological opening with a 1-pixel-wide bar keeps the runs of at least `length`. A row's opening
        # depends on that row alone, so it runs on the rows (columns) from the first to the last candidate only.
        r0, r1 = int(rows[0]), int(rows[-1]) + 1
        kernel = np.ones((1, length) if axis == 0 else (length, 1), np.uint8)
        bar = np.zeros_like(u8)
        part = (slice(r0, r1), slice(None)) if axis == 0 else (slice(None), slice(r0, r1))
        bar[part] = cv2.morphologyEx(np.ascontiguousarray(u8[part]), cv2.MORPH_OPEN, kernel,
                                     borderType=cv2.BORDER_CONSTANT, borderValue=0)
        # A first look at its thickness (one more opening, across it): where the ink is thicker than a line can
        # be (the bar of a 7 drawn on the page's canvas), stop here. The usual case, cheaply. An opening across
        # with a k-pixel bar, at the line's pixels, sees k - 1 rows (columns) either side of them: it runs there.
        span = int(np.count_nonzero(cv2.reduce(bar[part], axis, cv2.REDUCE_MAX)))
        k = int(LINE_THIN * span) + 1
        t0, t1 = max(0, r0 - k + 1), min(n_lines, r1 + k - 1)
        near = (slice(t0, t1), slice(None)) if axis == 0 else (slice(None), slice(t0, t1))
        thick_ink = cv2.morphologyEx(np.ascontiguousarray(u8[near]), cv2.MORPH_OPEN,
                                     np.ones((k, 1) if axis == 0 else (1, k), np.uint8),
                                     borderType=cv2.BORDER_CONSTANT, borderValue=0)
        if np.count_nonzero(thick_ink & bar[near]) > 0.5 * np.count_nonzero(bar[part]):
            continue
        bars[axis] = bar.astype(bool)
    if not bars:
        return None
    # The rest of the ink (both directions' bars taken out: a box's two sides do not measure each other),
    # specks (salt noise, dust) left out: its components of some size.
    rest = mask.copy()
    for bar in bars.values():
        rest &= ~bar
    n, labels, stats, _ = cv2.connectedComponentsWithStats(rest.view(np.uint8), connectivity=8)
    area = stats[1:, cv2.CC_STAT_AREA]
    if n <= 1:
        return None
    big = area >= max(2, SPECK_FRACTION * area.max())
    st = stats[1:][big]
    # The pen's width in the rest: a printed line is thinner than the strokes written beside it (a digit's own
    # bar, in a font or from a tablet, is as thick as its other strokes).
    pen = _stroke_width(np.take(np.concatenate([[False], big]), labels))
    # The digit's extent in the rest: the components `_digit_components` would keep, so that specks of the
    # paper (salt noise on a black-and-white scan, a few pixels each) far from the digit do not widen it.
    digit, (top, left, bottom, right), _ = _digit_components(rest)
    extent = np.array([[left, top, right - left, bottom - top]])  # as OpenCV's stats: left, top, width, height
    whole = None  # the ink's own components, labelled once if a line needs them (`_beside`)
    found = None
    for axis, line in bars.items():
        if int(st[:, cv2.CC_STAT_AREA].sum()) < LINE_REST * np.count_nonzero(line):
            continue
        r0, r1 = (left, right - 1) if axis == 0 else (top, bottom - 1)
        l0, l1 = np.flatnonzero(line.any(axis=axis))[[0, -1]]
        span = l1 - l0 + 1
        across = run_lengths(mask, axis)
        # Its thickness: a low quantile of the runs across it (where the digit touches it, they are longer).
        thick = float(np.percentile(across[line], 25))
        if thick > LINE_THIN * span or thick >= LINE_PEN * pen or span < LINE_SPAN * (r1 - r0 + 1):
            continue
        if whole is None:
            whole = cv2.connectedComponentsWithStats(u8, connectivity=8)[1:3]
        if _beside(*whole, line, axis, extent):
            found = line if found is None else found | line
            continue
        # Each end reaches past the rest of the ink, or meets the other direction's line (a box's corner).
        reach = max(2.0, LINE_OVERHANG * span)
        other = bars.get(1 - axis)
        ends, free = [], []
        for end, past in ((l0, l0 <= r0 - reach), (l1, l1 >= r1 + reach)):
            rows = np.flatnonzero(line[:, end] if axis == 0 else line[end])  # where the line ends, across
            if not past and other is not None:
                lo, hi = max(0, end - round(thick) - 2), end + round(thick) + 3
                a, b = max(0, rows[0] - 2), rows[-1] + 3
                past = bool(other[a:b, lo:hi].any() if axis == 0 else other[lo:hi, a:b].any())
            ends.append(past)
            # Nothing of the digit just beyond this end, either side of the line: a stroke of the digit (the stem
            # of a 9, the foot of a 2, the bar of a 4) goes on into the rest of it where it stops; a box's line
            # ends on the paper.
            g = max(2, round(thick) + 2)
            lo, hi = max(0, end - g), end + g + 1
            a, b = max(0, rows[0] - g), rows[-1] + g + 1
            free.append(not (digit[a:b, lo:hi].any() if axis == 0 else digit[lo:hi, a:b].any()))
        # One end may stop inside the digit's extent (the digit written near the box's corner) where it ends on
        # the paper and the line is plainly thinner than the writing (a digit's own stroke is as thick as its
        # others).
        one_end = any(ends) and (thick <= LINE_HAIR * pen
                                 or thick <= LINE_THIN_PEN * pen and all(past or f for past, f in zip(ends, free)))
        # Past the digit at one end only, and failing the rest: a box's side, or the digit's own stroke. Noted in
        # `doubts`, and taken out only when `lenient`.
        if not all(ends) and not one_end and not (lenient and any(ends)):
            if any(ends) and doubts is not None:
                doubts.append(axis)
            continue
        # Keep the crossings: the line's thickness is its typical run across; a stroke through it is longer.
        line = line & (across <= thick + 1)
        found = line if found is None else found | line
    return found


def _longest_run(rows: np.ndarray) -> int:
    """The longest run of True along the rows of a 2-D bool array (0 for none).

    `run_lengths(rows, 1).max()` is the same number, 7-10 times slower (its cumulative sum, bincount and lookup
    give every pixel its run, which is not needed here), and this check runs on every picture with a row (column)
    holding a line's length of ink.
    """
    padded = np.zeros((rows.shape[0], rows.shape[1] + 2), np.int8)
    padded[:, 1:-1] = rows
    step = np.diff(padded.ravel())  # each row starts and ends with a 0: starts and ends pair up in order
    starts, ends = np.flatnonzero(step == 1), np.flatnonzero(step == -1)
    return int((ends - starts).max()) if starts.size else 0


def _beside(labels: np.ndarray, stats: np.ndarray, line: np.ndarray, axis: int, rest: np.ndarray) -> bool:
    """Whether a thin straight line stands apart beside the rest of the ink (components' stats `rest`): a line
    of its own (the ink's component holding it, from `labels` and `stats`, is almost all line) outside the rest's
    extent across it (a box's side next to the digit, not a stroke within it)."""
    ids = np.unique(labels[line])
    ids = ids[ids > 0]
    if not len(ids) or np.count_nonzero(line) < 0.9 * stats[ids, cv2.CC_STAT_AREA].sum():
        return False
    where = np.flatnonzero(line.any(axis=1 - axis))  # rows of a horizontal line, columns of a vertical one
    start = rest[:, cv2.CC_STAT_TOP] if axis == 0 else rest[:, cv2.CC_STAT_LEFT]
    end = start + rest[:, cv2.CC_STAT_HEIGHT if axis == 0 else cv2.CC_STAT_WIDTH] - 1
    return bool(where[-1] < start.min() or where[0] > end.max())


def run_lengths(mask: np.ndarray, axis: int) -> np.ndarray:
    """For each ink pixel, the length of the run of ink along `axis` it belongs to (0 off the ink).

    (Hand-written: neither OpenCV nor scipy.ndimage gives run lengths per pixel; one cumulative sum and one
    bincount do.) Also used by `reading` for ruled lines.
    """
    m = mask if axis == 1 else mask.T
    starts = m & ~np.pad(m, ((0, 0), (1, 0)))[:, :-1]
    ids = np.cumsum(starts, axis=1) + (np.arange(m.shape[0]) * (m.shape[1] + 1))[:, None]
    ids = np.where(m, ids, 0)
    lengths = np.bincount(ids.ravel())
    lengths[0] = 0
    out = lengths[ids]
    return out if axis == 1 else out.T


def _digit_components(mask: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int], np.ndarray]:
    """Keep the largest component and those near it that are not specks.

    Returns (mask kept, its box (top, left, bottom, right), mask of the components along the picture's edges).
    Components are 8-connected, labelled by OpenCV (`connectedComponentsWithStats`) in raster order.
    """
    # Grana's block-based algorithm: with statistics, 2.6x faster here than OpenCV's default (Spaghetti).
    n_labels, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(mask.astype(np.uint8), 8, cv2.CV_32S,
                                                                               cv2.CCL_GRANA)
    n = n_labels - 1  # label 0 is the background
    if n == 0:
        return mask, (0, 0, 0, 0), mask
    st = stats[1:].astype(np.int64)
    area = st[:, cv2.CC_STAT_AREA].astype(np.float64)
    left, top = st[:, cv2.CC_STAT_LEFT], st[:, cv2.CC_STAT_TOP]
    right, bottom = left + st[:, cv2.CC_STAT_WIDTH], top + st[:, cv2.CC_STAT_HEIGHT]
    # Strips along a side of the picture: the desk beside the paper, the rim of a shadow, a scanner's margin.
    # A digit that touches the border (a tight crop) reaches far into the picture; a strip does not.
    h, w = mask.shape
    along = np.zeros((4, n))
    for side, (line, span) in enumerate([(labels[0], w), (labels[-1], w), (labels[:, 0], h), (labels[:, -1], h)]):
        along[side] = np.bincount(line, minlength=n_labels)[1:] / span
    depth = np.stack([(bottom - top) / h, (bottom - top) / h, (right - left) / w, (right - left) / w])
    edge = ((along > BORDER_FRACTION) & (depth < STRIP_DEPTH)).any(axis=0)
    order = [c for c in np.argsort(-area) if not edge[c]]
    if not order:
        return np.zeros_like(mask), (0, 0, 0, 0), mask
    inner = [c for c in order if max(bottom[c] - top[c], right[c] - left[c]) >= 0.05 * min(h, w)]
    main = inner[0] if inner else order[0]
    box = [top[main], left[main], bottom[main], right[main]]
    kept = [main]
    for c in order:
        if c == main:
            continue
        if area[c] < SPECK_FRACTION * area[main]:
            continue
        size = max(box[2] - box[0], box[3] - box[1])
        gap = max(box[0] - bottom[c], top[c] - box[2], box[1] - right[c], left[c] - box[3], 0)
        union = max(max(box[2], bottom[c]) - min(box[0], top[c]), max(box[3], right[c]) - min(box[1], left[c]))
        # Close by, or inside the digit's reach (the other half of a broken "0", the bar of a "7").
        if gap <= NEAR_FRACTION * size or union <= GROWTH * size:
            kept.append(c)
            box = [min(box[0], top[c]), min(box[1], left[c]), max(box[2], bottom[c]), max(box[3], right[c])]
    keep = _labelled(labels, np.asarray(kept) + 1, n_labels)
    edges = _labelled(labels, np.flatnonzero(edge) + 1, n_labels) if edge.any() else np.zeros_like(keep)
    return keep, (int(box[0]), int(box[1]), int(box[2]), int(box[3])), edges


def _labelled(labels: np.ndarray, wanted: np.ndarray, n_labels: int) -> np.ndarray:
    """The mask of the pixels whose label is one of `wanted`: a comparison per label when they are few
    (a digit is one to three components), a lookup table otherwise."""
    if len(wanted) <= 4:
        out = labels == wanted[0]
        for label in wanted[1:]:
            out |= labels == label
        return out
    table = np.zeros(n_labels, bool)
    table[wanted] = True
    return np.take(table, labels)


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Binary dilation by a (2r+1)-pixel square."""
    return _rank_filter(mask.astype(np.uint8), 2 * r + 1, np.maximum).astype(bool) if r > 0 else mask


def _render(s: np.ndarray, near: np.ndarray, stroke: float, floor: float, ink_level: float,
            thin_bold: bool = False) -> np.ndarray:
    """The ink near the digit, cropped, thickened if thin (thinned if far too bold, with `thin_bold`), scaled to fit
    20x20 and centred by mass in 28x28. `preprocess` thins; `reading` does not (a candidate there may be two
    touching digits, whose stroke measure is not one digit's)."""
    top_level = max(ink_level, floor + 1e-3)
    # Only the box around `near` can hold ink: compute the ramp there (the same values, on fewer pixels).
    rows, cols = np.flatnonzero(near.any(axis=1)), np.flatnonzero(near.any(axis=0))
    if rows.size:
        s, near = (a[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1] for a in (s, near))
    v = _crop_to_ink(np.clip((s - floor) / (top_level - floor), 0.0, 1.0) * near)
    h, w = v.shape
    side = max(h, w)
    if side > 4 * BOX:
        # Shrink in two steps (both area averages) so that thickening works on a few pixels, not thousands.
        f = 4 * BOX / side
        stroke *= f
        v = _resize(v, (max(1, round(w * f)), max(1, round(h * f))))
        h, w = v.shape
        side = max(h, w)
    if thin_bold and stroke > 0.75 * MAX_STROKE * side:
        # Strokes far bolder than MNIST's (a digit stretched to fill a small box, as USPS, Semeion and optdigits
        # stored them: a 1 becomes a fat bar the model reads as 8): thinned to MAX_STROKE by a grey erosion (a
        # min filter narrows a stroke by size - 1 pixels), at 4x BOX pixels or more so that the step is fine.
        # The width is measured again there, on the ramp itself: the working mask's measure moves more with how
        # much paper surrounds the digit (its threshold does), and a crop and the same crop with a margin should
        # be thinned alike. The working measure only screens (at 0.75 of the bound) which digits are measured so.
        big = v
        if side < 4 * BOX:
            f = 4 * BOX / side
            big = _resize(v, (max(1, round(w * f)), max(1, round(h * f))), _RESAMPLE.BILINEAR)
        bold = _stroke_width(big > 0.5)
        shrink = int(round((bold - MAX_STROKE * max(big.shape)) / 2))
        if shrink >= 1:  # (otherwise the picture goes on as it was, not resampled)
            v = _crop_to_ink(_rank_filter(np.pad(big, shrink), 2 * shrink + 1, np.minimum))  # padded: the rim erodes too
            h, w = v.shape
            side = max(h, w)
            stroke = bold - 2 * shrink
    # Thicken thin strokes towards MNIST's proportions: a max filter widens a stroke by (size - 1) pixels.
    grow = int(round((TARGET_STROKE * side - stroke) / 2))
    if side > BOX and grow >= 1:
        v = _rank_filter(np.pad(v, grow), 2 * grow + 1, np.maximum)
        h, w = v.shape
        side = max(h, w)
    nh, nw = max(1, round(h * BOX / side)), max(1, round(w * BOX / side))
    resample = _RESAMPLE.BOX if side >= BOX else _RESAMPLE.BILINEAR
    small = np.clip(_resize(v, (nw, nh), resample), 0.0, 1.0) if (nh, nw) != (h, w) else v
    return _centre(small)


def _crop_to_ink(v: np.ndarray) -> np.ndarray:
    """`v` cropped to its non-zero pixels; NoDigitError when there are none."""
    rows, cols = np.flatnonzero(v.any(axis=1)), np.flatnonzero(v.any(axis=0))
    if rows.size == 0:
        raise NoDigitError("no digit found: the image is blank (one flat colour)")
    return v[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]


def _centre(small: np.ndarray) -> np.ndarray:
    """Place an up-to-20x20 digit in a 28x28 frame with its centre of mass at (14, 14), staying inside."""
    h, w = small.shape
    mass = float(small.sum())
    if mass <= 0:
        raise NoDigitError("no digit found")
    cy = float((small.sum(axis=1) * np.arange(h)).sum() / mass)
    cx = float((small.sum(axis=0) * np.arange(w)).sum() / mass)
    top = min(max(round(CENTRE - cy), 0), FRAME - h)  # integers: what np.clip gives, without its 5 us a call
    left = min(max(round(CENTRE - cx), 0), FRAME - w)
    out = np.zeros((FRAME, FRAME), np.float32)
    out[top: top + h, left: left + w] = small
    return out
