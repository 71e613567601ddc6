"""Fitting a recipe: arguments checked, seeds set, models fitted epoch by epoch and handed to runs.py.

`train` starts a run, `resume_run` continues an unfinished one; both end in the same fitting loop. Every
file of the run directory is written by runs.py: this module fits and evaluates, nothing else.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import runs
from .backend import import_keras
from .errors import RunError, UsageError
from .evaluation import evaluate_model
from .recipes import DEFAULT_RECIPE, Recipe, get_recipe

MAX_EPOCHS = 1000
MAX_BATCH_SIZE = 65536
MAX_ENSEMBLE = 20
Log = Callable[[str], None]


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise UsageError("must be a whole number", param=name, value=value)
    if not low <= value <= high:
        raise UsageError(f"must be between {low} and {high}", param=name, value=value)
    return int(value)


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


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order in which epoch `epoch` (0-based) of a model seeded `seed` visits its n training images.

    Drawn from (seed, epoch) alone, so a resumed run shuffles exactly as the uninterrupted one, and each
    epoch differently from the last.
    """
    return np.random.default_rng([seed, epoch]).permutation(n)


def _fit_member(recipe: Recipe, settings: runs.RunSettings, data: Any, x: np.ndarray, y: np.ndarray, member: int,
                ckpt: runs.Checkpoint, saved: dict | None, verbose: Any) -> tuple[Any, dict[str, list[float]], float]:
    """Fit one model epoch by epoch, checkpointing after each; returns (model, history, fit seconds).

    The dropout/augmentation RNG state travels in the checkpoint, so a resumed run repeats the
    uninterrupted one.
    """
    keras = import_keras()

    seed, epochs, batch_size = settings.seed + member, settings.epochs, settings.batch_size
    keras.utils.set_random_seed(seed)
    at = recipe.fitted_part(len(x))  # the same cut as Keras' validation_split: the last part validates
    x_fit, y_fit = x[:at], y[:at]
    if saved is not None:
        model = ckpt.load_model(saved)
        history = {k: list(v) for k, v in saved["history"].items()}
        first, seconds = saved["epoch"], saved["seconds"]
    else:
        model = recipe.build(math.ceil(len(x_fit) / batch_size), epochs)
        history, first, seconds = {}, 0, 0.0
    x_fit, y_fit = runs.to_model_input(model, x_fit), _labels_for(recipe, y_fit)
    kwargs = {}
    if recipe.validation == "test":
        kwargs["validation_data"] = (runs.to_model_input(model, data.x_test), _labels_for(recipe, data.y_test))
    elif recipe.validation_split:
        kwargs["validation_data"] = (runs.to_model_input(model, x[at:]), _labels_for(recipe, y[at:]))
    verbose = _resolve_verbose(verbose)
    callbacks = [_progbar(epochs)] if verbose else []
    for epoch in range(first, epochs):
        order = epoch_order(seed, epoch, len(x_fit))
        start = time.perf_counter()
        h = model.fit(x_fit[order], y_fit[order], batch_size=batch_size, initial_epoch=epoch, epochs=epoch + 1,
                      shuffle=False, verbose=verbose, callbacks=callbacks, **kwargs)
        seconds += time.perf_counter() - start
        for k, v in h.history.items():
            history.setdefault(k, []).extend(float(a) for a in v)
        ckpt.save(model, member=member, epoch=epoch + 1, history=history, seconds=seconds)
    return model, history, seconds


