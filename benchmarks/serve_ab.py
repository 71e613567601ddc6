"""The web API's 1-client canvas latency and server CPU, this working tree against an earlier commit, same run.

    PYTHONPATH=src .venv/bin/python benchmarks/serve_ab.py RUN_DIR --baseline REV [--data-dir ../shared/data]
        [--rounds 6] [--requests 300] [--workers 2]
    PYTHONPATH=src .venv/bin/python benchmarks/serve_ab.py RUN_DIR --other-run OTHER_RUN_DIR ...

Checks REV out into a temporary git worktree and starts two real servers side by side (`mnistlab serve RUN_DIR`,
each from its own source tree, the same interpreter and packages), then posts benchmarks/serve_latency.py's 50
canvas PNGs over one keep-alive connection to each in turn: `--rounds` rounds of `--requests` canvases, the order
of the two servers swapped every round, so machine load falls on both alike. Prints, per server, the median over
rounds of the round's p50 latency, the server CPU per canvas (from /proc, supervisor and workers) and the minor
page faults per canvas. With `--other-run`, both servers run this tree's code, one on each run directory (say,
the same network with two not-a-digit detectors). Never part of the test suite.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import mnistlab  # noqa: E402
from serve_latency import canvas, cpu_seconds, multipart, post, process_tree, start_server  # noqa: E402


def minor_faults(pid: int) -> int:
    """Minor page faults of a process and its living children (Linux /proc)."""
    return sum(int(f[7]) for f in process_tree(pid))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--baseline", help="the git revision to compare with")
    which.add_argument("--other-run", help="a second run directory to serve with this tree's code")
    ap.add_argument("--data-dir", help="folder holding mnist/ (default: mnistlab's search order)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--requests", type=int, default=300, help="canvases per server and round (default 300)")
    ap.add_argument("--workers", type=int, default=2, help="serve's --workers (default 2)")
    args = ap.parse_args()

    (_, _), (x, _) = mnistlab.load_data(data_dir=args.data_dir)
    canvases = [multipart(canvas(x[i]), "canvas.png") for i in range(50)]
    run_dir = str(Path(args.run_dir).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "baseline"
        if args.baseline:
            subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.baseline], cwd=HERE.parent,
                           check=True, capture_output=True)
            sources = {f"baseline ({args.baseline})": (tree / "src", run_dir),
                       "this tree": (HERE.parent / "src", run_dir)}
        else:
            sources = {args.run_dir: (HERE.parent / "src", run_dir),
                       args.other_run: (HERE.parent / "src", str(Path(args.other_run).resolve()))}
        try:
            servers = {}
            for name, (src, served_run) in sources.items():
                env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(src)}
                servers[name] = start_server(served_run, env, "onnx", args.workers)
            results = {name: {"p50": [], "cpu": [], "faults": []} for name in servers}
            try:
                conns = {name: http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                         for name, (_, port) in servers.items()}
                for name, conn in conns.items():  # warm-up: lazy imports, first allocations
                    for _ in range(2):
                        for body in canvases:
                            post(conn, *body)
                names = list(servers)
                for r in range(args.rounds):
                    for name in (names if r % 2 == 0 else names[::-1]):
                        pid = servers[name][0].pid
                        cpu0, faults0 = cpu_seconds(pid), minor_faults(pid)
                        latencies = [post(conns[name], *canvases[i % len(canvases)]) for i in range(args.requests)]
                        results[name]["cpu"].append((cpu_seconds(pid) - cpu0) * 1000 / args.requests)
                        results[name]["faults"].append((minor_faults(pid) - faults0) / args.requests)
                        results[name]["p50"].append(float(np.percentile(latencies, 50)))
            finally:
                for proc, _ in servers.values():
                    proc.terminate()
                    proc.wait(timeout=30)
        finally:
            if args.baseline:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=HERE.parent, capture_output=True)

    served = f"{args.run_dir} / {args.other_run}" if args.other_run else args.run_dir
    print(f"\n`mnistlab serve {served} --engine onnx --workers {args.workers}`, 1 keep-alive client, "
          f"{args.rounds} rounds of {args.requests} canvases each; {os.cpu_count()} cores; load average "
          f"{os.getloadavg()[0]:.1f} after\n")
    print("| server | p50 ms, median of rounds (range) | server CPU ms per canvas | page faults per canvas |")
    print("|---|---|---|---|")
    for name, res in results.items():
        print(f"| {name} | {statistics.median(res['p50']):.2f} ({min(res['p50']):.2f}-{max(res['p50']):.2f}) | "
              f"{statistics.median(res['cpu']):.2f} | {statistics.median(res['faults']):.0f} |")


if __name__ == "__main__":
    main()
