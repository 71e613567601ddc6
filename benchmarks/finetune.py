"""Fine-tuning on one writer's digits: accuracy on that writer's other pictures, before and after, by examples per class.

A "writer" here is one handwriting font of benchmarks/synth_digits.py, rendered as phone photos, scans and
canvas drawings (each picture slanted, rotated, thickened or thinned differently). For each writer the script
renders a pool of training pictures and, with another seed, 30 test pictures per digit; fine-tunes the given
run with K = 1, 5, 20 and 100 pictures per digit; and reports accuracy on the writer's test pictures and on
MNIST's test set, with the time each fine-tuning took. Nothing here is tuned on MNIST's test set: it is only
reported.

With `--populations usps historical ...`, a "population" is instead one set of benchmarks/other_writers.py:
MNIST's held-out writers (training images 54000-59999, which `cnn` never trains on) acquired as that collection
was (postal scans at 16x16, faded ink on aged paper, ...). The K pictures per digit and the 30 test pictures per
digit come from different source digits and seeds, and the MNIST held-out figure leaves out the sources used.
Accuracy counts a picture in which no digit is found as wrong (`evaluate`'s `test_accuracy`); "as predict
answers" also counts the not-a-digit detector's refusals as wrong.

    mnistlab train --recipe cnn --out runs/cnn
    PYTHONPATH=src python benchmarks/finetune.py runs/cnn --data-dir ../shared/data --writers 3 --out .bench/finetune
    PYTHONPATH=src python benchmarks/finetune.py runs/cnn --data-dir ../shared/data --populations usps historical
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from synth_digits import available_fonts, render_sample  # noqa: E402

import mnistlab  # noqa: E402


def write_folder(root: Path, font: Path, per_digit: int, seed: int) -> Path:
    """Render `per_digit` pictures of each digit in `font` into root/<digit>/<n>.<ext> (the Keras layout)."""
    from mnistlab.errors import ImageError

    for digit in range(10):
        (root / str(digit)).mkdir(parents=True, exist_ok=True)
        for n in range(per_digit):
            # A labelled folder must hold readable digits (labelled.py refuses the others), so a rendering
            # that preprocessing finds no digit in (a few percent: faint ink under heavy noise) is drawn again.
            for attempt in range(20):
                sample = render_sample(digit, font, np.random.default_rng([seed, digit, n, attempt]))
                try:
                    mnistlab.preprocess(sample.data)
                    break
                except ImageError:
                    continue
            (root / str(digit) / f"{n:03d}.{sample.fmt.lower()}").write_bytes(sample.data)
    return root


def write_population(root: Path, name: str, per_digit: int, seed: int, data_dir: Path | None,
                     exclude: set[str] = frozenset()) -> tuple[Path, set[str]]:
    """`per_digit` pictures of each digit of other_writers' set `name` (sources not in `exclude`, at most 30 a
    digit) into root/<digit>/<n>.<ext>, and the sources used ("mnist:54012")."""
    import other_writers as ow

    sources = ow.make_sources(per_digit + (30 if exclude else 0), seed, 0.0, str(data_dir) if data_dir else None)
    sources = [[s for s in srcs if s.origin not in exclude][:per_digit] for srcs in sources]
    for pic in ow.make_set(name, sources, seed):
        (root / str(pic.label)).mkdir(parents=True, exist_ok=True)
        (root / str(pic.label) / f"{pic.n:03d}{pic.suffix}").write_bytes(pic.data)
    return root, {s.origin for srcs in sources for s in srcs}


def populations(args: argparse.Namespace) -> None:
    """Fine-tune on K pictures per digit of each population; score on 30 others per digit."""
    base = mnistlab.load_run(args.run)
    (x_train, y_train), _ = mnistlab.load_data(data_dir=args.data_dir)
    rows = []
    for name in args.populations:
        test, used = write_population(args.out / "populations" / "test" / name, name, 30, 32, args.data_dir)
        before = mnistlab.evaluate(args.run, images=test, plots=args.out / "plots")
        for k in args.shots:
            pool, train_used = write_population(args.out / "populations" / f"train-{k}" / name, name, k, 31,
                                                args.data_dir, exclude=used)
            start = time.perf_counter()
            tuned = mnistlab.finetune(args.run, pool, out=args.out / "runs" / f"{name}-{k}", force=True,
                                      data_dir=args.data_dir, verbose=0, log=lambda msg: None)
            took = time.perf_counter() - start
            after = mnistlab.evaluate(tuned.path, images=test, plots=args.out / "plots")
            held = np.setdiff1d(np.arange(54000, 60000), [int(o.split(":")[1]) for o in used | train_used])
            rows.append({"population": name, "per_digit": k, "skipped": len(tuned.settings.finetune["no_digit_found"]),
                         "before": before["test_accuracy"], "after": after["test_accuracy"],
                         "answered_before": before["answered_accuracy"], "answered_after": after["answered_accuracy"],
                         "no_digit_found": after["refused"]["no_digit_found"],
                         "mnist_held_out_before": held_out_accuracy(base, x_train[held], y_train[held]),
                         "mnist_held_out_after": held_out_accuracy(tuned, x_train[held], y_train[held]),
                         "mnist_before": base.metrics["test_accuracy"], "mnist_after": tuned.metrics["test_accuracy"],
                         "seconds": round(took, 1)})
            print(json.dumps(rows[-1]), flush=True)
    print_table(rows, [("population", "population", ""), ("pictures per digit", "per_digit", ""),
                       ("test pictures before", "before", ".1%"), ("after", "after", ".1%"),
                       ("as predict answers, before", "answered_before", ".1%"), ("after", "answered_after", ".1%"),
                       ("no digit found (of 300)", "no_digit_found", ""), *MNIST_COLUMNS])


# The columns every table ends with: (header, key, format).
MNIST_COLUMNS = [("MNIST held-out before", "mnist_held_out_before", ".2%"), ("after", "mnist_held_out_after", ".2%"),
                 ("MNIST test before", "mnist_before", ".2%"), ("after", "mnist_after", ".2%"),
                 ("fine-tuning time (s)", "seconds", "")]


def print_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> None:
    """The rows as a Markdown table, one column per (header, key, format)."""
    print("\n| " + " | ".join(h for h, _, _ in columns) + " |")
    print("|" + " --- |" * len(columns))
    for r in rows:
        print("| " + " | ".join(format(r[k], f) for _, k, f in columns) + " |")


def held_out_accuracy(run, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of a run on MNIST images given as uint8 arrays."""
    return float((run.predict_proba(x).argmax(axis=1) == y).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a trained run directory (e.g. a full-size cnn)")
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--writers", type=int, default=3, help="how many fonts (the worst-read ones first)")
    ap.add_argument("--shots", type=int, nargs="+", default=[1, 5, 20, 100], help="pictures per digit")
    ap.add_argument("--out", type=Path, default=Path(".bench/finetune"))
    ap.add_argument("--populations", nargs="+", metavar="SET",
                    help="other_writers.py sets (usps, historical, ...) instead of handwriting fonts")
    args = ap.parse_args()
    if args.populations:
        populations(args)
        return

    fonts = available_fonts()
    if not fonts:
        sys.exit("no handwriting fonts installed (see synth_digits.FONT_PACKAGES)")
    base = mnistlab.load_run(args.run)
    # What fine-tuning forgets, for choosing its settings: MNIST training images the run never trained on
    # (cnn holds out the last 10% for validation), never the test set.
    (x_train, y_train), _ = mnistlab.load_data(data_dir=args.data_dir)
    x_held, y_held = x_train[54000:], y_train[54000:]
    held_before = held_out_accuracy(base, x_held, y_held)
    # Rank writers by how badly the run reads them (a small probe set, another seed than the test pictures).
    scores = []
    for font in fonts:
        probe = write_folder(args.out / "probe" / font.stem, font, 3, seed=7)
        scores.append((mnistlab.evaluate(args.run, images=probe, plots=args.out / "plots")["test_accuracy"], font))
    rows = []
    for before_probe, font in sorted(scores, key=lambda s: s[0])[: args.writers]:
        test = write_folder(args.out / "test" / font.stem, font, 30, seed=2)
        before = mnistlab.evaluate(args.run, images=test, plots=args.out / "plots")["test_accuracy"]
        for k in args.shots:
            pool = write_folder(args.out / f"train-{k}" / font.stem, font, k, seed=1)
            start = time.perf_counter()
            tuned = mnistlab.finetune(args.run, pool, out=args.out / "runs" / f"{font.stem}-{k}", force=True,
                                      data_dir=args.data_dir, verbose=0, log=lambda msg: None)
            took = time.perf_counter() - start
            after = mnistlab.evaluate(tuned.path, images=test, plots=args.out / "plots")["test_accuracy"]
            held_after = held_out_accuracy(tuned, x_held, y_held)
            rows.append({"writer": font.stem, "per_digit": k, "before": before, "after": after,
                         "mnist_held_out_before": held_before, "mnist_held_out_after": held_after,
                         "mnist_before": base.metrics["test_accuracy"], "mnist_after": tuned.metrics["test_accuracy"],
                         "seconds": round(took, 1)})
            print(json.dumps(rows[-1]), flush=True)
    print_table(rows, [("writer", "writer", ""), ("pictures per digit", "per_digit", ""),
                       ("writer's test pictures before", "before", ".1%"), ("after", "after", ".1%"), *MNIST_COLUMNS])


if __name__ == "__main__":
    main()
