"""`mnistlab read`: whole numbers in real pictures made here from MNIST test digits; CLI, Python API and HTTP."""

from __future__ import annotations

import base64
import io
import json
import os

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

import mnistlab
from helpers import encode_png as png
from helpers import png_declaring, run_cli
from mnistlab.errors import UsageError
from mnistlab.reading import format_table, read, read_paths
from mnistlab.serve import create_app

KEYS = {"file", "text", "digits", "confidence", "low_confidence", "reason", "error"}


# One MNIST test image per digit: those the small test model read most confidently on its own. Named, not chosen
# again each run: the top two 1s score 0.9963 both, and which came first is float rounding. On the 2026-12-08
# machine (the same code as the day before) the other 1 won, and the model misread its
# slanted pair with the 5 as one 4 (0.43): the test failed without anything in mnistlab having changed.
GLYPHS = {0: 296, 1: 276, 2: 82, 3: 334, 4: 56, 5: 155, 6: 384, 7: 70, 8: 134, 9: 99}


@pytest.fixture(scope="module")
def glyphs(trained_run, data_dir) -> dict[int, np.ndarray]:
    """One MNIST test image per digit (`GLYPHS`), each read as itself by the small test model."""
    (_, _), (x, y) = mnistlab.load_data(data_dir=data_dir)
    picked = {d: x[i] for d, i in GLYPHS.items()}
    assert all(y[i] == d for d, i in GLYPHS.items())
    proba = trained_run.predict_proba(np.stack(list(picked.values())))
    assert list(proba.argmax(1)) == list(GLYPHS) and proba.max(1).min() > 0.9, proba.max(1)
    return picked


def ink(digit: np.ndarray, height: int) -> np.ndarray:
    """An MNIST digit cropped to its ink and scaled to `height` pixels, as ink coverage in [0, 1]."""
    rows, cols = np.flatnonzero(digit.max(1) > 30), np.flatnonzero(digit.max(0) > 30)
    crop = digit[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
    scale = height / crop.shape[0]
    im = Image.fromarray(crop).resize((max(1, round(crop.shape[1] * scale)), height), Image.Resampling.BICUBIC)
    return np.clip((np.asarray(im, np.float32) / 255 - 0.25) / 0.5, 0, 1)


def number(glyphs, text: str, *, height: int = 90, gaps=None, drops=None, invert: bool = False,
           margin: int = 60) -> Image.Image:
    """A picture of `text` written on one line: dark ink on off-white paper (or light on dark), PNG-ready.

    `gaps[k]` is the gap in pixels after digit k (negative: the next digit is pushed into this one until they
    overlap by that much); `drops[k]` lowers digit k by that many pixels (a wandering baseline).
    """
    inks = [ink(glyphs[int(c)], height) for c in text]
    gaps = gaps or [height // 4] * len(text)
    drops = drops or [0] * len(text)
    width = sum(i.shape[1] for i in inks) + sum(max(g, 0) for g in gaps[:-1]) + 2 * margin
    layer = np.zeros((height + 2 * margin + max(drops), width), np.float32)
    x = margin
    for k, g in enumerate(inks):
        top = margin + drops[k]
        layer[top: top + g.shape[0], x: x + g.shape[1]] = np.maximum(layer[top: top + g.shape[0], x: x + g.shape[1]], g)
        x += g.shape[1] + (gaps[k] if k < len(gaps) else 0)
    paper, pen = (30.0, 235.0) if invert else (238.0, 25.0)
    grey = paper + (pen - paper) * layer
    return Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8), "L")


def touching(glyphs, a: int, b: int, height: int = 90) -> Image.Image:
    """Two digits pushed together until their ink overlaps by two pixels on the rows where they meet."""
    left, right = ink(glyphs[a], height), ink(glyphs[b], height)
    rows = [(np.flatnonzero(left[r] > 0.5), np.flatnonzero(right[r] > 0.5)) for r in range(height)]
    shift = max(ra[-1] + 1 - rb[0] for ra, rb in rows if ra.size and rb.size) + 2
    layer = np.zeros((height + 120, shift + right.shape[1] + 120), np.float32)
    layer[60: 60 + height, 60: 60 + left.shape[1]] = left
    region = layer[60: 60 + height, 60 + shift - 0: 60 + shift + right.shape[1]]
    np.maximum(region, right, out=region)
    return Image.fromarray(np.clip(238 - 213 * layer, 0, 255).astype(np.uint8), "L")


