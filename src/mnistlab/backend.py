"""Importing Keras and its backend quietly: TensorFlow's C++ start-up chatter dropped, anything else shown.

Modules import Keras through `import_keras()` at the point where they first need it, after the cheap
checks of user input, so a bad argument is refused before the seconds that importing TensorFlow takes.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from typing import Any

_STARTUP_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)|I\d{4} [\d:.]+ +\d+ \S+\] )")


def import_keras() -> Any:
    """Import Keras (and its backend) once, with the C++ start-up chatter dropped; return the module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "keras" in sys.modules:
        return sys.modules["keras"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)  # the chatter comes from C++, below Python's sys.stderr
        try:
            import keras  # noqa: F401
        except ModuleNotFoundError as exc:
            from .errors import DependencyError

            raise DependencyError(f"{exc.name} is not installed: this is a predict-only install. Training, evaluating "
                                  "and exporting need `pip install 'mnistlab[train]'`; predicting needs the run's "
                                  "ONNX export (`mnistlab export RUN --format onnx`, made where Keras is)") from None
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True):
                if not _STARTUP_NOISE.match(line):
                    sys.stderr.write(line)
    return sys.modules["keras"]


_BLAS = None


def one_blas_thread() -> Any:
    """A context in which NumPy's BLAS (OpenBLAS) runs on one thread: where mnistlab predicts and reads.

    Inference multiplies small matrices (the not-a-digit detector's convolutions over a few hundred candidate
    crops); OpenBLAS's other threads mostly spin waiting for work. Reading a 1600x600 photo cost 72.7 ms of CPU
    for 37.6 ms of wall time with its default threads, 41.9 ms of CPU and wall with one (benchmarks/read_numbers.py
    --speed 50), and on a server the other core answers another request. threadpoolctl's controller, made once,
    makes the switch cheap (9 us); without threadpoolctl installed, nothing changes.
    """
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController()
        except Exception:  # not installed, or a platform it cannot inspect: leave the threads alone
            _BLAS = False
    if _BLAS is False:
        import contextlib

        return contextlib.nullcontext()
    return _BLAS.limit(limits=1, user_api="blas")
