"""Shared fixtures: the real MNIST data directory and one small trained run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("MNISTLAB_DATA") or REPO.parent / "shared" / "data").resolve()
ARTIFACTS = REPO / "test-artifacts"


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
