"""Helpers shared by the test files: ports, the real CLI and server in subprocesses, pictures, run copies."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping

import numpy as np
from PIL import Image, ImageFilter

import mnistlab

HOST = "127.0.0.1"
# The folder that holds the mnistlab package the tests import: subprocesses import the same one.
SRC = Path(mnistlab.__file__).resolve().parents[1]
SERVING = re.compile(r"serving .* at http://(?:\[[^\]]*\]|[^\s:/]+):(\d+)/")


# ------------------------------------------------------------------------------------- the command line


def cli_env(env: Mapping[str, str] | None = None, data_dir: Path | None = None) -> dict[str, str]:
    """The environment for a `mnistlab` subprocess: this one, quiet TensorFlow, this package, then `env`."""
    path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p)
    out = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": path}
    if data_dir is not None:
        out["MNISTLAB_DATA"] = str(data_dir)
    return {**out, **(env or {})}


def run_cli_process(*args: object, cwd: Path | None = None, env: Mapping[str, str] | None = None,
                    data_dir: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the real `mnistlab` command line (`python -m mnistlab.cli ARGS`) in a subprocess and wait for it.

    For what only a process shows: start-up imports, signals, a closed pipe, exit through the interpreter.
    Each call pays for its own imports (a TensorFlow import is seconds), so everything else uses run_cli.
    """
    return subprocess.run([sys.executable, "-m", "mnistlab.cli", *map(str, args)], capture_output=True, text=True,
                          env=cli_env(env, data_dir), cwd=cwd, timeout=timeout)


@contextlib.contextmanager
def _environment(changes: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(changes)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_cli(*args: object, cwd: Path | None = None, env: Mapping[str, str] | None = None,
            data_dir: Path | None = None, umask: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real command line, `mnistlab.cli.main(ARGS)`, in this process: its exit status, stdout and stderr.

    The same parser, commands and error handling as the installed `mnistlab`, without a subprocess's imports
    (Keras is loaded once per test session instead of once per call). `cwd`, `env` (added to the environment),
    `data_dir` ($MNISTLAB_DATA) and `umask` hold for the call only.
    """
    from mnistlab import cli

    changes = {**({"MNISTLAB_DATA": str(data_dir)} if data_dir is not None else {}), **(env or {})}
    out, err = io.StringIO(), io.StringIO()
    old_umask = os.umask(umask) if umask is not None else None
    try:
        with _environment(changes), contextlib.chdir(cwd or os.getcwd()), \
                contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = cli.main([str(a) for a in args])
            except SystemExit as exc:  # argparse's --help and usage errors
                status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    finally:
        if old_umask is not None:
            os.umask(old_umask)
    return subprocess.CompletedProcess(["mnistlab", *map(str, args)], status, out.getvalue(), err.getvalue())


# ------------------------------------------------------------------------------------------------ the server


def free_port(host: str = HOST) -> int:
    """A port on `host` that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running `mnistlab serve` subprocess: its process, address and log (stdout and stderr together)."""

    proc: subprocess.Popen
    host: str
    port: int
    log: Path

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    def log_text(self) -> str:
        """Everything the server has printed so far."""
        return self.log.read_text(errors="replace")

    def rss_mb(self) -> float:
        """The server process's resident memory (Linux)."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) / 1024

    def open_fds(self) -> int:
        """How many file descriptors the server process holds open (Linux)."""
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """Terminate a subprocess and wait for it; kill it if it does not go within `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/api/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def served(run_dir: Path, log: Path, *, host: str = HOST, port: int = 0, args: tuple[str, ...] = (),
           env: Mapping[str, str] | None = None, timeout: float = 120) -> Iterator[Server]:
    """Start `mnistlab serve RUN_DIR` and yield it once /api/health answers; always stop it afterwards.

    Port 0 lets the server choose; the port is read from the line it prints. On a clean exit the log must hold
    no traceback and no ASGI exception.
    """
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mnistlab.cli", "serve", str(run_dir), "--host", host,
                                 "--port", str(port), *args], stdout=out, stderr=subprocess.STDOUT,
                                env=cli_env(env))
    deadline = time.monotonic() + timeout
    try:
        while not (found := SERVING.search(log.read_text(errors="replace"))):
            assert proc.poll() is None, f"server exited ({proc.returncode}): {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no 'serving' line after {timeout} s: {log.read_text()[-3000:]}"
            time.sleep(0.1)
        server = Server(proc, host, int(found.group(1)), log)
        assert port in (0, server.port), f"asked for port {port}, serving on {server.port}"
        while not _healthy(server.url):
            assert proc.poll() is None, f"server exited ({proc.returncode}): {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no /api/health after {timeout} s: {log.read_text()[-3000:]}"
            time.sleep(0.2)
        yield server
    finally:
        stop(proc)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text and "Exception in ASGI" not in text, f"the server logged an error:\n{text[-5000:]}"


# ---------------------------------------------------------------------------------------------------- pictures


def encode_png(image: Image.Image | np.ndarray) -> bytes:
    """A PIL image or a uint8 array as PNG file bytes."""
    im = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def on_paper(digit: np.ndarray, size: int = 140) -> Image.Image:
    """An MNIST digit (light on dark, 28x28) as a user's picture: dark ink on white, `size` pixels square."""
    return Image.fromarray(255 - digit).resize((size, size), Image.Resampling.BICUBIC)


def canvas_png(digit: np.ndarray) -> bytes:
    """An MNIST digit drawn like the web page's canvas: a 280x280 PNG, dark strokes on white, soft edges."""
    return encode_png(on_paper(digit, 280).filter(ImageFilter.GaussianBlur(2)))


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body and CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int, idat: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def png_declaring(width: int, height: int) -> bytes:
    """A ~100-byte PNG whose header declares width x height grey pixels (a decompression bomb's header)."""
    return _png(width, height, zlib.compress(b"\0" * 1024))


def bomb_png(side: int) -> bytes:
    """A real PNG of side x side white pixels, ~1000x smaller than its pixels (8000: 76 kB for 64 MB)."""
    row = b"\0" + b"\xff" * side
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row * 64) for _ in range(side // 64)) + z.compress(row * (side % 64)) + z.flush()
    return _png(side, side, idat)


# ------------------------------------------------------------------------------------------------------ runs


def copy_run(run_dir: Path, dest: Path, edit: Callable[[Path], None] | None = None) -> Path:
    """A copy of the run directory at `dest`, then `edit`ed; returns `dest`."""
    shutil.copytree(run_dir, dest)
    if edit:
        edit(dest)
    return dest


def set_metrics(**changes: object) -> Callable[[Path], None]:
    """An edit for copy_run: these keys of the run's metrics.json changed (status="interrupted": an unfinished run)."""
    from mnistlab.runs import METRICS_FILE

    def edit(run: Path) -> None:
        metrics = json.loads((run / METRICS_FILE).read_text())
        (run / METRICS_FILE).write_text(json.dumps({**metrics, **changes}))
    return edit


def corner_field(digit: np.ndarray) -> np.ndarray:
    """A 64x64 form field (True: ink) with this 28x28 MNIST digit written in its bottom-left corner with a
    form-filler's pen (a tenth of the digit's height, as benchmarks/other_writers.py's bw_form set's)."""
    rows, cols = np.flatnonzero(digit.any(1)), np.flatnonzero(digit.any(0))
    box = Image.fromarray(digit[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1])
    field = np.zeros((64, 64), bool)
    ink = box.resize((26, 38), Image.Resampling.BILINEAR).filter(ImageFilter.MaxFilter(3))
    field[11:49, 6:32] = np.asarray(ink) > 127
    return field
