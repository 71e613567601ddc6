"""Latency and throughput of the web API, and the cold start of `mnistlab predict`, on 127.0.0.1.

    MNISTLAB_DATA=../shared/data .venv/bin/python benchmarks/serve_latency.py RUN_DIR [--clients 8] [--seconds 15]

Starts the real server (`mnistlab serve`) in a subprocess, then measures with keep-alive connections:
single-client latency for a 280x280 canvas drawing (p50, p99 over 500 requests), throughput with
concurrent clients, large phone-sized photos separately, and the wall time of `mnistlab predict` on one
image (median of 3). Prints a markdown table. Never part of the test suite.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import numpy as np
from PIL import Image, ImageFilter

import mnistlab


def multipart(data: bytes, name: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def canvas(digit: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.BILINEAR).save(buf, format="PNG")
    return buf.getvalue()


def photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A 4000x3000 JPEG: a digit in ink on grey, unevenly lit paper, like a phone picture."""
    paper = np.linspace(170, 230, 4000)[None, :] + rng.normal(0, 6, (3000, 4000))
    ink = np.asarray(Image.fromarray(digit).resize((1200, 1200), Image.Resampling.BICUBIC), np.float32) / 255
    paper[900:2100, 1400:2600] *= 1 - 0.8 * ink
    im = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(2)).convert("RGB")
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=88)
    return buf.getvalue()


def post(conn: http.client.HTTPConnection, body: bytes, ctype: str) -> float:
    start = time.perf_counter()
    conn.request("POST", "/api/predict", body=body, headers={"Content-Type": ctype})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}")
    return (time.perf_counter() - start) * 1000


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=15)
    args = ap.parse_args()

    (_, _), (x, _) = mnistlab.load_data()
    rng = np.random.default_rng(0)
    canvases = [multipart(canvas(x[i]), "canvas.png") for i in range(50)]
    photos = [multipart(photo(x[i], rng), "photo.jpg") for i in range(5)]

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    server = subprocess.Popen([sys.executable, "-m", "mnistlab.cli", "serve", args.run_dir, "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/api/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for body, ctype in canvases[:20]:
            post(conn, body, ctype)  # warm-up
        single = [post(conn, *canvases[i % len(canvases)]) for i in range(500)]
        big = [post(conn, *photos[i % len(photos)]) for i in range(20)]

        counts, errors, lat = [0] * args.clients, [0] * args.clients, [[] for _ in range(args.clients)]
        stop = time.perf_counter() + args.seconds

        def client(k: int) -> None:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            i = k
            while time.perf_counter() < stop:
                try:
                    lat[k].append(post(c, *canvases[i % len(canvases)]))
                    counts[k] += 1
                except (OSError, RuntimeError, http.client.HTTPException):
                    errors[k] += 1
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                i += 1

        threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        concurrent = [v for l in lat for v in l]
    finally:
        server.terminate()
        server.wait(timeout=30)

    with tempfile.TemporaryDirectory() as tmp:
        one = os.path.join(tmp, "one.png")
        Image.fromarray(255 - x[0]).resize((280, 280)).save(one)
        cold = []
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "mnistlab.cli", "predict", args.run_dir, one], env=env,
                           check=True, capture_output=True)
            cold.append(time.perf_counter() - t)

    print(f"\nServer: `mnistlab serve {args.run_dir}` on 127.0.0.1; {os.cpu_count()} cores\n")
    print("| measurement | requests | p50 ms | p99 ms | requests/s | errors |")
    print("|---|---|---|---|---|---|")
    print(f"| 280x280 canvas PNG, 1 client | {len(single)} | {percentile(single, 50):.1f} | "
          f"{percentile(single, 99):.1f} | {1000 / statistics.mean(single):.0f} | 0 |")
    print(f"| 280x280 canvas PNG, {args.clients} clients, {args.seconds:.0f} s | {sum(counts)} | "
          f"{percentile(concurrent, 50):.1f} | {percentile(concurrent, 99):.1f} | {sum(counts) / elapsed:.0f} | "
          f"{sum(errors)} |")
    print(f"| 4000x3000 JPEG photo (~{len(photos[0][0]) // 1024} KB), 1 client | {len(big)} | "
          f"{percentile(big, 50):.1f} | {percentile(big, 99):.1f} | {1000 / statistics.mean(big):.1f} | 0 |")
    print(f"\n`mnistlab predict RUN one.png` cold start (process start to exit), median of 3: "
          f"{statistics.median(cold):.2f} s (runs: {', '.join(f'{c:.2f}' for c in cold)})")


if __name__ == "__main__":
    main()
