"""mnistlab: train, evaluate and use handwritten-digit classifiers on MNIST and MNIST-like data.

The Python API mirrors the command line:

    load_data(dataset="mnist", data_dir=None)        ((x_train, y_train), (x_test, y_test)) as uint8 arrays
    train(recipe="cnn", dataset="mnist", *, ...)      train, evaluate, write a run directory; returns a Run
    resume_run(run_dir, *, ...)                       continue an interrupted run
    finetune(run_dir, images, *, out=None, ...)       teach a run a person's hand from labelled pictures
    load_run(run_dir)                                 open a run directory: .settings, .status, .metrics, .model
    evaluate(run_dir, data_dir=None, *, images=None)  re-score a run on its test set or a labelled folder
    predict(run, images, *, ...)                      one record per image (paths, PIL images, arrays, bytes)
    read(run, images, *, ...)                         the number written on one line in each image, one record each
    preprocess(image)                                 a picture of a digit -> MNIST-style 28x28 floats

Each is the package function itself (`help(mnistlab.train)` shows its parameters), imported on first use so
that `import mnistlab` stays instant; Keras loads only when a model is built or read. Errors a caller can
cause are `MnistlabError`s and also the standard type (`ValueError`, `FileNotFoundError`).
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import (DataError, DataNotFoundError, ImageError, ImageNotFoundError, MnistlabError, NoDigitError,
                     RunError, RunNotFoundError, UsageError)

__version__ = "0.1.0"

# public name -> (module, name in it)
_API = {
    "load_data": ("data", "load_data"),
    "train": ("training", "train"),
    "resume_run": ("training", "resume_run"),
    "finetune": ("training", "finetune"),
    "load_run": ("runs", "load_run"),
    "Run": ("runs", "Run"),
    "RunSettings": ("runs", "RunSettings"),
    "RunStatus": ("runs", "RunStatus"),
    "evaluate": ("evaluation", "evaluate_run"),
    "predict": ("prediction", "predict"),
    "read": ("reading", "read"),
    "preprocess": ("images", "preprocess"),
}

__all__ = [*_API, "MnistlabError", "UsageError", "DataError", "DataNotFoundError", "RunError", "RunNotFoundError",
           "ImageError", "ImageNotFoundError", "NoDigitError", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _API:
        module, attr = _API[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value  # once imported, a plain attribute
        return value
    raise AttributeError(f"module 'mnistlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