def _ensemble(members: list[Any], recipe: Recipe) -> Any:
    keras = import_keras()

    inputs = keras.Input(shape=members[0].input_shape[1:])
    for i, m in enumerate(members):
        m.name = f"member_{i + 1}"
    outputs = keras.layers.Average(name="average")([m(inputs) for m in members])
    # Left uncompiled: it is never trained, and evaluation works from its probabilities.
    return keras.Model(inputs, outputs, name=f"{recipe.name}_ensemble_{len(members)}")


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def train(
    recipe: str = DEFAULT_RECIPE,
    dataset: str = "mnist",
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int = 1,
    limit: int | None = None,
    ensemble: int = 1,
    detector: bool = True,
    out: str | Path | None = None,
    force: bool = False,
    data_dir: str | Path | None = None,
    verbose: int | str = "auto",
    log: Log = _stderr,
) -> runs.Run:
    """Train a recipe on a dataset, evaluate it on the test set and save the run directory.

    epochs, batch_size: the recipe's when None. limit: use only the first `limit` training images.
    ensemble: train K models (seeds seed, seed+1, ...) and save one averaging their probabilities.
    detector: fit the not-a-digit detector at the end (digit datasets); False skips it, and the run then
    refuses only blank pictures.
    out: the run directory (default runs/<recipe>-<timestamp>); an existing non-empty one needs force=True.
    verbose: "auto" (a bar on a terminal, a line per epoch otherwise), 0, 1 or 2. log: where progress lines go.
    An interrupted run (Ctrl-C, a crash) continues with `resume_run`.
    """
    from .data import get_spec, load_dataset

    spec = get_recipe(recipe)
    get_spec(dataset)
    epochs = _check_int("epochs", spec.epochs if epochs is None else epochs, 1, MAX_EPOCHS)
    batch_size = _check_int("batch_size", spec.batch_size if batch_size is None else batch_size, 1, MAX_BATCH_SIZE)
    seed = _check_int("seed", seed, 0, 2**32 - 1 - MAX_ENSEMBLE)
    ensemble = _check_int("ensemble", ensemble, 1, MAX_ENSEMBLE)
    if limit is not None:
        limit = _check_int("limit", limit, 1, 10**9)
    run_dir = runs.prepare_run_dir(out, spec.name, force)

    data = load_dataset(dataset, data_dir, remember=data_dir is not None)
    x_train, y_train = _limited(data, limit, spec)
    settings = runs.RunSettings(recipe=spec.name, dataset=dataset, epochs=epochs, batch_size=batch_size, seed=seed,
                                limit=limit, ensemble=ensemble, class_names=data.spec.class_names,
                                data_sha256=data.sha256, detector=bool(detector))
    keras = import_keras()
    header = runs.start_run(run_dir, settings, {
        "train_images": int(len(x_train)), "backend": keras.backend.backend(), "versions": backend_versions(),
        "data_dir": str(data.directory)})
    log(f"mnistlab: recipe {spec.name} on {dataset} ({len(x_train)} training images from {data.directory}), "
        f"{epochs} epoch(s), batch {batch_size}, seed {seed}, backend {header['backend']}; run directory {run_dir}")
    return _fit_run(spec, settings, header, data, x_train, y_train, run_dir, [], verbose, log)


def resume_run(run_dir: str | Path, *, data_dir: str | Path | None = None, verbose: int | str = "auto",
               log: Log = _stderr) -> runs.Run:
    """Continue an unfinished run from its last saved epoch, with the settings it was started with.

    It ends exactly where the uninterrupted run would have (same seed, same data: checked by checksum).
    """
    from .data import load_dataset

    run_dir = Path(run_dir)
    settings, header, saved = runs.resume_point(run_dir)
    spec = get_recipe(settings.recipe)
    data = load_dataset(settings.dataset, data_dir, remember=data_dir is not None)
    if dict(data.sha256) != dict(settings.data_sha256):
        raise RunError(f"{run_dir}: the {settings.dataset} files in {data.directory} differ from those the run "
                       "started with; resume it with the same data")
    x_train, y_train = _limited(data, settings.limit, spec)
    if not saved:
        where = "the start (no epoch had finished)"
    elif settings.ensemble > 1:
        where = f"member {saved[-1]['member'] + 1} of {settings.ensemble}, epoch {saved[-1]['epoch']} of {settings.epochs}"
    else:
        where = f"epoch {saved[-1]['epoch']} of {settings.epochs}"
    log(f"mnistlab: resuming {run_dir} ({spec.name} on {settings.dataset}) after {where}")
    return _fit_run(spec, settings, header, data, x_train, y_train, run_dir, saved, verbose, log)


