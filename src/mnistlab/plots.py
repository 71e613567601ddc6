"""Every figure the project draws (matplotlib with the Agg backend; files written atomically)."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .backend import import_keras
from .fsutil import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    plt = _pyplot()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def history_curves(histories: Sequence[Mapping[str, Sequence[float]]], path: str | os.PathLike,
                   title: str = "") -> Path:
    """Accuracy and loss per epoch, training and (where recorded) validation; one colour per ensemble member."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, key in zip(axes, ["accuracy", "loss"]):
        for m, history in enumerate(histories):
            member = f"member {m + 1} " if len(histories) > 1 else ""
            for name, style in [(key, "o-"), (f"val_{key}", "s--")]:
                values = history.get(name)
                if values:
                    epochs = np.arange(1, len(values) + 1)
                    kind = "validation" if name.startswith("val_") else "training"
                    ax.plot(epochs, values, style, color=colours[m % len(colours)], label=f"{member}{kind}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.set_title(f"{title} {key}".strip())
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8 if len(histories) > 2 else None)
        ax.xaxis.get_major_locator().set_params(integer=True)
    return _save(fig, path)


# One Axes holding a mosaic of the images, rather than one Axes per image: matplotlib's per-Axes cost (ticks,
# spines, layout) made the two image grids most of a small run's finishing time (measured: docs/benchmarks.md).
_CELL_GAP, _CELL_TITLE = 8, 20  # pixels of the 28x28 images' scale around and above each picture


def _mosaic(images: Sequence[np.ndarray], titles: Sequence[str], colours: Sequence[str], framed: Sequence[bool],
            cols: int, title: str, path: str | os.PathLike, empty: str = "") -> Path:
    """Pictures in a grid, each with a (two-line) title above it; `framed` ones get a red frame."""
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    count = len(images)
    rows = max(1, math.ceil(count / cols))
    h, w = (images[0].shape if count else (28, 28))
    cell_w, cell_h = w + _CELL_GAP, h + _CELL_GAP + _CELL_TITLE
    canvas = np.zeros((rows * cell_h, cols * cell_w), dtype=np.float32)
    width = cols * 1.2  # inches; the height follows the mosaic's shape, plus room for the title
    height = width * canvas.shape[0] / canvas.shape[1]
    fig = plt.figure(figsize=(width, height + 0.5))
    ax = fig.add_axes((0, 0, 1, height / (height + 0.5)))
    ax.axis("off")
    peak = max((float(np.max(im)) for im in images), default=1.0) or 1.0
    for k, im in enumerate(images):
        r, c = divmod(k, cols)
        top, left = r * cell_h + _CELL_TITLE, c * cell_w + _CELL_GAP // 2
        canvas[top:top + h, left:left + w] = np.asarray(im, dtype=np.float32) / peak
        ax.text(left + w / 2, top - 2, titles[k], ha="center", va="bottom", fontsize=8, color=colours[k])
        if framed[k]:
            ax.add_patch(Rectangle((left - 1.5, top - 1.5), w + 2, h + 2, fill=False, edgecolor="red", linewidth=2))
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    if not count and empty:
        ax.text(canvas.shape[1] / 2, canvas.shape[0] / 2, empty, ha="center", va="center")
    fig.suptitle(title)
    return _save(fig, path)


def prediction_grid(
    images: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str],
    path: str | os.PathLike, count: int = 36,
) -> Path:
    """Test images with predicted and true labels; wrong predictions in red."""
    count = min(count, len(images))
    wrong = [bool(t != p) for t, p in zip(y_true[:count], y_pred[:count])]
    titles = [f"pred {class_names[p]}\ntrue {class_names[t]}" for t, p in zip(y_true[:count], y_pred[:count])]
    return _mosaic(images[:count], titles, ["red" if x else "black" for x in wrong], wrong, 6,
                   "Test predictions (wrong ones in red)", path)


