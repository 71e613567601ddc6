"""Reading a whole number written on one line: the digits in a picture, left to right, each read by the model.

How a picture becomes a number (`read`, `mnistlab read`, `POST /api/read`):

1. The picture is loaded as `images.load_image` loads it (a JPEG decoded at a reduced scale where it is
   large), resized (box average) to at most `WORK_LONG` pixels on its longer side, and turned into an ink map
   as `images.preprocess` does for one digit: polarity from the paper's median, uneven light and shadows
   removed by a grey opening (its window chosen on a half-size copy), ink strength relative to the paper,
   Otsu's threshold near the likely ink.
2. Ruled lines and underlines are removed: long horizontal runs of ink (`RULE_LENGTH`, allowing a slight
   slant), only where the ink is thinner than a pen stroke, so the strokes crossing them stay.
3. Connected components (scipy.ndimage.label, 8-connected). Strips along the picture's sides (a desk, a
   shadow's rim), specks (`SPECK_AREA`) and ink away from the line of writing are dropped. The height of
   the writing, `H`, is the median height of the large components (those at least half the tallest one's
   height); a piece much shorter than that (the lifted bar of a 5, the crossbar of a 7) joins the digit it
   stands over, and a dot or a speck is dropped. Short strokes near no digit that stand over or beside each
   other are one piece where together they are tall enough: a digit in faint or dotted ink fallen apart.
4. Over-segmentation: a piece wider than `SPLIT_WIDTH` typical digit widths or `CUT_FROM` H may be touching
   digits. From every start column across it (every half `MIN_CUT_SPACING` H) the least-ink path from top to
   bottom is found (one dynamic programme over all starts at once); the paths through least ink, each the
   best of its neighbours, up to `MAX_CUTS` of them, cut the piece into slices. Where the digits overlap, a
   cut leaves the tip of one digit's stroke on the other's side, severed from that side's ink: such a small
   bit (`FRAGMENT`) goes back to the slice it touches across the cut (`_return_fragments`). Digits written
   slanted touch along a slanted line, which a near-vertical path cannot follow: a second hypothesis cuts
   each wide piece along its slant (sheared upright by its second moments, at most `MAX_SLANT`, cut, sheared
   back), and step 5 keeps the hypothesis whose best reading scores higher.
5. Recognition-based choice: every run of up to `MAX_SPAN` neighbouring pieces that could be one digit is
   rendered MNIST-style (`images._render`: strength ramp, thin strokes thickened, 20 px box, centre of
   mass) and classified in one batch, with calibrated probabilities and the run's not-a-digit detector
   (`rejection.py`, which has pairs of digits among its negatives: a merged pair scores as no digit). Each candidate is described by `FEATURES` (the model's confidence, the detector's
   log-odds, width and height against the writing's, cuts on its sides and through strokes, gaps inside,
   overlap with its neighbours) and scored linearly; a Viterbi pass picks the partition of the pieces into
   digits with the highest total score. The weights were learnt on development numbers by a structured
   perceptron (`benchmarks/read_numbers.py --fit`): the model's confidence alone cannot choose, because it
   is as sure of two touching digits taken as one (an "87" read as an 8) as of either digit alone.
6. Pairs read whole: where the run has a pair reader (pairs.py), every run of pieces making one or two digits of
   the best reading, one to two digits wide, is also read as two touching digits (`_pair_candidates`), and
   `_read_pairs` replaces those digits by the pair where the pair reader is sure (`PAIR_CONFIDENCE`) and surer
   than they are together (their confidences discounted by `CUT_DOUBT` where a cut separated them), or the
   detector refuses one of them: a touching pair that no cut separates, two digits taken for one, or a cut that
   left a stroke on the wrong side.

The answer's confidence is the product of its digits' (calibrated) confidences: the chance that the whole
number is right if the segmentation is.
"""

from __future__ import annotations

import io
import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from PIL import Image

from . import images as _img
from .errors import ImageError, NoDigitError, UsageError

WORK_LONG = 640  # longer side of the picture the segmentation runs on (a 1600x600 photo: 640x240)
RULE_LENGTH = 0.35  # a horizontal run of ink longer than this fraction of the width (and 1.2x the height) is a rule
RULE_SLANT = 0.015  # ... allowing it to drift this fraction of the width up or down
RULE_THICKNESS = 0.75  # ... where it is thinner than this many pen strokes
SPECK_AREA = 0.02  # a component under this fraction of the largest one's area is a speck
COMPACT = 2.5  # a short piece no longer than this many stroke widths is a dot or a speck, not part of a digit
MIN_PIECE = 0.45  # a piece shorter than this fraction of the writing's height is part of a digit, not one
BAND = 0.75  # ink whose centre lies further than this many H from the line's centre is not on the line
LONE_WIDTH = 0.5  # a digit's width in H when the picture holds too few pieces to measure it
SPLIT_WIDTH = 1.2  # a piece wider than this many typical widths may be touching digits ...
CUT_FROM = 0.85  # ... and so may one wider than this many H
STEP_COST = 0.01  # price of a cut path stepping one column sideways, in pixels of ink crossed ...
DRIFT_COST = 0.002  # ... and of each row it runs a column away from where it started
CUT_REACH = 1.0  # a cut path stays within this many `MIN_CUT_SPACING` of its start column
MAX_CUTS = 4  # cuts tried in one piece
MAX_SLANT = 0.3  # columns per row: the steepest slant cuts follow (the second hypothesis)
FRAGMENT = 0.15  # a part of a slice under this share of its ink, severed from the neighbour's side, goes back to it
MIN_CUT_SPACING = 0.08  # cuts (and the piece's ends) at least this many H apart
MAX_SPAN = 6  # pieces one digit may be made of (a wide digit cut into slices is whole again)
SPAN_WIDTH = 1.6  # ... and no wider than this many H
# A picture is not a number when more than this share of the digits its best reading finds are refused by the
# not-a-digit detector (a word, a doodle, a photo). Development numbers (seed 0) and non-digit photos (seed 100):
# more than half refused leaves every number read right as it was and refuses 57% of the non-digits (21% before);
# half or more refuses 64% but also a number read right (docs/benchmarks.md).
NOT_A_NUMBER = 0.5
MAX_PIECES = 48  # pieces kept (the largest), so that a picture full of marks answers in bounded time
# The choice between candidate digits: a logistic model of "this candidate is one whole digit" over
# `FEATURES`, fitted on the development numbers (seed 0 of benchmarks/read_numbers.py, MNIST training digits
# the model never saw, and fonts; `--fit`), never on the reported ones. Printed by that command.
FEATURES = ("log confidence", "not-a-digit log-odds", "width/H", "(width/H)^2", "height/H", "width/H if a 1",
            "width/typical width", "cut sides", "strokes cut", "gap inside/H", "overlap outside",
            "confidence log-odds", "width/H beyond 1", "second class log-probability", "cuts inside")
