"""Loading MNIST-like datasets: find the IDX files (or download them), verify their checksums, parse them.

`load_data` returns what keras.datasets.mnist.load_data() returns; `load_dataset` also says where the
files were found and what their checksums are, can load only some splits (evaluating needs only the test
files), and can remember files given through data_dir by copying them into the user cache, where later
calls without data_dir find them. The search order is in mnistlab.data.locate.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError
from .idx import parse_idx, read_idx, read_stored, unpack, write_idx
from .locate import DEFAULT_TIMEOUT, copy_to_cache, download, find_files, locate_dataset
from .registry import DATASETS, ROLES, SPLITS, DatasetSpec, FileSpec, get_spec, split_roles

__all__ = ["Dataset", "DatasetSpec", "FileSpec", "DATASETS", "ROLES", "SPLITS", "get_spec", "load_dataset",
           "load_data", "locate_dataset", "download", "read_idx", "write_idx"]

SOURCES = ("data-dir", "MNISTLAB_DATA", "cache", "system", "download")


@dataclass
class Dataset:
    """A loaded dataset: uint8 images (N, 28, 28) and labels (N,), where they came from, their verified checksums.

    The arrays of a split that was not asked for (see load_dataset's `splits`) are None.
    """

    spec: DatasetSpec
    directory: Path
    source: str  # one of SOURCES
    x_train: np.ndarray | None
    y_train: np.ndarray | None
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    sha256: dict[str, str]  # loaded file's name -> SHA-256 of its decompressed content, checked against the spec


def load_dataset(name: str = "mnist", data_dir: str | os.PathLike | None = None, *, splits: Sequence[str] = SPLITS,
                 download: bool = True, mirrors: Sequence[str] | None = None, timeout: float = DEFAULT_TIMEOUT,
                 remember: bool = False) -> Dataset:
    """Find (or download), verify and parse the IDX files of a dataset's `splits` ("train", "test" or both).

    `data_dir` (like $MNISTLAB_DATA) holds one folder per dataset; one that holds nothing for this dataset
    is passed over for the next place in the search order (see mnistlab.data.locate). Only the files of
    `splits` need to be there; the other split's arrays are None. With `remember`, files found through
    `data_dir` are copied into the user cache (unless it already holds the dataset) so that later calls
    find them without `data_dir`; a copy that fails is a warning on stderr, not an error.
    """
    spec = get_spec(name)
    roles = split_roles(splits)
    where = locate_dataset(spec, data_dir, roles=roles, download=download, mirrors=mirrors, timeout=timeout)
    keep = remember and where.source == "data-dir"
    arrays: dict[str, np.ndarray] = {}
    digests: dict[str, str] = {}
    stored: dict[str, tuple[Path, bytes]] = {}  # role -> (path, bytes as stored), to be remembered
    for role in roles:
        fspec = spec.files[role]
        path = where.paths[role]
        fetched = where.fetched.get(role)
        # A file downloaded just now was already decompressed and hashed: reuse both.
        again = ", or delete it to download it again" if where.source in ("cache", "download") else ""
        fix = f"replace it with a good copy of {spec.name}'s {fspec.filename}{again}"
        if fetched:
            content, compressed = fetched.content, fetched.compressed
        else:
            on_disk = read_stored(path)
            content, compressed = unpack(on_disk, path)
            if keep:
                stored[role] = (path, on_disk)
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
    for split in SPLITS:
        if f"{split}_images" not in arrays:
            continue
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise DataError(f"{spec.name}: {where.paths[f'{split}_images'].name} holds {len(images)} images but "
                            f"{where.paths[f'{split}_labels'].name} holds {len(labels)} labels")
        if len(labels) and labels.max() >= len(spec.class_names):
            raise DataError(f"{where.paths[f'{split}_labels']}: label {labels.max()} is out of range: "
                            f"{spec.name} has {len(spec.class_names)} classes (0..{len(spec.class_names) - 1})")
    if keep:
        _remember(spec, where.directory, roles, stored)
    return Dataset(spec, where.directory, where.source, arrays.get("train_images"), arrays.get("train_labels"),
                   arrays.get("test_images"), arrays.get("test_labels"), digests)


def _remember(spec: DatasetSpec, directory: Path, loaded: Sequence[str], stored: dict[str, tuple[Path, bytes]]) -> None:
    """Copy the whole verified dataset into the cache, checking the files of the splits that were not loaded.

    Only a whole dataset is copied: a cache folder holding some of the files would stop the search there
    (see locate), and a later command needing the other split would fail offline.
    """
    present = find_files(spec, directory)
    for role in ROLES:
        if role in loaded:
            continue
        if role not in present:
            return
        on_disk = read_stored(present[role])
        try:
            content, _ = unpack(on_disk, present[role])
        except DataError:
            return
        if hashlib.sha256(content).hexdigest() != spec.files[role].sha256:
            return  # not ours to report here: loading that split says what is wrong with it
        stored[role] = (present[role], on_disk)
    copy_to_cache(spec, directory, stored)


def load_data(dataset: str = "mnist", data_dir: str | os.PathLike | None = None
              ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_test, y_test)) as uint8 arrays, like keras.datasets.mnist.load_data()."""
    data = load_dataset(dataset, data_dir, remember=data_dir is not None)
    return (data.x_train, data.y_train), (data.x_test, data.y_test)
