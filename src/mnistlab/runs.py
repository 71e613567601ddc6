"""The run directory and its one owner: every file inside a run is named, written and read here.

A run directory holds

    metrics.json   the run's settings (a RunSettings), its status (a RunStatus), provenance and results
    model.keras    the trained model (an ensemble is one model averaging its members' probabilities)
    history.csv    what Keras recorded per epoch (epochs counted from 1, as the console and plots do)
    plots/         every figure of the run
    rejection.npz  the not-a-digit detector fitted at the end of training (rejection.py; absent in older runs)
    pairs.npz      the reader of two touching digits, fitted at the end of training (pairs.py; absent in older runs)
    checkpoint/    while training: the model after the last finished epoch, and state.json naming it
    evaluations/   figures of `evaluate --images DIR`, one folder per DIR
    export/        deployable copies of the model (`mnistlab export`): model.onnx, model.tflite, model-int8.tflite,
                   saved_model/, each with <name>.parity.json (its check against Keras), and MODEL_CARD.md

Its life: `prepare_run_dir` chooses the folder, `start_run` writes the settings with status "training",
`Checkpoint.save` runs after every epoch, `mark_interrupted` on Ctrl-C, `finish_run` writes the model,
history, plots and results and drops the checkpoint; `load_run` and `resume_point` read it back.
Training (training.py) fits models and hands them here; export.py writes the exports where `export_path`
says; nothing else names a file in a run directory.

`Run.predict_proba` is the one inference entry: through Keras, or through onnxruntime when the run has a checked
ONNX export (`load_run(..., engine="auto")`, the default), in which case neither Keras nor TensorFlow is imported.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import hashlib
import importlib.util
import json
import shutil
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .backend import import_keras
from .errors import RunError, RunNotFoundError, UsageError
from .fsutil import atomic_path, write_json, write_text

# Version 1 is the only layout so far; every run directory mnistlab has written reads with this code.
FORMAT_VERSION = 1
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
REJECTION_FILE = "rejection.npz"
PAIRS_FILE = "pairs.npz"
PLOTS_DIR = "plots"
CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_STATE = "state.json"
EVALUATIONS_DIR = "evaluations"
RETRAIN = "train it again with `mnistlab train --out DIR --force`"
EXPORT_DIR = "export"
MODEL_CARD_FILE = "MODEL_CARD.md"
PARITY_SUFFIX = ".parity.json"  # beside each export: the figures of its check against Keras
# (format, quantization) -> the export's name inside RUN/export/ (saved_model is a directory)
EXPORT_FILES = {
    ("onnx", None): "model.onnx",
    ("litert", None): "model.tflite",
    ("litert", "int8"): "model-int8.tflite",
    ("saved_model", None): "saved_model",
}
DETECTOR_EXPORT = "rejection.onnx"  # the not-a-digit detector's ONNX copy, beside the ONNX export (export.py)
ENGINES = ("auto", "keras", "onnx")
PLOT_FILES = {
    "curves": "curves.png",
    "predictions": "predictions.png",
    "confusion": "confusion_matrix.png",
    "mistakes": "confident_mistakes.png",
    "architecture": "architecture.png",
    "calibration": "calibration.png",
}


class RunStatus(str, enum.Enum):
    """Where a run is in its life; stored in metrics.json as the value string."""

    TRAINING = "training"  # started, or killed without a chance to say so
    INTERRUPTED = "interrupted"  # stopped by Ctrl-C after saving its last epoch
    COMPLETE = "complete"


@dataclass(frozen=True)
class RunSettings:
    """Everything that decides what a run trains: saved with it, and all that `resume_run` needs."""

    recipe: str
    dataset: str
    epochs: int
    batch_size: int
    seed: int
    limit: int | None
    ensemble: int
    class_names: tuple[str, ...]
    data_sha256: Mapping[str, str]  # data file name -> SHA-256 of its decompressed content
    format: int = FORMAT_VERSION
    # For a run made by `finetune`: the run it started from and the pictures it was tuned on (see training.finetune).
    finetune: Mapping[str, Any] | None = None
    # Fit the not-a-digit detector at the end of training (digit datasets only); False skips it (the run then
    # refuses only blank pictures) and saves the minute or so it takes at full size.
    detector: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "data_sha256", MappingProxyType(dict(self.data_sha256)))
        if self.finetune is not None:
            object.__setattr__(self, "finetune", MappingProxyType(dict(self.finetune)))

    def to_json(self) -> dict[str, Any]:
        """The settings as metrics.json stores them."""
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "class_names": list(self.class_names),
                "data_sha256": dict(self.data_sha256),
                "finetune": dict(self.finetune) if self.finetune is not None else None}

    @classmethod
    def from_json(cls, record: Mapping[str, Any], where: Path) -> "RunSettings":
        """The settings from a metrics.json object; a missing or mistyped field is a RunError naming it."""
        types = {"recipe": str, "dataset": str, "epochs": int, "batch_size": int, "seed": int, "limit": (int, type(None)),
                 "ensemble": int, "class_names": list, "data_sha256": dict, "format": int,
                 "finetune": (dict, type(None)), "detector": bool}
        values = {}
        for f in fields(cls):
            if f.name not in record:
                if f.default is not MISSING:  # added after format 1's first runs: absent means the default
                    continue
                raise RunError(f"{where}: {METRICS_FILE} lacks {f.name!r}; {RETRAIN}")
            value = record[f.name]
            if (isinstance(value, bool) and types[f.name] is not bool) or not isinstance(value, types[f.name]):
                raise RunError(f"{where}: {METRICS_FILE} has {f.name}={value!r}, not a {f.type}; {RETRAIN}")
            values[f.name] = value
        return cls(**values)


def to_model_input(model: Any, images: np.ndarray) -> np.ndarray:
    """Scale (N, 28, 28) images to [0, 1] float32 and reshape them to what `model` takes."""
    return to_input_shape(images, tuple(model.input_shape[1:]))


def to_input_shape(images: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Scale (N, 28, 28) images to [0, 1] float32 and reshape them to `shape` per image ((784,) or (28, 28, 1))."""
    x = np.asarray(images)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32, copy=False)
    if int(np.prod(shape)) != 784:
        raise RunError(f"model takes input of shape {shape}, not a 28x28 image (784 values)")
    return x.reshape((len(x), *shape))


