"""How well a model reads pictures of handwritten digits: mnistlab.images.preprocess against a naive baseline.

The pictures are synthetic photos, scans and drawings of the digits 0-9 in handwriting fonts (synth_digits.py:
off-centre, slanted, rotated, thin and thick strokes, paper texture, uneven light and shadows, blur, noise,
JPEG, both polarities, coloured ink and paper, transparent canvases). The baseline is what a tutorial does:
greyscale, resize to 28x28, invert when the mean is bright. Prints accuracy, per-digit accuracy, accuracy per
kind of picture, the confusion matrix and timings, and writes a sample grid (picture / what the model saw).

    apt-get install fonts-dkg-handwriting fonts-breip fonts-bwht fonts-humor-sans fonts-comic-neue \\
        fonts-dancingscript fonts-kaushanscript fonts-sjfonts fonts-rufscript fonts-yusei-magic fonts-klee
    mnistlab train --recipe cnn --out /tmp/cnn-run
    PYTHONPATH=src python benchmarks/handwriting.py --model /tmp/cnn-run --grid /tmp/handwriting.png

`--model` takes a run directory or a .keras file whose model takes (28, 28, 1) or (784,) inputs in [0, 1].
Never part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import synth_digits  # noqa: E402
from mnistlab import images  # noqa: E402
from mnistlab.errors import ImageError  # noqa: E402
from mnistlab.metrics import accuracy, confusion_matrix, per_class_accuracy  # noqa: E402


def naive(data: bytes) -> np.ndarray:
    """The tutorial baseline: greyscale, plain resize to 28x28, invert when the mean is bright."""
    im = images.load_image(data).convert("L").resize((28, 28), Image.Resampling.BILINEAR)
    x = np.asarray(im, np.float32) / 255.0
    return 1.0 - x if x.mean() > 0.5 else x


def load_model(path: Path):
    """A run directory's model.keras, or a .keras file, loaded in safe mode."""
    from mnistlab.runs import MODEL_FILE
    from mnistlab.runs import load_model as _load

    return _load(path / MODEL_FILE if path.is_dir() else path)


def predict(model, x: np.ndarray) -> np.ndarray:
    from mnistlab.runs import to_model_input

    return np.asarray(model.predict(to_model_input(model, x), batch_size=256, verbose=0))


