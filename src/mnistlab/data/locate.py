"""Where a dataset's files are, and downloading them when they are nowhere.

Search order (each root holds one folder per dataset: ROOT/mnist/, ROOT/fashion-mnist/):

1. `data_dir` (the CLI's --data-dir), 2. $MNISTLAB_DATA, 3. the user cache
(platformdirs.user_cache_dir("mnistlab"), so $XDG_CACHE_HOME on Linux), 4. SYSTEM_ROOT
(/usr/share/datasets, where Debian's dataset packages install), 5. download from the mirrors into the cache.

The first folder that holds any of a dataset's files is the one used: the files asked for (all four, or
only those of some splits: `roles`) must be there and valid, and a missing or bad one is a DataError naming
it, never a silent move to the next place. A data_dir or $MNISTLAB_DATA that holds nothing for this dataset
is passed over. The cache is mnistlab's own folder, so files missing there (an interrupted download) are
downloaded into it when downloading is allowed.

Downloading is a step of its own (`download`), separate from parsing: each file is streamed to a
temporary file beside its final place, its decompressed SHA-256 checked, and only then renamed into
place. A mirror that is down, answers with an error or serves a corrupt file is passed over for the next;
what went wrong is printed once a later mirror has served the file, and is otherwise part of the one-line
DataError, which also says where to put the files.

`copy_to_cache` copies files found through data_dir into the cache, so later calls find them without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Mapping, NamedTuple, Sequence

from ..errors import DataError, DataNotFoundError, UsageError
from ..fsutil import temp_beside, write_bytes
from .idx import GZIP_MAGIC, gunzip
from .registry import ROLES, DatasetSpec

SYSTEM_ROOT = Path("/usr/share/datasets")
ENV_DATA = "MNISTLAB_DATA"
ENV_MIRRORS = "MNISTLAB_MIRRORS"
DEFAULT_TIMEOUT = 30.0
# Far above any MNIST-like file (Fashion-MNIST's largest is 26 MB packed, 47 MB unpacked); stops a bad mirror
# from filling the disk or memory.
MAX_DOWNLOAD_BYTES = 256 * 2**20

_LABELS = {"data-dir": "--data-dir", "MNISTLAB_DATA": f"${ENV_DATA}", "cache": "the user cache",
           "system": "the system folder"}


class Fetched(NamedTuple):
    """A file downloaded and verified by this process; its content is kept so it is not read or hashed again."""

    path: Path
    content: bytes  # decompressed
    compressed: bool
    sha256: str


@dataclass(frozen=True)
class Location:
    """Where a dataset was found: the source (see load_dataset), its folder, the path of each asked-for role's file."""

    source: str
    directory: Path
    paths: dict[str, Path]
    fetched: dict[str, Fetched] = field(default_factory=dict)


class DownloadError(DataError):
    """No mirror gave a good copy of a file; `detail` says what each mirror did."""

    def __init__(self, spec: DatasetSpec, detail: str) -> None:
        super().__init__(f"{spec.name}: {detail}")
        self.detail = detail


