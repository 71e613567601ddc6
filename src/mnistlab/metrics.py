"""Scoring predictions: accuracy, confusion matrix and the per-class report (pure NumPy)."""

from __future__ import annotations

import numpy as np


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of predictions equal to the true labels."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"need two equal, non-empty label arrays, got {y_true.shape} and {y_pred.shape}")
    return float(np.mean(y_true == y_pred))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """Counts of (true, predicted) label pairs; rows are the true label."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def per_class_accuracy(cm: np.ndarray, unanswered: np.ndarray | None = None) -> list[float]:
    """Recall of each class (correct / support) from a confusion matrix; NaN-free (0.0 for an empty class).

    `unanswered`: per class, pictures that got no answer at all (no digit found in them); they count in the
    support and never as correct."""
    support = cm.sum(axis=1) + (0 if unanswered is None else np.asarray(unanswered))
    return [float(cm[i, i] / support[i]) if support[i] else 0.0 for i in range(len(cm))]


def per_class_report(cm: np.ndarray, class_names: list[str], unanswered: np.ndarray | None = None) -> list[dict]:
    """One row per class: support, correct, accuracy (recall), precision and F1 (`unanswered`: as for
    `per_class_accuracy`)."""
    rows = []
    predicted = cm.sum(axis=0)
    extra = np.zeros(len(class_names), np.int64) if unanswered is None else np.asarray(unanswered)
    for i, name in enumerate(class_names):
        support, correct = int(cm[i].sum() + extra[i]), int(cm[i, i])
        recall = correct / support if support else 0.0
        precision = correct / predicted[i] if predicted[i] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(
            {"class": name, "support": support, "correct": correct, "accuracy": recall,
             "precision": float(precision), "f1": float(f1)}
        )
    return rows


def format_report(rows: list[dict]) -> str:
    """The per-class report as an aligned text table."""
    width = max(5, *(len(r["class"]) for r in rows))
    lines = [f"{'class':<{width}}  {'support':>7}  {'correct':>7}  {'accuracy':>8}  {'precision':>9}  {'f1':>6}"]
    for r in rows:
        lines.append(
            f"{r['class']:<{width}}  {r['support']:>7}  {r['correct']:>7}  {r['accuracy']:>8.2%}"
            f"  {r['precision']:>9.2%}  {r['f1']:>6.4f}"
        )
    return "\n".join(lines)
