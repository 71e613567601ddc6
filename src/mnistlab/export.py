"""Deployable copies of a run's model: ONNX, LiteRT and SavedModel, each checked against Keras before it is kept.

The conversion is Keras' own (`Model.export(path, format=...)`: tf2onnx for ONNX, the TFLite converter for
LiteRT, a tf.function archive for SavedModel); nothing here writes graph code. Each export is written beside its
target under a temporary name, run with its own runtime (onnxruntime, the LiteRT interpreter, TensorFlow) on the
first `PARITY_IMAGES` MNIST test images and compared with Keras; only an export that passes is renamed into
place, then its figures (`<export>.parity.json`) and the folder's MODEL_CARD.md are written. So a failed export
leaves nothing behind, and `predict`/`serve` only ever pick up a checked one.

`--quantize int8` (LiteRT): full-integer post-training quantization (weights and activations int8, ranges
calibrated on `REPRESENTATIVE_IMAGES` training images), float input and output kept so the input contract does
not change. It passes when its accuracy on the whole test set is within `INT8_MAX_DROP_POINTS` of Keras'.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from . import runs
from .errors import RunError, UsageError
from .fsutil import atomic_dir, atomic_path, write_json, write_text

FORMATS = ("onnx", "litert", "saved_model")
KERAS_FORMATS = {"onnx": "onnx", "litert": "litert", "saved_model": "tf_saved_model"}
QUANTIZATIONS = {"litert": ("int8",)}  # ONNX int8 was not adopted: see docs/benchmarks.md
SUFFIXES = {"onnx": ".onnx", "litert": ".tflite"}  # a SavedModel is a directory: any name
PARITY_IMAGES = 1000
TOLERANCE = 1e-4  # largest allowed |probability difference| from Keras for a float export
INT8_MAX_DROP_POINTS = 0.2  # largest allowed loss of test accuracy, in percentage points, for an int8 export
REPRESENTATIVE_IMAGES = 500  # training images that calibrate int8 activation ranges
LATENCY_CALLS = 50  # single-image calls timed for the record's ms_per_image
DETECTOR_TOLERANCE = 1e-3  # largest allowed |log-odds difference| of the detector's ONNX copy from NumPy's
DETECTOR_NEGATIVES = 300  # generated non-digits its check scores besides the parity images


class ExportError(RunError):
    """An export was made but failed its check against Keras; nothing was kept."""


def export_run(run_dir: str | os.PathLike, format: str = "onnx", *, quantize: str | None = None,
               out: str | os.PathLike | None = None, force: bool = False, data_dir: str | os.PathLike | None = None,
               log: Callable[[str], None] = print) -> dict[str, Any]:
    """Export a finished run's model, check it against Keras with its own runtime, write its figures and model card.

    Without `out` the export goes into RUN/export/ (where predict and serve find it). Returns the check's record
    (also stored beside the export as <export>.parity.json).
    """
    if format not in FORMATS:
        raise UsageError(f"unknown export format; choose one of {', '.join(FORMATS)}", param="format", value=format)
    allowed = QUANTIZATIONS.get(format, ())
    if quantize is not None and quantize not in allowed:
        what = f"choose {', '.join(allowed)}" if allowed else f"format={format!r} is exported in float32 only; " \
                                                             "int8 is offered for litert"
        raise UsageError(f"unknown quantization for this format; {what}", param="quantize", value=quantize)
    run = runs.load_run(run_dir, engine="keras")
    if not run.complete:
        raise RunError(f"{run.path}: training did not finish (status {run.status.value!r}); only a finished run can be "
                       f"exported: continue it with `mnistlab train --resume {run.path}`")
    target = Path(out) if out is not None else runs.export_path(run.path, format, quantize)
    suffix = SUFFIXES.get(format)
    if suffix and target.suffix != suffix:
        raise UsageError(f"a {format} export is a {suffix} file; give a path ending in {suffix}", param="out",
                         value=target)
    if (target.exists() or runs.parity_path(target).exists()) and not force:
        raise UsageError("an export already exists there; choose another path (out=, the CLI's --out) or overwrite "
                         "it (force=True, the CLI's --force)", param="out", value=target)
    if target.is_dir() != (format == "saved_model") and target.exists():
        raise UsageError("exists and is a " + ("directory" if target.is_dir() else "file") + f"; a {format} export "
                         "needs another path", param="out", value=target)

    from .data import load_dataset

    splits = ("train", "test") if quantize else ("test",)
    data = load_dataset(run.settings.dataset, data_dir, splits=splits, remember=data_dir is not None)
    x_check, y_check = data.x_test[:PARITY_IMAGES], data.y_test[:PARITY_IMAGES]
    log(f"mnistlab: exporting {run.path} ({run.settings.recipe}) to {format}{' ' + quantize if quantize else ''}: "
        f"{target}")
    reference = run.predict_proba(x_check)
    model = inference_model(run.model)
    shape = tuple(model.input_shape[1:])
    stage = atomic_dir if format == "saved_model" else atomic_path
    with stage(target) as tmp:
        kwargs = _quantization(data.x_train, shape) if quantize else {}
        started = time.perf_counter()
        with _quiet():  # the converters' and runtimes' logs (shown only if something raises)
            model.export(str(tmp), format=KERAS_FORMATS[format], verbose=False, **kwargs)
            seconds = time.perf_counter() - started
            runtime, predict = _runtime(format, tmp, shape)
            got = predict(runs.to_input_shape(x_check, shape))
            record = _compare(reference, got, y_check, quantized=quantize is not None)
            if quantize:
                full_keras = run.predict_proba(data.x_test)
                full_export = predict(runs.to_input_shape(data.x_test, shape))
                record["full_test"] = _accuracy_drop(full_keras, full_export, data.y_test)
                record["passed"] = record["full_test"]["drop_points"] <= INT8_MAX_DROP_POINTS
            record.update(_describe(run, format, quantize, tmp, target, runtime, seconds))
            record["ms_per_image"] = _latency(predict, runs.to_input_shape(x_check[:1], shape))
        if not record["passed"]:
            raise ExportError(f"{target}: the export does not match Keras ({_verdict(record)}); nothing was kept. "
                              "This is a converter problem worth reporting with the run's recipe")
        runs.parity_path(target).unlink(missing_ok=True)  # the old export's record must not describe the new one
    write_json(runs.parity_path(target), record)
    if format == "onnx" and out is None:
        _export_detector(run, x_check, reference, log)
    write_model_card(target, run)
    log(f"mnistlab: {_verdict(record)}")
    log(f"mnistlab: {format} export: {target} ({record['bytes'] / 1e6:.2f} MB); figures: {runs.parity_path(target)}; "
        f"model card: {runs.model_card_path(target)}")
    return record


# --- the not-a-digit detector in ONNX -------------------------------------------------------------------------


def _export_detector(run: runs.Run, x_check: np.ndarray, proba_check: np.ndarray, log: Callable[[str], None]) -> None:
    """Beside the run's own ONNX export: its not-a-digit detector as ONNX too (RUN/export/rejection.onnx), checked
    against the NumPy detector, so that the onnxruntime path scores a picture in one call (`runs.Run.rejector`).

    Checked on the parity images and on generated non-digits (the detector's other side), with the model's
    probabilities: kept when every score is within DETECTOR_TOLERANCE of NumPy's and every refusal the same.
    A run without a detector, or with a first-version one, has nothing to export; a detector that fails its check
    is not kept, and the run keeps scoring with NumPy (same answers, slower): a warning, not an error.
    """
    from . import rejection

    target = runs.detector_export_path(run.path)
    for stale in (target, runs.parity_path(target)):  # never a detector record describing another detector
        stale.unlink(missing_ok=True)
    rejector = run.rejector
    if rejector is None or rejector.version < 3:
        return
    rng = np.random.default_rng(0)
    digits = x_check.astype(np.float32) / 255.0 if x_check.dtype == np.uint8 else x_check.astype(np.float32)
    others = rejection.negatives(DETECTOR_NEGATIVES, rng, digits)
    x = np.concatenate([digits, others])
    proba = np.concatenate([proba_check, run.predict_proba(others)]).astype(np.float32)
    try:
        with atomic_path(target) as tmp:
            with _quiet():
                rejection.keras_scorer(rejector).export(str(tmp), format="onnx", verbose=False)
                score = runs.onnx_detector(tmp, threads=0)
                got, want = score(x, proba), rejector.score(x, proba)
            diff = float(np.abs(got.astype(np.float64) - want).max())
            same = int(((got > rejector.threshold) == (want > rejector.threshold)).sum())
            record = {"images": int(len(x)), "digits": int(len(digits)), "non_digits": int(len(others)),
                      "max_abs_diff": diff, "tolerance": DETECTOR_TOLERANCE, "same_refusal": same,
                      "passed": diff <= DETECTOR_TOLERANCE and same == len(x), "file": target.name,
                      "bytes": tmp.stat().st_size, "sha256": runs.file_sha256(tmp),
                      "rejection_sha256": runs.file_sha256(run.path / runs.REJECTION_FILE),
                      "ms_per_image": _latency(lambda one: score(one, proba[:1]), digits[:1])}
            if not record["passed"]:
                raise _Discard
    except _Discard:
        log(f"mnistlab: warning: the not-a-digit detector's ONNX copy does not match NumPy (max |score "
            f"difference| {diff:.2e}, same refusal {same}/{len(x)}); not kept, the detector runs in NumPy")
        return
    write_json(runs.parity_path(target), record)
    log(f"mnistlab: not-a-digit detector as ONNX: {target} (scores on {len(x):,} pictures within {diff:.1e} of NumPy's, "
        f"the same refusals; {record['ms_per_image']:.3f} ms a picture)")


class _Discard(Exception):
    """Leaves an atomic write's temporary file unpublished (raised inside `atomic_path`, caught around it)."""


# --- making and running an export -----------------------------------------------------------------------------


def inference_model(model: Any) -> Any:
    """The model as it predicts: a functional wrapper that calls it with training=False, input named "image".

    Keras' ONNX and SavedModel exporters trace `model(x)` with training unset, and Keras' augmentation layers
    (`best`'s RandomRotation, RandomTranslation, RandomZoom) then default to training mode: the export would
    rotate every input at random (measured: 104 of 1,000 digits right for SavedModel; tf2onnx fails on the
    random ops). The wrapper's stored training=False reaches every layer, nested ensemble members included.
    """
    from .backend import import_keras

    keras = import_keras()
    shape = tuple(model.input_shape[1:])
    inputs = keras.Input(shape, name="image")
    wrapper = keras.Model(inputs, model(inputs, training=False), name=f"{model.name}_inference")
    wrapper(np.zeros((1, *shape), np.float32))  # the ONNX exporter refuses a model that was never called
    return wrapper



@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Capture what the converters print (TensorFlow's C++ logs, tf2onnx's INFO lines); show it only on failure."""
    import logging

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    levels = {name: logging.getLogger(name).level for name in ("tf2onnx", "absl", "tensorflow")}
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 1)
        os.dup2(captured.fileno(), 2)
        for name in levels:
            logging.getLogger(name).setLevel(logging.ERROR)
        ok = False
        try:
            yield
            ok = True
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
            if not ok:
                captured.seek(0)
                sys.stderr.write(captured.read().decode("utf-8", "replace")[-4000:])


def _quantization(x_train: np.ndarray, shape: tuple[int, ...]) -> dict[str, Any]:
    """TFLite converter settings for full-integer quantization with float input and output."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    picks = rng.choice(len(x_train), size=min(REPRESENTATIVE_IMAGES, len(x_train)), replace=False)
    samples = runs.to_input_shape(x_train[np.sort(picks)], shape)

    def representative() -> Iterator[list[np.ndarray]]:
        for x in samples:
            yield [x[None]]

    return {"optimizations": [tf.lite.Optimize.DEFAULT], "representative_dataset": representative}


def _runtime(format: str, path: Path, shape: tuple[int, ...]) -> tuple[str, Callable[[np.ndarray], np.ndarray]]:
    """The export's own runtime: (name and version, a function from model input to probabilities)."""
    if format == "onnx":
        import onnxruntime

        model = runs.OnnxModel(path, threads=0)  # 0: onnxruntime's default, all cores, for the batch check
        return f"onnxruntime {onnxruntime.__version__}", lambda x: model.predict(x.reshape(len(x), 28, 28))
    if format == "litert":
        return _litert(path)
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    serve = loaded.signatures["serving_default"]
    name = list(serve.structured_outputs)[0]

    def predict(x: np.ndarray) -> np.ndarray:
        return np.concatenate([serve(tf.constant(x[i: i + 1000]))[name].numpy() for i in range(0, len(x), 1000)])

    return f"TensorFlow {tf.__version__} (tf.saved_model.load)", predict


def _litert(path: Path) -> tuple[str, Callable[[np.ndarray], np.ndarray]]:
    """The LiteRT interpreter (ai-edge-litert, TensorFlow's own interpreter as a fallback) on a .tflite file."""
    try:
        from ai_edge_litert import __version__ as version
        from ai_edge_litert.interpreter import Interpreter

        name = f"LiteRT interpreter (ai-edge-litert {version})"
    except ImportError:
        import tensorflow as tf

        Interpreter, name = tf.lite.Interpreter, f"TensorFlow Lite interpreter (TensorFlow {tf.__version__})"
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    state = {"batch": None}

    def predict(x: np.ndarray) -> np.ndarray:
        inp = interpreter.get_input_details()[0]
        if state["batch"] != len(x):
            interpreter.resize_tensor_input(inp["index"], [len(x), *x.shape[1:]])
            interpreter.allocate_tensors()
            state["batch"] = len(x)
            inp = interpreter.get_input_details()[0]
        scale, zero = inp["quantization"]
        if inp["dtype"] != np.float32 and scale:  # an integer input: quantize as the converter says
            x = np.clip(np.round(x / scale + zero), np.iinfo(inp["dtype"]).min, np.iinfo(inp["dtype"]).max)
        interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
        interpreter.invoke()
        out = interpreter.get_output_details()[0]
        y = interpreter.get_tensor(out["index"])
        scale, zero = out["quantization"]
        return ((y.astype(np.float32) - zero) * scale if out["dtype"] != np.float32 and scale else y).astype(np.float32)

    return name, predict


def _latency(predict: Callable[[np.ndarray], np.ndarray], one: np.ndarray) -> float:
    """Median milliseconds of one single-image call (after a warm-up)."""
    predict(one)
    times = []
    for _ in range(LATENCY_CALLS):
        start = time.perf_counter()
        predict(one)
        times.append(time.perf_counter() - start)
    return round(float(np.median(times)) * 1000, 4)


# --- the check --------------------------------------------------------------------------------------------------


def _compare(reference: np.ndarray, got: np.ndarray, labels: np.ndarray, *, quantized: bool) -> dict[str, Any]:
    """Agreement of an export's probabilities with Keras' on the same images."""
    diff = np.abs(got.astype(np.float64) - reference.astype(np.float64))
    same = int((got.argmax(axis=1) == reference.argmax(axis=1)).sum())
    max_diff = float(diff.max()) if diff.size else 0.0
    return {
        "images": int(len(reference)), "same_digit": same, "max_abs_diff": max_diff,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0, "tolerance": None if quantized else TOLERANCE,
        "accuracy_keras": float((reference.argmax(axis=1) == labels).mean()),
        "accuracy_export": float((got.argmax(axis=1) == labels).mean()),
        "passed": quantized or (same == len(reference) and max_diff <= TOLERANCE),
    }


def _accuracy_drop(keras_proba: np.ndarray, export_proba: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Whole-test-set accuracy of an export against Keras', in percentage points."""
    float_acc = float((keras_proba.argmax(axis=1) == labels).mean())
    export_acc = float((export_proba.argmax(axis=1) == labels).mean())
    return {"images": int(len(labels)), "accuracy_float": float_acc, "accuracy_export": export_acc,
            "drop_points": round((float_acc - export_acc) * 100, 4), "max_drop_points": INT8_MAX_DROP_POINTS,
            "same_digit": int((keras_proba.argmax(axis=1) == export_proba.argmax(axis=1)).sum())}


def _verdict(record: dict[str, Any]) -> str:
    """The check's figures in one line."""
    text = (f"parity on {record['images']:,} MNIST test images: same digit {record['same_digit']:,}/{record['images']:,}, "
            f"max |p - p_keras| {record['max_abs_diff']:.2e}")
    if record.get("tolerance") is not None:
        text += f" (tolerance {record['tolerance']:.0e})"
    if "full_test" in record:
        f = record["full_test"]
        text += (f"; accuracy on all {f['images']:,} test images {f['accuracy_export']:.2%} against float "
                 f"{f['accuracy_float']:.2%} (drop {f['drop_points']:.2f} points, allowed {f['max_drop_points']})")
    return text + ("; passed" if record["passed"] else "; FAILED")


def _describe(run: runs.Run, format: str, quantize: str | None, tmp: Path, target: Path, runtime: str,
              seconds: float) -> dict[str, Any]:
    """What was exported, from what, with what: the provenance half of the record."""
    from . import __version__
    from .training import backend_versions

    if tmp.is_dir():
        files = [f for f in sorted(tmp.rglob("*")) if f.is_file()]
        size = sum(f.stat().st_size for f in files)
        digest = None
    else:
        size, digest = tmp.stat().st_size, runs.file_sha256(tmp)
    record = {
        "format": format, "quantize": quantize, "file": target.name, "bytes": size, "sha256": digest,
        "runtime": runtime, "export_seconds": round(seconds, 2),
        "model_sha256": runs.file_sha256(run.path / runs.MODEL_FILE),
        "run": {"recipe": run.settings.recipe, "dataset": run.settings.dataset, "seed": run.settings.seed,
                "ensemble": run.settings.ensemble, "test_accuracy": run.metrics.get("test_accuracy")},
        "versions": {"mnistlab": __version__, **backend_versions()},
        "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    if format == "onnx":
        import onnx

        proto = onnx.load(str(tmp), load_external_data=False)
        record["opset"] = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=None)
        record["input"] = {"name": proto.graph.input[0].name, "shape": _onnx_shape(proto.graph.input[0])}
    return record


def _onnx_shape(value: Any) -> list[Any]:
    return [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]


# --- the model card ---------------------------------------------------------------------------------------------


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def write_model_card(export: Path, run: runs.Run) -> Path:
    """Write MODEL_CARD.md beside `export`, describing the run and every checked export in that folder."""
    folder = Path(export).parent
    records = []
    for record_file in sorted(folder.glob("*" + runs.PARITY_SUFFIX)):
        try:
            records.append(json.loads(record_file.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    path = runs.model_card_path(export)
    write_text(path, model_card(run, records))
    return path


def model_card(run: runs.Run, records: list[dict[str, Any]]) -> str:
    """The model card's Markdown for a run and the check records of its exports."""
    from . import __version__
    from .recipes import RECIPES

    s, m = run.settings, run.metrics
    recipe = RECIPES.get(s.recipe)
    cm = np.asarray(m.get("confusion_matrix") or np.zeros((10, 10)), dtype=np.int64)
    n, correct = int(cm.sum()), int(np.trace(cm))
    low, high = wilson_interval(correct, n)
    versions = m.get("versions") or {}
    lines = [
        f"# Model card: `{s.recipe}` on {s.dataset}",
        "",
        f"Written by mnistlab {__version__} on {_dt.date.today().isoformat()} from the run directory `{run.path}`. "
        "Every figure below was measured; the exports' figures by `mnistlab export`, which ran each export with its "
        "own runtime before keeping it.",
        "",
        "## Model",
        "",
        f"- Recipe `{s.recipe}`" + (f": {recipe.summary}" if recipe else "") + (
            f"; an ensemble of {s.ensemble} models (seeds {s.seed}-{s.seed + s.ensemble - 1}) averaging their "
            "probabilities" if s.ensemble > 1 else "") + ".",
        f"- Parameters: {m.get('params', 'unknown'):,}" if isinstance(m.get("params"), int) else "- Parameters: unknown",
        f"- Trained {s.epochs} epoch(s), batch {s.batch_size}, seed {s.seed}, on "
        f"{m.get('train_images', s.limit or 'all'):,} training images" if isinstance(m.get("train_images"), int)
        else f"- Trained {s.epochs} epoch(s), batch {s.batch_size}, seed {s.seed}",
        f"- Backend and versions: {m.get('backend', 'unknown')}; " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"- Training time: {m['train_seconds']:.0f} s" if isinstance(m.get("train_seconds"), (int, float)) else "",
        "",
        "## Data",
        "",
        f"Dataset `{s.dataset}` (training images for fitting, the 10,000 test images only for the figures below). "
        "Files, SHA-256 of their decompressed content:",
        "",
        "| file | SHA-256 |",
        "| --- | --- |",
        *[f"| `{name}` | `{digest}` |" for name, digest in s.data_sha256.items()],
        "",
        f"## Accuracy on the {s.dataset} test set ({n:,} images)",
        "",
        f"- Test accuracy **{correct / n:.2%}** (95% Wilson interval {low:.2%}-{high:.2%}), "
        f"test loss {m.get('test_loss', float('nan')):.4f}." if n else "- Test accuracy: not recorded.",
        "",
        "| class | " + " | ".join(run.class_names) + " |",
        "| --- | " + " | ".join("---" for _ in run.class_names) + " |",
        "| accuracy | " + " | ".join(f"{v:.1%}" for v in (m.get("per_class_accuracy") or {}).values()) + " |",
        "",
    ]
    calibration = m.get("calibration")
    if isinstance(calibration, dict) and isinstance(calibration.get("temperature"), (int, float)):
        c = calibration
        ece = (f"; test expected calibration error (15 bins) {c['test_ece_before']:.2%} raw, "
               f"{c['test_ece_after']:.2%} calibrated" if isinstance(c.get("test_ece_after"), (int, float)) else "")
        lines += [f"Calibration: temperature **{c['temperature']:.3f}**, fitted on {c.get('fitted_on') or 'nothing'}"
                  f"{ece}. The exports output the raw softmax; mnistlab reports confidences as softmax(log(p) / "
                  f"{c['temperature']:.3f}) (`mnistlab.calibration.apply_temperature`): do the same where the export "
                  "runs.", ""]
    else:
        lines += ["Calibration: the run records none (its confidences are the raw softmax).", ""]
    if (run.path / runs.REJECTION_FILE).is_file():
        detector = runs.read_parity(runs.detector_export_path(run.path))
        copy = (f" Its ONNX copy `{runs.DETECTOR_EXPORT}` (inputs the 28x28 image and these exports' probabilities, "
                f"output the log-odds; refused above {run.rejector.threshold:.3f}) is what mnistlab runs beside "
                f"`model.onnx`: scores within {detector['max_abs_diff']:.1e} of NumPy's on {detector['images']:,} "
                f"pictures, the same refusals." if detector and detector.get("passed") else "")
        lines += [f"Not-a-digit refusals: mnistlab refuses pictures that are not digits with a small detector stored "
                  f"beside the run (`{runs.REJECTION_FILE}`, run in NumPy); it is not part of the exports "
                  f"above.{copy}", ""]
    if (run.path / runs.PAIRS_FILE).is_file():
        lines += [f"Whole numbers: `mnistlab read` also reads two touching digits whole with a second small network "
                  f"stored beside the run (`{runs.PAIRS_FILE}`, run in NumPy, 101 classes: the pairs 00-99 and "
                  "\"not a pair\"); it is not part of the exports above. Copy it with the export to read numbers.", ""]
    lines += [
        "## Input contract",
        "",
        "- One input tensor (named `image` in ONNX) of float32, values in [0, 1], batch dimension free; shape per "
        "image `(28, 28, 1)` for convolutional recipes, `(784,)` (row-major) for `mlp` and `dense512`.",
        "- MNIST-style images: **bright ink (1.0) on a dark background (0.0)**, the digit scaled so its longer side "
        "fits 20 px and centred by its centre of mass in the 28x28 field. A photo, scan or drawing must go through the "
        "same steps first: `mnistlab.images.preprocess(picture)` returns exactly this input (the web app and "
        "`mnistlab predict` use it). uint8 pixels are divided by 255.",
        "- Output: 10 probabilities (softmax, summing to 1); index i is class "
        + ", ".join(f"{i} = `{c}`" for i, c in enumerate(run.class_names)) + ". The model always answers one of the "
        "classes; mnistlab flags answers below 0.8 confidence as low (measured: below 0.8, about one answer in "
        "three is wrong).",
        "",
        "## Exports in this folder",
        "",
        "| file | format | bytes | SHA-256 | checked with | same digit | max abs diff of probabilities | "
        "test accuracy (whole set) | ms / image | passed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in records:
        full = r.get("full_test")
        accuracy = (f"{full['accuracy_export']:.2%} vs float {full['accuracy_float']:.2%} "
                    f"(-{full['drop_points']:.2f} pt)" if full else "-")
        lines.append(
            f"| `{r.get('file')}` | {r.get('format')}{' ' + r['quantize'] if r.get('quantize') else ''} | "
            f"{r.get('bytes', 0):,} | `{(r.get('sha256') or 'directory')[:16]}` | {r.get('runtime')} | "
            f"{r.get('same_digit')}/{r.get('images')} | {r.get('max_abs_diff', float('nan')):.1e} | {accuracy} | "
            f"{r.get('ms_per_image', float('nan')):.3f} | {'yes' if r.get('passed') else 'NO'} |")
    lines += [
        "",
        f"Parity: each export ran on the first {PARITY_IMAGES:,} {s.dataset} test images and was compared with the "
        f"Keras model; a float export passes with the same digit on every image and every probability within "
        f"{TOLERANCE:.0e}, an int8 export with test accuracy (all test images) at most {INT8_MAX_DROP_POINTS} points "
        "below Keras'. Record per export: `<file>.parity.json`. ms / image: one single-image call on the exporting "
        "machine's CPU, one thread.",
        "",
        "## What it was not tested on",
        "",
        "- Anything but its dataset's test set: not on other writers' handwriting at large (mnistlab's handwriting "
        "benchmark covers fonts), other scripts' numerals, letters or symbols (it will still name a digit), several "
        "digits in one picture, or pictures that skip the preprocessing above.",
        "- Adversarial or deliberately perturbed inputs; fairness across groups of writers (MNIST records none).",
        "- Runtimes and hardware other than the ones named in the table (no GPU, NNAPI, Core ML, WebGL/WebGPU or "
        "onnxruntime-web delegates; no other opset); check an export again where it will run.",
        "",
    ]
    return "\n".join(line for line in lines if line is not None) + "\n"
