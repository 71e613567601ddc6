"""Running a recipe: arguments checked, seeds set, the model fitted, evaluated and saved as a run directory."""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import plots, runs
from .backend import import_keras
from .errors import RunError, UsageError
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
    keras = import_keras()

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


def _progbar(total_epochs: int):
    keras = import_keras()

    class EpochProgbar(keras.callbacks.ProgbarLogger):
        """Keras' progress bar, told the run's real epoch count (fit runs one epoch per call)."""

        def set_params(self, params):
            super().set_params({**params, "epochs": total_epochs})

    return EpochProgbar()


def _resolve_verbose(verbose: Any) -> int:
    if verbose == "auto":
        # A live bar on a terminal; one line per epoch in logs and pipes.
        return 1 if sys.stdout.isatty() else 2
    return int(verbose)


def _fit_member(recipe: Recipe, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                epochs: int, batch_size: int, seed: int, verbose: Any, ckpt: "Checkpoint",
                member: int, resume: dict | None = None) -> tuple[Any, dict[str, list[float]], float]:
    """Fit one model epoch by epoch, checkpointing after each; returns (model, history, fit seconds).

    Each epoch's shuffle comes from (seed, epoch) and the dropout/augmentation RNG state travels in the
    checkpointed model, so a resumed run repeats the uninterrupted one.
    """
    keras = import_keras()

    keras.utils.set_random_seed(seed)
    split = recipe.validation_split
    at = int(len(x) * (1 - split))  # the same cut as Keras' validation_split: the last part validates
    x_fit, y_fit = x[:at], y[:at]
    if resume is not None:
        model = ckpt.load_model(resume)
        history = {k: list(v) for k, v in resume["history"].items()}
        first, seconds = resume["epoch"], resume["seconds"]
    else:
        model = recipe.build(math.ceil(len(x_fit) / batch_size), epochs)
        history, first, seconds = {}, 0, 0.0
    x_fit, y_fit = runs.to_model_input(model, x_fit), _labels_for(recipe, y_fit)
    kwargs = dict(recipe.fit_kwargs)
    if recipe.validation == "test":
        kwargs["validation_data"] = (runs.to_model_input(model, x_test), _labels_for(recipe, y_test))
    elif split:
        kwargs["validation_data"] = (runs.to_model_input(model, x[at:]), _labels_for(recipe, y[at:]))
    verbose = _resolve_verbose(verbose)
    callbacks = [_progbar(epochs)] if verbose else []
    for epoch in range(first, epochs):
        order = np.random.default_rng([seed, epoch]).permutation(len(x_fit))
        start = time.perf_counter()
        h = model.fit(x_fit[order], y_fit[order], batch_size=batch_size, initial_epoch=epoch, epochs=epoch + 1,
                      shuffle=False, verbose=verbose, callbacks=callbacks, **kwargs)
        seconds += time.perf_counter() - start
        for k, v in h.history.items():
            history.setdefault(k, []).extend(float(a) for a in v)
        ckpt.save(model, member=member, epoch=epoch + 1, history=history, seconds=seconds)
    return model, history, seconds


