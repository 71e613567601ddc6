"""The IDX file format (LeCun's MNIST files): a validating reader and an atomic writer.

An IDX file is a 4-byte magic number (two zero bytes, a data-type code, the number of dimensions),
one big-endian uint32 size per dimension, then the values in C order, big-endian.

Compression is decided by the content, never by the name: a file that starts with the gzip magic
bytes 1f 8b is gunzipped, anything else is read as raw IDX. So a raw IDX file named `*.gz` still
loads; a file that is neither gzip nor valid IDX is a DataError that says both.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError
from ..fsutil import atomic_path

GZIP_MAGIC = b"\x1f\x8b"
MAX_DIMS = 4

# IDX data-type code -> (big-endian dtype as stored, name used in messages).
DTYPES: dict[int, tuple[np.dtype, str]] = {
    0x08: (np.dtype(">u1"), "ubyte"),
    0x09: (np.dtype(">i1"), "byte"),
    0x0B: (np.dtype(">i2"), "short"),
    0x0C: (np.dtype(">i4"), "int"),
    0x0D: (np.dtype(">f4"), "float"),
    0x0E: (np.dtype(">f8"), "double"),
}
_CODES = {dt.newbyteorder("="): code for code, (dt, _) in DTYPES.items()}
_TABLE = ", ".join(f"0x{code:02X} {name}" for code, (_, name) in DTYPES.items())


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read a gzip or raw IDX file into a native-endian array, validating header and size."""
    data, compressed = read_bytes(path)
    return parse_idx(data, path, compressed=compressed)


def read_bytes(path: str | os.PathLike, *, limit: int | None = None) -> tuple[bytes, bool]:
    """A file's content, gunzipped when it starts with the gzip magic bytes; (content, was_gzip)."""
    return unpack(read_stored(path), path, limit=limit)


def read_stored(path: str | os.PathLike) -> bytes:
    """A file's bytes as stored (compressed or not); unreadable or empty: DataError."""
    try:
        stored = Path(path).read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    if not stored:
        raise DataError(f"{path}: empty file (0 bytes); copy or download it again")
    return stored


def unpack(stored: bytes, where: str | os.PathLike, *, limit: int | None = None) -> tuple[bytes, bool]:
    """Stored bytes gunzipped when they start with the gzip magic bytes; (content, was_gzip)."""
    if stored[:2] != GZIP_MAGIC:
        return stored, False
    try:
        return gunzip(stored, where, limit=limit), True
    except DataError as e:
        raise DataError(f"{e}; copy or download the file again") from None


def gunzip(raw: bytes, where: str | os.PathLike, *, limit: int | None = None) -> bytes:
    """Decompress a (possibly multi-member) gzip stream; truncated, corrupt or over `limit` bytes: DataError."""
    parts: list[bytes] = []
    size = 0
    rest = raw
    while True:
        d = zlib.decompressobj(wbits=31)  # 31: expect a gzip header and trailer (CRC-32 and length are checked)
        try:
            part = d.decompress(rest, 0 if limit is None else limit - size + 1)
        except zlib.error as e:
            raise DataError(f"{where}: corrupt gzip stream ({e})") from None
        parts.append(part)
        size += len(part)
        if limit is not None and size > limit:
            raise DataError(f"{where}: decompresses to more than {limit} bytes; this is not the expected file")
        if not d.eof:
            raise DataError(f"{where}: truncated gzip stream: it ends before the end-of-stream marker "
                            f"({len(raw)} compressed bytes, {size} decompressed)")
        rest = d.unused_data
        if rest[:2] == GZIP_MAGIC:
            continue  # another gzip member: concatenated gzip files decompress to the concatenation
        if not rest.strip(b"\0"):
            break  # some tools pad a gzip file with zero bytes; that is not another member
        raise DataError(f"{where}: {len(rest)} bytes of trailing garbage after the gzip stream")
    return b"".join(parts)


def parse_idx(data: bytes, where: str | os.PathLike = "<bytes>", *, compressed: bool = False) -> np.ndarray:
    """Parse IDX bytes (already decompressed) into a writable native-endian array; `where` names them in errors."""
    what = "decompressed content" if compressed else "file"
    if not data:
        raise DataError(f"{where}: empty {what} (0 bytes); copy or download it again")
    if len(data) < 4:
        raise DataError(f"{where}: truncated: {len(data)} bytes, shorter than the 4-byte IDX magic number")
    if data[0] or data[1]:
        hint = ""
        if str(where).endswith(".gz") and not compressed:
            hint = " (the name ends in .gz but the file is not gzip-compressed: it lacks the 1f 8b magic bytes)"
        raise DataError(f"{where}: not an IDX file: magic number {data[:4].hex(' ')} does not start with "
                        f"two zero bytes{hint}")
    code, ndim = data[2], data[3]
    if code not in DTYPES:
        raise DataError(f"{where}: unknown IDX data type code 0x{code:02X} in the magic number; "
                        f"expected one of {_TABLE}")
    if not 1 <= ndim <= MAX_DIMS:
        raise DataError(f"{where}: IDX header declares {ndim} dimensions; expected 1 to {MAX_DIMS}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{where}: truncated: {len(data)} bytes, shorter than the {header}-byte header "
                        f"of a {ndim}-dimensional IDX file")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype, type_name = DTYPES[code]
    count = math.prod(dims)
    need, have = count * dtype.itemsize, len(data) - header
    declared = "x".join(map(str, dims)) + ("" if code == 0x08 else f" {type_name}s")
    if have < need:
        raise DataError(f"{where}: truncated: header declares {declared} = {need} bytes, "
                        f"{what} holds {have} after the {header}-byte header")
    if have > need:
        raise DataError(f"{where}: {have - need} trailing bytes: header declares {declared} = {need} bytes, "
                        f"{what} holds {have} after the {header}-byte header")
    values = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(dims)
    # astype copies: the result is writable (like keras' load_data) and native-endian.
    return values.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write an array as an IDX file, gzip-compressed when the name ends in .gz; atomic."""
    arr = np.asarray(array)
    code = _CODES.get(arr.dtype.newbyteorder("="))
    if code is None:
        raise UsageError(f"cannot write dtype {arr.dtype} as IDX; convert the array to one of "
                         "uint8, int8, int16, int32, float32, float64")
    if not 1 <= arr.ndim <= MAX_DIMS:
        raise UsageError(f"cannot write a {arr.ndim}-dimensional array as IDX; expected 1 to {MAX_DIMS} dimensions")
    if max(arr.shape) >= 2**32:
        raise UsageError(f"cannot write shape {arr.shape} as IDX: each size must be below 2**32")
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    body = np.ascontiguousarray(arr, dtype=DTYPES[code][0]).tobytes()
    with atomic_path(path) as tmp:
        if str(path).endswith(".gz"):
            # mtime=0 and no stored file name: the same array always gives the same bytes.
            with open(tmp, "wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=6) as gz:
                gz.write(header)
                gz.write(body)
        else:
            tmp.write_bytes(header + body)
