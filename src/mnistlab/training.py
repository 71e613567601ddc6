"""Running a recipe: arguments checked, seeds set, the model fitted, evaluated and saved as a run directory."""

from __future__ import annotations

import datetime as _dt
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import metrics as M
from . import plots, runs
from .errors import UsageError
from .fsutil import atomic_path, write_json, write_text
from .evaluation import evaluate_model
from .recipes import DEFAULT_RECIPE, Recipe, get_recipe

MAX_EPOCHS = 1000
MAX_BATCH_SIZE = 65536
MAX_ENSEMBLE = 20


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise UsageError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise UsageError(f"{name} must be between {low} and {high}, got {value}")
    return int(value)


def default_run_dir(recipe: str, root: str | Path = "runs") -> Path:
    """runs/<recipe>-<timestamp>, unique within the second."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{recipe}-{stamp}"
    n = 2
    while path.exists():
        path = Path(root) / f"{recipe}-{stamp}-{n}"
        n += 1
    return path


def prepare_out(out: str | Path | None, recipe: str, force: bool) -> Path:
    """Choose the run directory and refuse to overwrite an existing one unless forced."""
    path = Path(out) if out is not None else default_run_dir(recipe)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {path}: exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise UsageError(f"--out {path}: directory exists and is not empty; choose another or pass --force to overwrite")
    return path


def backend_versions() -> dict[str, str]:
    """Versions of mnistlab, Keras and the active backend."""
    import keras

    from . import __version__

    backend = keras.backend.backend()
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch", "numpy": "numpy"}.get(backend, backend)
    try:
        backend_version = __import__(module).__version__
    except Exception:  # a backend without __version__ still trains; the record just says so
        backend_version = "unknown"
    return {"mnistlab": __version__, "keras": keras.__version__, backend: backend_version,
            "python": platform.python_version()}


def _labels_for(recipe: Recipe, y: np.ndarray) -> np.ndarray:
    return np.eye(10, dtype=np.float32)[y] if recipe.one_hot else y.astype(np.int64)


def _fit_one(recipe: Recipe, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
             epochs: int, batch_size: int, seed: int, verbose: Any) -> tuple[Any, dict[str, list[float]], float]:
    import keras

    keras.utils.set_random_seed(seed)
    split = recipe.validation if isinstance(recipe.validation, float) else 0.0
    steps_per_epoch = math.ceil(len(x) * (1 - split) / batch_size)
    model = recipe.build(steps_per_epoch, epochs)
    kwargs = dict(recipe.fit_kwargs)
    if recipe.validation == "test":
        kwargs["validation_data"] = (runs.to_model_input(model, x_test), _labels_for(recipe, y_test))
    elif split:
        kwargs["validation_split"] = split
    start = time.perf_counter()
    history = model.fit(runs.to_model_input(model, x), _labels_for(recipe, y), epochs=epochs,
                        batch_size=batch_size, verbose=verbose, **kwargs)
    seconds = time.perf_counter() - start
    return model, {k: [float(v) for v in vals] for k, vals in history.history.items()}, seconds


def _ensemble(members: list[Any], recipe: Recipe) -> Any:
    import keras

    inputs = keras.Input(shape=members[0].input_shape[1:])
    for i, m in enumerate(members):
        m.name = f"member_{i + 1}"
    outputs = keras.layers.Average(name="average")([m(inputs) for m in members])
    model = keras.Model(inputs, outputs, name=f"{recipe.name}_ensemble_{len(members)}")
    loss = "categorical_crossentropy" if recipe.one_hot else "sparse_categorical_crossentropy"
    model.compile(loss=loss, metrics=["accuracy"])
    return model


def _write_history(path: Path, histories: list[dict[str, list[float]]]) -> None:
    keys = sorted({k for h in histories for k in h}, key=lambda k: (k.startswith("val_"), k))
    member = len(histories) > 1
    lines = [",".join((["member"] if member else []) + ["epoch"] + keys)]
    for m, h in enumerate(histories, start=1):
        for e in range(max((len(v) for v in h.values()), default=0)):
            cells = [repr(h[k][e]) if e < len(h.get(k, [])) else "" for k in keys]
            lines.append(",".join(([str(m)] if member else []) + [str(e)] + cells))
    write_text(path, "\n".join(lines) + "\n")


def write_plots(run_dir: Path, model: Any, history: dict[str, list[float]], x_test: np.ndarray,
                y_test: np.ndarray, proba: np.ndarray, class_names: list[str], title: str,
                warn: Callable[[str], None]) -> None:
    """Draw every figure of a run into run_dir/plots."""
    d = run_dir / runs.PLOTS_DIR
    f = runs.PLOT_FILES
    y_pred = proba.argmax(axis=1)
    if history:
        plots.history_curves(history, d / f["curves"], title=title)
    plots.prediction_grid(x_test, y_test, y_pred, class_names, d / f["predictions"])
    plots.confusion_matrix_plot(M.confusion_matrix(y_test, y_pred, len(class_names)), class_names, d / f["confusion"])
    plots.confident_mistakes(x_test, y_test, proba, class_names, d / f["mistakes"])
    try:
        plots.architecture(model, d / f["architecture"])
    except (FileNotFoundError, ImportError, OSError) as exc:
        warn(f"architecture diagram skipped: {exc}")


def train(
    recipe: str = DEFAULT_RECIPE,
    dataset: str = "mnist",
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int = 1,
    limit: int | None = None,
    out: str | Path | None = None,
    data_dir: str | Path | None = None,
    ensemble: int = 1,
    force: bool = False,
    verbose: Any = "auto",
    log: Callable[[str], None] | None = None,
) -> runs.Run:
    """Train a recipe on a dataset, evaluate it on the test set and save the run directory."""
    from .data import get_spec, load_dataset

    log = log or (lambda msg: print(msg, file=sys.stderr))
    spec = get_recipe(recipe)
    get_spec(dataset)
    epochs = _check_int("epochs", spec.epochs if epochs is None else epochs, 1, MAX_EPOCHS)
    batch_size = _check_int("batch size", spec.batch_size if batch_size is None else batch_size, 1, MAX_BATCH_SIZE)
    seed = _check_int("seed", seed, 0, 2**32 - 1)
    ensemble = _check_int("ensemble", ensemble, 1, MAX_ENSEMBLE)
    if limit is not None:
        limit = _check_int("limit", limit, 1, 10**9)
    run_dir = prepare_out(out, spec.name, force)

    data = load_dataset(dataset, data_dir)
    x_train, y_train = data.x_train, data.y_train
    if limit is not None:
        if limit > len(x_train):
            raise UsageError(f"--limit {limit} is larger than the {len(x_train)} training images of {dataset}")
        x_train, y_train = x_train[:limit], y_train[:limit]
    if isinstance(spec.validation, float) and len(x_train) * spec.validation < 1:
        raise UsageError(f"--limit {limit} leaves no images for the {spec.validation:.0%} validation split; use at least 10")
    class_names = list(data.spec.class_names)

    import keras

    log(f"mnistlab: recipe {spec.name} on {dataset} ({len(x_train)} training images from {data.directory}), "
        f"{epochs} epoch(s), batch {batch_size}, seed {seed}, backend {keras.backend.backend()}")
    run_dir.mkdir(parents=True, exist_ok=True)
    base = {
        "format": runs.FORMAT_VERSION, "status": "training", "dataset": dataset, "recipe": spec.name,
        "epochs": epochs, "batch_size": batch_size, "seed": seed, "limit": limit, "ensemble": ensemble,
        "train_images": int(len(x_train)), "class_names": class_names, "backend": keras.backend.backend(),
        "versions": backend_versions(), "data_dir": str(data.directory), "data_sha256": dict(data.sha256),
        "started": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    write_json(run_dir / runs.METRICS_FILE, base)

    members, histories, seconds = [], [], 0.0
    for i in range(ensemble):
        if ensemble > 1:
            log(f"mnistlab: ensemble member {i + 1}/{ensemble} (seed {seed + i})")
        model, history, took = _fit_one(spec, x_train, y_train, data.x_test, data.y_test,
                                         epochs, batch_size, seed + i, verbose)
        members.append(model)
        histories.append(history)
        seconds += took
    model = members[0] if ensemble == 1 else _ensemble(members, spec)

    with atomic_path(run_dir / runs.MODEL_FILE) as tmp:
        model.save(tmp)
    _write_history(run_dir / runs.HISTORY_FILE, histories)
    result, proba = evaluate_model(model, data.x_test, data.y_test, class_names)
    final = {**base, "status": "complete", "train_seconds": round(seconds, 3),
             "images_per_second": round(len(x_train) * (1 - (spec.validation if isinstance(spec.validation, float) else 0))
                                        * epochs * ensemble / seconds, 1),
             "params": int(model.count_params()),
             "train_accuracy": histories[-1].get("accuracy", [None])[-1],
             **result,
             "finished": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}
    if ensemble > 1:
        final["member_test_accuracy"] = [evaluate_model(m, data.x_test, data.y_test, class_names)[0]["test_accuracy"]
                                         for m in members]
    write_plots(run_dir, model, histories[0], data.x_test, data.y_test, proba, class_names,
                f"{spec.name} on {dataset}", log)
    write_json(run_dir / runs.METRICS_FILE, final)
    return runs.Run(path=run_dir, metrics=final, _model=model)
