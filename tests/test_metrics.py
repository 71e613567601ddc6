"""Pure-NumPy scoring."""

from __future__ import annotations

import numpy as np
import pytest

from mnistlab import metrics as M


def test_confusion_matrix_rows_are_true_labels():
    cm = M.confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), num_classes=3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert M.per_class_accuracy(cm) == [0.5, 1.0, pytest.approx(2 / 3)]


def test_accuracy_and_report():
    y, p = np.array([1, 1, 2, 3]), np.array([1, 2, 2, 3])
    assert M.accuracy(y, p) == 0.75
    rows = M.per_class_report(M.confusion_matrix(y, p, 4), ["a", "b", "c", "d"])
    assert rows[0] == {"class": "a", "support": 0, "correct": 0, "accuracy": 0.0, "precision": 0.0, "f1": 0.0}
    assert rows[1]["accuracy"] == 0.5 and rows[2]["precision"] == 0.5
    assert "precision" in M.format_report(rows).splitlines()[0]


def test_accuracy_rejects_mismatched_arrays():
    with pytest.raises(ValueError):
        M.accuracy(np.array([1, 2]), np.array([1]))