@dataclass
class Run:
    """A run directory opened: its settings, status, metrics.json as a whole, and (on first use) its model."""

    path: Path
    settings: RunSettings
    status: RunStatus
    metrics: dict[str, Any]  # the whole metrics.json: settings, provenance and (once complete) results
    model_file: Path | None = None  # default: path / model.keras
    engine: str = "keras"  # what predict_proba runs: "keras", or "onnx" (onnxruntime on onnx_file, no TensorFlow)
    onnx_file: Path | None = None
    _model: Any = field(default=None, repr=False)
    _onnx: Any = field(default=None, repr=False)
    _rejector: Any = field(default=None, repr=False)
    _pair_reader: Any = field(default=None, repr=False)

    @property
    def model(self) -> Any:
        """The Keras model, loaded once (safe mode: a .keras file can never run arbitrary code)."""
        if self._model is None:
            self._model = load_model(self.model_file or self.path / MODEL_FILE)
        return self._model

    @property
    def temperature(self) -> float:
        """The temperature fitted on held-out data at the end of training (1.0: none, e.g. an older run)."""
        value = (self.metrics.get("calibration") or {}).get("temperature", 1.0)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else 1.0

    @property
    def rejector(self) -> Any:
        """The not-a-digit detector (a rejection.Rejector) fitted with the run, or None for a run without one."""
        if self._rejector is None:
            from .rejection import Rejector

            file = self.path / REJECTION_FILE
            self._rejector = _load_beside(file, Rejector.load, "predict without refusals")
            if self._rejector is not None and self.engine == "onnx":
                runtime = _detector_runtime(self.path, file)
                if runtime is not None:
                    self._rejector = dataclasses.replace(self._rejector, runtime=runtime)
        return self._rejector

    @property
    def pair_reader(self) -> Any:
        """The reader of two touching digits (a pairs.PairReader) fitted with the run, or None (`read` then cuts
        every touching pair apart)."""
        if self._pair_reader is None:
            from .pairs import PairReader

            self._pair_reader = _load_beside(self.path / PAIRS_FILE, PairReader.load, "read numbers without it")
        return self._pair_reader

    @property
    def class_names(self) -> list[str]:
        """The dataset's class names, as recorded at training time."""
        return list(self.settings.class_names)

    @property
    def complete(self) -> bool:
        """Whether training finished."""
        return self.status is RunStatus.COMPLETE

    def predict_proba(self, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities (N, 10) for (N, 28, 28) images (uint8, or floats in [0, 1])."""
        if self.engine == "onnx":
            if self._onnx is None:
                self._onnx = OnnxModel(self.onnx_file or export_path(self.path, "onnx"))
            return self._onnx.predict(images, batch_size)
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
        raise RunNotFoundError(f"{path}: model file missing; give a run directory that `mnistlab train` finished, "
                               f"or {RETRAIN}")
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


class OnnxModel:
    """An ONNX export run with onnxruntime (CPU): what predict_proba uses without Keras or TensorFlow."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        try:
            # One thread: a request is one image, and on a small server the other cores serve other requests;
            # spinning threads would burn them waiting for work.
            self.session = onnx_session(path, threads)
        except Exception as exc:  # onnxruntime raises its own types for a damaged file
            raise RunError(f"{path}: cannot load the ONNX model ({_first_line(exc)}); export it again with "
                           f"`mnistlab export RUN --format onnx --force`") from exc
        spec = self.session.get_inputs()[0]
        self.input_name = spec.name
        self.input_shape = tuple(int(d) for d in spec.shape[1:])

    def predict(self, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities (N, 10) for (N, 28, 28) images."""
        x = to_input_shape(images, self.input_shape)
        parts = [self.session.run(None, {self.input_name: x[i: i + batch_size]})[0]
                 for i in range(0, len(x), batch_size)]
        return np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros((0, 10), np.float32)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


# --- exports ---------------------------------------------------------------------------------------------------


def export_dir(run_dir: str | Path) -> Path:
    """RUN/export: where `mnistlab export` writes by default and where predict and serve look."""
    return Path(run_dir) / EXPORT_DIR


def export_path(run_dir: str | Path, format: str, quantize: str | None = None) -> Path:
    """The default path of an export of `format` (and quantization) inside the run directory."""
    return export_dir(run_dir) / EXPORT_FILES[(format, quantize)]


def parity_path(export: str | Path) -> Path:
    """The check record stored beside an export: <export>.parity.json."""
    export = Path(export)
    return export.with_name(export.name + PARITY_SUFFIX)


def model_card_path(export: str | Path) -> Path:
    """MODEL_CARD.md beside an export."""
    return Path(export).parent / MODEL_CARD_FILE


def read_parity(export: str | Path) -> dict[str, Any] | None:
    """The check record of an export, or None if the export or its record is missing or unreadable."""
    export, record = Path(export), parity_path(export)
    if not export.exists() or not record.is_file():
        return None
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _usable_onnx(path: Path, onnx_file: Path) -> tuple[bool, str]:
    """Whether the ONNX export passed its check and was made from the run's current model.keras; else why not."""
    record = read_parity(onnx_file)
    if record is None:
        return False, f"no ONNX export in {onnx_file.parent} (make one with `mnistlab export {path} --format onnx`)"
    if not record.get("passed"):
        return False, f"{onnx_file}: its parity check did not pass ({parity_path(onnx_file).name})"
    model = path / MODEL_FILE
    if model.is_file() and record.get("model_sha256") != file_sha256(model):
        return False, (f"{onnx_file} was exported from an older {MODEL_FILE}; export it again with "
                       f"`mnistlab export {path} --format onnx --force`")
    return True, ""


# --- writing a run ---------------------------------------------------------------------------------------------


def default_run_dir(recipe: str, root: str | Path = "runs") -> Path:
    """runs/<recipe>-<timestamp>, unique within the second."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{recipe}-{stamp}"
    n = 2
    while path.exists():
        path = Path(root) / f"{recipe}-{stamp}-{n}"
        n += 1
    return path


def prepare_run_dir(out: str | Path | None, recipe: str, force: bool) -> Path:
    """Choose the run directory and refuse to overwrite an existing one unless forced."""
    path = Path(out) if out is not None else default_run_dir(recipe)
    if path.exists() and not path.is_dir():
        raise UsageError("exists and is not a directory", param="out", value=path)
    if path.is_dir() and any(path.iterdir()) and not force:
        raise UsageError("directory exists and is not empty; choose another or overwrite it (force=True, "
                         "the CLI's --force)", param="out", value=path)
    return path


def evaluation_dir(path: Path, images: Path) -> Path:
    """Where `evaluate --images DIR` keeps its figures for a run: RUN/evaluations/<DIR's name>/."""
    return path / EVALUATIONS_DIR / (images.resolve().name or "images")


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def start_run(path: Path, settings: RunSettings, provenance: Mapping[str, Any]) -> dict[str, Any]:
    """Create (or, when forced, clear) the run directory and record its settings with status "training"."""
    for name in [MODEL_FILE, HISTORY_FILE, METRICS_FILE, REJECTION_FILE, PAIRS_FILE]:
        (path / name).unlink(missing_ok=True)
    for name in [PLOTS_DIR, CHECKPOINT_DIR, EXPORT_DIR]:  # an export of the old model would answer for the new one
        shutil.rmtree(path / name, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    header = {**settings.to_json(), "status": RunStatus.TRAINING.value, **provenance, "started": _now()}
    write_json(path / METRICS_FILE, header)
    return header


def mark_interrupted(path: Path, header: Mapping[str, Any]) -> None:
    """Record that training stopped on request after saving its last epoch (resume it later)."""
    write_json(path / METRICS_FILE, {**header, "status": RunStatus.INTERRUPTED.value})


def _write_history(path: Path, histories: Sequence[Mapping[str, Sequence[float]]]) -> None:
    keys = sorted({k for h in histories for k in h}, key=lambda k: (k.startswith("val_"), k))
    member = len(histories) > 1
    lines = [",".join((["member"] if member else []) + ["epoch"] + keys)]
    for m, h in enumerate(histories, start=1):
        for e in range(max((len(v) for v in h.values()), default=0)):
            cells = [repr(h[k][e]) if e < len(h.get(k, [])) else "" for k in keys]
            lines.append(",".join(([str(m)] if member else []) + [str(e + 1)] + cells))
    write_text(path, "\n".join(lines) + "\n")


def _write_plots(path: Path, model: Any, histories: Sequence[Mapping[str, Sequence[float]]], x_test: np.ndarray,
                 y_test: np.ndarray, proba: np.ndarray, confusion: Sequence[Sequence[int]], class_names: Sequence[str],
                 title: str, warn: Callable[[str], None], calibrated: np.ndarray | None = None) -> None:
    from . import plots

    d = path / PLOTS_DIR
    f = PLOT_FILES
    if any(histories):
        plots.history_curves(histories, d / f["curves"], title=title)
    plots.prediction_grid(x_test, y_test, proba.argmax(axis=1), class_names, d / f["predictions"])
    plots.confusion_matrix_plot(np.asarray(confusion), class_names, d / f["confusion"])
    plots.confident_mistakes(x_test, y_test, proba, class_names, d / f["mistakes"])
    plots.calibration_plot(proba, calibrated, y_test, d / f["calibration"], title=title)
    try:
        plots.architecture(model, d / f["architecture"])
    except (FileNotFoundError, ImportError, OSError) as exc:
        warn(f"architecture diagram skipped: {exc}")


def finish_run(path: Path, header: Mapping[str, Any], model: Any, histories: Sequence[Mapping[str, Sequence[float]]],
               results: Mapping[str, Any], *, x_test: np.ndarray, y_test: np.ndarray, proba: np.ndarray,
               warn: Callable[[str], None], calibrated: np.ndarray | None = None, rejector: Any = None,
               pair_reader: Any = None) -> Run:
    """Write the model, history, plots and results of a finished run, mark it complete and drop its checkpoint.

    `calibrated`: the test probabilities after temperature scaling (for the reliability diagram); `rejector`:
    the fitted not-a-digit detector; `pair_reader`: the reader of touching pairs. metrics.json is written last:
    until it says "complete", the run reads as unfinished.
    """
    settings = RunSettings.from_json(header, path)
    with atomic_path(path / MODEL_FILE) as tmp:
        model.save(tmp)
    _write_history(path / HISTORY_FILE, histories)
    (path / REJECTION_FILE).unlink(missing_ok=True)
    if rejector is not None:
        rejector.save(path / REJECTION_FILE)
    (path / PAIRS_FILE).unlink(missing_ok=True)
    if pair_reader is not None:
        pair_reader.save(path / PAIRS_FILE)
    _write_plots(path, model, histories, x_test, y_test, proba, results["confusion_matrix"], settings.class_names,
                 f"{settings.recipe} on {settings.dataset}", warn, calibrated)
    final = {**header, "status": RunStatus.COMPLETE.value, **results, "finished": _now()}
    write_json(path / METRICS_FILE, final)
    Checkpoint(path).remove()
    return Run(path=path, settings=settings, status=RunStatus.COMPLETE, metrics=final, _model=model, _rejector=rejector,
               _pair_reader=pair_reader)


# --- the checkpoint ---------------------------------------------------------------------------------------------


def seed_states(model: Any) -> list[Any]:
    """The state variables of the model's random-number generators (dropout, augmentation), in layer order.

    A .keras file does not save them, so the checkpoint records them; without them a resumed run would draw
    other dropout masks than the uninterrupted one. Keras lists a SeedGenerator's state among a layer's public
    `variables` (not its `weights`) under this name; tests/test_resume.py fails loudly if an upgrade changes that.
    """
    return [v for v in model.variables if v.name == "seed_generator_state"]


class Checkpoint:
    """The run's checkpoint/ folder: the model (with optimizer state) after the last finished epoch.

    The model file is named by member and epoch and written before state.json, which names it; so a
    crash at any point leaves a state.json that points at a complete model file.
    """

    def __init__(self, run_dir: Path):
        self.dir = run_dir / CHECKPOINT_DIR
        self.state_file = self.dir / CHECKPOINT_STATE
        self.finished: list[dict] = []  # states of members already trained (ensembles)
        self.current: dict | None = None  # state of the member being trained, after its last saved epoch

    def save(self, model: Any, *, member: int, epoch: int, history: Mapping[str, list[float]], seconds: float) -> None:
        """Write the model and state of `member` after `epoch` atomically, then drop older model files."""
        name = f"member{member}-epoch{epoch:04d}.keras"
        with atomic_path(self.dir / name) as tmp:
            model.save(tmp)
        self.current = {"member": member, "epoch": epoch, "model": name, "history": dict(history),
                        "seconds": seconds, "rng": [np.asarray(v.numpy()).tolist() for v in seed_states(model)]}
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
            members = json.loads(self.state_file.read_text(encoding="utf-8"))["members"]
            for m in members:
                m["member"], m["epoch"], m["model"], m["history"], m["seconds"]  # noqa: B018 (presence check)
            return list(members)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RunError(f"{self.state_file}: unreadable checkpoint ({exc}); {RETRAIN}") from exc

    def load_model(self, state: Mapping[str, Any]) -> Any:
        """The checkpointed model (compiled, with its optimizer state and RNG state)."""
        model = load_model(self.dir / state["model"])
        states = seed_states(model)
        if len(states) == len(state.get("rng", [])):
            for v, value in zip(states, state["rng"]):
                v.assign(np.asarray(value, dtype=v.dtype))
        return model

    def remove(self) -> None:
        """Delete the checkpoint once the run is complete."""
        shutil.rmtree(self.dir, ignore_errors=True)


# --- reading a run ----------------------------------------------------------------------------------------------


def read_metrics(path: Path) -> dict[str, Any]:
    """Read and check a run's metrics.json (any format this version reads)."""
    file = path / METRICS_FILE
    if not path.exists():
        raise RunNotFoundError(f"{path}: no such run directory; check the path (`mnistlab train` prints it)")
    if not path.is_dir():
        raise RunError(f"{path}: not a directory; give the run directory that `mnistlab train` wrote")
    if not file.is_file():
        raise RunNotFoundError(f"{path}: not a mnistlab run ({METRICS_FILE} missing); give the run directory "
                               "that `mnistlab train` wrote")
    try:
        metrics = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"{file}: unreadable ({exc}); {RETRAIN}") from exc
    if not isinstance(metrics, dict):
        raise RunError(f"{file}: not a metrics object; {RETRAIN}")
    version = metrics.get("format", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise RunError(f"{path}: written by a newer mnistlab (run format {version}, this version reads "
                       f"{FORMAT_VERSION}); upgrade mnistlab")
    return metrics


def _status(metrics: Mapping[str, Any], path: Path) -> RunStatus:
    try:
        return RunStatus(metrics.get("status", RunStatus.COMPLETE.value))
    except ValueError:
        raise RunError(f"{path}: unknown status {metrics.get('status')!r} in {METRICS_FILE}; {RETRAIN}") from None


def onnx_session(path: Path, threads: int = 1) -> Any:
    """An onnxruntime CPU session on `path`: `threads` intra-op threads (0: onnxruntime's default, all cores),
    none spinning while idle."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _load_beside(file: Path, load: Callable[[Path], Any], without: str) -> Any:
    """What `load` reads from a file fitted with the run, or None where the run has none; an unreadable file is
    a RunError saying what deleting it would do (`without`)."""
    if not file.is_file():
        return None
    try:
        return load(file)
    except (OSError, ValueError, KeyError) as exc:
        raise RunError(f"{file}: unreadable ({exc}); delete it to {without}, or {RETRAIN}") from exc


def onnx_detector(path: Path, threads: int = 1) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The not-a-digit detector's ONNX copy as a function (images (N, 28, 28), probabilities (N, 10)) -> log-odds."""
    session = onnx_session(path, threads)
    image, proba = (i.name for i in session.get_inputs())

    def score(x: np.ndarray, p: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return np.zeros(0, np.float32)
        x = np.ascontiguousarray(x, np.float32).reshape(-1, 28, 28)
        return session.run(None, {image: x, proba: np.ascontiguousarray(p, np.float32)})[0][:, 0]

    return score


def detector_export_path(run_dir: str | Path) -> Path:
    """RUN/export/rejection.onnx."""
    return export_dir(run_dir) / DETECTOR_EXPORT


def _detector_runtime(path: Path, rejection_file: Path) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    """The detector's checked ONNX copy for the onnxruntime path, or None (NumPy then scores): it must have passed
    its check and have been made from this rejection.npz (a fine-tuned run, or a refitted detector, has another)."""
    onnx_file = detector_export_path(path)
    record = read_parity(onnx_file)
    if not record or not record.get("passed") or record.get("rejection_sha256") != file_sha256(rejection_file):
        return None
    try:
        return onnx_detector(onnx_file)
    except Exception:  # a damaged copy: NumPy gives the same scores
        return None


def load_run(path: str | Path, *, allow_partial: bool = True, engine: str = "auto") -> Run:
    """Open a run directory (the model itself is loaded on first use).

    An unfinished run is refused unless `allow_partial`; it then uses the model of its last saved epoch.
    `engine` chooses what runs the model: "onnx" (onnxruntime; no Keras or TensorFlow is imported) needs the
    run's checked ONNX export (RUN/export/model.onnx, made from its current model.keras); "keras" the Keras
    model; "auto" takes onnx when that export is there and onnxruntime is installed, keras otherwise. A run
    directory copied to a server without model.keras still works through its ONNX export.
    """
    if engine not in ENGINES:
        raise UsageError(f"unknown engine; choose one of {', '.join(ENGINES)}", param="engine", value=engine)
    path = Path(path)
    metrics = read_metrics(path)
    run = Run(path=path, settings=RunSettings.from_json(metrics, path), status=_status(metrics, path), metrics=metrics)
    if not run.complete and not allow_partial:
        raise RunError(f"{path}: training did not finish (status {run.status.value!r}); resume it with "
                       "`mnistlab train --resume` or allow a partial run (allow_partial=True, the CLI's --allow-partial)")
    if engine != "keras" and run.complete:
        onnx_file = export_path(path, "onnx")
        usable, why = _usable_onnx(path, onnx_file)
        runtime = importlib.util.find_spec("onnxruntime") is not None
        if usable and runtime:
            run.engine, run.onnx_file = "onnx", onnx_file
            return run
        if engine == "onnx":
            raise RunError(why if not usable else "onnxruntime is not installed; install it "
                           "(`pip install onnxruntime`) or use engine='keras' (the CLI's --engine keras)")
    elif engine == "onnx":
        raise RunError(f"{path}: training did not finish, so it has no ONNX export; use engine='keras' "
                       "(the CLI's --engine keras)")
    if not run.complete and not (path / MODEL_FILE).is_file():
        saved = Checkpoint(path).read()
        if not saved:
            raise RunError(f"{path}: training did not finish and no epoch was saved; nothing to load")
        run.model_file = Checkpoint(path).dir / saved[-1]["model"]
    elif not (path / MODEL_FILE).is_file():
        raise RunNotFoundError(f"{path}: {MODEL_FILE} missing, the run is damaged; {RETRAIN}")
    return run


def resume_point(path: str | Path) -> tuple[RunSettings, dict[str, Any], list[dict]]:
    """An unfinished run's settings, its metrics.json header (status "training" again) and its saved members."""
    path = Path(path)
    metrics = read_metrics(path)
    if _status(metrics, path) is RunStatus.COMPLETE:
        raise UsageError("this run already finished; nothing to resume", param="resume", value=path)
    settings = RunSettings.from_json(metrics, path)
    if settings.finetune is not None:
        raise UsageError("a fine-tuning run is not resumable (it takes about a minute); run finetune again",
                         param="resume", value=path)
    return settings, {**metrics, "status": RunStatus.TRAINING.value}, Checkpoint(path).read()