@pytest.mark.parametrize("text", ["42", "1905", "3141592", "80217365"])
def test_reads_numbers_of_several_lengths(trained_run, glyphs, text):
    im = number(glyphs, text, drops=[(7 * k) % 13 for k in range(len(text))])
    [r] = read(trained_run, im)
    assert set(r) == KEYS
    assert r["text"] == text, r
    assert r["error"] is None and r["reason"] is None
    assert len(r["digits"]) == len(text)
    lefts = [d["box"][0] for d in r["digits"]]
    assert lefts == sorted(lefts)
    for d in r["digits"]:
        left, top, right, bottom = d["box"]
        assert 0 <= left < right <= im.width and 0 <= top < bottom <= im.height
        assert len(d["probabilities"]) == 10 and d["digit"] == int(np.argmax(d["probabilities"]))
    assert r["confidence"] == pytest.approx(np.prod([d["confidence"] for d in r["digits"]]), rel=1e-6)
    json.dumps(r, allow_nan=False)


def test_boxes_are_in_the_original_pixels(trained_run, glyphs):
    small = number(glyphs, "73")
    big = small.resize((small.width * 4, small.height * 4), Image.Resampling.BILINEAR)  # read at a reduced size
    [a], [b] = read(trained_run, small), read(trained_run, big)
    assert a["text"] == b["text"] == "73"
    for da, db in zip(a["digits"], b["digits"]):
        assert np.allclose(np.array(db["box"]) / 4, da["box"], atol=4)


def test_gaps_wide_narrow_and_none(trained_run, glyphs):
    assert read(trained_run, number(glyphs, "5182", gaps=[90, 6, 30, 0]))[0]["text"] == "5182"
    assert read(trained_run, number(glyphs, "30", gaps=[1, 0]))[0]["text"] == "30"


def test_a_touching_pair_is_split(trained_run, glyphs):
    [r] = read(trained_run, touching(glyphs, 2, 7))
    assert r["text"] == "27", r
    (l1, _, r1, _), (l2, _, r2, _) = (d["box"] for d in r["digits"])
    assert l1 < l2 and r1 < r2


def slanted_pair(glyphs, a: int, b: int, slant: float, height: int = 90) -> Image.Image:
    """Two digits written leaning right (`slant` columns per row) and pushed together until they overlap by two
    pixels on the rows where they meet: they touch along a slanted line."""
    def leaning(g: np.ndarray) -> np.ndarray:
        h, w = g.shape
        extra = int(slant * h) + 2
        im = Image.fromarray((g * 255).astype(np.uint8)).transform(
            (w + extra, h), Image.Transform.AFFINE, (1, slant, -extra, 0, 1, 0), Image.Resampling.BILINEAR)
        return np.asarray(im, np.float32) / 255

    left, right = leaning(ink(glyphs[a], height)), leaning(ink(glyphs[b], height))
    rows = [(np.flatnonzero(left[r] > 0.5), np.flatnonzero(right[r] > 0.5)) for r in range(height)]
    shift = max(ra[-1] + 1 - rb[0] for ra, rb in rows if ra.size and rb.size) + 2
    layer = np.zeros((height + 120, shift + right.shape[1] + 120), np.float32)
    layer[60: 60 + height, 60: 60 + left.shape[1]] = left
    region = layer[60: 60 + height, 60 + shift: 60 + shift + right.shape[1]]
    np.maximum(region, right, out=region)
    return Image.fromarray(np.clip(238 - 213 * layer, 0, 255).astype(np.uint8), "L")


def test_slanted_digits_touching_along_their_slant_are_cut_along_it(trained_run, glyphs, monkeypatch):
    from mnistlab import reading

    pairs = [(7, 0, 0.3), (4, 2, 0.4), (4, 8, 0.4), (5, 1, 0.4)]
    pictures = [slanted_pair(glyphs, a, b, s) for a, b, s in pairs]
    assert [r["text"] for r in read(trained_run, pictures)] == [f"{a}{b}" for a, b, _ in pairs]
    monkeypatch.setattr(reading, "MAX_SLANT", 0.0)  # upright cuts only: no path between the leaning digits
    upright = [r["text"] for r in read(trained_run, pictures)]
    assert sum(t != f"{a}{b}" for t, (a, b, _) in zip(upright, pairs)) >= 3, upright


