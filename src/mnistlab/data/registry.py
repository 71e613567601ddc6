"""The known datasets in one table: file names, checksums, shapes, class names and mirrors."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping, Sequence

from ..errors import UsageError

ROLES = ("train_images", "train_labels", "test_images", "test_labels")
SPLITS = ("train", "test")  # each split is two roles: "<split>_images" and "<split>_labels"


@dataclass(frozen=True)
class FileSpec:
    """One IDX file of a dataset: its standard name, the SHA-256 of its decompressed content, its array shape."""

    filename: str
    sha256: str
    shape: tuple[int, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The names this file may have in a folder: the uncompressed one first, then the standard `.gz` one."""
        if self.filename.endswith(".gz"):
            return (self.filename[: -len(".gz")], self.filename)
        return (self.filename,)


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: its name, its four files by role (see ROLES), class names and download mirrors (base URLs)."""

    name: str
    files: Mapping[str, FileSpec]
    class_names: tuple[str, ...]
    mirrors: tuple[str, ...]

    def __post_init__(self) -> None:
        if set(self.files) != set(ROLES):
            raise ValueError(f"dataset {self.name!r}: files must have exactly the roles {ROLES}, "
                             f"got {tuple(self.files)}")
        # Read-only and in ROLES order, so iterating a spec's files is the same everywhere.
        object.__setattr__(self, "files", MappingProxyType({role: self.files[role] for role in ROLES}))
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "mirrors", tuple(self.mirrors))


def _mnist_like(name: str, sha256: dict[str, str], class_names: tuple[str, ...], mirrors: tuple[str, ...],
                train: int = 60000, test: int = 10000) -> DatasetSpec:
    """A spec with the standard MNIST file names and shapes (Fashion-MNIST uses the same layout)."""
    files = {
        "train_images": FileSpec("train-images-idx3-ubyte.gz", sha256["train_images"], (train, 28, 28)),
        "train_labels": FileSpec("train-labels-idx1-ubyte.gz", sha256["train_labels"], (train,)),
        "test_images": FileSpec("t10k-images-idx3-ubyte.gz", sha256["test_images"], (test, 28, 28)),
        "test_labels": FileSpec("t10k-labels-idx1-ubyte.gz", sha256["test_labels"], (test,)),
    }
    return DatasetSpec(name, files, class_names, mirrors)


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        _mnist_like(
            "mnist",
            {
                "train_images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                "train_labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                "test_images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                "test_labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            },
            tuple(str(d) for d in range(10)),
            # torchvision's mirror, then the CVDF mirror that TensorFlow's tutorials used.
            ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        ),
        _mnist_like(
            "fashion-mnist",
            {
                "train_images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                "train_labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                "test_images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                "test_labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            },
            ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
            ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        ),
    ]
}


def get_spec(name: str) -> DatasetSpec:
    """The spec of a known dataset; an unknown name is a UsageError listing the known ones."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise UsageError(f"unknown dataset {name!r}; choose one of: {', '.join(sorted(DATASETS))}") from None


def split_roles(splits: Sequence[str]) -> tuple[str, ...]:
    """The roles (in ROLES order) of the files that hold the given splits; a bad `splits` is a UsageError."""
    if isinstance(splits, str):
        problem = "a string, not a sequence of split names"
    elif not splits:
        problem = "empty"
    else:
        unknown = [s for s in splits if s not in SPLITS]
        problem = f"unknown split {unknown[0]!r}" if unknown else ""
    if problem:
        raise UsageError(f"{problem}; give a non-empty sequence of {' and '.join(map(repr, SPLITS))}, "
                         f"e.g. splits=('test',)", param="splits", value=splits)
    return tuple(role for role in ROLES if role.split("_")[0] in splits)
