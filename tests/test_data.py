"""mnistlab.data: the IDX reader/writer, the dataset registry, the search order, checksums and downloads.

Downloads go to real HTTP servers on 127.0.0.1 (tests/_httpserver.py); no test touches the internet,
the user's cache or the real system folder unless it says so. Real MNIST comes from $MNISTLAB_DATA
(the `data_dir` fixture of conftest.py).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from _httpserver import MirrorServer, closed_port_url, silent_port_url

from mnistlab.data import DATASETS, ROLES, DatasetSpec, FileSpec, get_spec, load_data, load_dataset, read_idx, write_idx
from mnistlab.data import locate
from mnistlab.errors import DataError, DataNotFoundError, UsageError

FASHION_DIR = locate.SYSTEM_ROOT / "fashion-mnist"  # read before the `isolated` fixture moves SYSTEM_ROOT
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Point the cache and the system folder into tmp_path, unset $MNISTLAB_DATA, make stray downloads fail locally."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("MNISTLAB_DATA", raising=False)
    monkeypatch.setenv("MNISTLAB_MIRRORS", closed_port_url())
    monkeypatch.setattr(locate, "SYSTEM_ROOT", tmp_path / "system")
    assert locate.cache_root() == tmp_path / "xdg-cache" / "mnistlab"


# ---------------------------------------------------------------------------------------------- a tiny dataset

class Tiny:
    """A small MNIST-shaped dataset written with write_idx: 300 training and 60 test images."""

    def __init__(self, folder: Path) -> None:
        rng = np.random.default_rng(0)
        self.arrays = {
            "train_images": rng.integers(0, 256, (300, 28, 28), dtype=np.uint8),
            "train_labels": rng.integers(0, 10, 300, dtype=np.uint8),
            "test_images": rng.integers(0, 256, (60, 28, 28), dtype=np.uint8),
            "test_labels": rng.integers(0, 10, 60, dtype=np.uint8),
        }
        names = {"train_images": "train-images-idx3-ubyte.gz", "train_labels": "train-labels-idx1-ubyte.gz",
                 "test_images": "t10k-images-idx3-ubyte.gz", "test_labels": "t10k-labels-idx1-ubyte.gz"}
        self.gz: dict[str, bytes] = {}  # file name -> gzip bytes as served by a mirror
        files = {}
        for role, array in self.arrays.items():
            write_idx(folder / names[role], array)
            self.gz[names[role]] = (folder / names[role]).read_bytes()
            # The checksum comes from the standard library's gunzip, not from the code under test.
            digest = hashlib.sha256(gzip.decompress(self.gz[names[role]])).hexdigest()
            files[role] = FileSpec(names[role], digest, array.shape)
        self.spec = DatasetSpec("tiny", files, tuple(str(d) for d in range(10)), ("http://127.0.0.1:9/",))

    def install(self, root: Path, roles=ROLES, *, uncompressed: bool = False) -> Path:
        """Put the given files in root/tiny/ and return that folder."""
        folder = root / "tiny"
        folder.mkdir(parents=True, exist_ok=True)
        for role in roles:
            name = self.spec.files[role].filename
            if uncompressed:
                (folder / name.removesuffix(".gz")).write_bytes(gzip.decompress(self.gz[name]))
            else:
                (folder / name).write_bytes(self.gz[name])
        return folder

    def check(self, data) -> None:
        """Assert a loaded Dataset holds exactly the arrays written."""
        for attr, role in [("x_train", "train_images"), ("y_train", "train_labels"),
                           ("x_test", "test_images"), ("y_test", "test_labels")]:
            np.testing.assert_array_equal(getattr(data, attr), self.arrays[role])
            assert getattr(data, attr).dtype == np.uint8


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory) -> Tiny:
    return Tiny(tmp_path_factory.mktemp("tiny-source"))


@pytest.fixture
def tiny(tiny_files, monkeypatch) -> Tiny:
    """The tiny dataset, registered as 'tiny' for this test."""
    monkeypatch.setitem(DATASETS, "tiny", tiny_files.spec)
    return tiny_files


def one_line(error: BaseException) -> str:
    message = str(error)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------------------------- IDX format

BIG_ENDIAN = {np.uint8: ">u1", np.int8: ">i1", np.int16: ">i2", np.int32: ">i4", np.float32: ">f4", np.float64: ">f8"}
CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype, shape", [(np.uint8, (7, 28, 28)), (np.int8, (5,)), (np.int16, (3, 4)),
                                          (np.int32, (2, 3, 4, 5)), (np.float32, (6, 2)), (np.float64, (4, 1, 3))])
def test_idx_round_trip(tmp_path, dtype, shape, suffix):
    rng = np.random.default_rng(1)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
        array.flat[0], array.flat[-1] = info.min, info.max
    else:
        array = rng.normal(0, 1e3, shape).astype(dtype)
        array.flat[0] = np.finfo(dtype).max
    path = tmp_path / f"x-idx{len(shape)}{suffix}"
    write_idx(path, array)

    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == shape and back.flags.writeable
    np.testing.assert_array_equal(back, array)
    # The bytes on disk are the IDX layout itself, checked without the reader: magic, big-endian sizes and values.
    stored = path.read_bytes()
    assert (stored[:2] == b"\x1f\x8b") == (suffix == ".gz")
    raw = gzip.decompress(stored) if suffix else stored
    header = bytes([0, 0, CODES[dtype], len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
    assert raw == header + array.astype(BIG_ENDIAN[dtype]).tobytes()
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left beside it


def test_read_idx_hand_built_big_endian_file(tmp_path):
    path = tmp_path / "shorts"
    path.write_bytes(b"\x00\x00\x0b\x02" + struct.pack(">II", 2, 2) + struct.pack(">4h", 1, -2, 258, 32767))
    np.testing.assert_array_equal(read_idx(path), np.array([[1, -2], [258, 32767]], dtype=np.int16))


def test_compression_is_detected_by_content_not_name(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "raw", array)
    write_idx(tmp_path / "packed.gz", array)
    # A raw IDX file named .gz, and a gzip file without the .gz name, both read correctly.
    shutil.copy(tmp_path / "raw", tmp_path / "raw-named.gz")
    shutil.copy(tmp_path / "packed.gz", tmp_path / "packed-no-suffix")
    for name in ["raw-named.gz", "packed-no-suffix"]:
        np.testing.assert_array_equal(read_idx(tmp_path / name), array)
    # Concatenated gzip members decompress to the concatenation, as gzip(1) does.
    body = gzip.decompress((tmp_path / "packed.gz").read_bytes())
    (tmp_path / "two-members.gz").write_bytes(gzip.compress(body[:10]) + gzip.compress(body[10:]))
    np.testing.assert_array_equal(read_idx(tmp_path / "two-members.gz"), array)


def test_write_idx_replaces_atomically_and_refuses_what_idx_cannot_hold(tmp_path):
    path = tmp_path / "x.gz"
    write_idx(path, np.zeros((2, 2), np.uint8))
    write_idx(path, np.ones((3,), np.int32))
    np.testing.assert_array_equal(read_idx(path), np.ones(3, np.int32))
    before = path.read_bytes()
    for bad, message in [(np.zeros(3, np.int64), "cannot write dtype int64"),
                         (np.zeros(3, bool), "cannot write dtype bool"),
                         (np.zeros((1, 1, 1, 1, 1), np.uint8), "5-dimensional"),
                         (np.uint8(3), "0-dimensional")]:
        with pytest.raises(UsageError, match=message):
            write_idx(path, bad)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


def _idx(code: int, dims: tuple[int, ...], body: bytes) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + body


GOOD = _idx(0x08, (4, 3), bytes(range(12)))

BAD_FILES = [
    # (name, content, the one-line message's expected part)
    ("empty-idx1-ubyte", b"", "empty file (0 bytes)"),
    ("t10k-images-idx3-ubyte", _idx(0x08, (10000, 28, 28), bytes(1200000)),
     "truncated: header declares 10000x28x28 = 7840000 bytes, file holds 1200000 after the 16-byte header"),
    ("t10k-images-idx3-ubyte.gz", gzip.compress(_idx(0x08, (10000, 28, 28), bytes(1200000))),
     "truncated: header declares 10000x28x28 = 7840000 bytes, decompressed content holds 1200000"),
    ("ints", _idx(0x0C, (2, 3), bytes(20)), "truncated: header declares 2x3 ints = 24 bytes, file holds 20"),
    ("trailing", GOOD + b"xyz", "3 trailing bytes: header declares 4x3 = 12 bytes, file holds 15"),
    ("trailing.gz", gzip.compress(GOOD + b"\0"), "1 trailing bytes"),
    ("wrong-magic", b"\x01\x00" + GOOD[2:], "not an IDX file: magic number 01 00 08 02 does not start with two zero"),
    ("a-png", b"\x89PNG\r\n\x1a\n" + bytes(40), "not an IDX file: magic number 89 50 4e 47"),
    ("no-dims", b"\x00\x00\x08\x00" + bytes(8), "declares 0 dimensions; expected 1 to 4"),
    ("five-dims", _idx(0x08, (1, 1, 1, 1, 1), b"\x00"), "declares 5 dimensions; expected 1 to 4"),
    ("bad-code", _idx(0x0A, (4,), bytes(4)), "unknown IDX data type code 0x0A"),
    ("short-magic", b"\x00\x00", "truncated: 2 bytes, shorter than the 4-byte IDX magic number"),
    ("short-header", b"\x00\x00\x08\x03" + bytes(6), "shorter than the 16-byte header"),
    ("not-gzip-idx1-ubyte.gz", b"hello, this is not a gzip file\n", "the name ends in .gz but the file is not gzip"),
    ("cut-idx1-ubyte.gz", gzip.compress(GOOD)[:-12], "truncated gzip stream"),
    ("garbage-after.gz", gzip.compress(GOOD) + b"junk", "4 bytes of trailing garbage after the gzip stream"),
]


@pytest.mark.parametrize("name, content, expected", BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_malformed_files_are_data_errors_naming_the_file(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = one_line(info.value)
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_corrupt_gzip_and_unreadable_paths_are_data_errors(tmp_path):
    packed = bytearray(gzip.compress(bytes(range(256)) * 64))
    packed[len(packed) // 2] ^= 0xFF  # inside the deflate data: bad block or CRC mismatch
    (tmp_path / "flipped.gz").write_bytes(packed)
    with pytest.raises(DataError, match=r"flipped\.gz: corrupt gzip stream .*; copy or download the file again"):
        read_idx(tmp_path / "flipped.gz")
    with pytest.raises(DataError, match="cannot read: Is a directory"):
        read_idx(tmp_path)
    with pytest.raises(DataError, match="cannot read: No such file"):
        read_idx(tmp_path / "absent")


# ---------------------------------------------------------------------------------------------- registry

def test_registry_describes_mnist_and_fashion_mnist():
    mnist, fashion = get_spec("mnist"), get_spec("fashion-mnist")
    assert sorted(DATASETS) == ["fashion-mnist", "mnist"]
    assert mnist.class_names == tuple("0123456789")
    assert fashion.class_names[0] == "T-shirt/top" and fashion.class_names[9] == "Ankle boot"
    assert len(fashion.class_names) == 10
    assert [f.filename for f in mnist.files.values()] == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                                          "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert mnist.files["train_images"].shape == (60000, 28, 28) and mnist.files["test_labels"].shape == (10000,)
    assert mnist.files["train_images"].names == ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz")
    assert mnist.mirrors[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    with pytest.raises(AttributeError):
        mnist.name = "other"  # frozen
    with pytest.raises(UsageError) as info:
        get_spec("x")
    assert str(info.value) == "unknown dataset 'x'; choose one of: fashion-mnist, mnist"


# ---------------------------------------------------------------------------------------------- real data

def test_load_data_reads_real_mnist_like_keras(data_dir):
    t0 = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = load_data("mnist", data_dir)
    took = time.perf_counter() - t0
    assert (x_train.shape, y_train.shape) == ((60000, 28, 28), (60000,))
    assert (x_test.shape, y_test.shape) == ((10000, 28, 28), (10000,))
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert np.bincount(y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == MNIST_TEST_COUNTS
    assert x_train.min() == 0 and x_train.max() == 255 and x_train.flags.writeable
    print(f"load_data('mnist') took {took:.2f} s")


def test_mnistlab_data_env_names_the_root(monkeypatch, data_dir):
    monkeypatch.setenv("MNISTLAB_DATA", str(data_dir))
    data = load_dataset("mnist", download=False)
    assert data.source == "MNISTLAB_DATA" and data.directory == data_dir / "mnist"
    assert data.sha256 == {f.filename: f.sha256 for f in get_spec("mnist").files.values()}


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason=f"{FASHION_DIR} absent (Debian package dataset-fashion-mnist)")
def test_fashion_mnist_from_the_system_folder(monkeypatch):
    monkeypatch.setattr(locate, "SYSTEM_ROOT", FASHION_DIR.parent)
    data = load_dataset("fashion-mnist", download=False)
    assert data.source == "system" and data.directory == FASHION_DIR
    assert data.x_train.shape == (60000, 28, 28) and data.x_test.shape == (10000, 28, 28)
    assert np.bincount(data.y_train).tolist() == [6000] * 10
    assert np.bincount(data.y_test).tolist() == [1000] * 10
    assert data.spec.class_names[data.y_train[0]] == "Ankle boot"  # the first Fashion-MNIST training image


def test_a_modified_byte_is_a_checksum_error_naming_the_file(tmp_path, data_dir):
    copy = tmp_path / "data" / "mnist"
    copy.mkdir(parents=True)
    for f in (data_dir / "mnist").iterdir():
        (copy / f.name).symlink_to(f)
    labels = bytearray(gzip.decompress((data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    labels[8] = 3 if labels[8] != 3 else 4  # the first test label: still a valid label, still valid IDX
    bad = copy / "t10k-labels-idx1-ubyte.gz"
    bad.unlink()
    bad.write_bytes(gzip.compress(bytes(labels)))
    with pytest.raises(DataError) as info:
        load_dataset("mnist", tmp_path / "data")
    message = one_line(info.value)
    assert message.startswith(f"{bad}: sha256 mismatch: expected ff7bcfd416de")
    assert hashlib.sha256(bytes(labels)).hexdigest() in message


# ---------------------------------------------------------------------------------------------- search order

def test_search_order_data_dir_env_cache_system(tiny, tmp_path, monkeypatch):
    roots = {name: tmp_path / name for name in ["given", "env"]}
    for root in roots.values():
        tiny.install(root)
    cache = tiny.install(locate.cache_root())
    system = tiny.install(locate.SYSTEM_ROOT)
    monkeypatch.setenv("MNISTLAB_DATA", str(roots["env"]))

    expected = [("data-dir", roots["given"] / "tiny"), ("MNISTLAB_DATA", roots["env"] / "tiny"),
                ("cache", cache), ("system", system)]
    for source, folder in expected:
        data = load_dataset("tiny", roots["given"] if source == "data-dir" else None, download=False)
        assert (data.source, data.directory) == (source, folder)
        tiny.check(data)
        if source == "MNISTLAB_DATA":
            monkeypatch.delenv("MNISTLAB_DATA")
        elif source == "cache":
            shutil.rmtree(cache)
    shutil.rmtree(system)
    with pytest.raises(DataError) as info:
        load_dataset("tiny", download=False)
    assert one_line(info.value) == (
        f"tiny: not found in {cache} or {system}, and downloading is off; put the IDX files "
        "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
        "t10k-labels-idx1-ubyte.gz) in one of those folders, or point mnistlab at a folder holding tiny/ "
        "(--data-dir DIR on the command line, data_dir= in Python, or $MNISTLAB_DATA)")


def test_roots_without_this_dataset_are_passed_over(tiny, tmp_path, monkeypatch):
    given, env = tmp_path / "given", tmp_path / "env"
    (given / "mnist").mkdir(parents=True)  # another dataset's folder
    (env / "tiny").mkdir(parents=True)  # this dataset's folder, empty
    (env / "tiny" / "README").write_text("unrelated\n")
    monkeypatch.setenv("MNISTLAB_DATA", str(env))
    folder = tiny.install(locate.SYSTEM_ROOT)
    data = load_dataset("tiny", given, download=False)
    assert (data.source, data.directory) == ("system", folder)


@pytest.mark.parametrize("partial", ["data-dir", "MNISTLAB_DATA", "cache", "system"])
def test_first_place_with_any_file_wins_and_a_missing_sibling_is_an_error(tiny, tmp_path, monkeypatch, partial):
    roots = {"data-dir": tmp_path / "given", "MNISTLAB_DATA": tmp_path / "env", "cache": locate.cache_root(),
             "system": locate.SYSTEM_ROOT}
    order = list(roots)
    for source in order[order.index(partial) + 1:]:
        tiny.install(roots[source])  # complete copies further down the list must not be used
    folder = tiny.install(roots[partial], ["train_images", "test_labels"])
    roots["data-dir"].mkdir(exist_ok=True)
    roots["MNISTLAB_DATA"].mkdir(exist_ok=True)
    monkeypatch.setenv("MNISTLAB_DATA", str(roots["MNISTLAB_DATA"]))
    with pytest.raises(DataError) as info:
        load_dataset("tiny", roots["data-dir"], download=False)
    message = one_line(info.value)
    assert message.startswith(f"tiny: {folder} (")
    assert "but not train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz (.gz or uncompressed)" in message


def test_a_bad_file_in_the_first_place_is_an_error_not_a_fall_through(tiny, tmp_path, monkeypatch):
    folder = tiny.install(tmp_path / "given")
    tiny.install(tmp_path / "env")
    monkeypatch.setenv("MNISTLAB_DATA", str(tmp_path / "env"))
    images = folder / "t10k-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(DataError, match=f"^{images}: truncated gzip stream"):
        load_dataset("tiny", tmp_path / "given")


def test_uncompressed_files_are_accepted(tiny, tmp_path):
    folder = tiny.install(tmp_path, uncompressed=True)
    data = load_dataset("tiny", tmp_path, download=False)
    tiny.check(data)
    assert data.directory == folder
    assert data.sha256 == {f.filename.removesuffix(".gz"): f.sha256 for f in tiny.spec.files.values()}


def test_a_missing_data_dir_is_a_usage_error(tiny, tmp_path, monkeypatch):
    with pytest.raises(UsageError) as info:
        load_dataset("tiny", tmp_path / "nope")
    assert (info.value.param, info.value.value) == ("data_dir", tmp_path / "nope")  # the CLI names --data-dir
    assert one_line(info.value) == (f"data_dir={str(tmp_path / 'nope')!r}: no such directory; give the folder "
                                    "that holds tiny/ (with the IDX files inside)")
    monkeypatch.setenv("MNISTLAB_DATA", str(tmp_path / "nope"))
    with pytest.raises(UsageError, match=r"\$MNISTLAB_DATA .*nope: no such directory"):
        load_dataset("tiny")


def test_images_and_labels_must_agree(tiny, tmp_path, monkeypatch):
    folder = tiny.install(tmp_path)
    files = dict(tiny.spec.files)
    # A test-label file with 59 labels (checksum and shape as the spec says) next to 60 test images.
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", tiny.arrays["test_labels"][:59])
    files["test_labels"] = FileSpec("t10k-labels-idx1-ubyte.gz", hashlib.sha256(
        gzip.decompress((folder / "t10k-labels-idx1-ubyte.gz").read_bytes())).hexdigest(), (59,))
    monkeypatch.setitem(DATASETS, "tiny", DatasetSpec("tiny", files, tiny.spec.class_names, ()))
    with pytest.raises(DataError, match="tiny: t10k-images-idx3-ubyte.gz holds 60 images but "
                                        "t10k-labels-idx1-ubyte.gz holds 59 labels"):
        load_dataset("tiny", tmp_path)
    # Five class names cannot describe labels 0..9.
    tiny.install(tmp_path)
    monkeypatch.setitem(DATASETS, "tiny", DatasetSpec("tiny", tiny.spec.files, tuple("abcde"), ()))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz: label 9 is out of range: tiny has 5 classes"):
        load_dataset("tiny", tmp_path)


# ---------------------------------------------------------------------------------------------- splits

def test_the_test_split_alone_needs_only_the_t10k_files(tiny, tmp_path):
    folder = tiny.install(tmp_path, ["test_images", "test_labels"])
    data = load_dataset("tiny", tmp_path, splits=("test",), download=False)
    assert (data.source, data.directory) == ("data-dir", folder)
    assert data.x_train is None and data.y_train is None
    np.testing.assert_array_equal(data.x_test, tiny.arrays["test_images"])
    np.testing.assert_array_equal(data.y_test, tiny.arrays["test_labels"])
    assert data.sha256 == {f.filename: f.sha256 for r, f in tiny.spec.files.items() if r.startswith("test")}
    # The training files are neither needed nor read: a damaged one does not stop evaluation.
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"not even gzip")
    assert load_dataset("tiny", tmp_path, splits=["test"], download=False).x_train is None

    (folder / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError) as info:
        load_dataset("tiny", tmp_path, download=False)  # the default loads both splits
    assert (f"tiny: {folder} (--data-dir) holds t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz but not "
            "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz (.gz or uncompressed)") in one_line(info.value)
    with pytest.raises(DataError, match="but not train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz"):
        load_data("tiny", tmp_path)


def test_only_the_files_of_the_splits_asked_for_are_downloaded(tiny):
    with MirrorServer() as server:
        data = load_dataset("tiny", splits=("test",), mirrors=[server.mirror("good", tiny.gz)])
    assert data.source == "download" and data.x_train is None
    np.testing.assert_array_equal(data.y_test, tiny.arrays["test_labels"])
    assert sorted(server.requests) == ["/good/t10k-images-idx3-ubyte.gz", "/good/t10k-labels-idx1-ubyte.gz"]


@pytest.mark.parametrize("splits", ["test", (), ("validation",), ("train", "dev")])
def test_bad_splits_are_usage_errors(tiny, tmp_path, splits):
    tiny.install(tmp_path)
    with pytest.raises(UsageError) as info:
        load_dataset("tiny", tmp_path, splits=splits)
    message = one_line(info.value)
    assert (info.value.param, info.value.value) == ("splits", splits)
    assert message.startswith(f"splits={splits!r}: ")
    assert message.endswith("; give a non-empty sequence of 'train' and 'test', e.g. splits=('test',)")


# ---------------------------------------------------------------------------------------------- downloads

def _cut_gzip(tiny: Tiny) -> dict[str, bytes]:
    return {name: body[: len(body) // 2] for name, body in tiny.gz.items()}


def _corrupted(tiny: Tiny) -> dict[str, bytes]:
    """Well-formed gzip whose content differs from the real file in one byte."""
    out = {}
    for name, body in tiny.gz.items():
        raw = bytearray(gzip.decompress(body))
        raw[-1] ^= 1
        out[name] = gzip.compress(bytes(raw))
    return out


def test_download_falls_through_every_kind_of_bad_mirror(tiny, monkeypatch, capsys):
    with MirrorServer() as server:
        mirrors = [closed_port_url(),
                   server.mirror("e404", {}),
                   server.mirror("e500", tiny.gz, status=500),
                   server.mirror("corrupt", _corrupted(tiny)),
                   server.mirror("short", tiny.gz, truncate_to=100),
                   server.mirror("cut", _cut_gzip(tiny)),
                   server.mirror("good", tiny.gz)]
        monkeypatch.setenv("MNISTLAB_MIRRORS", ",".join(mirrors))
        data = load_dataset("tiny")
        tiny.check(data)
        cache = locate.cache_root() / "tiny"
        assert (data.source, data.directory) == ("download", cache)
        assert sorted(p.name for p in cache.iterdir()) == sorted(tiny.gz)  # no .part file left behind
        assert all((cache / name).read_bytes() == body for name, body in tiny.gz.items())
        assert data.sha256 == {f.filename: f.sha256 for f in tiny.spec.files.values()}
        first = "train-images-idx3-ubyte.gz"
        assert [r for r in server.requests if r.endswith(first)] == [
            f"/{m}/{first}" for m in ["e404", "e500", "corrupt", "short", "cut", "good"]]
        err = capsys.readouterr().err
        for reason in ["Connection refused", "HTTP 404", "HTTP 500", "sha256 mismatch",
                       "connection closed after 100 of", "truncated gzip stream"]:
            assert reason in err

        # Downloaded once: the next load finds the files in the cache without asking any mirror.
        served = len(server.requests)
        again = load_dataset("tiny")
        assert (again.source, again.directory) == ("cache", cache)
        assert len(server.requests) == served


def test_a_silent_mirror_times_out_and_the_next_is_used(tiny, capsys):
    with MirrorServer() as server, silent_port_url() as silent:
        data = load_dataset("tiny", mirrors=[silent, server.mirror("good", tiny.gz)], timeout=0.5)
    assert data.source == "download"
    tiny.check(data)
    # Waited for once, then skipped for the other three files instead of costing a timeout each.
    assert capsys.readouterr().err.count("no answer within 0.5 s") == 1


def test_a_mirror_serving_uncompressed_files_is_stored_uncompressed(tiny):
    raw = {name: gzip.decompress(body) for name, body in tiny.gz.items()}
    with MirrorServer() as server:
        data = load_dataset("tiny", mirrors=[server.mirror("raw", raw)])
    tiny.check(data)
    assert sorted(p.name for p in data.directory.iterdir()) == sorted(n.removesuffix(".gz") for n in raw)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600)])
def test_downloaded_files_get_the_umask_mode(tiny, mask, expected):
    old = os.umask(mask)
    try:
        with MirrorServer() as server:
            data = load_dataset("tiny", mirrors=[server.mirror("good", tiny.gz)])
    finally:
        os.umask(old)
    assert {stat.S_IMODE(p.stat().st_mode) for p in data.directory.iterdir()} == {expected}


def test_all_mirrors_failing_says_where_to_put_the_files(tiny, tmp_path, capsys):
    (tmp_path / "given").mkdir()
    refused = closed_port_url()
    with MirrorServer() as server:
        missing = server.mirror("e404", {})
        with pytest.raises(DataError) as info:
            load_dataset("tiny", tmp_path / "given", mirrors=[refused, missing])
    message = one_line(info.value)
    cache = locate.cache_root() / "tiny"
    assert message.startswith(f"tiny: not found in --data-dir {tmp_path / 'given' / 'tiny'}, {cache} or "
                              f"{locate.SYSTEM_ROOT / 'tiny'}, and downloading train-images-idx3-ubyte.gz failed (")
    assert f"{refused}train-images-idx3-ubyte.gz: [Errno 111] Connection refused; " in message
    assert f"{missing}train-images-idx3-ubyte.gz: HTTP 404 Not Found)" in message
    assert message.endswith("; put the IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                            "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in one of those folders, "
                            "or point mnistlab at a folder holding tiny/ (--data-dir DIR on the command line, "
                            "data_dir= in Python, or $MNISTLAB_DATA)")
    assert not cache.exists()  # neither a partial file nor an empty folder left behind
    assert capsys.readouterr().err == ""  # the reasons are in the error, not printed line by line as well


POINT = ("or point mnistlab at a folder holding mnist/ (--data-dir DIR on the command line, data_dir= in Python, "
         "or $MNISTLAB_DATA)")


def test_offline_without_mnist_anywhere_is_one_line_that_says_where_to_point(monkeypatch, capsys):
    """No network (two mirrors refusing connections, like MNIST's two mirrors offline) and no copy anywhere."""
    down = [closed_port_url(), closed_port_url()]
    monkeypatch.setenv("MNISTLAB_MIRRORS", ",".join(down))
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("mnist")
    assert isinstance(info.value, FileNotFoundError)
    message = one_line(info.value)
    assert message.startswith(f"mnist: not found in {locate.cache_root() / 'mnist'} or "
                              f"{locate.SYSTEM_ROOT / 'mnist'}, and downloading train-images-idx3-ubyte.gz failed (")
    for url in down:
        assert f"{url}train-images-idx3-ubyte.gz: [Errno 111] Connection refused" in message
    assert message.endswith("; put the IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                            f"t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in one of those folders, {POINT}")
    assert capsys.readouterr().err == ""
    assert not (locate.cache_root() / "mnist").exists()
    # With downloading off the fix is the same.
    with pytest.raises(DataError) as info:
        load_dataset("mnist", download=False)
    assert "and downloading is off; put the IDX files (" in one_line(info.value)
    assert str(info.value).endswith(f") in one of those folders, {POINT}")


def test_a_mirror_failure_is_printed_only_when_a_later_mirror_serves_the_file(tiny, capsys):
    refused = closed_port_url()
    train_only = {name: body for name, body in tiny.gz.items() if name.startswith("train")}
    with MirrorServer() as server:
        with pytest.raises(DataError) as info:
            load_dataset("tiny", mirrors=[refused, server.mirror("train", train_only)])
    message = one_line(info.value)
    assert "downloading t10k-images-idx3-ubyte.gz failed (" in message
    assert f"{refused}t10k-images-idx3-ubyte.gz: skipped, [Errno 111] Connection refused for an earlier file" in message
    assert message.endswith(POINT.replace("mnist/", "tiny/"))
    # The refusal is printed once, because the train files then came from the second mirror; the failures
    # for the t10k file, which no mirror served, are only in the error.
    err = capsys.readouterr().err
    assert err.count("mnistlab: ") == 1
    assert f"mnistlab: {refused}train-images-idx3-ubyte.gz: [Errno 111] Connection refused" in err


def test_an_interrupted_download_resumes_in_the_cache(tiny):
    cache = tiny.install(locate.cache_root(), ["train_images", "train_labels"])
    with pytest.raises(DataError, match=f"tiny: {cache} \\(the user cache\\) holds .* but not t10k-images"):
        load_dataset("tiny", download=False)
    with MirrorServer() as server:
        data = load_dataset("tiny", mirrors=[server.mirror("good", tiny.gz)])
    tiny.check(data)
    assert data.source == "download"
    assert sorted(server.requests) == ["/good/t10k-images-idx3-ubyte.gz", "/good/t10k-labels-idx1-ubyte.gz"]


def test_mirrors_must_be_urls(tiny, monkeypatch):
    monkeypatch.setenv("MNISTLAB_MIRRORS", "ftp://example.org/mnist/")
    with pytest.raises(UsageError, match=r"\$MNISTLAB_MIRRORS 'ftp://example.org/mnist/' is not an http\(s\)"):
        load_dataset("tiny")


def test_download_real_mnist_from_a_local_mirror(capsys, data_dir):
    spec = get_spec("mnist")
    files = {f.filename: (data_dir / "mnist" / f.filename).read_bytes() for f in spec.files.values()}
    with MirrorServer() as server:
        t0 = time.perf_counter()
        data = load_dataset("mnist", mirrors=[closed_port_url(), server.mirror("mnist", files)])
        took = time.perf_counter() - t0
    cache = locate.cache_root() / "mnist"
    assert (data.source, data.directory) == ("download", cache)
    assert data.sha256 == {f.filename: f.sha256 for f in spec.files.values()}
    assert np.bincount(data.y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(data.y_test).tolist() == MNIST_TEST_COUNTS
    assert all((cache / name).read_bytes() == body for name, body in files.items())
    assert capsys.readouterr().err.count("Connection refused") == 1
    print(f"download + load of MNIST from 127.0.0.1 took {took:.2f} s")


# ---------------------------------------------------------------------------------------------- remembering data_dir

def _copied_line(name: str, folder: Path) -> str:
    return (f"mnistlab: copied the verified {name} files from {folder} into {locate.cache_root() / name}; "
            "later commands find them there without --data-dir\n")


def test_remember_copies_data_dir_files_into_the_cache(tiny, tmp_path, capsys):
    given = tiny.install(tmp_path / "given")
    cache = locate.cache_root() / "tiny"
    old = os.umask(0o022)
    try:
        data = load_dataset("tiny", tmp_path / "given", download=False, remember=True)
    finally:
        os.umask(old)
    tiny.check(data)
    assert (data.source, data.directory) == ("data-dir", given)  # loaded from where it was found
    assert capsys.readouterr().err == _copied_line("tiny", given)
    assert sorted(p.name for p in cache.iterdir()) == sorted(tiny.gz)  # the .gz files as they are, no temp file
    assert all((cache / name).read_bytes() == body for name, body in tiny.gz.items())
    assert {stat.S_IMODE(p.stat().st_mode) for p in cache.iterdir()} == {0o644}

    # Later, without data_dir and offline: found in the cache.
    again = load_dataset("tiny", download=False)
    assert (again.source, again.directory) == ("cache", cache)
    tiny.check(again)
    # Remembering again finds a complete copy: nothing is rewritten, nothing printed.
    inodes = {p.name: p.stat().st_ino for p in cache.iterdir()}
    load_dataset("tiny", tmp_path / "given", download=False, remember=True)
    assert {p.name: p.stat().st_ino for p in cache.iterdir()} == inodes
    assert capsys.readouterr().err == ""


def test_remember_real_mnist_then_load_data_offline(data_dir, monkeypatch, capsys):
    """The README's set-up: train with --data-dir once; later commands and load_data() find MNIST offline."""
    first = load_dataset("mnist", data_dir, remember=True)
    assert first.source == "data-dir"
    assert capsys.readouterr().err == _copied_line("mnist", data_dir / "mnist")
    monkeypatch.setenv("MNISTLAB_MIRRORS", closed_port_url())  # no network: any download attempt would fail
    (x_train, y_train), (x_test, y_test) = load_data()
    assert np.bincount(y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == MNIST_TEST_COUNTS
    assert load_dataset(download=False).source == "cache"


def test_nothing_is_remembered_unless_asked_for_and_given_through_data_dir(tiny, tmp_path, monkeypatch, capsys):
    tiny.install(tmp_path / "given")
    load_dataset("tiny", tmp_path / "given", download=False)  # remember=False
    monkeypatch.setenv("MNISTLAB_DATA", str(tmp_path / "given"))
    assert load_dataset("tiny", download=False, remember=True).source == "MNISTLAB_DATA"  # not through data_dir
    assert not locate.cache_root().exists()
    assert capsys.readouterr().err == ""


def test_remember_leaves_files_already_in_the_cache_as_they_are(tiny, tmp_path, capsys):
    given = tiny.install(tmp_path / "given")
    # A complete copy (uncompressed): nothing is added beside it.
    cache = tiny.install(locate.cache_root(), uncompressed=True)
    before = {p.name: (p.stat().st_ino, p.read_bytes()) for p in cache.iterdir()}
    load_dataset("tiny", tmp_path / "given", remember=True)
    assert {p.name: (p.stat().st_ino, p.read_bytes()) for p in cache.iterdir()} == before
    assert capsys.readouterr().err == ""

    # Part of a copy (an interrupted download): only the files it lacks are copied beside the ones it has.
    shutil.rmtree(cache)
    tiny.install(locate.cache_root(), ["train_images", "train_labels"], uncompressed=True)
    before = {p.name: p.stat().st_ino for p in cache.iterdir()}
    load_dataset("tiny", tmp_path / "given", remember=True)
    assert capsys.readouterr().err == _copied_line("tiny", given)
    assert {p.name: p.stat().st_ino for p in cache.iterdir() if p.name in before} == before
    assert sorted(p.name for p in cache.iterdir()) == sorted(["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"])
    tiny.check(load_dataset("tiny", download=False))


def test_remember_after_loading_one_split_copies_the_whole_verified_dataset(tiny, tmp_path, capsys):
    given = tiny.install(tmp_path / "given")
    data = load_dataset("tiny", tmp_path / "given", splits=("test",), remember=True)
    assert data.x_train is None
    assert capsys.readouterr().err == _copied_line("tiny", given)
    cache = locate.cache_root() / "tiny"
    assert sorted(p.name for p in cache.iterdir()) == sorted(tiny.gz)  # the train files too, checked first
    tiny.check(load_dataset("tiny", download=False))  # so a later command needing the train split works offline


def test_remember_copies_nothing_from_a_folder_holding_one_split(tiny, tmp_path, capsys):
    tiny.install(tmp_path / "given", ["test_images", "test_labels"])
    load_dataset("tiny", tmp_path / "given", splits=("test",), remember=True)
    # A cache folder holding some files would stop the search there and fail a later command offline.
    assert capsys.readouterr().err == ""
    assert not (locate.cache_root() / "tiny").exists()


def test_remember_copies_nothing_when_an_unloaded_file_is_damaged(tiny, tmp_path, capsys):
    given = tiny.install(tmp_path / "given")
    damaged = next(p for p in given.iterdir() if p.name.startswith("train-images"))
    damaged.write_bytes(gzip.compress(b"\0\0\x08\x03" + b"\1" * 40))
    load_dataset("tiny", tmp_path / "given", splits=("test",), remember=True)
    assert capsys.readouterr().err == ""
    assert not (locate.cache_root() / "tiny").exists()


def test_an_unwritable_cache_is_a_warning_not_an_error(tiny, tmp_path, monkeypatch, capsys):
    given = tiny.install(tmp_path / "given")
    # A file where the cache folder should be: mkdir fails even for root, like a read-only home.
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not-a-folder"))
    tiny.check(load_dataset("tiny", tmp_path / "given", remember=True))
    err = capsys.readouterr().err
    cache = locate.cache_root() / "tiny"
    assert err.count("\n") == 1
    assert err.startswith(f"mnistlab: warning: could not copy the verified tiny files from {given} into {cache} (")
    assert err.endswith(f"later commands need --data-dir again (or $MNISTLAB_DATA set to {tmp_path / 'given'})\n")


def test_a_copy_failing_half_way_leaves_the_cache_as_it_was(tiny, tmp_path, monkeypatch, capsys):
    tiny.install(tmp_path / "given")
    calls = []

    def full_disk(path, data):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        locate_write_bytes(path, data)

    locate_write_bytes = locate.write_bytes
    monkeypatch.setattr(locate, "write_bytes", full_disk)
    tiny.check(load_dataset("tiny", tmp_path / "given", remember=True))
    assert "(No space left on device); the data loaded fine" in capsys.readouterr().err
    # Two files had been copied: removed again, so a partial copy does not claim the cache folder.
    assert not (locate.cache_root() / "tiny").exists()
