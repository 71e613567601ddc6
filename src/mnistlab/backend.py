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


# glibc's mallopt parameters (malloc.h): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
KEEP_FREED_BYTES = 16 << 20  # freed memory a process keeps for its next request instead of returning it
HEAP_BELOW_BYTES = 4 << 20  # arrays below this come from the heap (and its kept memory), not fresh mmaps
_USER_MALLOC_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")
_ALLOCATOR_SET = None


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep up to KEEP_FREED_BYTES of freed memory rather than give it back to the kernel at
    once, and to take arrays under HEAP_BELOW_BYTES from the heap; True when it was done (or already done).

    For a server answering one canvas at a time: preprocessing a 280x280 canvas makes and frees a few dozen arrays
    of 0.3 MB. With glibc's defaults the heap's freed top was returned to the kernel after every request (trimmed
    above twice the adapted mmap threshold), so every request faulted the same pages in again: 523 page faults a
    canvas, and 3.4 ms of server CPU where the same code takes 2.9 ms with 0 faults (benchmarks/serve_latency.py,
    docs/benchmarks.md "Serving speed, sixth pass"). The outputs cannot change (only where memory comes from), and
    the cost is memory a process holds between requests: at most 16 MB (RSS 117 -> 120 MB measured).

    Not a library's job anywhere we could find (Python and NumPy leave glibc's policy alone), hence ctypes; a
    libc without mallopt (musl, macOS, Windows) is left as it is, and so is a process whose user set glibc's own
    MALLOC_*_ variables: theirs win.
    """
    global _ALLOCATOR_SET
    if _ALLOCATOR_SET is not None:
        return _ALLOCATOR_SET
    _ALLOCATOR_SET = False
    if not sys.platform.startswith("linux") or any(name in os.environ for name in _USER_MALLOC_SETTINGS):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt answers 1 on success; musl's stub answers 0 and changes nothing.
    _ALLOCATOR_SET = bool(mallopt(_M_MMAP_THRESHOLD, HEAP_BELOW_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, KEEP_FREED_BYTES))
    return _ALLOCATOR_SET