class Checkpoint:
    """The run's checkpoint/ folder: the model (with optimizer state) after the last finished epoch.

    The model file is named by member and epoch and written before state.json, which names it; so a
    crash at any point leaves a state.json that points at a complete model file.
    """

    def __init__(self, run_dir: Path):
        self.dir = run_dir / "checkpoint"
        self.state_file = self.dir / "state.json"
        self.finished: list[dict] = []  # state of members already trained (ensembles)
        self.current: dict | None = None  # state of the member being trained, after its last saved epoch

    def save(self, model: Any, *, member: int, epoch: int, history: dict, seconds: float) -> None:
        """Write the model and state of `member` after `epoch` atomically, then drop older model files."""
        name = f"member{member}-epoch{epoch:04d}.keras"
        with atomic_path(self.dir / name) as tmp:
            model.save(tmp)
        self.current = {"member": member, "epoch": epoch, "model": name, "history": history, "seconds": seconds,
                        "rng": [g.state.numpy().tolist() for g in _seed_generators(model)]}
        write_json(self.state_file, {"members": self.finished + [self.current]})
        keep = {m["model"] for m in self.finished} | {name}
        for old in self.dir.glob("member*-epoch*.keras"):
            if old.name not in keep:
                old.unlink(missing_ok=True)

    def member_done(self, state: dict) -> None:
        """Remember a finished ensemble member so later saves keep it."""
        self.finished.append(state)
        self.current = None

    def read(self) -> list[dict]:
        """The saved members' states, oldest first ([] if nothing was saved yet)."""
        if not self.state_file.is_file():
            return []
        try:
            return list(json.loads(self.state_file.read_text())["members"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RunError(f"{self.state_file}: unreadable checkpoint ({exc})") from exc

    def load_model(self, state: dict) -> Any:
        """The checkpointed model (compiled, with its optimizer state and RNG state)."""
        model = runs.load_model(self.dir / state["model"])
        generators = _seed_generators(model)
        if len(generators) == len(state.get("rng", [])):
            for g, value in zip(generators, state["rng"]):
                g.state.assign(np.asarray(value, dtype=g.state.dtype))
        return model

    def remove(self) -> None:
        """Delete the checkpoint once the run is complete."""
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)


def _seed_generators(model: Any) -> list[Any]:
    """The RNGs of dropout and augmentation layers, in layer order.

    A .keras file does not hold their state, so the checkpoint records it; without it a resumed run
    would draw different dropout masks than the uninterrupted one.
    """
    return [g for layer in model._flatten_layers() for g in getattr(layer, "_seed_generators", [])]


def _ensemble(members: list[Any], recipe: Recipe) -> Any:
    keras = import_keras()

    inputs = keras.Input(shape=members[0].input_shape[1:])
    for i, m in enumerate(members):
        m.name = f"member_{i + 1}"
    outputs = keras.layers.Average(name="average")([m(inputs) for m in members])
    # Left uncompiled: it is never trained, and evaluation works from its probabilities.
    return keras.Model(inputs, outputs, name=f"{recipe.name}_ensemble_{len(members)}")


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
                y_test: np.ndarray, proba: np.ndarray, confusion: np.ndarray, class_names: list[str], title: str,
                warn: Callable[[str], None]) -> None:
    """Draw every figure of a run into run_dir/plots."""
    d = run_dir / runs.PLOTS_DIR
    f = runs.PLOT_FILES
    y_pred = proba.argmax(axis=1)
    if history:
        plots.history_curves(history, d / f["curves"], title=title)
    plots.prediction_grid(x_test, y_test, y_pred, class_names, d / f["predictions"])
    plots.confusion_matrix_plot(np.asarray(confusion), class_names, d / f["confusion"])
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
    resume: str | Path | None = None,
    verbose: Any = "auto",
    log: Callable[[str], None] | None = None,
) -> runs.Run:
    """Train a recipe on a dataset, evaluate it on the test set and save the run directory.

    With `resume=RUN_DIR`, continue an interrupted run from its last checkpoint instead (the other
    settings come from the run itself).
    """
    from .data import get_spec, load_dataset

    log = log or (lambda msg: print(msg, file=sys.stderr))
    if resume is not None:
        return _resume(Path(resume), data_dir, verbose, log)
    spec = get_recipe(recipe)
    get_spec(dataset)
    epochs = _check_int("epochs", spec.epochs if epochs is None else epochs, 1, MAX_EPOCHS)
    batch_size = _check_int("batch size", spec.batch_size if batch_size is None else batch_size, 1, MAX_BATCH_SIZE)
    seed = _check_int("seed", seed, 0, 2**32 - 1 - MAX_ENSEMBLE)
    ensemble = _check_int("ensemble", ensemble, 1, MAX_ENSEMBLE)
    if limit is not None:
        limit = _check_int("limit", limit, 1, 10**9)
    run_dir = prepare_out(out, spec.name, force)

    data = load_dataset(dataset, data_dir)
    x_train, y_train = _limited(data, limit, spec)

    keras = import_keras()

    base = {
        "format": runs.FORMAT_VERSION, "status": "training", "dataset": dataset, "recipe": spec.name,
        "epochs": epochs, "batch_size": batch_size, "seed": seed, "limit": limit, "ensemble": ensemble,
        "train_images": int(len(x_train)), "class_names": list(data.spec.class_names),
        "backend": keras.backend.backend(), "versions": backend_versions(), "data_dir": str(data.directory),
        "data_sha256": dict(data.sha256), "started": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    if force and run_dir.is_dir():
        _clear_run_files(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / runs.METRICS_FILE, base)
    log(f"mnistlab: recipe {spec.name} on {dataset} ({len(x_train)} training images from {data.directory}), "
        f"{epochs} epoch(s), batch {batch_size}, seed {seed}, backend {base['backend']}; run directory {run_dir}")
    return _train_members(spec, data, x_train, y_train, base, run_dir, [], verbose, log)


def _limited(data: Any, limit: int | None, spec: Recipe) -> tuple[np.ndarray, np.ndarray]:
    x_train, y_train = data.x_train, data.y_train
    if limit is not None:
        if limit > len(x_train):
            raise UsageError(f"--limit {limit} is larger than the {len(x_train)} training images of {data.spec.name}")
        x_train, y_train = x_train[:limit], y_train[:limit]
    if spec.validation_split and int(len(x_train) * spec.validation_split) < 1:
        raise UsageError(f"--limit {limit} leaves no images for the {spec.validation:.0%} validation split; "
                         f"use at least {math.ceil(1 / spec.validation)}")
    return x_train, y_train


def _clear_run_files(run_dir: Path) -> None:
    import shutil

    for name in [runs.MODEL_FILE, runs.HISTORY_FILE, runs.METRICS_FILE]:
        (run_dir / name).unlink(missing_ok=True)
    for name in [runs.PLOTS_DIR, "checkpoint"]:
        shutil.rmtree(run_dir / name, ignore_errors=True)


def _resume(run_dir: Path, data_dir: str | Path | None, verbose: Any, log: Callable[[str], None]) -> runs.Run:
    from .data import load_dataset

    base = runs.read_metrics(run_dir)
    if base.get("status") == "complete":
        raise UsageError(f"--resume {run_dir}: this run already finished; nothing to resume")
    missing = [k for k in ("recipe", "dataset", "data_sha256", "limit", "epochs", "ensemble", "seed", "batch_size",
                           "class_names") if k not in base]
    if missing:
        raise RunError(f"{run_dir}: metrics.json lacks {', '.join(missing)}; cannot resume this run")
    spec = get_recipe(base["recipe"])
    data = load_dataset(base["dataset"], data_dir)
    if dict(data.sha256) != base["data_sha256"]:
        raise RunError(f"--resume {run_dir}: the {base['dataset']} files differ from those the run started with")
    x_train, y_train = _limited(data, base["limit"], spec)
    saved = Checkpoint(run_dir).read()
    where = (f"member {saved[-1]['member'] + 1}, epoch {saved[-1]['epoch']} of {base['epochs']}" if saved
             else "the start (no epoch had finished)")
    log(f"mnistlab: resuming {run_dir} ({spec.name} on {base['dataset']}) after {where}")
    return _train_members(spec, data, x_train, y_train, {**base, "status": "training"}, run_dir, saved, verbose, log)


def _train_members(spec: Recipe, data: Any, x_train: np.ndarray, y_train: np.ndarray, base: dict, run_dir: Path,
                   saved: list[dict], verbose: Any, log: Callable[[str], None]) -> runs.Run:
    epochs, ensemble, seed = base["epochs"], base["ensemble"], base["seed"]
    ckpt = Checkpoint(run_dir)
    members, histories, seconds = [], [], 0.0
    try:
        for i in range(ensemble):
            state = saved[i] if i < len(saved) else None
            if ensemble > 1:
                log(f"mnistlab: ensemble member {i + 1}/{ensemble} (seed {seed + i})")
            if state is not None and state["epoch"] >= epochs:
                model, history, took = ckpt.load_model(state), state["history"], state["seconds"]
            else:
                model, history, took = _fit_member(spec, x_train, y_train, data.x_test, data.y_test, epochs,
                                                   base["batch_size"], seed + i, verbose, ckpt, i, state)
                state = ckpt.current
            ckpt.member_done(state)
            members.append(model)
            histories.append(history)
            seconds += took
    except KeyboardInterrupt:
        done = ckpt.read()
        write_json(run_dir / runs.METRICS_FILE, {**base, "status": "interrupted"})
        log(f"mnistlab: interrupted; {len(done) and done[-1]['epoch']} epoch(s) of member {len(done) or 1} saved. "
            f"Continue with: mnistlab train --resume {run_dir}")
        raise
    model = members[0] if ensemble == 1 else _ensemble(members, spec)

    class_names = base["class_names"]
    with atomic_path(run_dir / runs.MODEL_FILE) as tmp:
        model.save(tmp)
    _write_history(run_dir / runs.HISTORY_FILE, histories)
    result, proba = evaluate_model(model, data.x_test, data.y_test, class_names)
    fitted = int(len(x_train) * (1 - spec.validation_split)) * epochs * ensemble
    final = {**base, "status": "complete", "train_seconds": round(seconds, 3),
             "images_per_second": round(fitted / seconds, 1) if seconds else None,
             "params": int(model.count_params()),
             "train_accuracy": histories[-1].get("accuracy", [None])[-1],
             **result,
             "finished": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}
    if ensemble > 1:
        final["member_test_accuracy"] = [evaluate_model(m, data.x_test, data.y_test, class_names)[0]["test_accuracy"]
                                         for m in members]
    write_plots(run_dir, model, histories[0], data.x_test, data.y_test, proba, result["confusion_matrix"], class_names,
                f"{spec.name} on {base['dataset']}", log)
    write_json(run_dir / runs.METRICS_FILE, final)
    ckpt.remove()
    return runs.Run(path=run_dir, metrics=final, _model=model)