SCORER_MEAN = np.array([-0.2393, -2.408, 0.7776, 0.7679, 0.907, 0.04377, 1.117, 0.988, 1.728, 0.06525, 0.005238, 3.248, 0.09105, -3.94, 0.8096], np.float32)
SCORER_STD = np.array([0.3023, 6.688, 0.404, 0.7139, 0.2587, 0.1511, 0.6433, 0.7072, 1.451, 0.1363, 0.06294, 3.179, 0.1711, 2.967, 1.023], np.float32)
SCORER_WEIGHTS = np.array([-1, -4.68, 1.478, -9.78, 4.6, -0.4509, 4.154, -0.6683, -1.616, -2.882, -3.587, 4.607, 2.078, 2.415, 2.887], np.float32)
SCORER_BIAS = -2.084
# Two touching digits read whole (pairs.py): a candidate between these widths (in H) is also read by the run's pair
# reader. Where one is, in the best reading, exactly one digit or two neighbouring digits, the pair reader is at
# least PAIR_CONFIDENCE sure of it and reads it otherwise, and either it is surer than the digits' own confidences
# together or the not-a-digit detector refuses one of them (a merged pair read as one digit), it replaces them
# (`_read_pairs`). Development numbers (benchmarks/read_numbers.py --dev, seed 0, numbers 0-399 / 400-799), exact
# strings, two pair readers fitted for the same run (without / with font pairs): 67.5% / 67.5% without pairs;
# surer than the digits at 0.8: 70.2 / 70.0% and 68.2 / 72.2%; with the detector's refusal too, at 0.6:
# 69.8 / 70.5% and 71.0 / 74.0% (0.5: 69.0 / 70.5% and 71.2 / 74.0%); without "surer than the digits", 0.6:
# 65.0 / 69.0% (second reader); runs of three digits too: 70.0 / 69.8%; a joint Viterbi choice with pair edges
# scored linearly: 69.0% on 0-399.
PAIR_WIDTH = (0.6, 2.2)
PAIR_CONFIDENCE = 0.6
PAIR_COVERS = 2  # digits of the best reading one pair may replace
# Two digits that a cut separated are surer of themselves than their reading deserves: each slice of two
# touching digits reads as some digit, often surely. Their confidences together are raised to this power against
# the pair's (development numbers, docs/benchmarks.md "Pairs placed as people's touch": 1, 2, 4, 8 tried, with
# three pair readers).
CUT_DOUBT = 4


@dataclass
class _Piece:
    """A candidate part of a digit: components, whole or the part of one between two cut paths."""

    labels: list[int]
    box: list[int]  # top, left, bottom, right of its ink
    ink: np.ndarray | None = None  # for a cut piece: the ink it owns, inside its box
    cut_left: int | None = None  # strokes the cut on its left goes through (None: a natural boundary)
    extra: list[int] = field(default_factory=list)  # small components attached to it


@dataclass
class Reading:
    """What `segment` found: the digits' 28x28 inputs, boxes in the original picture, and probabilities."""

    inputs: np.ndarray  # (N, 28, 28) float32
    boxes: list[list[int]]  # [left, top, right, bottom] in the original picture's pixels
    probabilities: np.ndarray  # (N, 10)
    size: tuple[int, int]  # the original picture's (width, height)


# ------------------------------------------------------------------------------------------------------ ink


def _grey(source: Any, max_pixels: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """The picture as float grey in [0, 1] at most WORK_LONG pixels long; (grey, scale to original, size)."""
    if not isinstance(source, (bytes, bytearray, memoryview, str, os.PathLike)):
        im = _img.load_image(source, max_pixels=max_pixels)
        size = im.size
    else:
        # A JPEG decodes at 1/2, 1/4 or 1/8 scale when that still leaves WORK_LONG pixels: a third of the CPU
        # of decoding a phone's photo at full size. The size of the original comes from the header.
        im = _img._open(source, max_pixels, draft=WORK_LONG)
        size = _original_size(source, im)
    if im.mode != "L":
        im = im.convert("L")  # before resizing: one channel to average, not three
    if max(im.size) > WORK_LONG:
        f = WORK_LONG / max(im.size)
        im = im.resize((max(1, round(im.width * f)), max(1, round(im.height * f))), Image.Resampling.BOX)
    grey = np.asarray(im, dtype=np.float32) / 255.0
    return grey, size[0] / grey.shape[1], size


def _original_size(source: Any, decoded: Image.Image) -> tuple[int, int]:
    """The picture's size before a reduced JPEG decode (its header, turned as its orientation tag turns it)."""
    fp: Any = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray, memoryview)) else source
    with Image.open(fp) as im:
        w, h = im.size
    if (decoded.width > decoded.height) != (w > h) and w != h:
        w, h = h, w
    return w, h


