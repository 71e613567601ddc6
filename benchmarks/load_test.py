"""Load test of the web app: the real server (`mnistlab serve RUN`, a subprocess on 127.0.0.1) under
concurrent keep-alive clients posting real digit images, for a fixed time. Prints a markdown table:
requests, errors (any non-200 answer, dropped connection or wrong-shaped record), requests/s, latency
percentiles, and how many predictions were right.

    .venv/bin/python benchmarks/load_test.py /tmp/loadrun --data-dir ../shared/data --duration 30 --connections 32

The images are MNIST test digits (never seen in training) in two styles: a 280x280 PNG like the web
page's canvas (dark strokes on white, soft edges), and a phone-photo-like JPEG (1200x900, paper with uneven
light, noise, a grey pen). Never part of the test suite.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter


@dataclass
class Payload:
    """One request body ready to send, with the digit it shows."""

    label: int
    style: str
    content_type: str
    body: bytes


@dataclass
class Tally:
    """What one client thread saw."""

    latencies: list[tuple[str, float]] = field(default_factory=list)  # (style, seconds) per answered request
    correct: dict[str, int] = field(default_factory=dict)  # style -> right digits
    errors: list[str] = field(default_factory=list)


def canvas_png(digit: np.ndarray) -> bytes:
    """A 28x28 MNIST digit as a 280x280 drawing: dark strokes on white with soft edges, like the web canvas."""
    im = Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(2))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def photo_jpeg(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A 28x28 digit as a phone photo: off-centre on 1200x900 paper with a lighting gradient, noise, grey ink."""
    h, w = 900, 1200
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    paper = 200 + 35 * (xx / w) - 25 * (yy / h)  # light falling off across the sheet
    size = int(rng.integers(250, 450))
    ink = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC), np.float32) / 255.0
    top, left = int(rng.integers(50, h - size - 50)), int(rng.integers(50, w - size - 50))
    grey = paper.copy()
    grey[top:top + size, left:left + size] *= 1.0 - 0.7 * ink  # a grey pen, not black
    grey += rng.normal(0, 6, grey.shape)
    rgb = np.clip(np.stack([grey * 1.02, grey, grey * 0.93], axis=-1), 0, 255).astype(np.uint8)  # warm paper
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def multipart(field_name: str, filename: str, mime: str, content: bytes) -> tuple[str, bytes]:
    """A multipart/form-data body with one file field; (content type, body)."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field_name}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: {mime}\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


def payloads(data_dir: str | None, count: int, seed: int = 0) -> list[Payload]:
    """`count` canvas PNGs and count // 4 photo JPEGs of MNIST test digits."""
    from mnistlab.data import load_dataset

    data = load_dataset("mnist", data_dir)
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(data.x_test), size=count + count // 4, replace=False)
    out = []
    for n, i in enumerate(picks):
        digit, label = data.x_test[i], int(data.y_test[i])
        if n < count:
            ctype, body = multipart("file", f"canvas-{i}.png", "image/png", canvas_png(digit))
            out.append(Payload(label, "canvas PNG 280x280", ctype, body))
        else:
            ctype, body = multipart("file", f"photo-{i}.jpg", "image/jpeg", photo_jpeg(digit, rng))
            out.append(Payload(label, "photo JPEG 1200x900", ctype, body))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run_dir: str, port: int, timeout: float = 90) -> subprocess.Popen:
    """`mnistlab serve RUN_DIR --port PORT` in a subprocess, returned once /api/health answers 200."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "mnistlab.cli", "serve", run_dir, "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with status {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    sys.exit(f"server did not answer /api/health within {timeout:.0f} s")


def client(port: int, work: list[Payload], offset: int, stop: float, tally: Tally) -> None:
    """Post payloads over one keep-alive connection until `stop`; reconnect only after an error."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    n = offset
    while time.monotonic() < stop:
        p = work[n % len(work)]
        n += 1
        start = time.perf_counter()
        try:
            conn.request("POST", "/api/predict", body=p.body, headers={"Content-Type": p.content_type})
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as e:
            tally.errors.append(f"{type(e).__name__}: {e}")
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            continue
        tally.latencies.append((p.style, time.perf_counter() - start))
        if response.status != 200:
            tally.errors.append(f"HTTP {response.status}: {raw[:200]!r}")
            continue
        try:
            record = json.loads(raw)
            record = record[0] if isinstance(record, list) else record
            digit = record["digit"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            tally.errors.append(f"bad record ({e}): {raw[:200]!r}")
            continue
        tally.correct[p.style] = tally.correct.get(p.style, 0) + (digit == p.label)
    conn.close()


def main(argv: list[str] | None = None) -> int:
    """Run the load test and print its table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", help="a trained run directory (mnistlab train --out RUN_DIR)")
    ap.add_argument("--data-dir", help="folder holding mnist/ (default: $MNISTLAB_DATA, ...)")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of load (default: 30)")
    ap.add_argument("--connections", type=int, default=32, help="concurrent keep-alive clients (default: 32)")
    ap.add_argument("--images", type=int, default=200, help="distinct canvas images; photos are a quarter of that")
    args = ap.parse_args(argv)

    work = payloads(args.data_dir, args.images)
    load = os.getloadavg()  # other work on the machine skews every figure: say how busy it was
    port = free_port()
    server = start_server(args.run_dir, port)
    try:
        # Warm-up outside the measurement: the first prediction traces the model.
        client(port, work, 0, time.monotonic() + 2, Tally())
        tallies = [Tally() for _ in range(args.connections)]
        stop = time.monotonic() + args.duration
        start = time.perf_counter()
        threads = [threading.Thread(target=client, args=(port, work, i * 7, stop, t)) for i, t in enumerate(tallies)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    errors = [e for t in tallies for e in t.errors]
    styles = sorted({p.style for p in work})
    print(f"\nmnistlab serve {args.run_dir}: {args.connections} keep-alive connections for {elapsed:.1f} s, "
          f"{len(work)} distinct images; {platform.node()}, {os.cpu_count()} CPUs, client and server on the same "
          f"machine, load average {load[0]:.1f} before the run\n")
    print("| images | requests | errors | requests/s | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | correct digits |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for style in ["all", *styles]:
        ms = np.array([x for t in tallies for s, x in t.latencies if style in ("all", s)]) * 1000
        right = sum(n for t in tallies for s, n in t.correct.items() if style in ("all", s))
        if not len(ms):
            print(f"| {style} | 0 | | | | | | | |")
            continue
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        errs = len(errors) if style == "all" else ""
        print(f"| {style} | {len(ms)} | {errs} | {len(ms) / elapsed:.1f} | {p50:.0f} | {p90:.0f} | {p99:.0f} "
              f"| {ms.max():.0f} | {right / len(ms):.1%} |")
    if errors:
        print(f"\nzero-error check FAILED: {len(errors)} errors, first: {errors[0]}")
        return 1
    print("\nzero-error check passed: every request answered 200 with a prediction record")
    return 0


if __name__ == "__main__":
    sys.exit(main())
