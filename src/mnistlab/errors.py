"""The project's error types: every error a user can cause is a MnistlabError.

Each is also the standard exception a Python caller would expect (scikit-learn's `NotFittedError` is a
`ValueError` in the same way): a bad argument is a `ValueError`, a missing file a `FileNotFoundError`.
A `UsageError` names the Python parameter (`limit=70000`); the CLI, the one place that speaks in flags,
renders the same error with the flag (`--limit 70000`) through `UsageError.param` and `.value`.
"""

from __future__ import annotations

import os
from typing import Any


class MnistlabError(Exception):
    """An error the user caused and can fix; the CLI prints it as one line and exits 2."""


class UsageError(MnistlabError, ValueError):
    """A bad argument: unknown recipe or dataset, non-positive epochs, and the like.

    With `param`, the message reads "param=value: problem"; `param`, `value` and `problem` stay available
    so the CLI can name its flag instead.
    """

    def __init__(self, problem: str, *, param: str | None = None, value: Any = None) -> None:
        self.problem, self.param, self.value = problem, param, value
        super().__init__(f"{param}={_show(value)}: {problem}" if param else problem)


def _show(value: Any) -> str:
    return repr(os.fspath(value)) if isinstance(value, os.PathLike) else repr(value)


class DataError(MnistlabError, ValueError):
    """A data file is unreadable, malformed or fails its checksum."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A dataset's files are nowhere to be found (and could not be downloaded)."""


class RunError(MnistlabError, ValueError):
    """A run directory is incomplete, incompatible or holds a bad model."""


class RunNotFoundError(RunError, FileNotFoundError):
    """A run directory, or a file a run needs, does not exist."""


class ImageError(MnistlabError, ValueError):
    """An input image could not be read (not an image, too large, unreadable path)."""


class ImageNotFoundError(ImageError, FileNotFoundError):
    """An input image file does not exist."""


class NoDigitError(ImageError):
    """An image was read but holds no ink that could be a digit."""


class DependencyError(MnistlabError, ImportError):
    """A command needs a package this installation lacks (Keras on a predict-only install, a converter)."""


class CorrectionsFullError(MnistlabError, OSError):
    """A corrections folder holds as many pictures as it may (labelled.MAX_CORRECTIONS)."""
