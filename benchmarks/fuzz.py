"""Fuzz the IDX reader and the image loader at scale: tests/test_fuzz.py under the "fuzz" Hypothesis profile
(5000 examples per property instead of the suite's 200), with Hypothesis' statistics and the total time.

    .venv/bin/python benchmarks/fuzz.py                  # same as the command below
    HYPOTHESIS_PROFILE=fuzz .venv/bin/python -m pytest tests/test_fuzz.py --hypothesis-show-statistics

Extra arguments go to pytest (for example `-k idx`). Never part of the test suite.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    """Run the fuzz profile once and print the per-property counts and the wall time."""
    env = {**os.environ, "HYPOTHESIS_PROFILE": "fuzz", "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fuzz.py",
           "--hypothesis-show-statistics", *argv]
    print(f"$ HYPOTHESIS_PROFILE=fuzz {' '.join(cmd[2:])}   ({platform.node()}, {os.cpu_count()} CPUs)", flush=True)
    start = time.perf_counter()
    status = subprocess.run(cmd, cwd=REPO, env=env).returncode
    print(f"fuzz profile finished in {time.perf_counter() - start:.1f} s, exit status {status}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