def _ink_map(grey: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """Ink strength (ink-positive, background removed, lightly smoothed), threshold, paper level and noise.

    The same steps as `_img._find_ink` up to the threshold, on the whole picture rather than one digit.
    """
    h, w = grey.shape
    p = grey if _img._ink_is_bright(grey) else 1.0 - grey
    if max(h, w) <= _img.SMALL:
        k = max(1, round(0.03 * min(h, w)))
        border = np.concatenate([p[:k].ravel(), p[-k:].ravel(), p[:, :k].ravel(), p[:, -k:].ravel()])
        smooth = _img._strength(p, np.full_like(p, np.median(border)))
        t, _ = _img._ink_threshold(smooth)
    else:
        # The background window is chosen on the picture at half size (the separations rank the windows the
        # same), and only the chosen one is computed at full size: half the CPU of trying each at full size.
        f = 2 if min(h, w) >= 2 * _img.SMALL else 1
        small = _img._resize(p, (w // f, h // f)) if f > 1 else p
        best = None
        for fraction in _img.WINDOWS:
            window = fraction * min(h, w)
            if window < 8 and best is not None:
                break
            background = _img._opening_background(small, window / f)
            smooth = _img._smooth(_img._strength(small, background))
            t, separation = _img._ink_threshold(smooth)
            if best is not None and window / f < _img.STROKE_WINDOW * _img._stroke_width(smooth > t):
                break  # hollows the strokes it finds, as in `_img._find_ink`
            if best is None or separation > best[0]:
                best = (separation, window)
            if fraction == _img.WINDOWS[0] and np.ptp(background) < 0.02:
                break  # even paper: a smaller window would find the same background
        smooth = _img._smooth(_img._strength(p, _img._opening_background(p, best[1])))
        t, _ = _img._ink_threshold(smooth)
    level, noise = _img._level_and_noise(smooth)
    return smooth, t, level, noise


def _drop_rules(mask: np.ndarray, stroke: float) -> np.ndarray:
    """The mask without ruled lines and underlines: long, thin horizontal runs of ink (kept where strokes cross)."""
    h, w = mask.shape
    # A rule photographed at a slant steps from row to row: runs are measured on the ink thickened by a few
    # rows up and down (`RULE_SLANT` of the width), so the steps join; what is removed is only the thin ink
    # in them (thinner than a pen stroke), so a digit's own strokes, and where they cross the rule, stay.
    k = max(2, round(RULE_SLANT * w))
    band = mask.copy()
    for s in range(1, k + 1):
        band[s:] |= mask[:-s]
        band[:-s] |= mask[s:]
    long = _img.run_lengths(band, axis=1) >= max(RULE_LENGTH * w, 1.2 * h)
    if not long.any():
        return mask
    thin = _img.run_lengths(mask, axis=0) <= max(2.0, RULE_THICKNESS * stroke)
    return mask & ~(long & thin)


# ----------------------------------------------------------------------------------------------- the pieces


def _components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """8-connected components without specks: (label image, areas, boxes [top, left, bottom, right]) per label."""
    from scipy import ndimage

    lab, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return lab, np.zeros(0), np.zeros((0, 4), int)
    area = np.bincount(lab.ravel(), minlength=n + 1)
    area[0] = 0
    # Specks (paper texture, noise, dust) go before anything else, so hundreds of them cost one pass.
    keep = area >= max(4.0, SPECK_AREA * area.max(), 2e-5 * mask.size)
    keep[0] = False
    remap = np.zeros(n + 1, np.int32)
    remap[keep] = np.arange(1, int(keep.sum()) + 1)
    lab = remap[lab]
    area = area[keep]
    boxes = np.array([[s[0].start, s[1].start, s[0].stop, s[1].stop] for s in ndimage.find_objects(lab)], int)
    return lab, area.astype(float), boxes.reshape(-1, 4)


def _edge_strips(lab: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Components lying along a side of the picture (a desk, a shadow's rim, a scanner's margin)."""
    h, w = lab.shape
    n = len(boxes)
    edge = np.zeros(n, bool)
    for side, line in enumerate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]):
        along = np.bincount(line, minlength=n + 1)[1:] / line.size
        extent = (boxes[:, 2] - boxes[:, 0]) / h if side < 2 else (boxes[:, 3] - boxes[:, 1]) / w
        edge |= (along > _img.BORDER_FRACTION) & (extent < _img.STRIP_DEPTH)
    return edge


def _pieces(lab: np.ndarray, area: np.ndarray, boxes: np.ndarray, stroke: float) -> tuple[list[_Piece], float]:
    """The components on the line of writing as pieces (small ones attached), and the writing's height H."""
    edge = _edge_strips(lab, boxes)
    ids = np.flatnonzero(~edge)
    if not len(ids):
        return [], 0.0
    ids = ids[np.argsort(-area[ids])][:MAX_PIECES]
    heights = boxes[ids, 2] - boxes[ids, 0]
    large = ids[area[ids] >= 0.15 * area[ids].max()]
    # The writing's height: the median of the large components' heights, leaving out those under half the tallest
    # (a digit fallen apart into strokes, a dash), which would halve H and have whole digits cut into slices.
    large_heights = boxes[large, 2] - boxes[large, 0]
    large = large[large_heights >= 0.5 * large_heights.max()]
    H = float(np.median(boxes[large, 2] - boxes[large, 0]))
    centre = float(np.median((boxes[large, 0] + boxes[large, 2]) / 2))
    on_line = np.abs((boxes[ids, 0] + boxes[ids, 2]) / 2 - centre) <= BAND * H + 0.5 * heights
    ids, heights = ids[on_line], heights[on_line]
    tall = heights >= MIN_PIECE * H
    pieces = [_Piece([int(c) + 1], [int(v) for v in boxes[c]]) for c in ids[tall]]
    orphans = []
    for c in ids[~tall]:
        # A short stroke belongs to the digit it stands over or beside (within a fifth of H): the bar of a 5,
        # the crossbar of a 7. A compact blob (a dot, a speck of dirt) is not a stroke and is left out.
        t, left, b, right = boxes[c]
        if max(b - t, right - left) < COMPACT * stroke:
            continue
        best, best_gap = None, 0.2 * H
        for piece in pieces:
            gap = max(piece.box[1] - right, left - piece.box[3], 0)
            overlap = min(right, piece.box[3]) - max(left, piece.box[1])
            score = gap - max(overlap, 0) / max(right - left, 1) * H
            if gap <= best_gap and (best is None or score < best[1]):
                best = (piece, score)
        if best is not None:
            piece = best[0]
            piece.extra.append(int(c) + 1)
            piece.box = [min(piece.box[0], t), min(piece.box[1], left), max(piece.box[2], b), max(piece.box[3], right)]
        else:
            orphans.append(_Piece([int(c) + 1], [int(v) for v in boxes[c]]))
    return sorted(pieces + _broken_digits(orphans, H), key=lambda p: (p.box[1] + p.box[3]) / 2), H


def _broken_digits(strokes: list[_Piece], H: float) -> list[_Piece]:
    """Short strokes near no digit, joined where they stand over or beside each other (within a fifth of H): a
    digit in faint or dotted ink falls apart into strokes none of which is tall enough alone (an 8's two loops, a
    3's two arcs). Those that make up `MIN_PIECE` of H together are a piece; the rest are left out. The strokes
    are the caller's own pieces, merged in place."""
    groups: list[_Piece] = []
    for s in sorted(strokes, key=lambda q: q.box[1]):
        g = groups[-1] if groups else None
        if g is not None and s.box[1] - g.box[3] <= 0.2 * H:
            g.labels += s.labels
            g.box = [min(g.box[0], s.box[0]), g.box[1], max(g.box[2], s.box[2]), max(g.box[3], s.box[3])]
        else:
            groups.append(s)
    return [g for g in groups if g.box[2] - g.box[0] >= MIN_PIECE * H]


def _typical_width(pieces: Sequence[_Piece], H: float) -> float:
    """A digit's typical width in this writing: the median of the tall pieces' widths when there are enough."""
    widths = [p.box[3] - p.box[1] for p in pieces if p.box[2] - p.box[0] >= 0.6 * H]
    if len(widths) >= 3:
        return float(np.clip(np.median(widths), 0.35 * H, 0.9 * H))
    return LONE_WIDTH * H


def _cut(piece: _Piece, lab: np.ndarray, H: float, W: float, stroke: float) -> tuple[list[_Piece], list[_Piece] | None]:
    """A wide piece (touching digits) cut along least-ink paths into slices, upright and along its slant.

    Returns the upright slices ([piece] when it is not wide or no path cuts it) and the slanted ones (None when
    it is not wide, its slant shifts no row or no slanted path cuts it: the upright slices stand for both).
    """
    t, left, b, right = piece.box
    if right - left <= min(SPLIT_WIDTH * W, CUT_FROM * H):
        return [piece], None
    own = np.isin(lab[t:b, left:right], piece.labels + piece.extra)
    margin = max(2, int(MIN_CUT_SPACING * H))
    sloped = _slanted_cut_paths(own, margin) if MAX_SLANT else None
    return _slices(piece, own, _cut_paths(own, margin)), _slices(piece, own, sloped) if sloped else None


def _slices(piece: _Piece, own: np.ndarray, paths: list[np.ndarray]) -> list[_Piece]:
    """`piece` (whose ink in its box is `own`) cut along `paths` into slices, each carrying its own ink."""
    if not paths:
        return [piece]
    t, left, b, right = piece.box
    bounds = [np.zeros(b - t, int), *paths, np.full(b - t, right - left)]
    cols = np.arange(right - left)[None, :]
    slices = [own & (cols >= lo[:, None]) & (cols < hi[:, None]) for lo, hi in zip(bounds[:-1], bounds[1:])]
    if FRAGMENT:
        _return_fragments(slices)
    out = []
    for mine, path in zip(slices, [None, *paths]):
        rows, xs = np.flatnonzero(mine.any(axis=1)), np.flatnonzero(mine.any(axis=0))
        if not rows.size:
            continue
        crossed = None if path is None else _runs_crossed(own, path)
        box = [t + int(rows[0]), left + int(xs[0]), t + int(rows[-1]) + 1, left + int(xs[-1]) + 1]
        ink = mine[rows[0]: rows[-1] + 1, xs[0]: xs[-1] + 1]
        out.append(_Piece(piece.labels + piece.extra, box, ink, crossed))
    if out:
        out[0].cut_left = None
    return out


def _return_fragments(slices: list[np.ndarray]) -> None:
    """Give a slice's small bits that a cut severed from the neighbour's side back to that neighbour.

    Where two digits overlap, a cut path between them leaves the tip of one digit's stroke (the tail of a 2
    under a 0, the top of a 6 under a 7's bar) on the other's side. A component of a slice smaller than
    `FRAGMENT` of the slice's ink that touches the neighbour's slice, and not the slice's own larger part, is
    that tip: it joins the neighbour (where, in the whole piece, it was joined to).
    """
    import cv2

    grow = np.ones((3, 3), np.uint8)
    for k in range(len(slices)):
        mine = slices[k]
        total = int(mine.sum())
        if not total:
            continue
        n, lab, stats, _ = cv2.connectedComponentsWithStats(mine.view(np.uint8), connectivity=8)
        if n <= 2:
            continue
        for c in range(1, n):
            if stats[c, cv2.CC_STAT_AREA] >= FRAGMENT * total:
                continue
            part = lab == c
            near = cv2.dilate(part.view(np.uint8), grow).view(bool)
            for j in (k - 1, k + 1):
                if 0 <= j < len(slices) and (near & slices[j]).any():
                    slices[j] |= part
                    mine &= ~part
                    break


def _slanted_cut_paths(own: np.ndarray, margin: int) -> list[np.ndarray] | None:
    """`_cut_paths` along the ink's slant: the piece sheared upright, cut, and the paths sheared back; None where
    the slant (its second moments, as MNIST-style deskewing measures it; at most `MAX_SLANT`) shifts no row."""
    ys, xs = np.nonzero(own)
    var = float(np.var(ys)) if len(ys) > 1 else 0.0
    slant = float(np.mean((xs - xs.mean()) * (ys - ys.mean()))) / var if var > 0 else 0.0
    h, w = own.shape
    shift = np.round(-np.clip(slant, -MAX_SLANT, MAX_SLANT) * (np.arange(h) - (h - 1) / 2)).astype(int)
    if not shift.any():
        return None
    shift -= shift.min()
    upright = np.zeros((h, w + int(shift.max())), bool)
    upright[np.arange(h)[:, None], np.arange(w)[None, :] + shift[:, None]] = own
    return [np.clip(p - shift, 0, w) for p in _cut_paths(upright, margin)]


def _cut_paths(own: np.ndarray, margin: int) -> list[np.ndarray]:
    """Up to `MAX_CUTS` top-to-bottom paths through little ink, `margin` apart, left to right, never crossing.

    A least-ink path is found from every start column (every half `margin`), each within `margin` of its
    start (a dynamic programme over all starts at once, as a Viterbi pass over rows: a path may step one
    column a row). The paths crossing least ink, each the best of its neighbours, are kept.
    """
    h, w = own.shape
    starts = np.arange(margin, w - margin + 1, max(1, margin // 2))
    if not len(starts):
        return []
    reach = max(1, round(CUT_REACH * margin))
    offsets = np.arange(-reach, reach + 1)
    cols = starts[:, None] + offsets[None, :]  # (starts, band)
    inside = (cols >= 0) & (cols < w)
    cost = np.where(inside[None], own[:, np.clip(cols, 0, w - 1)], np.inf).astype(np.float32)
    cost += DRIFT_COST * np.abs(offsets)[None, None, :]
    n, band = cols.shape
    moves = np.zeros((h, n, band), np.int8)
    # Rolling pads the band with a wall of infinite cost on both sides: from-left and from-right in place.
    acc = np.full((n, band + 2), np.inf, np.float32)
    acc[:, 1:-1] = cost[0]
    left, right = np.empty((n, band), np.float32), np.empty((n, band), np.float32)
    for r in range(1, h):
        here = acc[:, 1:-1]
        np.add(acc[:, :-2], STEP_COST, out=left)
        np.add(acc[:, 2:], STEP_COST, out=right)
        step = moves[r]
        step[left < here] = -1
        best = np.minimum(here, left)
        step[right < best] = 1
        np.minimum(best, right, out=best)
        np.add(best, cost[r], out=acc[:, 1:-1])
    acc = acc[:, 1:-1]
    x = np.argmin(acc, axis=1)
    total = acc[np.arange(n), x]
    where = np.empty((h, n), int)
    for r in range(h - 1, -1, -1):
        where[r] = x
        if r:
            x = x + moves[r, np.arange(n), x]
    paths = cols[np.arange(n)[None, :], where]  # (rows, starts): each start's path
    ink_total = max(1, int(own.sum()))
    kept: list[np.ndarray] = []
    for k in np.argsort(total, kind="stable"):
        if not np.isfinite(total[k]):
            break
        path = paths[:, k]
        near = np.abs(starts - starts[k]) <= margin
        share = float((own & (np.arange(w)[None, :] < path[:, None])).sum()) / ink_total
        if total[k] > total[near].min() + 1e-6 or not 0.05 <= share <= 0.95:
            continue
        if all(abs(path.mean() - q.mean()) >= margin for q in kept):
            kept.append(path.copy())
        if len(kept) >= MAX_CUTS:
            break
    kept.sort(key=lambda p: p.mean())
    for p, q in zip(kept[:-1], kept[1:]):
        np.maximum(q, p, out=q)  # cuts never cross
    return kept


def _runs_crossed(own: np.ndarray, path: np.ndarray) -> int:
    """How many separate strokes a cut path goes through."""
    on = own[np.arange(len(path)), np.clip(path, 0, own.shape[1] - 1)]
    return int(np.count_nonzero(on[1:] & ~on[:-1]) + on[0])


def _piece_masks(pieces: Sequence[_Piece], lab: np.ndarray, r: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each piece's ink inside its box, and that ink dilated by `r` pixels inside its box grown by `r`.

    Computed once a piece: a candidate's ink is the union of its pieces', and so is its dilation (a square
    maximum filter distributes over a union), so no candidate filters its own region again.
    """
    from scipy import ndimage

    out = []
    for p in pieces:
        t, left, b, right = p.box
        mine = np.isin(lab[t:b, left:right], p.labels + p.extra) if p.ink is None else p.ink
        out.append((mine, ndimage.maximum_filter(np.pad(mine, r), size=2 * r + 1)))
    return out


def _place(target: np.ndarray, part: np.ndarray, top: int, left: int) -> None:
    """OR `part` into `target` with its corner at (top, left) of target's frame, clipped to the target."""
    h, w = target.shape
    t0, l0 = max(0, top), max(0, left)
    t1, l1 = min(h, top + part.shape[0]), min(w, left + part.shape[1])
    if t1 > t0 and l1 > l0:
        target[t0:t1, l0:l1] |= part[t0 - top: t1 - top, l0 - left: l1 - left]


# ------------------------------------------------------------------------------------------------- reading


@dataclass
class Candidates:
    """Every candidate digit in a picture: the pieces, which runs of them each candidate is, and its reading."""

    pieces: list[_Piece]
    spans: list[tuple[int, int]]  # candidate k is pieces[i:j]
    inputs: np.ndarray  # (K, 28, 28)
    boxes: list[list[int]]  # [left, top, right, bottom] at the working scale
    probabilities: np.ndarray  # (K, 10), calibrated
    features: np.ndarray  # (K, len(FEATURES))
    scale: float  # original pixels per working pixel
    size: tuple[int, int]  # the original picture's (width, height)
    chosen: list[int] = field(default_factory=list)  # the best reading: indices into spans (K + q: pair q)
    singles: list[int] = field(default_factory=list)  # the best reading before pairs were read whole
    # What the pair reader read (pairs.py): runs of pieces making one or two digits of the best reading, their
    # inputs, boxes, pair probabilities (P, 101) and the column splitting each one's ink in two. In `chosen`,
    # K + q reads pair q.
    pair_spans: list[tuple[int, int]] = field(default_factory=list)
    pair_inputs: list[np.ndarray] = field(default_factory=list)
    pair_boxes: list[list[int]] = field(default_factory=list)
    pair_probabilities: np.ndarray = field(default_factory=lambda: np.zeros((0, 101), np.float32))
    pair_splits: list[int] = field(default_factory=list)

    def digits(self, chosen: Sequence[int]) -> list[tuple[np.ndarray, list[int], np.ndarray]]:
        """The digits `chosen` reads (indices into spans, and K + q for pair q), left to right: (probabilities
        (10,), box at the working scale [left, top, right, bottom], the 28x28 input it was read from; a pair's two
        digits share theirs)."""
        from .pairs import marginals

        out = []
        K = len(self.spans)
        for e in chosen:
            if e < K:
                out.append((self.probabilities[e], list(self.boxes[e]), self.inputs[e]))
                continue
            q = e - K
            first, second = marginals(self.pair_probabilities[q])
            left, top, right, bottom = self.pair_boxes[q]
            split = self.pair_splits[q]
            out.append((first[0], [left, top, split, bottom], self.pair_inputs[q]))
            out.append((second[0], [split, top, right, bottom], self.pair_inputs[q]))
        return out


def segment(image: Any, run: Any, *, max_pixels: int = _img.MAX_PIXELS) -> Reading:
    """Find the digits written on one line in a picture and classify them; raises NoDigitError when none."""
    from .backend import one_blas_thread

    with one_blas_thread():
        c = candidates(image, run, max_pixels=max_pixels)
    chosen = c.chosen
    if not chosen:
        raise NoDigitError("no digit found: no ink stands out from the paper")
    digits = c.digits(chosen)
    rejector = getattr(run, "rejector", None)
    if rejector is not None:
        from .prediction import NOT_A_DIGIT

        # Judged on the reading before pairs were read whole (the detector refuses a pair by design, and a pair
        # reader never saw a letter): reading pairs changes no answer to "is this a number".
        refused = int(np.count_nonzero(c.features[c.singles, 1] > rejector.threshold))
        if refused > NOT_A_NUMBER * len(c.singles):
            raise NoDigitError(f"{NOT_A_DIGIT}: {refused} of the {len(c.singles)} marks read are not digits")
    w, h = c.size
    out_boxes = [[max(0, math.floor(b[0] * c.scale)), max(0, math.floor(b[1] * c.scale)),
                  min(w, math.ceil(b[2] * c.scale)), min(h, math.ceil(b[3] * c.scale))] for _, b, _ in digits]
    return Reading(np.stack([x for _, _, x in digits]), out_boxes, np.stack([p for p, _, _ in digits]), c.size)


def candidates(image: Any, run: Any, *, max_pixels: int = _img.MAX_PIXELS) -> Candidates:
    """Every candidate digit in a picture, rendered, classified and described; raises NoDigitError when none."""
    grey, scale, size = _grey(image, max_pixels)
    h, w = grey.shape
    if min(h, w) < 4:
        raise NoDigitError(f"no digit found: the image is only {size[0]}x{size[1]} pixels")
    strength, t, level, noise = _ink_map(grey)
    if t <= 0 or float(strength.max()) - level < _img.MIN_CONTRAST:
        raise NoDigitError("no digit found: the image is blank (one flat colour)")
    ink = _drop_rules(strength > t, _img._stroke_width(strength > t))
    lab, area, boxes = _components(ink)
    pieces, H = _pieces(lab, area, boxes, _img._stroke_width(lab > 0))
    if not pieces:
        raise NoDigitError("no digit found: no ink stands out from the paper")
    kept = np.isin(lab, [c for p in pieces for c in p.labels + p.extra])
    ink_level = float(np.median(strength[kept]))
    snr = (ink_level - level) / max(noise, 1e-6)
    if ink_level - level < _img.MIN_CONTRAST or snr < _img.MIN_SNR:
        raise NoDigitError(f"no digit found: nothing stands out from the background's noise "
                           f"(contrast {ink_level - level:.2f}, signal-to-noise {snr:.1f})")
    if H < max(3, 0.03 * max(h, w)):
        raise NoDigitError(f"no digit found: the only ink is specks of {int(H)} pixels")
    stroke = _img._stroke_width(kept)
    floor = min(0.5 * t, max(level + 3.0 * noise, 0.0))
    W = _typical_width(pieces, H)
    # Two hypotheses about where touching digits meet: cut upright, or cut along each piece's slant (digits
    # written slanted touch along a slanted line). The one whose best reading scores higher is kept; the
    # candidates both share (every run of pieces neither cuts differently) are rendered and classified once.
    ctx = _Context(lab, strength, kept, stroke, floor, ink_level, H, W, run)
    cuts = [_cut(p, lab, H, W, stroke) for p in pieces]
    best = _hypothesis([q for up, _ in cuts for q in up], ctx)
    if any(sl is not None for _, sl in cuts):
        other = _hypothesis([q for up, sl in cuts for q in (up if sl is None else sl)], ctx)
        if other.total > best.total:
            best = other
    if best.candidates is None:
        raise NoDigitError("no digit found: no ink stands out from the paper")
    c = best.candidates
    c.scale, c.size = scale, size
    return c


@dataclass
class _Context:
    """What rendering and scoring a picture's candidates needs, and the renders already made (by pieces)."""

    lab: np.ndarray
    strength: np.ndarray
    kept: np.ndarray
    stroke: float
    floor: float
    ink_level: float
    H: float
    W: float
    run: Any
    masks: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # by id(piece)
    # By the pieces' ids: [input, box, probabilities, log-odds, pair probabilities or None, split column]
    renders: dict[tuple[int, ...], Any] = field(default_factory=dict)


@dataclass
class _Hypothesis:
    candidates: Candidates | None
    total: float  # the score of its best reading


def _hypothesis(pieces: list[_Piece], ctx: _Context) -> _Hypothesis:
    """Every run of neighbouring pieces that could be one digit, rendered and classified in one batch, and the
    score of the best reading among them."""
    n = len(pieces)
    r = max(1, min(3, round(ctx.stroke / 2)))  # the anti-aliased rim of a stroke that belongs to it
    pad = int(round(2 * ctx.stroke)) + 2
    missing = [p for p in pieces if id(p) not in ctx.masks]
    for p, m in zip(missing, _piece_masks(missing, ctx.lab, r)):
        ctx.masks[id(p)] = m
    spans, keys, fresh = [], [], []
    for i in range(n):
        for j in range(i + 1, min(n, i + MAX_SPAN) + 1):
            group = pieces[i:j]
            box = _box(group)
            if j - i > 1 and box[3] - box[1] > SPAN_WIDTH * ctx.H:
                break
            key = tuple(id(p) for p in group)
            if key not in ctx.renders:
                ctx.renders[key] = _render_group(group, box, ctx, r, pad)
                if ctx.renders[key] is not None:
                    fresh.append(key)
            if ctx.renders[key] is not None:
                spans.append((i, j))
                keys.append(key)
    if fresh:
        proba, not_digit = _classify(ctx.run, np.stack([ctx.renders[k][0] for k in fresh]))
        for m, k in enumerate(fresh):
            ctx.renders[k][2], ctx.renders[k][3] = proba[m], None if not_digit is None else not_digit[m]
    if not keys:
        return _Hypothesis(None, -math.inf)
    x = np.stack([ctx.renders[k][0] for k in keys])
    boxes_out = [ctx.renders[k][1] for k in keys]
    proba = np.stack([ctx.renders[k][2] for k in keys])
    nd = [ctx.renders[k][3] for k in keys]
    not_digit = None if nd[0] is None else np.array(nd, np.float32)
    features = _features(pieces, spans, proba, boxes_out, not_digit, ctx.W, ctx.H)
    # The picture's scale and size are set by `candidates`, which knows them.
    c = Candidates(pieces, spans, x, boxes_out, proba, features, 1.0, (0, 0))
    score = _score(features)
    chosen = _choose(n, spans, score)
    total = float(score[chosen].sum()) if chosen else -math.inf
    if getattr(ctx.run, "pair_reader", None) is not None and chosen:
        _pair_candidates(c, chosen, ctx, r, pad)
    rejector = getattr(ctx.run, "rejector", None)
    c.singles = chosen
    c.chosen = _read_pairs(c, chosen, None if rejector is None else rejector.threshold)
    return _Hypothesis(c, total)


def _box(group: Sequence[_Piece]) -> list[int]:
    """The box [top, left, bottom, right] of pieces' ink."""
    return [min(p.box[0] for p in group), min(p.box[1] for p in group),
            max(p.box[2] for p in group), max(p.box[3] for p in group)]


def _pair_candidates(c: Candidates, chosen: list[int], ctx: _Context, r: int, pad: int) -> None:
    """Read, with the run's pair reader, every run of pieces making one or two neighbouring digits (`PAIR_COVERS`)
    of the best reading `chosen` and `PAIR_WIDTH` wide: the only pairs `_read_pairs` can put in their place (a
    pair may be made of twice as many pieces as one digit, and be wider). Rendered once a picture, like digits."""
    bounds = [c.spans[e] for e in chosen]
    for a in range(len(chosen)):
        for b in range(a, min(len(chosen), a + PAIR_COVERS)):
            i, j = bounds[a][0], bounds[b][1]
            group = c.pieces[i:j]
            key = tuple(id(p) for p in group)
            if key not in ctx.renders:
                ctx.renders[key] = _render_group(group, _box(group), ctx, r, pad)
            render = ctx.renders[key]
            if render is not None and PAIR_WIDTH[0] * ctx.H <= render[1][2] - render[1][0] <= PAIR_WIDTH[1] * ctx.H:
                c.pair_spans.append((i, j))
                c.pair_inputs.append(render[0])
                c.pair_boxes.append(render[1])
                c.pair_splits.append(render[5])
    need = [tuple(id(p) for p in c.pieces[i:j]) for i, j in c.pair_spans]
    fresh = [k for k in dict.fromkeys(need) if ctx.renders[k][4] is None]
    if fresh:
        for k, q in zip(fresh, ctx.run.pair_reader.proba(np.stack([ctx.renders[k][0] for k in fresh]))):
            ctx.renders[k][4] = q
    if need:
        c.pair_probabilities = np.stack([ctx.renders[k][4] for k in need])


def _render_group(group: Sequence[_Piece], box: list[int], ctx: _Context, r: int, pad: int) -> list[Any] | None:
    """One candidate's 28x28 input and box ([left, top, right, bottom]); None where it renders to nothing."""
    h, w = ctx.strength.shape
    region = [max(0, box[0] - pad), max(0, box[1] - pad), min(h, box[2] + pad), min(w, box[3] + pad)]
    shape = (region[2] - region[0], region[3] - region[1])
    mask, near = np.zeros(shape, bool), np.zeros(shape, bool)
    for p in group:
        own, grown = ctx.masks[id(p)]
        t, left = p.box[0] - region[0], p.box[1] - region[1]
        _place(mask, own, t, left)
        _place(near, grown, t - r, left - r)
    if not mask.any():
        return None
    sl = np.s_[region[0]:region[2], region[1]:region[3]]
    near &= ~(ctx.kept[sl] & ~mask)  # its own ink's neighbourhood, without its neighbours' ink
    try:
        digit = _img._render(ctx.strength[sl], near, ctx.stroke, ctx.floor, ctx.ink_level)
    except NoDigitError:
        return None
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    # Where a pair's two digits meet, for their boxes: the column of least ink in the middle two fifths.
    profile = mask[:, cols[0]: cols[-1] + 1].sum(axis=0)
    lo, hi = int(0.3 * len(profile)), max(int(0.3 * len(profile)) + 1, int(np.ceil(0.7 * len(profile))))
    middle = profile[lo:hi]
    ties = np.flatnonzero(middle == middle.min()) + lo
    split = region[1] + int(cols[0]) + int(ties[np.argmin(np.abs(ties - (len(profile) - 1) / 2))])
    return [digit, [region[1] + int(cols[0]), region[0] + int(rows[0]), region[1] + int(cols[-1]) + 1,
                    region[0] + int(rows[-1]) + 1], None, None, None, split]


def _features(pieces: Sequence[_Piece], spans: Sequence[tuple[int, int]], proba: np.ndarray,
              boxes: Sequence[Sequence[int]], not_digit: np.ndarray | None, W: float, H: float) -> np.ndarray:
    """What tells a true digit from a fragment or a merged pair, for each candidate: one row of `FEATURES`."""
    n = len(pieces)
    rows = np.zeros((len(spans), len(FEATURES)), np.float32)
    for k, (i, j) in enumerate(spans):
        left, top, right, bottom = boxes[k]
        width, height = (right - left) / H, (bottom - top) / H
        digit = int(np.argmax(proba[k]))
        cuts = [c for c in (pieces[i].cut_left, pieces[j].cut_left if j < n else None) if c is not None]
        gap = sum(max(0.0, b.box[1] - a.box[3]) for a, b in zip(pieces[i:j - 1], pieces[i + 1:j]) if b.cut_left is None)
        overlap = 0.0
        for a, b in ((i - 1, i), (j - 1, j)):
            if 0 <= a and b < n and pieces[b].cut_left is None:
                pa, pb = pieces[a], pieces[b]
                shared = min(pa.box[3], pb.box[3]) - max(pa.box[1], pb.box[1])
                overlap += max(0.0, shared / max(1, min(pa.box[3] - pa.box[1], pb.box[3] - pb.box[1])))
        p = float(np.clip(proba[k, digit], 1e-6, 1 - 1e-6))
        second = float(np.partition(proba[k], -2)[-2])
        rows[k] = [math.log(p), 0.0 if not_digit is None else not_digit[k], width, width * width, min(height, 1.5),
                   width * (digit == 1), (right - left) / W, len(cuts), sum(cuts), gap / H, overlap,
                   math.log(p / (1 - p)), max(0.0, width - 1.0), math.log(max(second, 1e-6)),
                   sum(q.cut_left is not None for q in pieces[i + 1:j])]
    if not_digit is None:
        rows[:, 1] = SCORER_MEAN[1]  # an old run without a detector: its feature at its mean, adding nothing
    return rows


def _score(features: np.ndarray) -> np.ndarray:
    """Each candidate's score as one digit of the reading (linear in its features, fitted on development numbers)."""
    return ((features - SCORER_MEAN) / SCORER_STD) @ SCORER_WEIGHTS + SCORER_BIAS


def _read_pairs(c: Candidates, chosen: list[int], threshold: float | None = None) -> list[int]:
    """The best reading with pairs read whole: a pair candidate replaces the one or two digits (`PAIR_COVERS`) of
    `chosen` whose pieces it is made of, where the pair reader is at least `PAIR_CONFIDENCE` sure of it, reads them
    otherwise, and is surer than their confidences together (to the power `CUT_DOUBT` where a cut separates the two)
    or the not-a-digit detector refuses one of them (log-odds above `threshold`; None: no detector). The surest
    first; K + q stands for pair q."""
    from .pairs import NOT_A_PAIR

    K = len(c.spans)
    starts = {c.spans[e][0]: a for a, e in enumerate(chosen)}
    ends = {c.spans[e][1]: a for a, e in enumerate(chosen)}
    options = []
    for q, (i, j) in enumerate(c.pair_spans):
        if i not in starts or j not in ends or not 0 <= ends[j] - starts[i] < PAIR_COVERS:
            continue
        a, b = starts[i], ends[j]
        p = c.pair_probabilities[q, :NOT_A_PAIR]
        top, said = float(p.max()), int(p.argmax())
        digits = [int(np.argmax(c.probabilities[e])) for e in chosen[a: b + 1]]
        alone = float(np.prod([c.probabilities[e].max() for e in chosen[a: b + 1]]))
        if b > a and c.pieces[c.spans[chosen[b]][0]].cut_left is not None:
            alone **= CUT_DOUBT
        refused = threshold is not None and bool((c.features[chosen[a: b + 1], 1] > threshold).any())
        if top >= PAIR_CONFIDENCE and [said // 10, said % 10] != digits and (top > alone or refused):
            options.append((top, a, b, K + q))
    taken: dict[int, tuple[int, int]] = {}
    for _, a, b, e in sorted(options, reverse=True):
        if not any(a <= u and t <= b for t, (u, _) in taken.items()):  # no overlap with one taken
            taken[a] = (b, e)
    out, a = [], 0
    while a < len(chosen):
        b, e = taken.get(a, (a, chosen[a]))
        out.append(e)
        a = b + 1
    return out


def _choose(n: int, spans: Sequence[tuple[int, int]], score: np.ndarray) -> list[int]:
    """The candidates (indices into spans) that partition the n pieces best: a Viterbi pass, left to right."""
    best = np.full(n + 1, -np.inf)
    best[0] = 0.0
    back: list[tuple[int, int] | None] = [None] * (n + 1)
    by_end: dict[int, list[int]] = {}
    for k, (i, j) in enumerate(spans):
        by_end.setdefault(j, []).append(k)
    for j in range(1, n + 1):
        for k in by_end.get(j, []):
            i = spans[k][0]
            s = best[i] + score[k]
            if s > best[j]:
                best[j], back[j] = s, (i, k)
    # A piece that could not be rendered alone leaves a hole: read up to the last reachable piece.
    j = n if np.isfinite(best[n]) else int(np.flatnonzero(np.isfinite(best))[-1])
    chosen = []
    while j > 0 and back[j] is not None:
        i, k = back[j]
        chosen.append(k)
        j = i
    return chosen[::-1]


def _classify(run: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Calibrated probabilities for a batch and the not-a-digit detector's log-odds (None without a detector).

    The batch is padded to one of a few sizes so that the compiled model is not traced again.
    """
    from .prediction import calibrated

    n = len(x)
    size = next((s for s in (8, 16, 32, 48, 64, 96, 128, 192, 256) if s >= n), n)
    padded = np.concatenate([x, np.zeros((size - n, *x.shape[1:]), x.dtype)]) if size > n else x
    return calibrated(run, x, run.predict_proba(padded)[:n])


# ------------------------------------------------------------------------------------------------- records


def record(name: str, reading: Reading | None, *, min_confidence: float, error: BaseException | None = None,
           class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """The reading record for one picture: from its reading, or from the error that stopped it."""
    if reading is None:
        no_digit = isinstance(error, NoDigitError)
        return {"file": name, "text": None, "digits": [], "confidence": None, "low_confidence": None,
                "reason": str(error) if no_digit else None, "error": None if no_digit else str(error)}
    digits = []
    for proba, box in zip(reading.probabilities, reading.boxes):
        d = int(np.argmax(proba))
        digits.append({"digit": d, "confidence": float(proba[d]), "box": [int(v) for v in box],
                       "probabilities": [round(float(p), 6) for p in proba]})
    names = class_names if class_names is not None else [str(i) for i in range(10)]
    confidence = float(np.prod([d["confidence"] for d in digits]))
    return {"file": name, "text": "".join(names[d["digit"]] for d in digits), "digits": digits,
            "confidence": confidence, "low_confidence": confidence < min_confidence, "reason": None, "error": None}


def read(run_or_path: Any, images: Any, *, min_confidence: float | None = None, allow_partial: bool = False,
         annotate: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Read the number written in each picture (paths, PIL images, arrays or bytes); one record per picture."""
    from .prediction import DEFAULT_MIN_CONFIDENCE, _as_list, _name
    from .runs import Run, load_run

    min_confidence = DEFAULT_MIN_CONFIDENCE if min_confidence is None else min_confidence
    if isinstance(min_confidence, bool) or not isinstance(min_confidence, numbers.Real) or not 0 <= min_confidence <= 1:
        raise UsageError("must be a probability between 0 and 1", param="min_confidence", value=min_confidence)
    if annotate is not None:
        try:
            Path(annotate).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the folder: {exc.strerror or exc}", param="annotate",
                             value=annotate) from None
    run = run_or_path if isinstance(run_or_path, Run) else load_run(run_or_path, allow_partial=allow_partial)
    items = _as_list(images)
    records: list[dict[str, Any]] = []
    written: set[str] = set()
    for i, item in enumerate(_progress(items)):
        name = _name(item, i)
        try:
            reading = segment(item, run)
            error = None
        except ImageError as exc:
            reading, error = None, exc
        records.append(record(name, reading, min_confidence=min_confidence, error=error,
                              class_names=run.class_names))
        if annotate is not None and not (error is not None and not isinstance(error, NoDigitError)):
            written.add(write_annotated(item, records[-1], Path(annotate), taken=written).name)
    return records


def read_paths(run_or_path: Any, paths: Iterable[str | os.PathLike], *, min_confidence: float | None = None,
               allow_partial: bool = False, annotate: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Read the numbers in image files and in every image inside the given folders."""
    from .prediction import expand_paths

    return read(run_or_path, expand_paths(paths), min_confidence=min_confidence, allow_partial=allow_partial,
                annotate=annotate)


def _progress(items: list[Any]) -> Any:
    """A progress bar on stderr when there are many pictures and stderr is a terminal."""
    if len(items) < 20:
        return items
    from tqdm import tqdm

    return tqdm(items, desc="reading", unit="image", disable=None, leave=False)


def write_annotated(image: Any, rec: dict[str, Any], folder: Path, *, taken: set[str] = frozenset()) -> Path:
    """Write the picture with each digit's box and reading drawn on it as a PNG in `folder`; the file written."""
    from PIL import ImageDraw

    from .fsutil import atomic_path

    im = _img.load_image(image).convert("RGB")
    draw = ImageDraw.Draw(im)
    width = max(2, round(max(im.size) / 300))
    font_size = max(12, round(max(im.size) / 25))
    try:
        from PIL import ImageFont

        font = ImageFont.load_default(size=font_size)
    except TypeError:  # Pillow < 10.1 has no scalable default font
        font = None
    for d in rec["digits"]:
        colour = (220, 30, 30) if d["confidence"] < 0.8 else (20, 160, 60)
        left, top, right, bottom = d["box"]
        draw.rectangle([left, top, right - 1, bottom - 1], outline=colour, width=width)
        draw.text((left, max(0, top - font_size - width)), str(d["digit"]), fill=colour, font=font)
    if rec["text"] is None:
        draw.text((width, width), "no digit found", fill=(220, 30, 30), font=font)
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(rec["file"]).stem.strip("<>").replace(" ", "-") or "image"
    target, n = folder / f"{stem}.png", 2
    while target.name in taken:
        target, n = folder / f"{stem}-{n}.png", n + 1
    with atomic_path(target) as tmp:
        im.save(tmp, format="PNG")
    return target


def format_table(records: Sequence[dict[str, Any]]) -> str:
    """Records as an aligned table: file, number, its confidence, each digit's confidence, and LOW or why not."""
    width = max([4, *(len(r["file"]) for r in records)])
    number_width = max([6, *(len(r["text"]) for r in records if r["text"])])
    lines = [f"{'file':<{width}}  {'number':>{number_width}}  confidence  digits (confidence)"]
    for r in records:
        if r["text"] is None:
            lines.append(f"{r['file']:<{width}}  {'-':>{number_width}}  {'-':>10}  {r['error'] or r['reason']}")
            continue
        each = " ".join(f"{d['digit']}:{d['confidence']:.2f}" for d in r["digits"])
        note = "  LOW confidence: check it" if r["low_confidence"] else ""
        lines.append(f"{r['file']:<{width}}  {r['text']:>{number_width}}  {r['confidence']:>10.1%}  {each}{note}")
    return "\n".join(lines)
