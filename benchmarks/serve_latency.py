"""Latency and throughput of the web API, and the cold start of `mnistlab predict`, on 127.0.0.1.

    PYTHONPATH=src .venv/bin/python benchmarks/serve_latency.py RUN_DIR [--data-dir ../shared/data]
        [--requests 500] [--clients 8] [--seconds 15] [--photos 20] [--engine auto|keras|onnx] [--cold 5]

Starts the real server (`mnistlab serve RUN_DIR`, uvicorn) in a subprocess, then measures over keep-alive
connections (http.client):

- one client posting 280x280 canvas drawings (PNG, as the page sends them): p50 and p99 latency;
- N concurrent clients (threads) for a fixed time: requests/s and latency;
- one client posting 3000x4000 phone-photo JPEGs;
- the server's CPU time per request (from /proc), which, unlike latency, hardly moves when other processes
  share the machine;
- the wall time of `mnistlab predict RUN_DIR one.png` (process start to exit), median of `--cold` runs, interleaved
  with as many runs of `python -c "import tensorflow"` (the same interpreter), and their ratio.

`--engine` is passed to `serve` and `predict` (auto: onnxruntime when the run has an ONNX export).

Prints a markdown table with the machine's core count and load average. The clients run on the same
machine, so on 2 cores they take CPU from the server. Never part of the test suite.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import mnistlab  # noqa: E402


def multipart(data: bytes, name: str) -> tuple[bytes, str]:
    """A multipart/form-data body with `data` in the field "file", as a browser's FormData sends it."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def canvas(digit: np.ndarray) -> bytes:
    """An MNIST digit as the page sends a drawing: black ink on a white 280x280 PNG."""
    buf = io.BytesIO()
    Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.BILINEAR).save(buf, format="PNG")
    return buf.getvalue()


def photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A 3000x4000 (portrait) JPEG: a digit in ink on grey, unevenly lit, noisy paper, like a phone picture."""
    paper = np.linspace(170, 230, 3000)[None, :] + rng.normal(0, 6, (4000, 3000))
    ink = np.asarray(Image.fromarray(digit).resize((1200, 1200), Image.Resampling.BICUBIC), np.float32) / 255
    paper[1400:2600, 900:2100] *= 1 - 0.8 * ink
    im = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(2)).convert("RGB")
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=88)
    return buf.getvalue()


def post(conn: http.client.HTTPConnection, body: bytes, ctype: str) -> float:
    """POST one image; the latency in ms."""
    start = time.perf_counter()
    conn.request("POST", "/api/predict", body=body, headers={"Content-Type": ctype})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}")
    return (time.perf_counter() - start) * 1000


def process_tree(pid: int):
    """A process and its living descendants (`serve`'s workers), as /proc/PID/stat's fields after the name."""
    yield Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            yield from process_tree(int(child))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its living children (`serve`'s workers; Linux /proc), in seconds."""
    return sum((int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK") for f in process_tree(pid))


def start_server(run_dir: str, env: dict, engine: str = "auto", workers: int | None = None) -> tuple[subprocess.Popen, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "mnistlab.cli", "serve", run_dir, "--port", str(port),
                               "--engine", engine, *(["--workers", str(workers)] if workers else [])],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/api/health")
            if c.getresponse().status == 200:
                return server, port
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                sys.exit(f"server did not start: {server.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)


def row(name: str, latencies: list[float], rate: float, cpu_ms: float | None, errors: int = 0) -> str:
    cpu = f"{cpu_ms:.1f}" if cpu_ms is not None else "-"
    return (f"| {name} | {len(latencies)} | {np.percentile(latencies, 50):.1f} | {np.percentile(latencies, 99):.1f} | "
            f"{rate:.1f} | {cpu} | {errors} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--data-dir", help="folder holding mnist/ (default: mnistlab's search order)")
    ap.add_argument("--requests", type=int, default=500, help="single-client canvas requests (default 500)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    ap.add_argument("--seconds", type=float, default=15, help="length of the concurrent run (default 15)")
    ap.add_argument("--photos", type=int, default=20, help="photo requests (default 20; at least 1)")
    ap.add_argument("--workers", type=int, help="serve's --workers (default: serve's own default)")
    ap.add_argument("--engine", default="auto", choices=("auto", "keras", "onnx"), help="serve's and predict's --engine")
    ap.add_argument("--cold", type=int, default=5, help="cold-start runs of predict and of `import tensorflow` (default 5)")
    args = ap.parse_args()
    if args.photos < 1:
        ap.error("--photos must be at least 1 (the photo row is part of the report)")

    (_, _), (x, _) = mnistlab.load_data(data_dir=args.data_dir)
    rng = np.random.default_rng(0)
    canvases = [multipart(canvas(x[i]), "canvas.png") for i in range(50)]
    photos = [multipart(photo(x[i], rng), "photo.jpg") for i in range(5)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    load_before = os.getloadavg()[0]

    server, port = start_server(args.run_dir, env, args.engine, args.workers)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/api/model")
        engine = json.loads(conn.getresponse().read()).get("engine", "keras")
        # Warm-up, over as many connections as clients (so that every worker process gets some): first requests
        # pay for lazy imports and allocations.
        warm = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(args.clients)]
        for body, ctype in canvases:
            for c in warm:
                post(c, body, ctype)
        for c in warm:
            c.close()
        cpu0 = cpu_seconds(server.pid)
        single = [post(conn, *canvases[i % len(canvases)]) for i in range(args.requests)]
        single_cpu = (cpu_seconds(server.pid) - cpu0) * 1000 / len(single)

        cpu0 = cpu_seconds(server.pid)
        big = [post(conn, *photos[i % len(photos)]) for i in range(args.photos)]
        big_cpu = (cpu_seconds(server.pid) - cpu0) * 1000 / len(big)

        counts, errors = [0] * args.clients, [0] * args.clients
        latencies: list[list[float]] = [[] for _ in range(args.clients)]
        stop = time.perf_counter() + args.seconds

        def client(k: int) -> None:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            i = k
            while time.perf_counter() < stop:
                try:
                    latencies[k].append(post(c, *canvases[i % len(canvases)]))
                    counts[k] += 1
                except (OSError, RuntimeError, http.client.HTTPException):
                    errors[k] += 1
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                i += 1

        threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
        cpu0, t0 = cpu_seconds(server.pid), time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        concurrent_cpu = (cpu_seconds(server.pid) - cpu0) * 1000 / max(1, sum(counts))
        concurrent = [v for per_client in latencies for v in per_client]
    finally:
        server.terminate()
        server.wait(timeout=30)

    with tempfile.TemporaryDirectory() as tmp:
        one = os.path.join(tmp, "one.png")
        Image.fromarray(255 - x[0]).resize((280, 280)).save(one)
        cold, tf_import = [], []
        for _ in range(args.cold):  # interleaved, so that machine load affects both alike
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "mnistlab.cli", "predict", args.run_dir, one, "--engine", args.engine],
                           env=env, check=True, capture_output=True)
            cold.append(time.perf_counter() - t)
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import tensorflow"], env=env, check=True, capture_output=True)
            tf_import.append(time.perf_counter() - t)

    workers = f" --workers {args.workers}" if args.workers else ""
    print(f"\n`mnistlab serve {args.run_dir} --engine {args.engine}{workers}` (engine used: {engine}) on 127.0.0.1; "
          f"{os.cpu_count()} cores; load average "
          f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after\n")
    print("| measurement | requests | p50 ms | p99 ms | requests/s | server CPU ms/request | errors |")
    print("|---|---|---|---|---|---|---|")
    print(row("280x280 canvas PNG, 1 client", single, 1000 / statistics.mean(single), single_cpu))
    print(row(f"280x280 canvas PNG, {args.clients} clients, {args.seconds:.0f} s", concurrent, sum(counts) / elapsed,
              concurrent_cpu, sum(errors)))
    print(row(f"3000x4000 JPEG photo (~{len(photos[0][0]) // 1024} KB), 1 client", big, 1000 / statistics.mean(big),
              big_cpu))
    print(f"\n`mnistlab predict RUN one.png --engine {args.engine}` cold start (process start to exit), median of "
          f"{len(cold)}: {statistics.median(cold):.2f} s (runs: {', '.join(f'{c:.2f}' for c in cold)})")
    print(f"`python -c 'import tensorflow'`, median of {len(tf_import)}: {statistics.median(tf_import):.2f} s "
          f"(runs: {', '.join(f'{c:.2f}' for c in tf_import)})")
    print(f"ratio predict / import tensorflow: {statistics.median(cold) / statistics.median(tf_import):.2f}")


if __name__ == "__main__":
    main()