def test_cut_paths_go_through_the_joint_of_two_touching_rings():
    # Two rings (two 0s) joined by a short bridge: the least-ink cut crosses the bridge, not a ring's strokes.
    from mnistlab.reading import _cut_paths

    yy, xx = np.mgrid[:60, :100]
    rings = [np.abs(np.hypot((yy - 30) / 1.3, xx - cx) - 18) < 3 for cx in (25, 75)]
    own = rings[0] | rings[1] | ((np.abs(yy - 30) < 3) & (xx >= 40) & (xx < 60))
    paths = _cut_paths(own, margin=5)
    assert paths, "no cut found"
    crossed = [int(own[np.arange(60), p].sum()) for p in paths]
    best = paths[int(np.argmin(crossed))]
    assert min(crossed) <= 6 and np.all((best >= 44) & (best <= 56)), (crossed, best.min(), best.max())
    assert all(np.all(q >= p) for p, q in zip(paths[:-1], paths[1:]))  # left to right, never crossing


def test_a_stroke_tip_a_cut_left_on_the_neighbours_side_goes_back_to_its_digit():
    # Where two digits overlap, the cut leaves the tip of the left digit's stroke in the right slice, cut off
    # from the right digit's ink: it goes back to the left slice. A dot of the right slice's own, away from the
    # cut, and the right digit's body stay where they are.
    from mnistlab.reading import _return_fragments

    left, right = np.zeros((40, 40), bool), np.zeros((40, 40), bool)
    left[2:38, 4:18] = True  # the left digit, up to the cut at column 18
    right[10:13, 18:21] = True  # its stroke's tip beyond the cut (9 pixels)
    right[2:38, 24:36] = True  # the right digit
    right[36:38, 38:40] = True  # a speck of the right slice's own, touching no neighbour
    tip, body, speck = right.copy(), right.copy(), right.copy()
    tip[:, 21:] = False
    body[:, :24] = False
    body[:, 38:] = False
    speck[:, :38] = False
    slices = [left.copy(), right.copy()]
    _return_fragments(slices)
    assert np.array_equal(slices[0], left | tip)
    assert np.array_equal(slices[1], body | speck)
    # A part as large as a digit's stroke share is not a tip: it stays.
    big = [left.copy(), right.copy()]
    big[1][2:38, 18:21] = True  # 108 pixels, a fifth of the slice
    _return_fragments(big)
    assert np.array_equal(big[0], left) and big[1][2:38, 18:21].all()


