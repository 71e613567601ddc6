"""Atomic file writes: an interrupted write leaves the old file or the new one, never half of one.

Temporary files are created beside their target by `temp_beside`, with the mode an ordinary file gets
(0666 less the umask), so a renamed file has the permissions the user expects; tempfile.mkstemp's are 0600.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any, Iterator

_ATTEMPTS = 100  # 48 random bits a name: a clash is already unlikely once


def temp_beside(path: str | os.PathLike, suffix: str = ".tmp") -> tuple[int, Path]:
    """Create a new, uniquely named, empty file beside `path` honouring the umask; (open write-only fd, its path)."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(_ATTEMPTS):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: no free temporary name for {path.name} after {_ATTEMPTS} tries")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed over `path`, on error removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The suffix keeps the target's extension last: writers such as matplotlib pick the format from it.
    fd, tmp = temp_beside(path, suffix=".tmp" + path.suffix)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write `data` as indented JSON to `path` atomically."""
    write_text(path, json.dumps(data, indent=2) + "\n")


def save_arrays(path: str | os.PathLike, arrays: dict[str, Any], **scalars: Any) -> None:
    """Write named NumPy arrays and scalars to an .npz file atomically (a fitted network's weights and settings)."""
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays, **scalars)


def load_arrays(path: str | os.PathLike, scalars: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read an .npz file written by `save_arrays`: (float32 arrays by name, the named scalars present in it)."""
    import numpy as np

    with np.load(path, allow_pickle=False) as z:
        arrays = {k: np.asarray(z[k], np.float32) for k in z.files if k not in scalars}
        return arrays, {k: z[k].item() for k in scalars if k in z.files}


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory path beside `path` (not yet created); on success it replaces `path`.

    A directory cannot be renamed over another in one step, so an existing `path` is first renamed aside and
    deleted after: an interruption leaves the old directory, the new one, or the old one under a hidden name.
    """
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.{secrets.token_hex(6)}.old")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
