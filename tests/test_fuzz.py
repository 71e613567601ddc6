"""Property tests (Hypothesis) for the two readers that read untrusted files: the IDX reader and the image loader.

Whatever bytes they are given, they either return a well-formed result or raise the project's own error
(DataError, ImageError); any other exception, a hang or a NaN is a bug. Valid arrays round-trip through
write_idx/read_idx exactly.

The number of examples comes from a Hypothesis profile chosen by $HYPOTHESIS_PROFILE: "ci" (the default,
a few hundred per property, part of the normal suite) or "fuzz" (thousands; run by benchmarks/fuzz.py):

    HYPOTHESIS_PROFILE=fuzz .venv/bin/python -m pytest tests/test_fuzz.py
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mnistlab.data.idx import DTYPES, read_idx, write_idx
from mnistlab.errors import DataError, ImageError
from mnistlab.images import load_image, preprocess

settings.register_profile("ci", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("fuzz", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# Applied per test (not settings.load_profile) so other test files keep Hypothesis' own defaults.
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# One scratch folder for the whole module: Hypothesis calls a test many times, and function-scoped
# fixtures like tmp_path would be shared between those calls anyway.
_SCRATCH = tempfile.TemporaryDirectory(prefix="mnistlab-fuzz-")
SCRATCH = Path(_SCRATCH.name)

NATIVE_DTYPES = [np.dtype(t) for t in ("uint8", "int8", "int16", "int32", "float32", "float64")]


def _idx_bytes(array: np.ndarray) -> bytes:
    """The raw IDX encoding of `array`, built independently of write_idx (so the tests check it)."""
    code = {dt.newbyteorder("="): c for c, (dt, _) in DTYPES.items()}[array.dtype.newbyteorder("=")]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@st.composite
def valid_arrays(draw: st.DrawFn) -> np.ndarray:
    """Small arrays of every IDX dtype, 1 to 4 dimensions (sizes may be 0), in either byte order."""
    dtype = draw(st.sampled_from(NATIVE_DTYPES))
    if dtype.itemsize > 1:
        dtype = dtype.newbyteorder(draw(st.sampled_from("<>=")))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6))
    return draw(hnp.arrays(dtype, shape))


@st.composite
def idx_like_bytes(draw: st.DrawFn) -> bytes:
    """Bytes that get past the reader's first checks: arbitrary, a valid file damaged, or a forged header."""
    kind = draw(st.sampled_from(["random", "damaged", "forged"]))
    if kind == "random":
        data = draw(st.binary(max_size=256))
    elif kind == "damaged":
        data = bytearray(_idx_bytes(draw(valid_arrays())))
        for _ in range(draw(st.integers(1, 4))):
            op = draw(st.sampled_from(["flip", "cut", "insert", "extend"]))
            at = draw(st.integers(0, max(len(data) - 1, 0)))
            if op == "flip" and data:
                data[at] ^= 1 << draw(st.integers(0, 7))
            elif op == "cut":
                del data[at:]
            elif op == "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=8))
            else:
                data += draw(st.binary(min_size=1, max_size=8))
        data = bytes(data)
    else:
        # Any type code and dimension count, sizes up to 2**32-1: a huge declared size must be refused
        # from the header, never allocated.
        ndim = draw(st.integers(0, 6))
        dims = draw(st.lists(st.sampled_from([0, 1, 2, 3, 28, 60000, 2**31, 2**32 - 1]), min_size=ndim,
                             max_size=ndim))
        data = bytes([0, 0, draw(st.integers(0, 255)), ndim]) + struct.pack(f">{ndim}I", *dims)
        data += draw(st.binary(max_size=64))
    if draw(st.booleans()):
        data = gzip.compress(data, mtime=0)
        if draw(st.booleans()):  # a damaged gzip stream: truncated or with a flipped byte
            cut = bytearray(data[: draw(st.integers(1, len(data)))])
            if draw(st.booleans()):
                cut[draw(st.integers(0, len(cut) - 1))] ^= 0xFF
            data = bytes(cut)
    return data


@PROFILE
@given(data=idx_like_bytes(), suffix=st.sampled_from(["", ".gz"]))
def test_read_idx_returns_an_array_or_raises_data_error(data: bytes, suffix: str) -> None:
    path = SCRATCH / f"fuzz-idx{suffix}"
    path.write_bytes(data)
    try:
        array = read_idx(path)
    except DataError as exc:
        message = str(exc)
        assert message.startswith(str(path)) and "\n" not in message, message
        return
    assert isinstance(array, np.ndarray) and 1 <= array.ndim <= 4
    assert array.dtype.isnative and array.flags.writeable
    assert array.dtype in NATIVE_DTYPES