def _limited(data: Any, limit: int | None, spec: Recipe) -> tuple[np.ndarray, np.ndarray]:
    x_train, y_train = data.x_train, data.y_train
    if limit is not None:
        if limit > len(x_train):
            raise UsageError(f"larger than the {len(x_train)} training images of {data.spec.name}",
                             param="limit", value=limit)
        x_train, y_train = x_train[:limit], y_train[:limit]
    if spec.validation_split and int(len(x_train) * spec.validation_split) < 1:
        raise UsageError(f"leaves no images for the {spec.validation_split:.0%} validation split of {spec.name}; "
                         f"use at least {math.ceil(1 / spec.validation_split)}", param="limit", value=limit)
    return x_train, y_train


def _fit_run(spec: Recipe, settings: runs.RunSettings, header: dict, data: Any, x_train: np.ndarray,
             y_train: np.ndarray, run_dir: Path, saved: list[dict], verbose: Any, log: Log) -> runs.Run:
    """Fit every member (continuing from `saved`), evaluate, and hand the result to runs.finish_run."""
    ckpt = runs.Checkpoint(run_dir)
    members, histories, seconds = [], [], 0.0
    try:
        for i in range(settings.ensemble):
            state = saved[i] if i < len(saved) else None
            if settings.ensemble > 1:
                log(f"mnistlab: ensemble member {i + 1}/{settings.ensemble} (seed {settings.seed + i})")
            if state is not None and state["epoch"] >= settings.epochs:
                model, history, took = ckpt.load_model(state), state["history"], state["seconds"]
            else:
                model, history, took = _fit_member(spec, settings, data, x_train, y_train, i, ckpt, state, verbose)
                state = ckpt.current
            ckpt.member_done(state)
            members.append(model)
            histories.append(history)
            seconds += took
    except KeyboardInterrupt:
        runs.mark_interrupted(run_dir, header)
        done = ckpt.read()
        epochs = done[-1]["epoch"] if done else 0
        of = f" of member {len(done)} of {settings.ensemble}" if settings.ensemble > 1 else ""
        log(f"mnistlab: interrupted; {epochs} epoch(s){of} saved. Continue with: mnistlab train --resume {run_dir}")
        raise
    model = members[0] if settings.ensemble == 1 else _ensemble(members, spec)
    result, proba = evaluate_model(model, data.x_test, data.y_test, list(settings.class_names))
    calibration, calibrated = _calibrate(model, spec, x_train, y_train, proba, data.y_test)
    rejector = _fit_rejector(model, settings, x_train, log)
    pair_reader = _fit_pair_reader(settings, spec, x_train, y_train, log)
    fitted = spec.fitted_part(len(x_train)) * settings.epochs * settings.ensemble
    results = {"train_seconds": round(seconds, 3),
               "images_per_second": round(fitted / seconds, 1) if seconds else None,
               "params": int(model.count_params()),
               "train_accuracy": histories[-1].get("accuracy", [None])[-1],
               **result, "calibration": calibration}
    if settings.ensemble > 1:
        results["member_test_accuracy"] = [
            evaluate_model(m, data.x_test, data.y_test, list(settings.class_names))[0]["test_accuracy"] for m in members]
    return runs.finish_run(run_dir, header, model, histories, results, x_test=data.x_test, y_test=data.y_test,
                           proba=proba, warn=log, calibrated=calibrated, rejector=rejector,
                           pair_reader=pair_reader)


def _predict(model: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(runs.to_model_input(model, x), batch_size=1024, verbose=0), np.float32)


