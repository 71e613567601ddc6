"""mnistlab.fsutil: atomic writes give files the umask's usual mode, and a failed write changes nothing."""

from __future__ import annotations

import os
import stat

import pytest

from mnistlab.fsutil import atomic_path, temp_beside, write_bytes, write_json, write_text


@pytest.fixture
def umask():
    """os.umask, for a test to set the process umask with; the old one is restored afterwards."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def mode(path: os.PathLike) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _with_atomic_path(path, text):
    with atomic_path(path) as tmp:
        tmp.write_text(text)


WRITERS = {
    "write_text": lambda path: write_text(path, "text\n"),
    "write_json": lambda path: write_json(path, {"a": 1}),
    "write_bytes": lambda path: write_bytes(path, b"\x00\x01"),
    "atomic_path": lambda path: _with_atomic_path(path, "text\n"),
}


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
@pytest.mark.parametrize("writer", WRITERS)
def test_written_files_get_the_umask_mode(tmp_path, umask, writer, mask, expected):
    umask(mask)
    path = tmp_path / "sub" / "out.json"
    WRITERS[writer](path)
    assert mode(path) == expected
    WRITERS[writer](path)  # replacing a file gives the new one the same mode
    assert mode(path) == expected
    assert os.listdir(path.parent) == ["out.json"]  # no temporary file left beside it


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"old": True})
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_path(path) as tmp:
            tmp.write_text("half of a new fi")
            raise RuntimeError("interrupted")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["metrics.json"]
    # The same when the writer fails before writing anything, and when there was no old file.
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(tmp_path / "new.png"):
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_temp_beside_makes_a_new_hidden_file_keeping_the_suffix(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "plot.png"
    fd, tmp = temp_beside(target, suffix=".tmp.png")
    os.close(fd)
    fd2, tmp2 = temp_beside(target, suffix=".tmp.png")
    os.close(fd2)
    assert tmp != tmp2 and tmp.parent == tmp2.parent == tmp_path
    assert tmp.name.startswith(".plot.png.") and tmp.name.endswith(".tmp.png")
    assert tmp.stat().st_size == 0 and mode(tmp) == 0o644
    assert not target.exists()


def test_temp_beside_never_reuses_an_existing_name(tmp_path, monkeypatch):
    """A name that exists (a clash of random names) is passed over, never opened or truncated."""
    import secrets

    names = iter(["aaaaaaaaaaaa", "aaaaaaaaaaaa", "bbbbbbbbbbbb"])
    monkeypatch.setattr(secrets, "token_hex", lambda n: next(names))
    fd, first = temp_beside(tmp_path / "x")
    os.write(fd, b"kept")
    os.close(fd)
    fd, second = temp_beside(tmp_path / "x")
    os.close(fd)
    assert (first.name, second.name) == (".x.aaaaaaaaaaaa.tmp", ".x.bbbbbbbbbbbb.tmp")
    assert first.read_bytes() == b"kept"