@PROFILE
@given(array=valid_arrays(), compressed=st.booleans())
def test_write_idx_read_idx_round_trip(array: np.ndarray, compressed: bool) -> None:
    path = SCRATCH / ("round-trip-idx.gz" if compressed else "round-trip-idx")
    write_idx(path, array)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == compressed
    assert (gzip.decompress(raw) if compressed else raw) == _idx_bytes(array)
    back = read_idx(path)
    native = array.dtype.newbyteorder("=")
    assert back.dtype == native and back.shape == array.shape
    # Bytes, not values: NaN payloads and -0.0 must survive too.
    assert back.tobytes() == array.astype(native).tobytes()


# ------------------------------------------------------------------------------------------------------ images

FORMATS = ["PNG", "BMP", "GIF", "JPEG", "WEBP", "TIFF"]


def encode(array: np.ndarray, fmt: str) -> bytes:
    """An array as an image file of the given format (JPEG has no alpha: RGBA goes in as RGB)."""
    im = Image.fromarray(array)
    if fmt == "JPEG" and im.mode == "RGBA":
        im = im.convert("RGB")
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


@st.composite
def small_images(draw: st.DrawFn) -> np.ndarray:
    """Arbitrary uint8 images 1..64 x 1..64, grey, RGB or RGBA: noise, flat colours, anything."""
    h, w = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    channels = draw(st.sampled_from([None, 3, 4]))
    return draw(hnp.arrays(np.uint8, (h, w) if channels is None else (h, w, channels)))


@st.composite
def drawn_digits(draw: st.DrawFn) -> np.ndarray:
    """Strokes in one colour on a background of another, on canvases up to 300 px: the path real digits take."""
    h, w = draw(st.integers(1, 300)), draw(st.integers(1, 300))
    mode = draw(st.sampled_from(["L", "RGB", "RGBA"]))
    colour = st.integers(0, 255) if mode == "L" else st.tuples(*[st.integers(0, 255)] * len(mode))
    im = Image.new(mode, (w, h), draw(colour))
    pen = ImageDraw.Draw(im)
    point = st.tuples(st.integers(-10, w + 10), st.integers(-10, h + 10))
    for _ in range(draw(st.integers(0, 4))):
        pen.line(draw(st.lists(point, min_size=2, max_size=6)), fill=draw(colour), width=draw(st.integers(1, 30)))
    return np.asarray(im)


@st.composite
def image_like_bytes(draw: st.DrawFn) -> bytes:
    """Bytes an image reader meets: arbitrary, or a real image file of any format truncated or with bytes flipped."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=512))
    data = bytearray(encode(draw(st.one_of(small_images(), drawn_digits())), draw(st.sampled_from(FORMATS))))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data) - 1))
        if draw(st.booleans()):
            data[at] ^= 1 << draw(st.integers(0, 7))
        else:
            del data[at + 1:]
    return bytes(data)


def check_preprocessed(source: object) -> None:
    """preprocess(source) is an MNIST-style input or an ImageError; load_image agrees about readability.

    No warning may escape either: on the command line it would print extra lines on stderr.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _check_preprocessed(source)
    assert not caught, f"warnings escaped: {[f'{w.category.__name__}: {w.message}' for w in caught]}"


def _check_preprocessed(source: object) -> None:
    try:
        im = load_image(source)
    except ImageError as exc:
        assert "\n" not in str(exc)
        im = None
    else:
        assert im.mode in ("L", "RGB") and im.width >= 1 and im.height >= 1
    try:
        x = preprocess(source)
    except ImageError as exc:  # NoDigitError included
        message = str(exc)
        assert message and "\n" not in message and len(message) < 500, message
        return
    assert im is not None, "preprocess read an image that load_image refused"
    assert isinstance(x, np.ndarray) and x.shape == (28, 28) and x.dtype == np.float32
    assert np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0
    assert x.max() > 0, "a digit was found, so some ink must be drawn"


@PROFILE
@given(array=st.one_of(small_images(), drawn_digits()), as_file=st.sampled_from([None, *FORMATS]))
def test_preprocess_any_image_gives_an_mnist_input_or_image_error(array: np.ndarray, as_file: str | None) -> None:
    check_preprocessed(array if as_file is None else encode(array, as_file))


@PROFILE
@given(data=image_like_bytes(), via_path=st.booleans())
def test_preprocess_any_bytes_gives_an_mnist_input_or_image_error(data: bytes, via_path: bool) -> None:
    if via_path:
        path = SCRATCH / "fuzz-image.png"
        path.write_bytes(data)
        check_preprocessed(path)
    else:
        check_preprocessed(data)
