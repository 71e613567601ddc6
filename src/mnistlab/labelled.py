"""A labelled folder of pictures -> MNIST-style arrays, for `evaluate --images` and `finetune`.

The layout is that of `keras.utils.image_dataset_from_directory`: one sub-folder per class, named by the
class (`DIR/0/*.png` ... `DIR/9/*.png` for digits), any picture format `predict` reads, any size. Each
picture goes through the same preprocessing as `predict` (images.preprocess), so what is measured or
learned is what `predict` will see. A folder that cannot be used as a whole (a sub-folder that is not a
class, an empty class folder, a picture that cannot be read or holds no digit) is an error naming the
place, raised before anything is written: a label set with holes would silently measure or teach the
wrong thing.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import ImageError, ImageNotFoundError, UsageError
from .prediction import IMAGE_SUFFIXES


@dataclass(frozen=True)
class LabelledImages:
    """Preprocessed pictures (N, 28, 28) float32 in [0, 1], their class indices (N,), and their files."""

    folder: Path
    x: np.ndarray
    y: np.ndarray
    files: tuple[Path, ...]

    def per_class(self, classes: int) -> list[int]:
        """How many pictures each class has."""
        return np.bincount(self.y, minlength=classes).tolist()


def _pictures(folder: Path) -> list[Path]:
    # Hidden files are skipped as in predict (macOS "._name.png" metadata, .thumbnails/).
    return sorted(f for f in folder.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()
                  and not any(part.startswith(".") for part in f.relative_to(folder).parts))


def read_labelled_folder(folder: str | os.PathLike, class_names: Sequence[str], *, param: str = "images",
                         progress: bool = True) -> LabelledImages:
    """Read DIR/<class>/* pictures (the Keras layout) into MNIST-style arrays with their class indices."""
    from tqdm import tqdm

    from .images import preprocess

    folder = Path(folder)
    if not folder.exists():
        raise ImageNotFoundError(f"{folder}: no such folder; give a folder with one sub-folder of pictures per class")
    if not folder.is_dir():
        raise UsageError("not a folder; give a folder with one sub-folder of pictures per class", param=param,
                         value=folder)
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    index = {name: i for i, name in enumerate(class_names)}
    shown = ", ".join(class_names) if len(class_names) <= 10 else ", ".join(class_names[:10]) + ", ..."
    if not subfolders:
        raise UsageError(f"holds no class folders; put each picture in a sub-folder named by its class ({shown})",
                         param=param, value=folder)
    files: list[Path] = []
    labels: list[int] = []
    for sub in subfolders:
        if sub.name not in index:
            raise UsageError(f"{sub.name!r} is not a class of this model ({shown}); rename or remove {sub}",
                             param=param, value=folder)
        found = _pictures(sub)
        if not found:
            raise UsageError(f"class folder {sub} holds no pictures ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                             "add some or remove the folder", param=param, value=folder)
        files.extend(found)
        labels.extend([index[sub.name]] * len(found))
    x = np.zeros((len(files), 28, 28), np.float32)
    bar = tqdm(files, desc="reading pictures", unit="img", file=sys.stderr,
               disable=not progress or len(files) < 200 or not sys.stderr.isatty())
    for i, path in enumerate(bar):
        try:
            x[i] = preprocess(path)
        except ImageError as exc:
            # The label set is refused as a whole (see the module docstring), naming the picture.
            named = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
            raise ImageError(f"{named} (fix or remove that picture in the labelled folder)") from exc
    return LabelledImages(folder, x, np.asarray(labels, dtype=np.int64), tuple(files))