def grid(samples, ours: np.ndarray, pred: np.ndarray, path: Path, count: int = 60, cols: int = 10) -> None:
    """Picture thumbnails beside the 28x28 input the model saw; the prediction in green (right) or red."""
    chosen = np.linspace(0, len(samples) - 1, min(count, len(samples))).astype(int)
    tw, th = 150, 96
    sheet = Image.new("RGB", (cols * tw, -(-len(chosen) // cols) * th), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for k, i in enumerate(chosen):
        x0, y0 = (k % cols) * tw, (k // cols) * th
        raw = images.load_image(samples[i].data).convert("RGB")
        raw.thumbnail((72, 72))
        sheet.paste(raw, (x0 + 2, y0 + 2))
        seen = Image.fromarray((ours[i] * 255).astype(np.uint8)).resize((72, 72), Image.Resampling.NEAREST)
        sheet.paste(seen.convert("RGB"), (x0 + 76, y0 + 2))
        ok = pred[i] == samples[i].label
        label = f"{samples[i].label}->{pred[i] if pred[i] >= 0 else 'none'} {samples[i].kind}"
        draw.text((x0 + 2, y0 + 78), label, fill=(0, 128, 0) if ok else (200, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=Path("runs/cnn"), help="run directory or .keras file")
    ap.add_argument("--per-digit", type=int, default=5, help="pictures of each digit per font (default 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--grid", type=Path, default=Path(".bench/handwriting-samples.png"),
                    help="sample grid PNG (default .bench/handwriting-samples.png, which git ignores)")
    ap.add_argument("--mistakes", type=Path, help="also write a grid of the mistakes here")
    ap.add_argument("--mnist", type=int, default=1000, help="MNIST test images to check preprocess on")
    ap.add_argument("--data-dir", help="folder holding mnist/ (default: mnistlab's search order)")
    ap.add_argument("--list-mistakes", action="store_true", help="print every mistake: index, labels, how it was made")
    args = ap.parse_args()

    fonts = synth_digits.available_fonts()
    if not fonts:
        sys.exit("no handwriting fonts installed: apt-get install " + " ".join(synth_digits.FONT_PACKAGES))
    model = load_model(args.model)
    t0 = time.perf_counter()
    samples = synth_digits.make_samples(args.per_digit, args.seed, fonts)
    render_s = time.perf_counter() - t0
    labels = np.array([s.label for s in samples])
    print(f"{len(samples)} pictures: {len(fonts)} fonts x 10 digits x {args.per_digit}, seed {args.seed} "
          f"(rendered in {render_s:.0f} s)")

    ours = np.zeros((len(samples), 28, 28), np.float32)
    failed = np.zeros(len(samples), bool)
    reasons: dict[str, int] = defaultdict(int)
    seconds = []
    for i, s in enumerate(samples):
        t = time.perf_counter()
        try:
            ours[i] = images.preprocess(s.data)
        except ImageError as e:
            failed[i] = True
            reasons[str(e).split("(")[0].strip()] += 1
        seconds.append(time.perf_counter() - t)
    base = np.stack([naive(s.data) for s in samples])

    pred = predict(model, ours).argmax(1)
    pred[failed] = -1
    base_pred = predict(model, base).argmax(1)
    acc, base_acc = accuracy(labels, pred), accuracy(labels, base_pred)

    print(f"model: {args.model}")
    print(f"preprocess: {np.median(seconds) * 1e3:.1f} ms median, {np.max(seconds) * 1e3:.0f} ms max per picture "
          f"(decoding included)")
    print(f"\naccuracy with mnistlab.images.preprocess: {acc:.2%}   naive baseline: {base_acc:.2%}   "
          f"({failed.sum()} pictures refused as holding no digit)")
    for reason, n in sorted(reasons.items()):
        print(f"  refused {n}: {reason}")

    cm = confusion_matrix(labels, np.where(failed, labels, pred))  # a refusal is counted below, not as a class
    per_ours = [float(np.mean(pred[labels == d] == d)) for d in range(10)]
    per_base = per_class_accuracy(confusion_matrix(labels, base_pred))
    print("\nper digit")
    print(table([("digit", *map(str, range(10)))] + [("ours", *(f"{a:.0%}" for a in per_ours)),
                                                     ("naive", *(f"{a:.0%}" for a in per_base))]))
    print("\nper kind of picture / condition (n, ours, naive)")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        groups[f"kind={s.kind}"].append(i)
        groups[f"format={s.fmt}"].append(i)
        for note in s.notes:
            key = note.rstrip("0123456789.")
            if key == "q":
                key = "jpeg-q<60" if int(note[1:]) < 60 else "jpeg-q>=60"
            elif key == "blur":
                key = "blur>1.5" if float(note[4:]) > 1.5 else "blur<=1.5"
            groups[key].append(i)
    rows = [("group", "n", "ours", "naive")]
    for key in sorted(groups):
        ix = np.array(groups[key])
        rows.append((key, str(len(ix)), f"{np.mean(pred[ix] == labels[ix]):.1%}",
                     f"{np.mean(base_pred[ix] == labels[ix]):.1%}"))
    print(table(rows))
    print("\nper font (ours)")
    by_font: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        by_font[s.font].append(i)
    print("  ".join(f"{f} {np.mean(pred[ix] == labels[ix]):.0%}" for f, ix in sorted(by_font.items())))
    print("\nconfusion matrix (rows: true digit, columns: predicted; refusals left out)")
    print(table([("", *map(str, range(10)))] + [(str(d), *map(str, cm[d])) for d in range(10)]))

    # MNIST itself must come through unchanged: the model's accuracy on real test digits, as they are and
    # after preprocess.
    from mnistlab.data import load_data
    from mnistlab.errors import DataError

    beside = HERE.parent.parent / "shared" / "data"  # the checkout's neighbour, as tests/conftest.py uses
    data_dir = args.data_dir or os.environ.get("MNISTLAB_DATA") or (beside if (beside / "mnist").is_dir() else None)
    try:
        (_, _), (x_test, y_test) = load_data("mnist", data_dir)
    except DataError as e:
        print(f"\nMNIST check skipped: {e}")
    else:
        x_test, y_test = x_test[: args.mnist], y_test[: args.mnist]
        raw_acc = accuracy(y_test, predict(model, x_test / 255.0).argmax(1))
        pre_acc = accuracy(y_test, predict(model, images.preprocess_many(x_test)).argmax(1))
        print(f"\nMNIST test images ({len(y_test)}): accuracy {raw_acc:.2%} as they are, "
              f"{pre_acc:.2%} after preprocess")

    grid(samples, ours, pred, args.grid)
    print(f"\nsample grid: {args.grid}")
    if args.list_mistakes:
        print("\nmistakes: index, true, predicted, kind, font, notes")
        for i in np.flatnonzero(pred != labels):
            s = samples[i]
            print(f"  {i:5d}  {s.label} -> {pred[i] if pred[i] >= 0 else 'none'}  {s.kind:6s} {s.font:26s} {' '.join(s.notes)}")
    if args.mistakes:
        wrong = [i for i in range(len(samples)) if pred[i] != labels[i]]
        grid([samples[i] for i in wrong], ours[wrong], pred[wrong], args.mistakes, count=100)
        print(f"mistakes grid: {args.mistakes}")


if __name__ == "__main__":
    main()
