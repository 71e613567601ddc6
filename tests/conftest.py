"""Shared fixtures: the real MNIST data directory and one small trained run.

The session is hermetic about the user cache: $XDG_CACHE_HOME points to a fresh temporary folder, set here
at import (before any test runs) so the tests and every subprocess they start inherit it, and no test reads or
writes the developer's ~/.cache/mnistlab. Helpers shared by the test files live in helpers.py.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("MNISTLAB_DATA") or REPO.parent / "shared" / "data").resolve()
ARTIFACTS = REPO / "test-artifacts"
if (DATA_DIR / "mnist").is_dir():  # subprocesses find the data where the tests do, never in a user cache
    os.environ.setdefault("MNISTLAB_DATA", str(DATA_DIR))

CACHE_HOME = Path(tempfile.mkdtemp(prefix="mnistlab-tests-cache-"))
os.environ["XDG_CACHE_HOME"] = str(CACHE_HOME)
atexit.register(shutil.rmtree, CACHE_HOME, ignore_errors=True)
# Matplotlib keeps its font cache under $XDG_CACHE_HOME too. Built once here, so that no subprocess builds it
# (and, were that slow, says so on stderr, where the CLI tests expect exactly one line).
subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], check=True, capture_output=True)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding mnist/ (from $MNISTLAB_DATA, else ../shared/data beside the repo)."""
    if not (DATA_DIR / "mnist").is_dir():
        pytest.fail(f"MNIST not found in {DATA_DIR}/mnist; set MNISTLAB_DATA to the folder holding mnist/")
    return DATA_DIR


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where tests keep files worth looking at after the run (screenshots, plots)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, data_dir):
    """A `cnn` run trained on 6000 real MNIST images for two epochs (about 10 s, ~93% accurate), shared by the tests."""
    from mnistlab.training import train

    out = tmp_path_factory.mktemp("runs") / "cnn-small"
    return train("cnn", "mnist", epochs=2, limit=6000, seed=1, out=out, data_dir=data_dir, verbose=0,
                 log=lambda msg: None)


@pytest.fixture(scope="session")
def corrections_dir(tmp_path_factory) -> Path:
    """Where the session's real server saves corrected pictures (serve --corrections)."""
    return tmp_path_factory.mktemp("corrections") / "mine"


@pytest.fixture(scope="session")
def server(trained_run, tmp_path_factory, corrections_dir):
    """The real `mnistlab serve` of the shared run in a subprocess, on a port it chose (--port 0), for the session.

    One server for every test that needs a real one (the abuse tests, the browser, --port 0): each start imports
    TensorFlow and loads the model. It saves corrections to `corrections_dir`. Its log must hold no traceback when
    the session ends (helpers.served).
    """
    from helpers import served

    log = tmp_path_factory.mktemp("serve") / "server.log"
    with served(trained_run.path, log, port=0, args=("--corrections", str(corrections_dir))) as s:
        yield s
