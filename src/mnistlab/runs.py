"""The run directory as an object: model, history, metrics and plots; loading and saving.

A run directory holds `model.keras`, `history.csv`, `metrics.json` and `plots/`. An ensemble is
saved as one Keras model that averages its members' probabilities, so every consumer treats it
like any other run.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .backend import import_keras
from .errors import RunError

FORMAT_VERSION = 1
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
PLOTS_DIR = "plots"
RETRAIN = "train it again with `mnistlab train --out DIR --force`"
PLOT_FILES = {
    "curves": "curves.png",
    "predictions": "predictions.png",
    "confusion": "confusion_matrix.png",
    "mistakes": "confident_mistakes.png",
    "architecture": "architecture.png",
}


def to_model_input(model: Any, images: np.ndarray) -> np.ndarray:
    """Scale (N, 28, 28) images to [0, 1] float32 and reshape them to what `model` takes."""
    x = np.asarray(images)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32, copy=False)
    shape = tuple(model.input_shape[1:])
    if int(np.prod(shape)) != 784:
        raise RunError(f"model takes input of shape {shape}, not a 28x28 image (784 values)")
    return x.reshape((len(x), *shape))


@dataclass
class Run:
    """A trained run: its directory, its metrics and (loaded on first use) its Keras model."""

    path: Path
    metrics: dict[str, Any]
    _model: Any = field(default=None, repr=False)
    model_file: Path | None = None  # default: path / model.keras


    @property
    def model(self) -> Any:
        """The Keras model, loaded once (safe mode: a .keras file can never run arbitrary code)."""
        if self._model is None:
            self._model = load_model(self.model_file or self.path / MODEL_FILE)
        return self._model

    @property
    def class_names(self) -> list[str]:
        """The dataset's class names, as recorded at training time."""
        return list(self.metrics.get("class_names") or [str(i) for i in range(10)])

    @property
    def complete(self) -> bool:
        """Whether training finished (an interrupted run is marked 'partial')."""
        return self.metrics.get("status", "complete") == "complete"

    def history(self) -> dict[str, list[float]]:
        """The per-epoch history recorded by Keras, column by column."""
        return read_history(self.path / HISTORY_FILE)

    def predict_proba(self, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities (N, 10) for (N, 28, 28) images (uint8, or floats in [0, 1])."""
        model = self.model
        x = to_model_input(model, images)
        if len(x) <= 256:
            # predict_on_batch runs the compiled predict step without model.predict's per-call set-up:
            # 0.7 ms for one image against 4 ms for an eager model(x) call (docs/benchmarks.md).
            out = model.predict_on_batch(x)
        else:
            out = model.predict(x, batch_size=batch_size, verbose=0)
        return np.asarray(out, dtype=np.float32)


def load_model(path: Path) -> Any:
    """Load a .keras file in safe mode, turning any failure into a RunError naming the file."""
    if not path.is_file():
        raise RunError(f"{path}: model file missing; give a run directory that `mnistlab train` finished, or {RETRAIN}")
    import zipfile

    if not zipfile.is_zipfile(path):
        raise RunError(f"{path}: not a .keras model file (a .keras file is a zip archive); {RETRAIN}")
    keras = import_keras()

    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a bad archive; all mean the same to a user.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunError(f"{path}: cannot load the model ({reason[:200]}); {RETRAIN}") from exc
    output = tuple(model.output_shape[1:]) if not isinstance(model.output_shape, list) else None
    if output != (10,):
        raise RunError(f"{path}: model outputs {model.output_shape}, expected 10 class probabilities; {RETRAIN}")
    try:
        to_model_input(model, np.zeros((1, 28, 28), np.float32))
    except RunError as exc:
        raise RunError(f"{path}: {exc}; mnistlab models take 28x28 images: {RETRAIN}") from None
    return model


def read_history(path: Path) -> dict[str, list[float]]:
    """Read Keras' CSVLogger file into {column: values}; empty if there is none."""
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    columns: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            if key in (None, "epoch", "member"):
                continue
            try:
                columns.setdefault(key, []).append(float(value))
            except (TypeError, ValueError):
                continue
    return columns


def read_metrics(path: Path) -> dict[str, Any]:
    """Read and check a run's metrics.json."""
    file = path / METRICS_FILE
    if not path.exists():
        raise RunError(f"{path}: no such run directory; check the path (`mnistlab train` prints it)")
    if not path.is_dir():
        raise RunError(f"{path}: not a directory; give the run directory that `mnistlab train` wrote")
    if not file.is_file():
        raise RunError(f"{path}: not a mnistlab run ({METRICS_FILE} missing); give the run directory that "
                       "`mnistlab train` wrote")
    try:
        metrics = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"{file}: unreadable ({exc}); {RETRAIN}") from exc
    if not isinstance(metrics, dict):
        raise RunError(f"{file}: not a metrics object; {RETRAIN}")
    version = metrics.get("format", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise RunError(
            f"{path}: written by a newer mnistlab (run format {version}, this version reads {FORMAT_VERSION}); upgrade mnistlab"
        )
    return metrics


def load_run(path: str | Path, *, allow_partial: bool = True) -> Run:
    """Open a run directory (the model itself is loaded on first use)."""
    path = Path(path)
    metrics = read_metrics(path)
    run = Run(path=path, metrics=metrics)
    if not run.complete and not allow_partial:
        raise RunError(
            f"{path}: training did not finish (status {metrics.get('status')!r}); "
            "resume it with `mnistlab train --resume` or pass --allow-partial"
        )
    if not run.complete and not (path / MODEL_FILE).is_file():
        run.model_file = _checkpoint_model(path)
    elif not (path / MODEL_FILE).is_file():
        raise RunError(f"{path}: {MODEL_FILE} missing, the run is damaged; {RETRAIN}")
    return run


def _checkpoint_model(path: Path) -> Path:
    """The model saved after the last finished epoch of an unfinished run."""
    state = path / "checkpoint" / "state.json"
    try:
        members = json.loads(state.read_text(encoding="utf-8"))["members"]
        return path / "checkpoint" / members[-1]["model"]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        raise RunError(f"{path}: training did not finish and no epoch was saved; nothing to load") from None
