"""Loading MNIST-like datasets: find the IDX files (or download them), verify their checksums, parse them.

`load_data` returns what keras.datasets.mnist.load_data() returns; `load_dataset` also says where the
files were found and what their checksums are. The search order is in mnistlab.data.locate.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError
from .idx import parse_idx, read_bytes, read_idx, write_idx
from .locate import DEFAULT_TIMEOUT, download, locate_dataset
from .registry import DATASETS, ROLES, DatasetSpec, FileSpec, get_spec

__all__ = ["Dataset", "DatasetSpec", "FileSpec", "DATASETS", "ROLES", "get_spec", "load_dataset", "load_data",
           "locate_dataset", "download", "read_idx", "write_idx"]

SOURCES = ("data-dir", "MNISTLAB_DATA", "cache", "system", "download")


@dataclass
class Dataset:
    """A loaded dataset: uint8 images (N, 28, 28) and labels (N,), where they came from, their verified checksums."""

    spec: DatasetSpec
    directory: Path
    source: str  # one of SOURCES
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    sha256: dict[str, str]  # file name -> SHA-256 of its decompressed content, checked against the spec


def load_dataset(name: str = "mnist", data_dir: str | os.PathLike | None = None, *, download: bool = True,
                 mirrors: Sequence[str] | None = None, timeout: float = DEFAULT_TIMEOUT) -> Dataset:
    """Find (or download), verify and parse a dataset's four IDX files.

    `data_dir` (like $MNISTLAB_DATA) holds one folder per dataset; one that holds nothing for this dataset
    is passed over for the next place in the search order (see mnistlab.data.locate).
    """
    spec = get_spec(name)
    where = locate_dataset(spec, data_dir, download=download, mirrors=mirrors, timeout=timeout)
    arrays: dict[str, np.ndarray] = {}
    digests: dict[str, str] = {}
    for role, fspec in spec.files.items():
        path = where.paths[role]
        fetched = where.fetched.get(role)
        # A file downloaded just now was already decompressed and hashed: reuse both.
        again = ", or delete it to download it again" if where.source in ("cache", "download") else ""
        fix = f"replace it with a good copy of {spec.name}'s {fspec.filename}{again}"
        content, compressed = (fetched.content, fetched.compressed) if fetched else read_bytes(path)
        try:
            array = parse_idx(content, path, compressed=compressed)
        except DataError as exc:
            raise DataError(f"{exc}; {fix}") from exc
        digest = fetched.sha256 if fetched else hashlib.sha256(content).hexdigest()
        if digest != fspec.sha256:
            raise DataError(f"{path}: sha256 mismatch: expected {fspec.sha256}, got {digest}; the file is damaged "
                            f"or is not {spec.name}'s {fspec.filename}: {fix}")
        if array.dtype != np.uint8 or array.shape != fspec.shape:
            raise DataError(f"{path}: holds a {array.dtype} array of shape {array.shape}; {spec.name} expects "
                            f"uint8 {fspec.shape}: {fix}")
        arrays[role] = array
        digests[path.name] = digest
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise DataError(f"{spec.name}: {where.paths[f'{split}_images'].name} holds {len(images)} images but "
                            f"{where.paths[f'{split}_labels'].name} holds {len(labels)} labels")
        if len(labels) and labels.max() >= len(spec.class_names):
            raise DataError(f"{where.paths[f'{split}_labels']}: label {labels.max()} is out of range: "
                            f"{spec.name} has {len(spec.class_names)} classes (0..{len(spec.class_names) - 1})")
    return Dataset(spec, where.directory, where.source, arrays["train_images"], arrays["train_labels"],
                   arrays["test_images"], arrays["test_labels"], digests)


def load_data(dataset: str = "mnist", data_dir: str | os.PathLike | None = None
              ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_test, y_test)) as uint8 arrays, like keras.datasets.mnist.load_data()."""
    data = load_dataset(dataset, data_dir)
    return (data.x_train, data.y_train), (data.x_test, data.y_test)
