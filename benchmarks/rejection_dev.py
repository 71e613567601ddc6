"""Development loop for the not-a-digit detector: render development sets once, refit and score quickly.

    PYTHONPATH=src python benchmarks/rejection_dev.py render --seeds 100 200 --out /tmp/dev
    PYTHONPATH=src python benchmarks/rejection_dev.py score --model runs/cnn --sets /tmp/dev [--refit]

`render` draws the generators of not_digits.py with development seeds (never the published seed 0) and
photographs MNIST *validation* digits (training images 54000-59999, which `cnn` holds out; never MNIST's test
set), preprocesses every picture the way `predict` does and stores the 28x28 inputs. `score` refits the run's
detector with the current rejection.py (`--refit`) or uses the run's own, and prints per kind the share
refused and, on real digits, the accuracy counting a refusal as wrong. Never part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import not_digits  # noqa: E402
import synth_digits  # noqa: E402
import synth_nondigits  # noqa: E402

VALIDATION = slice(54000, 60000)


def render(seeds: list[int], out: Path, per_kind: int, per_digit: int, mnist: int, data_dir: str | None) -> None:
    """Write one .npz per seed: the preprocessed non-digits, MNIST validation photos and handwriting pictures."""
    from mnistlab.data import load_data

    (x_train, y_train), _ = load_data("mnist", data_dir)
    xv, yv = x_train[VALIDATION], y_train[VALIDATION]
    out.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        t = time.perf_counter()
        rng = np.random.default_rng([seed, 7])
        pick = rng.choice(len(xv), mnist, replace=False)
        sets = {"nondigit": synth_nondigits.make_nondigits(per_kind, seed, data_dir),
                "mnist": synth_nondigits.mnist_photos(xv[pick], yv[pick], seed),
                "hand": synth_digits.make_samples(per_digit, seed + 1)}
        arrays = {}
        for name, samples in sets.items():
            x, blank, _ = not_digits.preprocess_all(samples)
            arrays[f"{name}_x"], arrays[f"{name}_blank"] = x, blank
            arrays[f"{name}_label"] = np.array([s.label for s in samples])
            arrays[f"{name}_kind"] = np.array([s.font for s in samples])
            arrays[f"{name}_note"] = np.array([s.notes[-1] if s.notes else "" for s in samples])
        np.savez_compressed(out / f"dev{seed}.npz", **arrays)
        print(f"seed {seed}: {', '.join(f'{len(v)} {k}' for k, v in sets.items())} in {time.perf_counter() - t:.0f} s")


def score(model: Path, sets: Path, refit: bool, save: Path | None, data_dir: str | None) -> None:
    """Refusals per kind and the real digits' accuracy on every development set in `sets`."""
    from mnistlab import rejection
    from mnistlab.runs import load_run

    run = load_run(model)
    det = run.rejector
    if refit or det is None:
        t = time.process_time()
        det = rejection.fit_run(run, data_dir=data_dir)
        print(f"refitted in {time.process_time() - t:.1f} s CPU; threshold {det.threshold:.3f}")
        if save:
            det.save(save)
    for file in sorted(sets.glob("dev*.npz")):
        z = np.load(file)
        rows = []
        out = {}
        for name in ("nondigit", "mnist", "hand"):
            x, blank = z[f"{name}_x"], z[f"{name}_blank"]
            p = run.predict_proba(x)
            out[name] = (p, det.refuse(x, p) | blank, blank, det.score(x, p))
        kinds = z["nondigit_kind"]
        refused = out["nondigit"][1]
        for k in synth_nondigits.KINDS:
            rows.append(f"{k} {refused[kinds == k].mean():.0%}")
        digit_scores = np.concatenate([out[n][3][~out[n][2]] for n in ("mnist", "hand")])
        auc = not_digits.roc_auc(out["nondigit"][3][~out["nondigit"][2]], digit_scores)
        line = [f"{file.stem}: non-digits {refused.mean():.1%} (AUC {auc:.3f}) | " + ", ".join(rows)]
        for name in ("mnist", "hand"):
            p, ref, blank, _ = out[name]
            right = p.argmax(1) == z[f"{name}_label"]
            line.append(f"{name} acc {np.mean(right & ~blank):.2%} -> {np.mean(right & ~ref):.2%} "
                        f"(refused {ref.mean():.1%})")
        print("\n  ".join(line))
        accepted = z["nondigit_note"][~refused & np.isin(kinds, ["letter", "symbol", "doodle"])]
        names, counts = np.unique(accepted, return_counts=True)
        print("  accepted: " + " ".join(f"{n}:{c}" for c, n in sorted(zip(counts, names), reverse=True)[:25]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render")
    r.add_argument("--seeds", type=int, nargs="+", default=[100, 200])
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--per-kind", type=int, default=30)
    r.add_argument("--per-digit", type=int, default=2)
    r.add_argument("--mnist", type=int, default=600)
    s = sub.add_parser("score")
    s.add_argument("--model", type=Path, required=True)
    s.add_argument("--sets", type=Path, required=True)
    s.add_argument("--refit", action="store_true")
    s.add_argument("--save", type=Path)
    for p in (r, s):
        p.add_argument("--data-dir")
    a = ap.parse_args()
    if a.cmd == "render":
        render(a.seeds, a.out, a.per_kind, a.per_digit, a.mnist, a.data_dir)
    else:
        score(a.model, a.sets, a.refit, a.save, a.data_dir)


if __name__ == "__main__":
    main()