def confusion_matrix_plot(cm: np.ndarray, class_names: Sequence[str], path: str | os.PathLike) -> Path:
    """The confusion matrix as a heat map with counts; rows are the true label."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    # Log colour scale: the diagonal holds ~1000 per class and would wash out the mistakes.
    ax.imshow(np.log1p(cm), cmap="Blues")
    n = len(class_names)
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if i == j else ("darkred" if cm[i, j] else "black"))
    ax.set_xticks(range(n), class_names, rotation=45 if max(map(len, class_names)) > 2 else 0, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix ({int(np.trace(cm))}/{int(cm.sum())} correct)")
    return _save(fig, path)


def confident_mistakes(
    images: np.ndarray, y_true: np.ndarray, proba: np.ndarray, class_names: Sequence[str],
    path: str | os.PathLike, count: int = 24,
) -> Path:
    """The wrongly classified test images the model was most sure of."""
    y_pred = proba.argmax(axis=1)
    wrong = np.flatnonzero(y_pred != y_true)
    order = wrong[np.argsort(-proba[wrong, y_pred[wrong]], kind="stable")][:count]
    titles = [f"pred {class_names[y_pred[i]]} {proba[i, y_pred[i]]:.0%}\ntrue {class_names[y_true[i]]}" for i in order]
    return _mosaic(images[order], titles, ["red"] * len(order), [False] * len(order), 6,
                   f"Most confident mistakes ({len(wrong)} wrong in all)", path, empty="no mistakes")


def calibration_plot(raw: np.ndarray, calibrated: np.ndarray | None, y_true: np.ndarray, path: str | os.PathLike,
                     title: str = "") -> Path:
    """Reliability diagram: accuracy against confidence per bin, before and (if given) after temperature scaling."""
    from .calibration import ECE_BINS, expected_calibration_error, reliability

    plt = _pyplot()
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5.5, 6.5), height_ratios=[3, 1], sharex=True)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    curves = [(raw, "raw softmax" if calibrated is not None else "raw softmax (no temperature fitted)", "tab:red")]
    if calibrated is not None:
        curves.append((calibrated, "calibrated", "tab:blue"))
    for proba, name, colour in curves:
        rows = reliability(proba, y_true)
        ece = expected_calibration_error(proba, y_true)
        ax.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], "o-", color=colour,
                label=f"{name} (ECE {ece:.2%})")
        hist.hist(proba.max(axis=1), bins=np.linspace(0, 1, ECE_BINS + 1), color=colour, alpha=0.5, label=name)
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"Reliability on the test set{': ' + title if title else ''} ({ECE_BINS} bins)")
    hist.set_yscale("log")
    hist.set_xlabel("confidence")
    hist.set_ylabel("images")
    return _save(fig, path)


def sample_grid(
    images: np.ndarray, labels: np.ndarray, class_names: Sequence[str], path: str | os.PathLike, per_class: int = 10,
) -> Path:
    """A grid with one row of sample images per class."""
    plt = _pyplot()
    n = len(class_names)
    fig, axes = plt.subplots(n, per_class, figsize=(per_class * 0.9, n * 0.95))
    for c in range(n):
        idx = np.flatnonzero(labels == c)[:per_class]
        for k in range(per_class):
            ax = axes[c, k]
            ax.axis("off")
            if k < len(idx):
                ax.imshow(images[idx[k]], cmap="gray_r")
        axes[c, 0].text(-4, 14, class_names[c], ha="right", va="center", fontsize=9)
    fig.suptitle("Samples per class")
    return _save(fig, path)


def architecture(model: Any, path: str | os.PathLike) -> Path | None:
    """The network drawn as a graph with keras.utils.plot_model; None (with a reason) if Graphviz is missing."""
    if shutil.which("dot") is None:
        raise FileNotFoundError("Graphviz's 'dot' program is not installed (Debian: apt-get install graphviz)")
    keras = import_keras()

    path = Path(path)
    with atomic_path(path) as tmp:
        keras.utils.plot_model(model, to_file=str(tmp), show_shapes=True, show_layer_names=True,
                               show_layer_activations=True, dpi=80)
    return path
