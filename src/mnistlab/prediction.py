"""Classifying a user's own digit images with a trained run: one record per image.

The record (see docs/design.md) is the same from the Python API, `mnistlab predict --json` and the web
API. An image that cannot be read gets a record with `error` set; one that holds no digit (no ink, or a
picture the run's not-a-digit detector refuses: a letter, a doodle, a photo) `digit` null, `no_digit` true
and a `reason`. The other images are still predicted, all in one model call. Confidences are calibrated with
the temperature the run fitted on held-out data (calibration.py).
"""

from __future__ import annotations

import contextlib
import numbers
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import ImageError, NoDigitError, UsageError
from .runs import Run, load_run

# Below this confidence an answer is flagged "LOW: check it". Confidences are calibrated (the temperature each
# run fits on held-out digits, calibration.py), so a confidence says how often such an answer is right, the
# same for every recipe: below 0.9 more than 1 answer in 10 is wrong. Measured on the 10,000 MNIST test
# digits, calibrated: below 0.9, 27% of cnn's 436 answers and 31% of fast's 245 were wrong; from 0.9 up,
# 0.21% and 0.23% (about 1 in 450). (Before calibration the raw softmax of
# `fast` and `best`, trained with label smoothing, stayed under 0.9 even when right: the old 0.8 flag meant
# something else for each recipe.) Measured in docs/benchmarks.md ("Honest answers").
DEFAULT_MIN_CONFIDENCE = 0.9
# Up to this many images, the not-a-digit detector's matrix products are too small for OpenBLAS to use a second
# thread (CPU time equal to wall time for 1, 4 and 16 pictures; twice the wall time for 64), so the switch to one
# BLAS thread (`one_blas_thread`), which cost 40 us of a canvas request's 0.46 ms of classification, is skipped.
SMALL_BATCH = 16
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given; folders replaced by the image files inside them (recursively, sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            # Hidden entries are skipped: macOS leaves "._name.png" metadata files beside every picture copied
            # to a foreign disk, and .thumbnails/ caches hold the same pictures again.
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
            if not found:
                raise ImageError(f"{p}: folder holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                                 "give image files or a folder that holds some")
            out.extend(found)
        else:
            out.append(p)  # a missing file becomes a record with an error, so the others still run
    return out


def _as_list(images: Any) -> list[Any]:
    """One image (a path, bytes, a file object, a PIL image, one array) as a list of one; a collection as a list."""
    if isinstance(images, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(images, "getpixel") \
            or hasattr(images, "read"):
        return [images]
    if isinstance(images, np.ndarray):
        single = images.ndim == 2 or (images.ndim == 3 and images.shape[-1] in (1, 3, 4) and images.shape[0] > 4)
        return [images] if single else list(images)
    return list(images)


def _name(image: Any, index: int) -> str:
    return os.fspath(image) if isinstance(image, (str, os.PathLike)) else f"<image {index}>"


NOT_A_DIGIT = "not a digit"
NO_INK = "no ink"


def record(name: str, proba: np.ndarray | None, *, top: int = 3, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
           error: BaseException | None = None, class_names: Sequence[str] | None = None,
           refused: bool = False) -> dict[str, Any]:
    """The prediction record for one image: from its (calibrated) probabilities, or from the error that stopped it.

    `digit` is the class index; `label` its name from the run's dataset ("7", or "Sneaker" for Fashion-MNIST).
    `refused`: the not-a-digit detector turned the picture down; `digit` is then null and `top` and
    `probabilities` say what the model would have guessed.
    """
    if proba is None:
        no_digit = isinstance(error, NoDigitError)
        return {"file": name, "digit": None, "label": None, "confidence": None, "probabilities": None, "top": None,
                "low_confidence": None, "error": str(error), "no_digit": no_digit,
                "reason": NO_INK if no_digit else None}
    order = np.argsort(-proba, kind="stable")[: max(1, min(top, len(proba)))]
    guesses = {"probabilities": [round(float(p), 6) for p in proba], "top": [[int(d), float(proba[d])] for d in order]}
    if refused:
        return {"file": name, "digit": None, "label": None, "confidence": None, **guesses, "low_confidence": None,
                "error": "not a digit: this picture does not look like a handwritten digit", "no_digit": True,
                "reason": NOT_A_DIGIT}
    confidence = float(proba[order[0]])
    label = class_names[order[0]] if class_names is not None else str(int(order[0]))
    return {"file": name, "digit": int(order[0]), "label": label, "confidence": confidence, **guesses,
            "low_confidence": confidence < min_confidence, "error": None, "no_digit": False, "reason": None}


def _save_preprocessed(folder: Path, names: Sequence[str], digits: np.ndarray) -> None:
    from .fsutil import write_bytes
    from .images import digit_png

    folder.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for name, digit in zip(names, digits):
        stem = Path(name).stem.strip("<>").replace(" ", "-") or "image"
        candidate, n = stem, 2
        while candidate in used:
            candidate, n = f"{stem}-{n}", n + 1
        used.add(candidate)
        write_bytes(folder / f"{candidate}.png", digit_png(digit))


def predict(run_or_path: Run | str | os.PathLike, images: Any, *, top: int = 3,
            min_confidence: float | None = None, allow_partial: bool = False,
            save_preprocessed: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Classify images (paths, PIL images, arrays or bytes) with a run; one record per image, in order."""
    from .images import preprocess_choices

    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise UsageError(f"top must be a whole number of at least 1, got {top!r}")
    min_confidence = DEFAULT_MIN_CONFIDENCE if min_confidence is None else min_confidence
    if isinstance(min_confidence, bool) or not isinstance(min_confidence, numbers.Real) or not 0 <= min_confidence <= 1:
        raise UsageError(f"min_confidence must be a probability between 0 and 1, got {min_confidence!r}")
    run = run_or_path if isinstance(run_or_path, Run) else load_run(run_or_path, allow_partial=allow_partial)
    items = _as_list(images)
    names = [_name(item, i) for i, item in enumerate(items)]
    choices: dict[int, list[np.ndarray]] = {}
    errors: dict[int, BaseException] = {}
    for i, item in enumerate(items):
        try:
            choices[i] = preprocess_choices(item)
        except ImageError as exc:
            errors[i] = exc
    x, proba, refused = choose(run, list(choices.values()))
    by_index = dict(zip(choices, proba))
    refused_at = dict(zip(choices, refused))
    if save_preprocessed is not None and choices:
        _save_preprocessed(Path(save_preprocessed), [names[i] for i in choices], x)
    return [record(names[i], by_index.get(i), top=top, min_confidence=min_confidence, error=errors.get(i),
                   class_names=run.class_names, refused=bool(refused_at.get(i, False))) for i in range(len(items))]


def calibrated(run: Run, x: np.ndarray, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """From the model's raw probabilities `raw` for images `x`: the run's calibrated probabilities, and its
    not-a-digit detector's log-odds (refused above `run.rejector.threshold`; None for a run without one)."""
    from .calibration import apply_temperature

    rejector = run.rejector
    return apply_temperature(raw, run.temperature), rejector.score(x, raw) if rejector is not None else None


def classify(run: Run, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated probabilities (N, 10) and not-a-digit refusals (N,) for preprocessed (N, 28, 28) images."""
    _, proba, _, refused = _scores(run, x)
    return proba, refused


# `choose` takes a confident first answer's second input only where the detector finds the second this much
# more digit-like (log-odds): e^8, some 3,000 times the odds. On other_writers' development sets (seeds 0 and 1),
# 8 lost no picture of tablet, MNIST's held-out digits or the printed font digits, where 4 lost a tablet 7.
CHOICE_MARGIN = 8.0


def _scores(run: Run, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The model's raw probabilities, calibrated probabilities, not-a-digit log-odds (-inf without a detector)
    and refusals."""
    if not len(x):
        empty = np.zeros((0, 10), np.float32)
        return empty, empty, np.zeros(0, np.float32), np.zeros(0, bool)
    from .backend import one_blas_thread

    with one_blas_thread() if len(x) > SMALL_BATCH else contextlib.nullcontext():
        raw = run.predict_proba(x)
        proba, not_digit = calibrated(run, x, raw)
    if not_digit is None:
        return raw, proba, np.full(len(x), -np.inf, np.float32), np.zeros(len(x), bool)
    return raw, proba, not_digit, not_digit > run.rejector.threshold


def choose(run: Run, choices: Sequence[Sequence[np.ndarray]], *, with_raw: bool = False) -> tuple[np.ndarray, ...]:
    """For each picture's inputs (`images.preprocess_choices`: one, or two where a printed line touching the digit
    may be its own stroke): the input taken (N, 28, 28), its calibrated probabilities and its refusal.

    The first input is taken unless the second (the line taken out) gives an answer the not-a-digit detector
    accepts, with more confidence than the first's, where the first is refused, or answered below the
    low-confidence mark (`DEFAULT_MIN_CONFIDENCE`, flagged LOW), or far less digit-like than the second
    (`CHOICE_MARGIN`). A form field's box side against a 0 reads as "10" and is refused, or as a doubtful 6, or
    as a "b"; the 0 alone is none of these (docs/benchmarks.md "Form fields, third pass").
    `with_raw`: the model's raw probabilities of the inputs taken too, after the calibrated ones.
    """
    x = np.stack([c[0] for c in choices]) if len(choices) else np.zeros((0, 28, 28), np.float32)
    raw, proba, score, refused = _scores(run, x)
    again = [i for i, c in enumerate(choices) if len(c) > 1]
    if again:
        raw2, proba2, score2, refused2 = _scores(run, np.stack([choices[i][1] for i in again]))
        for k, i in enumerate(again):
            better = proba2[k].max() > proba[i].max() and (
                proba[i].max() < DEFAULT_MIN_CONFIDENCE or score2[k] < score[i] - CHOICE_MARGIN)
            if not refused2[k] and (refused[i] or better):
                x[i], raw[i], proba[i], refused[i] = choices[i][1], raw2[k], proba2[k], False
    return (x, proba, raw, refused) if with_raw else (x, proba, refused)


def predict_paths(run_or_path: Run | str | os.PathLike, paths: Iterable[str | os.PathLike], *, top: int = 3,
                  min_confidence: float | None = None, save_preprocessed: str | os.PathLike | None = None,
                  allow_partial: bool = False) -> list[dict[str, Any]]:
    """Classify image files and every image inside the given folders."""
    run = run_or_path if isinstance(run_or_path, Run) else load_run(run_or_path, allow_partial=allow_partial)
    return predict(run, expand_paths(paths), top=top, min_confidence=min_confidence,
                   save_preprocessed=save_preprocessed)


def format_table(records: Sequence[dict[str, Any]], class_names: Sequence[str] | None = None) -> str:
    """Records as an aligned table: file, answer, confidence, the most likely answers, and LOW or the error.

    The answer column is "digit" for a digit model, "class" (with the class names) for any other dataset.
    """
    digits = class_names is None or list(class_names) == [str(i) for i in range(10)]
    name = (lambda d: str(d)) if digits else (lambda d: class_names[d])
    head = "digit" if digits else "class"
    tops = ["  ".join(f"{name(d)}:{p:.2f}" for d, p in r["top"]) if r["top"] else "-" for r in records]
    width = max([4, *(len(r["file"]) for r in records)])
    answer_width = max([len(head), *(len(name(r["digit"])) for r in records if r["digit"] is not None)])
    top_width = max([5, *map(len, tops)])
    lines = [f"{'file':<{width}}  {head:>{answer_width}}  confidence  {'top':<{top_width}}  note".rstrip()]
    for r, top in zip(records, tops):
        if r["digit"] is None:
            lines.append(f"{r['file']:<{width}}  {'-':>{answer_width}}  {'-':>10}  {top:<{top_width}}  {r['error']}")
            continue
        note = "LOW confidence: check it" if r["low_confidence"] else ""
        lines.append(f"{r['file']:<{width}}  {name(r['digit']):>{answer_width}}  {r['confidence']:>10.1%}  "
                     f"{top:<{top_width}}  {note}".rstrip())
    return "\n".join(lines)