def test_a_digit_of_two_strokes_stays_one_digit(trained_run, glyphs):
    # A 4 whose bar stops short of its upright, and a 5 whose top bar is lifted off its body.
    im = number(glyphs, "45")
    a = np.asarray(im).copy()
    boxes = read(trained_run, im)[0]["digits"]
    left, top, right, bottom = boxes[0]["box"]
    ink_ = a[top:bottom, left:right] < 128
    upright = left + (right - left) // 3 + int(np.argmax(ink_[:, (right - left) // 3:].sum(0)))
    bar = top + int(np.argmax(ink_.sum(1)))
    a[bar - 12: bar + 12, upright - 12: upright - 5] = 238
    left, top, right, bottom = boxes[1]["box"]
    a[top + (bottom - top) // 5: top + (bottom - top) // 5 + 4, left: right] = 238
    from scipy import ndimage

    assert ndimage.label(a < 128, np.ones((3, 3)))[1] >= 4  # the picture really holds digits in two pieces each
    [r] = read(trained_run, Image.fromarray(a))
    assert r["text"] == "45", r


def test_a_digit_in_broken_ink_is_still_read(trained_run, glyphs):
    # Faint or dotted ink: the middle digit falls apart into three short strokes, none tall enough to be a digit
    # alone and none near enough a neighbour to be one of its strokes.
    im = number(glyphs, "383", gaps=[40, 40, 40])
    a = np.asarray(im).copy()
    left, top, right, bottom = read(trained_run, im)[0]["digits"][1]["box"]
    for f in (0.33, 0.66):
        row = top + int(f * (bottom - top))
        a[row - 2: row + 2, left: right] = 238
    from scipy import ndimage

    lab, n = ndimage.label(a[:, left:right] < 128, np.ones((3, 3)))
    tallest = max(s[0].stop - s[0].start for s in ndimage.find_objects(lab))
    assert n >= 3 and tallest < 0.45 * (bottom - top)  # the picture really holds the 8 in short strokes
    [r] = read(trained_run, Image.fromarray(a))
    assert r["text"] == "383", r


def test_a_lone_digit_is_read_as_one(trained_run, glyphs):
    for d in (1, 8):
        [r] = read(trained_run, number(glyphs, str(d)))
        assert r["text"] == str(d) and len(r["digits"]) == 1


def test_light_on_dark_ruled_paper_and_specks(trained_run, glyphs):
    assert read(trained_run, number(glyphs, "608", invert=True))[0]["text"] == "608"
    im = number(glyphs, "2718")
    draw = ImageDraw.Draw(im)
    draw.line([(0, im.height - 62), (im.width, im.height - 58)], fill=110, width=3)  # a ruled line under the digits
    rng = np.random.default_rng(0)
    for x, y in zip(rng.integers(0, im.width, 40), rng.integers(0, im.height, 40)):
        draw.ellipse([x, y, x + 3, y + 3], fill=60)  # specks of dirt
    assert read(trained_run, im)[0]["text"] == "2718"


def test_no_ink_and_hundreds_of_specks(trained_run):
    blank = Image.new("L", (600, 200), 240)
    [r] = read(trained_run, blank)
    assert r["text"] is None and r["digits"] == [] and "no digit" in r["reason"] and r["error"] is None
    rng = np.random.default_rng(1)
    speckled = rng.uniform(200, 255, (600, 1600)).astype(np.uint8)
    ys, xs = rng.integers(0, 598, 800), rng.integers(0, 1598, 800)
    speckled[ys, xs] = speckled[ys + 1, xs] = speckled[ys, xs + 1] = 20
    [r] = read(trained_run, Image.fromarray(speckled))  # answers (the pieces are capped), whatever it finds
    assert r["error"] is None and (r["text"] is None or r["text"].isdigit())


def test_every_kind_of_input_gives_the_same_reading(trained_run, glyphs, tmp_path):
    im = number(glyphs, "96")
    path = tmp_path / "96.png"
    im.save(path)
    sources = [path, str(path), png(im), im, np.asarray(im), io.BytesIO(png(im))]
    records = mnistlab.read(trained_run.path, sources)
    assert [r["file"] for r in records[:2]] == [str(path)] * 2
    assert {r["text"] for r in records} == {"96"}
    assert len(mnistlab.read(trained_run, im)) == 1
    with pytest.raises(UsageError, match="min_confidence=1.5"):
        read(trained_run, im, min_confidence=1.5)


def test_low_confidence_and_the_table(trained_run, glyphs, tmp_path):
    im = number(glyphs, "314")
    [sure] = read(trained_run, im, min_confidence=0.0)
    [unsure] = read(trained_run, im, min_confidence=1.0)
    assert sure["low_confidence"] is False and unsure["low_confidence"] is True
    (tmp_path / "bad.png").write_text("not an image")
    records = read_paths(trained_run, [tmp_path / "bad.png"]) + [sure]
    table = format_table(records)
    assert "not an image" in table and "314" in table and "3:" in table


def cli(*args):
    return run_cli("read", *args)


def test_cli_json_table_annotate_and_bad_files(trained_run, glyphs, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    number(glyphs, "58").save(folder / "58.png")
    number(glyphs, "2024").convert("RGB").save(folder / "2024.jpg", quality=92)
    Image.new("L", (300, 120), 250).save(folder / "blank.png")
    (folder / "notes.png").write_text("not an image")
    (folder / "empty.png").write_bytes(b"")
    huge = tmp_path / "huge.png"
    huge.write_bytes(png_declaring(8000, 6000))  # 48 megapixels: refused from its header
    r = cli(trained_run.path, folder, huge, "--json", "--annotate", tmp_path / "seen")
    assert r.returncode == 2, r.stderr
    records = {os.path.basename(x["file"]): x for x in json.loads(r.stdout)}
    assert records["58.png"]["text"] == "58" and records["2024.jpg"]["text"] == "2024"
    assert records["blank.png"]["text"] is None and records["blank.png"]["error"] is None
    for bad in ("notes.png", "empty.png", "huge.png"):
        assert records[bad]["text"] is None and records[bad]["error"], records[bad]
    assert "not an image" in records["notes.png"]["error"] and "empty" in records["empty.png"]["error"]
    assert "too large" in records["huge.png"]["error"]
    assert sorted(p.name for p in (tmp_path / "seen").iterdir()) == ["2024.png", "58.png", "blank.png"]
    with Image.open(tmp_path / "seen" / "58.png") as seen:
        assert seen.size == Image.open(folder / "58.png").size and seen.mode == "RGB"
    # Without --json: a table, and one line on stderr per unreadable file.
    r = cli(trained_run.path, folder / "58.png", folder / "notes.png")
    assert r.returncode == 2 and "58" in r.stdout.splitlines()[1]
    assert r.stderr.strip().splitlines() == [f"mnistlab: error: {folder / 'notes.png'}: not an image Pillow can read "
                                             "(PNG, JPEG, BMP, GIF, WebP, TIFF, ...)"]
    r = cli(trained_run.path, folder / "58.png", "--min-confidence", "2")
    assert r.returncode == 2 and "--min-confidence: must be between 0 and 1" in r.stderr
    r = cli(trained_run.path, folder / "58.png")
    assert r.returncode == 0 and r.stderr == ""


@pytest.fixture(scope="module")
def client(trained_run):
    with TestClient(create_app(mnistlab.load_run(trained_run.path))) as c:
        yield c


def test_http_read_matches_the_python_api(client, trained_run, glyphs):
    data = png(number(glyphs, "4096"))
    a = client.post("/api/read", files={"file": ("n.png", data, "image/png")})
    b = client.post("/api/read", json={"image": "data:image/png;base64," + base64.b64encode(data).decode()})
    assert a.status_code == b.status_code == 200
    ra, rb = a.json(), b.json()
    assert ra["text"] == rb["text"] == "4096"
    assert ra["file"] == "n.png" and set(ra) == KEYS | {"size"}
    assert ra["size"] == list(Image.open(io.BytesIO(data)).size)
    [api] = read(trained_run, data)
    assert [d["box"] for d in ra["digits"]] == [d["box"] for d in api["digits"]]
    assert ra["confidence"] == pytest.approx(api["confidence"], abs=1e-6)


def test_http_read_refuses_what_predict_refuses(client):
    blank = io.BytesIO()
    Image.new("L", (400, 100), 255).save(blank, format="PNG")
    r = client.post("/api/read", files={"file": ("blank.png", blank.getvalue(), "image/png")})
    assert r.status_code == 200 and r.json()["text"] is None and "no digit" in r.json()["reason"]
    assert client.post("/api/read", files={"file": ("x.png", b"not an image", "image/png")}).status_code == 400
    assert client.post("/api/read", files={"file": ("x.png", b"", "image/png")}).status_code == 400
    assert client.post("/api/read", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    assert client.post("/api/read", json={"image": "%%%"}).status_code == 400
    r = client.post("/api/read", files={"file": ("bomb.png", png_declaring(8000, 6000), "image/png")})
    assert r.status_code == 400 and "too large" in r.json()["detail"]


def test_a_picture_of_things_that_are_not_digits_is_not_a_number(trained_run, glyphs):
    # A row of stars: every mark the best reading finds is refused by the not-a-digit detector, so the picture
    # holds no number (the small test run's detector is too weak for letters cut into slices; docs/benchmarks.md
    # measures words and pictures with a full-size run). A number is still read.
    stars = Image.new("L", (600, 200), 255)
    for cx in (100, 300, 500):
        pts = [(cx + 70 * np.sin(a), 100 - 70 * np.cos(a)) for a in np.arange(6) * 4 * np.pi / 5]
        ImageDraw.Draw(stars).line(pts, fill=0, width=9, joint="curve")
    [r] = read(trained_run, stars)
    assert r["text"] is None and r["digits"] == [] and r["error"] is None, r
    assert r["reason"] == "not a digit: 3 of the 3 marks read are not digits", r
    assert read(trained_run, number(glyphs, "5182"))[0]["text"] == "5182"


def test_reading_runs_numpys_blas_on_one_thread(trained_run, glyphs, monkeypatch):
    # The detector's small matrix products over the candidate crops: OpenBLAS's other threads only spin (CPU
    # 72.7 against 39.5 ms a photo in benchmarks/read_numbers.py). The setting is put back afterwards.
    from threadpoolctl import ThreadpoolController, threadpool_limits

    import mnistlab.rejection as rejection

    controller = ThreadpoolController()

    def numpys():  # the BLAS NumPy's wheel carries (other libraries' copies, e.g. OpenCV's, are not used here)
        return [lib["num_threads"] for lib in controller.info()
                if lib["user_api"] == "blas" and "numpy" in lib["filepath"]]

    seen = []
    original = rejection._conv_forward
    monkeypatch.setattr(rejection, "_conv_forward", lambda *a: seen.append(numpys()) or original(*a))
    with threadpool_limits(limits=2, user_api="blas"):
        before = numpys()
        if not before or max(before) < 2:
            pytest.skip("this NumPy's BLAS runs one thread anyway, or is not one threadpoolctl sees")
        [r] = read(trained_run, number(glyphs, "42"))
        after = numpys()
    assert r["text"] == "42" and seen and all(n == [1] * len(before) for n in seen), seen
    assert after == before
