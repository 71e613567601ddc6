"""The project's error types: every error a user can cause is a MnistlabError."""

from __future__ import annotations


class MnistlabError(Exception):
    """An error the user caused and can fix; the CLI prints it as one line and exits 2."""


class UsageError(MnistlabError):
    """A bad argument: unknown recipe or dataset, non-positive epochs, and the like."""


class DataError(MnistlabError):
    """A data file is missing, unreadable, malformed or fails its checksum."""


class RunError(MnistlabError):
    """A run directory is missing, incomplete, incompatible or holds a bad model."""


class ImageError(MnistlabError):
    """An input image could not be read (not an image, too large, unreadable path)."""


class NoDigitError(ImageError):
    """An image was read but holds no ink that could be a digit."""
