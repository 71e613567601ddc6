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


def evaluate_run(run_dir: str | Path, data_dir: str | Path | None = None, *, images: str | Path | None = None,
                 plots: str | Path | None = None) -> dict[str, Any]:
    """Score a run's model on the test set of its dataset, or on a labelled folder of pictures (`images`).

    `images` is a folder in the Keras layout (DIR/0/*.png ... DIR/9/*.png), read as `predict` reads pictures;
    the report then also lists the worst mistakes, and its figures (confusion matrix, most confident
    mistakes) are written to `plots` (default: RUN/evaluations/<folder name>/).
    """
    run = runs.load_run(run_dir)
    if images is not None:
        return _evaluate_folder(run, Path(images), plots)
    from .data import load_dataset

    data = load_dataset(run.settings.dataset, data_dir, splits=("test",), remember=data_dir is not None)
    result, _ = evaluate_model(run.model, data.x_test, data.y_test, run.class_names)
    return _report(run, f"{run.settings.dataset} test set", result)


def _report(run: runs.Run, source: str, result: dict[str, Any], unanswered: np.ndarray | None = None) -> dict[str, Any]:
    cm = np.asarray(result["confusion_matrix"])
    images = int(cm.sum() + (0 if unanswered is None else unanswered.sum()))
    return {
        "run_dir": str(run.path), "recipe": run.settings.recipe, "dataset": run.settings.dataset, "source": source,
        "status": run.status.value, "test_images": images,
        **result, "per_class": M.per_class_report(cm, run.class_names, unanswered),
        "recorded_test_accuracy": run.metrics.get("test_accuracy"),
    }


def _evaluate_folder(run: runs.Run, folder: Path, plots: str | Path | None) -> dict[str, Any]:
    """The report on a labelled folder. Pictures in which preprocessing finds no digit have no answer: they
    count as wrong (in the accuracy, per class, and among the mistakes, after the confident ones). The run's
    not-a-digit detector is reported beside: `answered_accuracy` is what `predict` would get right, a refusal
    counting as wrong, while `test_accuracy` is the model's, as on the test set (where no picture is refused)."""
    from . import plots as P
    from .labelled import read_labelled_folder
    from .prediction import choose

    labelled = read_labelled_folder(folder, run.class_names)
    names, classes = run.class_names, len(run.class_names)
    y = labelled.y
    # The inputs `predict` would take (a second one where a printed line may be the digit's own stroke).
    x, proba, raw, refused = choose(run, labelled.choices(), with_raw=True)
    y_pred = raw.argmax(axis=1)
    missed_y = np.array([c for _, c, _ in labelled.missed], np.int64)
    unanswered = np.bincount(missed_y, minlength=classes)
    total = len(y) + len(missed_y)
    cm = M.confusion_matrix(y, y_pred, classes)
    right = y_pred == y
    result = {"test_loss": float(-np.mean(np.log(np.clip(raw[np.arange(len(y)), y], 1e-7, 1.0)))) if len(y) else None,
              "test_accuracy": float(right.sum() / total),
              "per_class_accuracy": dict(zip(names, M.per_class_accuracy(cm, unanswered))),
              "confusion_matrix": cm.tolist(),
              "answered_accuracy": float((right & ~refused).sum() / total),
              "refused": {"no_digit_found": len(missed_y), "not_a_digit": int(refused.sum())}}
    wrong = np.flatnonzero(~right)
    worst = wrong[np.argsort(-proba[wrong, y_pred[wrong]], kind="stable")]
    mistakes = [{"file": str(labelled.files[i]), "true": names[y[i]], "predicted": names[y_pred[i]],
                 "confidence": float(proba[i, y_pred[i]])} for i in worst]
    missed = [{"file": str(f), "true": names[c], "predicted": None, "confidence": None, "reason": why}
              for f, c, why in labelled.missed]
    refusals = missed + [{"file": str(labelled.files[i]), "true": names[y[i]], "reason": "not a digit"}
                         for i in np.flatnonzero(refused)]
    out = Path(plots) if plots is not None else runs.evaluation_dir(run.path, folder)
    figures = {"confusion_matrix": str(P.confusion_matrix_plot(cm, names, out / "confusion_matrix.png")),
               "mistakes": str(P.confident_mistakes(x, y, proba, names, out / "confident_mistakes.png"))}
    return {**_report(run, str(folder), result, unanswered), "mistakes": mistakes + missed, "refusals": refusals,
            "plots": figures}
