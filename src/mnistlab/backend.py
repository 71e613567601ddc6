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
