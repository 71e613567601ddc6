"""Scoring a model on its dataset's test set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import metrics as M
from . import runs


def evaluate_model(model: Any, x_test: np.ndarray, y_test: np.ndarray, class_names: list[str]) -> tuple[dict, np.ndarray]:
    """Test loss, accuracy, per-class accuracy and confusion matrix, plus the probabilities."""
    x = runs.to_model_input(model, x_test)
    proba = np.asarray(model.predict(x, batch_size=1024, verbose=0), dtype=np.float32)
    # Computed here rather than with model.evaluate so it needs no compiled loss (any .keras file works).
    p = np.clip(proba[np.arange(len(y_test)), y_test], 1e-7, 1.0)
    loss = float(-np.mean(np.log(p)))
    y_pred = proba.argmax(axis=1)
    cm = M.confusion_matrix(y_test, y_pred, len(class_names))
    result = {
        "test_loss": loss,
        "test_accuracy": M.accuracy(y_test, y_pred),
        "per_class_accuracy": dict(zip(class_names, M.per_class_accuracy(cm))),
        "confusion_matrix": cm.tolist(),
    }
    return result, proba


def evaluate_run(run_dir: str | Path, data_dir: str | Path | None = None) -> dict[str, Any]:
    """Reload a run's model and score it on the test set of the dataset it was trained on."""
    from .data import load_dataset

    run = runs.load_run(run_dir)
    data = load_dataset(run.settings.dataset, data_dir, splits=("test",), remember=data_dir is not None)
    result, _ = evaluate_model(run.model, data.x_test, data.y_test, run.class_names)
    cm = np.asarray(result["confusion_matrix"])
    return {
        "run_dir": str(run.path), "recipe": run.settings.recipe, "dataset": run.settings.dataset,
        "status": run.status.value, "test_images": int(len(data.y_test)),
        **result, "per_class": M.per_class_report(cm, run.class_names),
        "recorded_test_accuracy": run.metrics.get("test_accuracy"),
    }