def _calibrate(model: Any, spec: Recipe, x_train: np.ndarray, y_train: np.ndarray, proba_test: np.ndarray,
               y_test: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
    """Fit the temperature on the recipe's held-out validation split (never the test set); score it on the test set.

    A recipe that holds out no validation images (mlp validates on the test set, dense512 on nothing) keeps
    temperature 1: there is nothing it has not seen to fit on.
    """
    from .calibration import apply_temperature, expected_calibration_error, fit_temperature

    at = spec.fitted_part(len(x_train))
    held = len(x_train) - at if spec.validation_split else 0
    temperature = fit_temperature(_predict(model, x_train[at:]), y_train[at:]) if held else 1.0
    calibrated = apply_temperature(proba_test, temperature)
    return {"temperature": temperature,
            "fitted_on": f"validation split ({held} training images held out)" if held else None,
            "test_ece_before": round(expected_calibration_error(proba_test, y_test), 5),
            "test_ece_after": round(expected_calibration_error(calibrated, y_test), 5)}, calibrated


def _fit_rejector(model: Any, settings: runs.RunSettings, x_train: np.ndarray, log: Log) -> Any:
    """The not-a-digit detector for a digit dataset (None for others, whose classes are not digits, or if not asked)."""
    if not _reads_digits(settings):
        return None
    from .rejection import fit

    start = time.perf_counter()
    rejector = fit(x_train, _predict(model, x_train), lambda x: _predict(model, x), seed=settings.seed, log=log)
    log(f"mnistlab: not-a-digit detector fitted in {time.perf_counter() - start:.0f} s")
    return rejector


def _reads_digits(settings: runs.RunSettings) -> bool:
    """Whether a run fits what reading pictures of digits needs (the detector, the pair reader): asked for, and
    its classes are the digits."""
    return bool(settings.detector) and list(settings.class_names) == [str(d) for d in range(10)]


def _fit_pair_reader(settings: runs.RunSettings, spec: Recipe, x_train: np.ndarray, y_train: np.ndarray,
                     log: Log) -> Any:
    """The reader of two touching digits for `read` (pairs.py), fitted on the training images less the recipe's
    validation split; None where the detector is not fitted (the same switch: both serve reading pictures)."""
    if not _reads_digits(settings):
        return None
    from .pairs import fit

    start = time.perf_counter()
    at = spec.fitted_part(len(x_train))
    reader = fit(x_train[:at], y_train[:at], seed=settings.seed, log=log)
    log(f"mnistlab: pair reader fitted in {time.perf_counter() - start:.0f} s")
    return reader


# Fine-tuning settings, from benchmarks/finetune.py on font "writers" (docs/benchmarks.md). Its first run, with a
# learning rate of 3e-4 and MNIST mixed one-for-one, reported 0.7-1.3 points of MNIST test accuracy lost for 1-20
# pictures per digit; the benchmark now measures forgetting on cnn's own held-out validation images (the last
# 10% of MNIST's training set) instead, where 1e-4 with two MNIST images per user picture lost up to 0.40 points
# there (0.56 on MNIST test); four lose at most 0.25 there (on test 0.33 from one picture per digit, at most 0.30 from five or more)
# while the writer's accuracy still rises from 72-85% to 94-99.7%; six lost at most 0.10, but the writer's 20-per-digit
# accuracy fell a point (98.0 -> 97.3%). Each epoch shows the user's pictures (augmented) at least
# FINETUNE_MIN_SHOWN times in all.
# Measured and not kept (docs/benchmarks.md): moving the weights back towards the source's (WiSE-FT) until MNIST's
# held-out accuracy was within 0.15 points, with or without distilling the source's answers on the mixed images;
# SGD with momentum (3e-3) instead of Adam; training only the dense layers (Adam 1e-3): both forgot more.
FINETUNE_HELD_OUT = 0.1  # MNIST's last tenth is never mixed in: it sets the carried-over detector's threshold
FINETUNE_EPOCHS = 8
FINETUNE_LEARNING_RATE = 1e-4
FINETUNE_MNIST_PER_PICTURE = 4
FINETUNE_BATCH_SIZE = 32
FINETUNE_MIN_SHOWN = 512
FINETUNE_VALIDATION = 0.2  # of each class's pictures, once every class has at least FINETUNE_MIN_FOR_VALIDATION
FINETUNE_MIN_FOR_VALIDATION = 5


def _finetune_split(y: np.ndarray, classes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation): a fifth of each class held out once every class has 5 pictures, else none."""
    counts = np.bincount(y, minlength=classes)
    present = counts[counts > 0]
    if present.min() < FINETUNE_MIN_FOR_VALIDATION:
        return np.arange(len(y)), np.zeros(0, np.int64)
    val = [rng.permutation(np.flatnonzero(y == c))[: max(1, round(FINETUNE_VALIDATION * n))]
           for c, n in enumerate(counts) if n]
    val_idx = np.sort(np.concatenate(val))
    return np.setdiff1d(np.arange(len(y)), val_idx), val_idx


def finetune(run_dir: str | Path, images: str | Path, *, out: str | Path | None = None,
             epochs: int = FINETUNE_EPOCHS, learning_rate: float = FINETUNE_LEARNING_RATE, seed: int = 1,
             force: bool = False, data_dir: str | Path | None = None, verbose: int | str = "auto",
             log: Log = _stderr) -> runs.Run:
    """Fine-tune a trained run on a person's labelled pictures (DIR/0/*.png ...); writes a new run directory.

    A few pictures per class is the normal case. What the model knew of MNIST is kept by a small learning
    rate and by mixing FINETUNE_MNIST_PER_PICTURE MNIST training images per user picture into every epoch; the user's pictures are
    augmented (small rotations, shifts, zoom). A fifth of each class is held out for validation when every
    class has at least 5 pictures. The new run is an ordinary run directory (evaluate, predict and serve take
    it) whose settings record the source run and the pictures (`settings.finetune`).
    """
    from .data import load_dataset
    from .labelled import read_labelled_folder

    source = runs.load_run(run_dir, allow_partial=False)
    if source.settings.ensemble > 1:
        raise UsageError("is an ensemble; fine-tune a single-model run (train one without ensemble)",
                         param="run_dir", value=run_dir)
    epochs = _check_int("epochs", epochs, 1, MAX_EPOCHS)
    seed = _check_int("seed", seed, 0, 2**32 - 1)
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or not 0 < learning_rate < 1:
        raise UsageError("must be a number between 0 and 1 (exclusive)", param="learning_rate", value=learning_rate)
    spec = get_recipe(source.settings.recipe)
    out_dir = runs.prepare_run_dir(out, f"{spec.name}-finetuned", force)
    labelled = read_labelled_folder(images, source.class_names)
    if labelled.missed:
        # Nothing to learn from a picture with no digit found in it (faint ink, a blank): named and left out.
        shown = ", ".join(str(f) for f, _, _ in labelled.missed[:3]) + (", ..." if len(labelled.missed) > 3 else "")
        total = len(labelled.y) + len(labelled.missed)
        if not len(labelled.y):
            raise UsageError(f"no digit found in any of its {total} pictures ({shown}); nothing to fine-tune on",
                             param="images", value=images)
        log(f"mnistlab: warning: no digit found in {len(labelled.missed)} of the {total} pictures; fine-tuning "
            f"without them: {shown}")
    data = load_dataset(source.settings.dataset, data_dir, remember=data_dir is not None)
    keras = import_keras()

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    classes = len(source.class_names)
    if labelled.second:
        # Where a printed line may be the digit's own stroke, the input `predict` would take (`prediction.choose`,
        # with the source run's detector): the model learns what it will be shown.
        from .prediction import choose

        labelled = dataclasses.replace(labelled, x=choose(source, labelled.choices())[0], second={})
    train_idx, val_idx = _finetune_split(labelled.y, classes, rng)
    model = source.model
    before = evaluate_model(model, labelled.x[val_idx], labelled.y[val_idx], source.class_names)[0] if len(val_idx) else None
    at = int(len(data.x_train) * (1 - FINETUNE_HELD_OUT))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=model.loss, metrics=["accuracy"])
    augment = keras.Sequential([keras.layers.RandomRotation(0.04, fill_mode="constant"),
                                keras.layers.RandomTranslation(0.08, 0.08, fill_mode="constant"),
                                keras.layers.RandomZoom(0.1, fill_mode="constant")], name="finetune_augment")
    record = {"from": str(Path(run_dir)), "from_test_accuracy": source.metrics.get("test_accuracy"),
              "images": str(Path(images)), "per_class": labelled.per_class(classes),
              "train_pictures": int(len(train_idx)), "validation_pictures": int(len(val_idx)),
              "learning_rate": learning_rate, "mnist_mixed_per_picture": FINETUNE_MNIST_PER_PICTURE,
              "no_digit_found": [str(f) for f, _, _ in labelled.missed]}
    settings = runs.RunSettings(recipe=spec.name, dataset=source.settings.dataset, epochs=epochs,
                                batch_size=FINETUNE_BATCH_SIZE, seed=seed, limit=None, ensemble=1,
                                class_names=source.class_names, data_sha256=data.sha256, finetune=record)
    header = runs.start_run(out_dir, settings, {
        "train_images": int(len(train_idx)), "backend": keras.backend.backend(), "versions": backend_versions(),
        "data_dir": str(data.directory)})
    log(f"mnistlab: fine-tuning {run_dir} on {len(train_idx)} pictures from {images} "
        f"({len(val_idx)} held out for validation), {epochs} epoch(s); run directory {out_dir}")
    x_user, y_user = labelled.x[train_idx], labelled.y[train_idx]
    repeats = max(1, math.ceil(FINETUNE_MIN_SHOWN / len(x_user)))
    kwargs = {}
    if len(val_idx):
        kwargs["validation_data"] = (runs.to_model_input(model, labelled.x[val_idx]),
                                     _labels_for(spec, labelled.y[val_idx]))
    verbose = _resolve_verbose(verbose)
    callbacks = [_progbar(epochs)] if verbose else []
    history: dict[str, list[float]] = {}
    start = time.perf_counter()
    try:
        for epoch in range(epochs):
            shown = np.repeat(x_user, repeats, axis=0)
            shown = np.asarray(augment(shown[..., None], training=True))[..., 0]
            mixed = rng.choice(at, size=FINETUNE_MNIST_PER_PICTURE * len(shown), replace=False)
            x = np.concatenate([shown, data.x_train[mixed].astype(np.float32) / 255.0])
            y = np.concatenate([np.repeat(y_user, repeats), data.y_train[mixed]])
            order = epoch_order(seed, epoch, len(x))
            h = model.fit(runs.to_model_input(model, x[order]), _labels_for(spec, y[order]),
                          batch_size=FINETUNE_BATCH_SIZE, initial_epoch=epoch, epochs=epoch + 1, shuffle=False,
                          verbose=verbose, callbacks=callbacks, **kwargs)
            for k, v in h.history.items():
                history.setdefault(k, []).extend(float(a) for a in v)
    except KeyboardInterrupt:
        runs.mark_interrupted(out_dir, header)
        log(f"mnistlab: interrupted; run finetune again (it keeps no checkpoint): {out_dir} is left unfinished")
        raise
    seconds = time.perf_counter() - start
    result, proba = evaluate_model(model, data.x_test, data.y_test, list(settings.class_names))
    # Honest answers carry over: the temperature is fitted again on held-out MNIST digits, and the source's
    # not-a-digit detector comes along with its threshold set again for the tuned model.
    calibration, calibrated = _calibrate(model, spec, data.x_train, data.y_train, proba, data.y_test)
    results = {"train_seconds": round(seconds, 3), "images_per_second": round((1 + FINETUNE_MNIST_PER_PICTURE) * len(x_user) * repeats * epochs / seconds, 1),
               "params": int(model.count_params()), "train_accuracy": history.get("accuracy", [None])[-1], **result,
               "calibration": calibration}
    if len(val_idx):
        after = evaluate_model(model, labelled.x[val_idx], labelled.y[val_idx], source.class_names)[0]
        results["finetune_validation_accuracy"] = {"before": before["test_accuracy"], "after": after["test_accuracy"]}
    rejector = _carry_rejector(source, model, data.x_train[at:], labelled.x, log)
    return runs.finish_run(out_dir, header, model, [history], results, x_test=data.x_test, y_test=data.y_test,
                           proba=proba, warn=log, calibrated=calibrated, rejector=rejector,
                           pair_reader=source.pair_reader)


def _carry_rejector(source: runs.Run, model: Any, x_held: np.ndarray, x_user: np.ndarray, log: Log) -> Any:
    """The source run's not-a-digit detector, its threshold set again on MNIST's held-out images as the
    fine-tuned model sees them (the detector reads the model's probabilities); None if the source had none."""
    if source.rejector is None:
        return None
    rejector = source.rejector.with_threshold_for(x_held.astype(np.float32) / 255.0, _predict(model, x_held))
    refused = int(rejector.refuse(x_user, _predict(model, x_user)).sum())
    if refused:
        log(f"mnistlab: {refused} of the {len(x_user)} pictures tuned on would still be refused as not a digit")
    return rejector