class _MirrorFailed(Exception):
    """One mirror could not supply one file; the message is the reason."""

    def __init__(self, reason: str, *, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.unreachable = unreachable  # refused or timed out: no use asking it for the other files


def cache_root() -> Path:
    """The user cache folder for mnistlab (XDG-aware on Linux); holds one folder per dataset."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("mnistlab", appauthor=False))


def search_path(spec: DatasetSpec, data_dir: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The (source, folder) places searched for a dataset, in order."""
    places = []
    if data_dir is not None:
        places.append(("data-dir", _root(data_dir, "data_dir", spec) / spec.name))
    env = os.environ.get(ENV_DATA, "").strip()
    if env:
        places.append(("MNISTLAB_DATA", _root(env, f"${ENV_DATA}", spec) / spec.name))
    places.append(("cache", cache_root() / spec.name))
    places.append(("system", SYSTEM_ROOT / spec.name))
    return places


def _root(value: str | os.PathLike, where: str, spec: DatasetSpec) -> Path:
    # A mistyped data_dir would otherwise be passed over silently and end in a download.
    root = Path(value).expanduser()
    if not root.is_dir():
        problem = f"no such directory; give the folder that holds {spec.name}/ (with the IDX files inside)"
        if where.startswith("$"):
            raise UsageError(f"{where} {value}: {problem}")
        raise UsageError(problem, param=where, value=value)  # the CLI names its flag, --data-dir
    return root


def find_files(spec: DatasetSpec, directory: Path) -> dict[str, Path]:
    """role -> path for each of the dataset's files present in `directory`, as `.gz` or uncompressed."""
    found = {}
    for role, fspec in spec.files.items():
        for name in fspec.names:
            # lexists: a dangling link is a file the user put there, to be reported, not skipped.
            if os.path.lexists(directory / name):
                found[role] = directory / name
                break
    return found


def mirror_list(spec: DatasetSpec, mirrors: Sequence[str] | None = None) -> list[str]:
    """The base URLs to download from: `mirrors`, else $MNISTLAB_MIRRORS (comma-separated), else the spec's."""
    if mirrors is None:
        env = os.environ.get(ENV_MIRRORS, "")
        mirrors = [m.strip() for m in env.split(",") if m.strip()] or list(spec.mirrors)
        where = f"${ENV_MIRRORS}" if env.strip() else "mirror"
    else:
        mirrors, where = list(mirrors), "mirror"
    for url in mirrors:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https", "file"):
            raise UsageError(f"{where} {url!r} is not an http(s) or file URL; give base URLs like https://host/mnist/")
    return mirrors


def locate_dataset(spec: DatasetSpec, data_dir: str | os.PathLike | None = None, *, roles: Sequence[str] = ROLES,
                   download: bool = True, mirrors: Sequence[str] | None = None, timeout: float = DEFAULT_TIMEOUT,
                   progress: bool = True) -> Location:
    """Find the files of `roles` along the search path (see the module docstring), downloading them if allowed."""
    roles = [role for role in ROLES if role in roles]
    places = search_path(spec, data_dir)
    point = _point(spec)
    for source, directory in places:
        present = find_files(spec, directory)  # any of the dataset's files, asked for or not, claims the folder
        if not present:
            continue
        found = {role: path for role, path in present.items() if role in roles}
        missing = [role for role in roles if role not in found]
        if not missing:
            return Location(source, directory, found)
        if source == "cache" and download:
            try:
                fetched = _download(spec, directory, missing, mirrors, timeout, progress)
            except DownloadError as e:
                raise DataNotFoundError(f"{spec.name}: {directory} ({_LABELS[source]}) lacks {_names(spec, missing)} "
                                        f"and {e.detail}; put the missing files there, {point}") from None
            return Location("download", directory, found | {r: f.path for r, f in fetched.items()}, fetched)
        held = ", ".join(p.name for p in present.values())
        raise DataNotFoundError(f"{spec.name}: {directory} ({_LABELS[source]}) holds {held} "
                                f"but not {_names(spec, missing)} (.gz or uncompressed); a dataset folder must hold "
                                f"all the files loaded from it: add the missing ones or remove the folder")

    where = _where(places)
    put = f"put the IDX files ({_names(spec, roles)}) in one of those folders, {point}"
    if not download:
        raise DataNotFoundError(f"{spec.name}: not found in {where}, and downloading is off; {put}")
    directory = cache_root() / spec.name
    try:
        fetched = _download(spec, directory, roles, mirrors, timeout, progress)
    except DownloadError as e:
        raise DataNotFoundError(f"{spec.name}: not found in {where}, and {e.detail}; {put}") from None
    return Location("download", directory, {r: f.path for r, f in fetched.items()}, fetched)


def copy_to_cache(spec: DatasetSpec, directory: Path, stored: Mapping[str, tuple[Path, bytes]]) -> list[Path]:
    """Copy verified files (role -> (path, bytes as stored)) into the user cache where it lacks them; the copies made.

    Nothing is copied when the cache holds all of the dataset's files; a file it holds is never rewritten.
    Copying is a convenience: when it fails (read-only home, full disk) the cache is left as it was and
    one warning line is printed instead.
    """
    cache = cache_root() / spec.name
    present = find_files(spec, cache)
    if len(present) == len(ROLES):
        return []
    todo = [(path, data) for role, (path, data) in stored.items() if role not in present]
    if not todo:
        return []
    created = not os.path.lexists(cache)
    copied: list[Path] = []
    try:
        cache.mkdir(parents=True, exist_ok=True)
        for path, data in todo:
            write_bytes(cache / path.name, data)  # as stored: a .gz stays compressed
            copied.append(cache / path.name)
    except OSError as e:
        # All or nothing: a few files would claim the cache folder (see the search order) without serving.
        for path in copied:
            with contextlib.suppress(OSError):
                path.unlink()
        if created:
            with contextlib.suppress(OSError):
                cache.rmdir()
        print(f"mnistlab: warning: could not copy the verified {spec.name} files from {directory} into {cache} "
              f"({e.strerror or e}); the data loaded fine, but later commands need --data-dir again "
              f"(or ${ENV_DATA} set to {directory.parent})", file=sys.stderr)
        return []
    print(f"mnistlab: copied the verified {spec.name} files from {directory} into {cache}; later commands find "
          f"them there without --data-dir", file=sys.stderr)
    return copied


def _names(spec: DatasetSpec, roles: Sequence[str]) -> str:
    return ", ".join(spec.files[r].filename for r in roles)


def _point(spec: DatasetSpec) -> str:
    return (f"or point mnistlab at a folder holding {spec.name}/ (--data-dir DIR on the command line, "
            f"data_dir= in Python, or ${ENV_DATA})")


def _where(places: list[tuple[str, Path]]) -> str:
    parts = [f"{_LABELS[s]} {p}" if s in ("data-dir", "MNISTLAB_DATA") else str(p) for s, p in places]
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def download(spec: DatasetSpec, directory: str | os.PathLike, *, roles: Sequence[str] = ROLES,
             mirrors: Sequence[str] | None = None, timeout: float = DEFAULT_TIMEOUT,
             progress: bool = True) -> dict[str, Fetched]:
    """Download a dataset's files into `directory`, each verified by SHA-256 before it is moved into place."""
    return _download(spec, Path(directory), roles, mirrors, timeout, progress)


def _download(spec: DatasetSpec, directory: Path, roles: Sequence[str], mirrors: Sequence[str] | None,
              timeout: float, progress: bool) -> dict[str, Fetched]:
    bases = mirror_list(spec, mirrors)
    created = not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(spec, f"cannot create the download folder {directory} ({e.strerror or e})") from None
    try:
        return _download_each(spec, directory, roles, bases, timeout, progress)
    except DownloadError:
        if created:
            with contextlib.suppress(OSError):
                directory.rmdir()  # only if still empty: files already verified stay for the next try
        raise


def _download_each(spec: DatasetSpec, directory: Path, roles: Sequence[str], bases: list[str], timeout: float,
                   progress: bool) -> dict[str, Fetched]:
    fetched = {}
    unreachable: dict[str, str] = {}  # base URL -> why; a down mirror would cost a timeout for every file
    for role in roles:
        fspec = spec.files[role]
        reasons, failures = [], []  # every mirror's outcome for the error; the real failures to print
        for base in bases:
            url = base.rstrip("/") + "/" + fspec.filename
            if base in unreachable:
                reasons.append(f"{url}: skipped, {unreachable[base]} for an earlier file")
                continue
            try:
                fetched[role] = _fetch(url, fspec.filename, fspec.sha256, directory, timeout, progress)
                break
            except _MirrorFailed as e:
                reason = " ".join(str(e).split())  # one line, whatever the server or the OS said
                reasons.append(f"{url}: {reason}")
                failures.append(f"{url}: {reason}")
                if e.unreachable:
                    unreachable[base] = reason
        else:
            # Not printed: the one-line error says it all, and says where to put the files.
            raise DownloadError(spec, f"downloading {fspec.filename} failed ({'; '.join(reasons) or 'no mirrors'})")
        if progress:
            for failure in failures:  # the file came from a later mirror: worth knowing that these are broken
                print(f"mnistlab: {failure}", file=sys.stderr)
    return fetched


def _fetch(url: str, filename: str, sha256: str, directory: Path, timeout: float, progress: bool) -> Fetched:
    """Download one file from one URL into `directory`, verified; any problem is a _MirrorFailed."""
    fd, tmp = temp_beside(directory / filename, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            _stream(url, out, filename, timeout, progress)
        raw = tmp.read_bytes()
        if not raw:
            raise _MirrorFailed("empty response")
        compressed = raw[:2] == GZIP_MAGIC
        try:
            content = gunzip(raw, url, limit=MAX_DOWNLOAD_BYTES) if compressed else raw
        except DataError as e:
            raise _MirrorFailed(str(e).removeprefix(f"{url}: ")) from None
        digest = hashlib.sha256(content).hexdigest()
        if digest != sha256:
            raise _MirrorFailed(f"sha256 mismatch: got {digest}, expected {sha256}")
        # A mirror that serves the file uncompressed gets it stored under the uncompressed name.
        target = directory / (filename if compressed or not filename.endswith(".gz") else filename[: -len(".gz")])
        os.replace(tmp, target)
        return Fetched(target, content, compressed, digest)
    finally:
        tmp.unlink(missing_ok=True)


def _stream(url: str, out: BinaryIO, filename: str, timeout: float, progress: bool) -> None:
    """Copy the body at `url` into `out` with a progress bar on stderr; any network problem is a _MirrorFailed."""
    from tqdm import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "mnistlab"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.strip().isdigit() else None
            if total is not None and total > MAX_DOWNLOAD_BYTES:
                raise _MirrorFailed(f"serves {total} bytes, more than the {MAX_DOWNLOAD_BYTES} allowed")
            received = 0
            with tqdm(total=total, desc=filename, unit="B", unit_scale=True, unit_divisor=1024,
                      file=sys.stderr, disable=not progress) as bar:
                while chunk := response.read(1 << 16):
                    received += len(chunk)
                    if received > MAX_DOWNLOAD_BYTES:
                        raise _MirrorFailed(f"sent more than the {MAX_DOWNLOAD_BYTES} bytes allowed")
                    out.write(chunk)
                    bar.update(len(chunk))
            if total is not None and received < total:
                raise _MirrorFailed(f"connection closed after {received} of {total} bytes")
    except urllib.error.HTTPError as e:
        raise _MirrorFailed(f"HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        # URLError (other than HTTPError) comes from opening the connection: DNS, refused, unreachable, timeout.
        if isinstance(e.reason, TimeoutError):
            raise _MirrorFailed(f"no answer within {timeout:g} s", unreachable=True) from None
        raise _MirrorFailed(str(e.reason), unreachable=True) from None
    except TimeoutError:
        raise _MirrorFailed(f"no answer within {timeout:g} s", unreachable=True) from None
    except (OSError, http.client.HTTPException, ValueError) as e:
        raise _MirrorFailed(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__) from None
