"""A labelled folder of pictures -> MNIST-style arrays, for `evaluate --images` and `finetune`.

The layout is that of `keras.utils.image_dataset_from_directory`: one sub-folder per class, named by the
class (`DIR/0/*.png` ... `DIR/9/*.png` for digits), any picture format `predict` reads, any size. Each
picture goes through the same preprocessing as `predict` (images.preprocess), so what is measured or
learned is what `predict` will see. A folder that cannot be used as a whole (a sub-folder that is not a
class, an empty class folder, a file that is not a picture) is an error naming the place, raised before
anything is written: a label set with holes would silently measure or teach the wrong thing. A picture that
reads but in which preprocessing finds no digit (faint ink on blotchy paper, a blank) is not such a hole: it
is what the tool does with that picture, so it is kept aside (`LabelledImages.missed`) for `evaluate` to count
as a miss and for `finetune` to name and leave out. Real handwriting by other writers holds such pictures
(a few in a hundred of faded historical records), and one of them must not stop the measurement of the rest.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import ImageError, ImageNotFoundError, NoDigitError, UsageError
from .prediction import IMAGE_SUFFIXES


@dataclass(frozen=True)
class LabelledImages:
    """Preprocessed pictures (N, 28, 28) float32 in [0, 1], their class indices (N,), and their files."""

    folder: Path
    x: np.ndarray
    y: np.ndarray
    files: tuple[Path, ...]
    # Pictures in which preprocessing found no digit: (file, class index, why), in the folder's order.
    missed: tuple[tuple[Path, int, str], ...] = ()
    # By index into x: the second input of a picture with a printed line that may be the digit's own stroke
    # (`images.preprocess_choices`), which `prediction.choose` weighs against the first.
    second: dict[int, np.ndarray] = field(default_factory=dict)

    def choices(self) -> list[list[np.ndarray]]:
        """Each picture's inputs, as `prediction.choose` takes them."""
        return [[x, self.second[i]] if i in self.second else [x] for i, x in enumerate(self.x)]

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

    from .images import preprocess_choices

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
    found = np.ones(len(files), bool)
    missed: list[tuple[Path, int, str]] = []
    second: dict[int, np.ndarray] = {}
    bar = tqdm(files, desc="reading pictures", unit="img", file=sys.stderr,
               disable=not progress or len(files) < 200 or not sys.stderr.isatty())
    for i, path in enumerate(bar):
        try:
            first, *others = preprocess_choices(path)
            x[i] = first
            if others:
                second[i] = others[0]
        except NoDigitError as exc:
            found[i] = False
            missed.append((path, labels[i], str(exc).removeprefix(f"{path}: ")))
        except ImageError as exc:
            # The label set is refused as a whole (see the module docstring), naming the picture.
            named = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
            raise ImageError(f"{named} (fix or remove that picture in the labelled folder)") from exc
    index = np.cumsum(found) - 1  # a found picture's place among the found ones
    return LabelledImages(folder, x[found], np.asarray(labels, dtype=np.int64)[found],
                          tuple(f for f, ok in zip(files, found) if ok), tuple(missed),
                          {int(index[i]): a for i, a in second.items()})


# ---------------------------------------------------------------------------------------- adding to a folder

MAX_CORRECTIONS = 10_000  # pictures a corrections folder takes (at most 5 MB each): fine-tune on them, then empty it
PREPROCESSED_DIR = ".preprocessed"  # hidden, so read_labelled_folder (and finetune) skip it
_SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "BMP": ".bmp", "WEBP": ".webp", "TIFF": ".tif"}


class CorrectionsFolder:
    """A labelled folder that pictures are added to, one at a time (the server's `--corrections DIR`).

    Each picture is saved as it came, `DIR/<class>/<time>-<hash>.<ext>`, so `finetune RUN --images DIR` reads it
    through the same preprocessing as `predict`; the 28x28 the model saw goes to `DIR/.preprocessed/<class>/`
    under the same name, for looking at. Writes are atomic and the same picture sent twice is kept once. Adding
    is safe from several threads (the server's threadpool).
    """

    def __init__(self, folder: str | os.PathLike, class_names: Sequence[str], *, limit: int | None = None,
                 param: str = "corrections"):
        import threading

        self.folder, self.class_names = Path(folder), list(class_names)
        self.limit = MAX_CORRECTIONS if limit is None else limit
        if self.folder.exists() and not self.folder.is_dir():
            raise UsageError("not a folder; give a folder to save corrected pictures in", param=param,
                             value=folder)
        unsafe = [n for n in self.class_names if not n or n.startswith(".") or "/" in n or os.sep in n]
        if unsafe:
            raise UsageError(f"class name {unsafe[0]!r} cannot be a folder name, so this run's corrections cannot "
                             "be saved in the labelled-folder layout", param=param, value=folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create it ({exc.strerror}); choose another folder", param=param,
                             value=folder) from None
        self._lock = threading.Lock()
        # Counted once here, then kept as pictures are added (not listed again on every request).
        self._counts = {name: len(_pictures(self.folder / name)) if (self.folder / name).is_dir() else 0
                        for name in self.class_names}

    def add(self, data: bytes, label: int, digit: np.ndarray) -> dict:
        """Save picture file bytes (already read by images.preprocess into `digit`) as class `label`; what was saved."""
        import hashlib
        import io
        from datetime import datetime, timezone

        from PIL import Image

        from . import fsutil
        from .errors import CorrectionsFullError
        from .images import digit_png

        if not 0 <= label < len(self.class_names):
            raise UsageError(f"not a class of this model (0 to {len(self.class_names) - 1})", param="digit",
                             value=label)
        with Image.open(io.BytesIO(data)) as im:
            suffix = _SUFFIXES.get(im.format or "", ".png")
        name = self.class_names[label]
        digest = hashlib.sha256(data).hexdigest()[:16]
        with self._lock:
            existing = sorted((self.folder / name).glob(f"*-{digest}{suffix}"))
            if existing:
                path, added = existing[0], False
            else:
                if sum(self._counts.values()) >= self.limit:
                    raise CorrectionsFullError(f"{self.folder}: the corrections folder is full ({self.limit} "
                                               "pictures); fine-tune on it (mnistlab finetune RUN --images "
                                               f"{self.folder}) and empty it, or start with another folder")
                stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
                path, added = self.folder / name / f"{stamp}-{digest}{suffix}", True
                fsutil.write_bytes(self.folder / PREPROCESSED_DIR / name / f"{path.stem}.png", digit_png(digit))
                fsutil.write_bytes(path, data)  # last: the picture finetune reads appears only once all is written
                self._counts[name] += 1
            class_pictures, pictures = self._counts[name], sum(self._counts.values())
        return {"label": name, "digit": label, "file": str(path.relative_to(self.folder)),
                "preprocessed_file": str(Path(PREPROCESSED_DIR) / name / f"{path.stem}.png"), "added": added,
                "class_pictures": class_pictures, "pictures": pictures}
