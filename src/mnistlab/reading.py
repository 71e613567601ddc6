"""Reading a whole number written on one line: the digits in a picture, left to right, each read by the model.

How a picture becomes a number (`read`, `mnistlab read`, `POST /api/read`):

1. The picture is loaded as `images.load_image` loads it, reduced (box average) to at most `WORK_LONG` pixels
   on its longer side, and turned into an ink map as `images.preprocess` does for one digit: polarity from
   the paper's median, uneven light and shadows removed by a grey opening, ink strength relative to the
   paper, Otsu's threshold near the likely ink.
2. Ruled lines and underlines are removed: long horizontal runs of ink (`RULE_LENGTH`, allowing a slight
   slant), only where the ink is thinner than a pen stroke, so the strokes crossing them stay.
3. Connected components (scipy.ndimage.label, 8-connected). Strips along the picture's sides (a desk, a
   shadow's rim), specks (`SPECK_AREA`) and ink away from the line of writing are dropped. The height of
   the writing, `H`, is the median height of the large components; a piece much shorter than that (the
   lifted bar of a 5, the crossbar of a 7) joins the digit it stands over, and a dot or a speck is dropped.
4. Over-segmentation: a piece wider than `SPLIT_WIDTH` times the number's typical digit width may be
   touching digits, so it is cut along the least-ink paths from top to bottom, up to `MAX_CUTS` of them.
5. Recognition-based choice: every run of up to `MAX_SPAN` neighbouring pieces that could be one digit is
   rendered MNIST-style (`images._render`: strength ramp, thin strokes thickened, 20 px box, centre of
   mass) and classified in one batch; a Viterbi pass picks the partition of the pieces into digits that
   maximises the sum of log confidences, less costs for what a digit rarely is (much wider than the others,
   a fragment much shorter than the writing, with a clear gap inside it, made by cutting through strokes,
   overlapping its neighbour). So a digit of strokes that do not touch stays one digit when the model reads
   the whole better than the parts, and touching digits are split where the model reads both parts well.

The answer's confidence is the product of its digits' confidences: with calibrated digits, the chance that
the whole number is right.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from . import images as _img
from .errors import ImageError, NoDigitError, UsageError

WORK_LONG = 1024  # longer side of the picture the segmentation runs on (a 1600x600 photo: 800x300)
RULE_LENGTH = 0.35  # a horizontal run of ink longer than this fraction of the width (and 1.2x the height) is a rule
RULE_SLANT = 0.015  # ... allowing it to drift this fraction of the width up or down
RULE_THICKNESS = 0.75  # ... where it is thinner than this many pen strokes
SPECK_AREA = 0.02  # a component under this fraction of the largest one's area is a speck
COMPACT = 2.5  # a short piece no longer than this many stroke widths is a dot or a speck, not part of a digit
MIN_PIECE = 0.45  # a piece shorter than this fraction of the writing's height is part of a digit, not one
BAND = 0.75  # ink whose centre lies further than this many H from the line's centre is not on the line
LONE_WIDTH = 0.5  # a digit's width in H when the picture holds too few pieces to measure it
SPLIT_WIDTH = 1.2  # a piece wider than this many typical widths may be touching digits
MAX_CUTS = 4  # cuts tried in one piece
MIN_CUT_SPACING = 0.12  # cuts (and the piece's ends) at least this many H apart
MAX_SPAN = 4  # pieces one digit may be made of
MAX_PIECES = 48  # pieces kept (the largest), so that a picture full of marks answers in bounded time
# Costs in nats (log-confidence units) of what a digit rarely is; set on the development numbers (seed 0 of
# benchmarks/read_numbers.py, MNIST training digits the model never saw, fonts), never on the reported ones.
WIDE_COST = 3.0  # per typical width beyond `WIDE_FROM` of them
WIDE_FROM = 1.3
SHORT_COST = 6.0  # for a digit of no height, falling to 0 at `MIN_PIECE` H (a cut-off fragment)
GAP_COST = 12.0  # per H of clear gap inside one digit
CUT_BASE = 1.5  # for any cut
CUT_COST = 1.5  # per stroke beyond the first that a cut goes through
OVERLAP_COST = 2.0  # for two digits whose pieces overlap entirely in x
DIGIT_BONUS = 0.5  # per digit read: the model is often confident about two touching digits taken as one


@dataclass
class _Piece:
    """A candidate part of a digit: components, whole or the part of one between two cut paths."""

    labels: list[int]
    box: list[int]  # top, left, bottom, right of its ink
    lo: np.ndarray | None = None  # for a cut piece: per row of the picture, the first column it owns ...
    hi: np.ndarray | None = None  # ... and the column after the last
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
    im = _img.load_image(source, max_pixels=max_pixels)
    size = im.size
    factor = math.ceil(max(size) / WORK_LONG)
    if factor >= 2:
        im = im.reduce(factor)
    if im.mode != "L":
        im = im.convert("L")
    grey = np.asarray(im, dtype=np.float32) / 255.0
    return grey, size[0] / grey.shape[1], size


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
        best = None
        for fraction in _img.WINDOWS:
            window = fraction * min(h, w)
            if window < 8 and best is not None:
                break
            background = _img._opening_background(p, window)
            candidate = _img._smooth(_img._strength(p, background))
            t, separation = _img._ink_threshold(candidate)
            if best is None or separation > best[0]:
                best = (separation, candidate, t)
            if fraction == _img.WINDOWS[0] and np.ptp(background) < 0.02:
                break  # even paper: a smaller window would find the same background
        _, smooth, t = best
    level, noise = _img._level_and_noise(smooth)
    return smooth, t, level, noise


def _run_lengths(mask: np.ndarray, axis: int) -> np.ndarray:
    """For each ink pixel, the length of the run of ink along `axis` it belongs to (0 off the ink)."""
    m = mask if axis == 1 else mask.T
    starts = m & ~np.pad(m, ((0, 0), (1, 0)))[:, :-1]
    ids = np.cumsum(starts, axis=1) + (np.arange(m.shape[0]) * (m.shape[1] + 1))[:, None]
    ids = np.where(m, ids, 0)
    lengths = np.bincount(ids.ravel())
    lengths[0] = 0
    out = lengths[ids]
    return out if axis == 1 else out.T


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
    long = _run_lengths(band, axis=1) >= max(RULE_LENGTH * w, 1.2 * h)
    if not long.any():
        return mask
    thin = _run_lengths(mask, axis=0) <= max(2.0, RULE_THICKNESS * stroke)
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
    H = float(np.median(boxes[large, 2] - boxes[large, 0]))
    centre = float(np.median((boxes[large, 0] + boxes[large, 2]) / 2))
    on_line = np.abs((boxes[ids, 0] + boxes[ids, 2]) / 2 - centre) <= BAND * H + 0.5 * heights
    ids, heights = ids[on_line], heights[on_line]
    tall = heights >= MIN_PIECE * H
    pieces = [_Piece([int(c) + 1], [int(v) for v in boxes[c]]) for c in ids[tall]]
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
    return sorted(pieces, key=lambda p: (p.box[1] + p.box[3]) / 2), H


def _typical_width(pieces: Sequence[_Piece], H: float) -> float:
    """A digit's typical width in this writing: the median of the tall pieces' widths when there are enough."""
    widths = [p.box[3] - p.box[1] for p in pieces if p.box[2] - p.box[0] >= 0.6 * H]
    if len(widths) >= 3:
        return float(np.clip(np.median(widths), 0.35 * H, 0.9 * H))
    return LONE_WIDTH * H


def _cut(piece: _Piece, lab: np.ndarray, H: float, W: float, stroke: float) -> list[_Piece]:
    """A wide piece cut along the least-ink paths from top to bottom (touching digits); itself if not wide."""
    t, left, b, right = piece.box
    if right - left <= SPLIT_WIDTH * W:
        return [piece]
    own = np.isin(lab[t:b, left:right], piece.labels + piece.extra)
    proj = own.sum(axis=0).astype(float)
    k = max(1, int(round(stroke / 2)))
    smooth = np.convolve(proj, np.ones(2 * k + 1) / (2 * k + 1), mode="same")
    margin = max(2, int(MIN_CUT_SPACING * H))
    starts: list[int] = []
    for c in np.argsort(smooth, kind="stable"):
        if margin <= c <= len(proj) - margin and all(abs(c - d) >= margin for d in starts) \
                and smooth[c] <= smooth[max(0, c - k): c + k + 1].min() + 1e-9:
            starts.append(int(c))
        if len(starts) >= MAX_CUTS:
            break
    if not starts:
        return [piece]
    paths = [_cut_path(own, c, margin) for c in sorted(starts)]
    for p, q in zip(paths[:-1], paths[1:]):
        np.maximum(q, p, out=q)  # cuts never cross
    bounds = [np.zeros(b - t, int), *paths, np.full(b - t, right - left)]
    out = []
    for lo, hi, path in zip(bounds[:-1], bounds[1:], [None, *paths]):
        cols = np.arange(right - left)[None, :]
        mine = own & (cols >= lo[:, None]) & (cols < hi[:, None])
        rows, xs = np.flatnonzero(mine.any(axis=1)), np.flatnonzero(mine.any(axis=0))
        if not rows.size:
            continue
        full_lo = np.zeros(lab.shape[0], int)
        full_hi = np.zeros(lab.shape[0], int)
        full_lo[t:b], full_hi[t:b] = lo + left, hi + left
        crossed = None if path is None else _runs_crossed(own, path)
        out.append(_Piece(piece.labels + piece.extra, [t + int(rows[0]), left + int(xs[0]), t + int(rows[-1]) + 1,
                                                       left + int(xs[-1]) + 1], full_lo, full_hi, crossed))
    if out:
        out[0].cut_left = None
    return out


def _cut_path(own: np.ndarray, start: int, reach: int) -> np.ndarray:
    """The column, per row, of the path from top to bottom through the least ink within `reach` of `start`."""
    h, w = own.shape
    a, z = max(0, start - reach), min(w, start + reach + 1)
    cost = own[:, a:z].astype(np.float32) + 0.002 * np.abs(np.arange(a, z) - start)[None, :]
    acc = cost[0].copy()
    moves = np.zeros((h, z - a), np.int8)
    for r in range(1, h):
        left = np.concatenate([[np.inf], acc[:-1]]) + 0.01
        right = np.concatenate([acc[1:], [np.inf]]) + 0.01
        stacked = np.stack([left, acc, right])
        moves[r] = np.argmin(stacked, axis=0) - 1
        acc = stacked[moves[r] + 1, np.arange(z - a)] + cost[r]
    path = np.empty(h, int)
    x = int(np.argmin(acc))
    for r in range(h - 1, -1, -1):
        path[r] = x
        x += moves[r, x] if r else 0
    return path + a


def _runs_crossed(own: np.ndarray, path: np.ndarray) -> int:
    """How many separate strokes a cut path goes through."""
    on = own[np.arange(len(path)), np.clip(path, 0, own.shape[1] - 1)]
    return int(np.count_nonzero(on[1:] & ~on[:-1]) + on[0])


def _segment_mask(pieces: Sequence[_Piece], lab: np.ndarray, box: Sequence[int]) -> np.ndarray:
    """The ink of `pieces` inside `box` (top, left, bottom, right)."""
    t, left, b, right = box
    sub = lab[t:b, left:right]
    mask = np.zeros(sub.shape, bool)
    cols = np.arange(left, right)[None, :]
    for p in pieces:
        mine = np.isin(sub, p.labels + p.extra)
        if p.lo is not None:
            mine &= (cols >= p.lo[t:b, None]) & (cols < p.hi[t:b, None])
        mask |= mine
    return mask


# ------------------------------------------------------------------------------------------------- reading


def _render(mask: np.ndarray, strength: np.ndarray, other: np.ndarray, stroke: float, floor: float,
            ink_level: float) -> np.ndarray:
    """One candidate digit MNIST-style: its ink and anti-aliased edges (not its neighbours'), in 28x28."""
    from scipy import ndimage

    r = max(1, min(3, round(stroke / 2)))
    # A square maximum filter is separable: the same dilation as binary_dilation's, many times faster.
    near = ndimage.maximum_filter(mask, size=2 * r + 1) & ~(other & ~mask)
    return _img._render(strength, near, stroke, floor, ink_level)


def segment(image: Any, run: Any, *, max_pixels: int = _img.MAX_PIXELS) -> Reading:
    """Find the digits written on one line in a picture and classify them; raises NoDigitError when none."""
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
    pieces = [q for p in pieces for q in _cut(p, lab, H, W, stroke)]

    # Every run of neighbouring pieces that could be one digit, rendered and classified in one batch.
    n = len(pieces)
    spans, inputs, boxes_out = [], [], []
    for i in range(n):
        for j in range(i + 1, min(n, i + MAX_SPAN) + 1):
            group = pieces[i:j]
            box = [min(p.box[0] for p in group), min(p.box[1] for p in group),
                   max(p.box[2] for p in group), max(p.box[3] for p in group)]
            if j - i > 1 and box[3] - box[1] > 1.6 * H:
                break
            pad = int(round(2 * stroke)) + 2
            region = [max(0, box[0] - pad), max(0, box[1] - pad), min(h, box[2] + pad), min(w, box[3] + pad)]
            mask = _segment_mask(group, lab, region)
            if not mask.any():
                continue
            sl = np.s_[region[0]:region[2], region[1]:region[3]]
            try:
                digit = _render(mask, strength[sl], kept[sl], stroke, floor, ink_level)
            except NoDigitError:
                continue
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            spans.append((i, j))
            inputs.append(digit)
            boxes_out.append([region[1] + int(cols[0]), region[0] + int(rows[0]),
                              region[1] + int(cols[-1]) + 1, region[0] + int(rows[-1]) + 1])
    if not inputs:
        raise NoDigitError("no digit found: no ink stands out from the paper")
    x = np.stack(inputs)
    proba = _classify(run, x)
    chosen = _choose(pieces, spans, proba, boxes_out, W, H)
    if not chosen:
        raise NoDigitError("no digit found: no ink stands out from the paper")
    out_boxes = [[max(0, math.floor(b[0] * scale)), max(0, math.floor(b[1] * scale)),
                  min(size[0], math.ceil(b[2] * scale)), min(size[1], math.ceil(b[3] * scale))]
                 for b in (boxes_out[k] for k in chosen)]
    return Reading(x[chosen], out_boxes, proba[chosen], size)


def _choose(pieces: Sequence[_Piece], spans: Sequence[tuple[int, int]], proba: np.ndarray,
            boxes: Sequence[Sequence[int]], W: float, H: float) -> list[int]:
    """The candidates (indices into spans) that partition the pieces best: a Viterbi pass, left to right."""
    n = len(pieces)
    score = np.log(np.clip(proba.max(axis=1), 1e-9, 1.0)) + DIGIT_BONUS
    best = np.full(n + 1, -np.inf)
    best[0] = 0.0
    back: list[tuple[int, int] | None] = [None] * (n + 1)
    by_end: dict[int, list[int]] = {}
    for k, (i, j) in enumerate(spans):
        by_end.setdefault(j, []).append(k)
    for j in range(1, n + 1):
        for k in by_end.get(j, []):
            i = spans[k][0]
            if not np.isfinite(best[i]):
                continue
            s = best[i] + score[k] - _digit_cost(pieces, i, j, boxes[k], W, H)
            if i > 0:
                s -= _split_cost(pieces[i - 1], pieces[i])
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


def _digit_cost(pieces: Sequence[_Piece], i: int, j: int, box: Sequence[int], W: float, H: float) -> float:
    """What makes pieces[i:j] unlikely to be one digit: much wider than the others, short, clear gaps inside."""
    cost = WIDE_COST * max(0.0, (box[2] - box[0]) / W - WIDE_FROM)
    cost += SHORT_COST * max(0.0, MIN_PIECE - (box[3] - box[1]) / H) / MIN_PIECE
    for a, b in zip(pieces[i:j - 1], pieces[i + 1:j]):
        if b.cut_left is None:
            cost += GAP_COST * max(0.0, b.box[1] - a.box[3]) / W
    return cost


def _split_cost(a: _Piece, b: _Piece) -> float:
    """What makes a boundary between two neighbouring pieces unlikely: a cut through strokes, an overlap."""
    if b.cut_left is not None:
        return CUT_BASE + CUT_COST * max(0, b.cut_left - 1)
    overlap = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
    narrower = max(1, min(a.box[3] - a.box[1], b.box[3] - b.box[1]))
    return OVERLAP_COST * max(0.0, overlap / narrower)


def _classify(run: Any, x: np.ndarray) -> np.ndarray:
    """Probabilities for a batch, padded to one of a few sizes so the compiled model is not traced again."""
    n = len(x)
    size = next((s for s in (8, 16, 32, 48, 64, 96, 128, 192, 256) if s >= n), n)
    if size > n:
        x = np.concatenate([x, np.zeros((size - n, *x.shape[1:]), x.dtype)])
    return run.predict_proba(x)[:n]


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
