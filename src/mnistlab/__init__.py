"""mnistlab: train, evaluate and use handwritten-digit classifiers on MNIST and MNIST-like data.

The Python API mirrors the command line: `load_data`, `train`, `load_run`, `evaluate`, `predict`.
Heavy modules (Keras, the backend) load only when one of these is first used.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["load_data", "train", "load_run", "evaluate", "predict", "preprocess", "__version__"]


def load_data(dataset: str = "mnist", data_dir: Any = None):
    """((x_train, y_train), (x_test, y_test)) as uint8 arrays, like keras.datasets.mnist.load_data()."""
    from .data import load_data as _load_data

    return _load_data(dataset, data_dir)


def train(recipe: str = "cnn", dataset: str = "mnist", **kwargs: Any):
    """Train a named recipe and save its run directory; returns the Run."""
    from .training import train as _train

    return _train(recipe, dataset, **kwargs)


def load_run(path: Any, *, allow_partial: bool = True):
    """Open a run directory written by `train`."""
    from .runs import load_run as _load_run

    return _load_run(path, allow_partial=allow_partial)


def evaluate(run_dir: Any, data_dir: Any = None) -> dict:
    """Re-evaluate a run's model on its test set: accuracy, loss, per-class report."""
    from .evaluation import evaluate_run

    return evaluate_run(run_dir, data_dir)


def predict(run_or_path: Any, images: Any, **kwargs: Any) -> list[dict]:
    """Classify images (paths, PIL images or arrays) with a run; one record per image."""
    from .prediction import predict as _predict

    return _predict(run_or_path, images, **kwargs)


def preprocess(image: Any):
    """Turn a picture of a digit into an MNIST-style 28x28 float array."""
    from .images import preprocess as _preprocess

    return _preprocess(image)
