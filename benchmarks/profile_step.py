"""Where a training step's time goes: per-layer forward and backward, the optimizer, and the distance
from the CPU's arithmetic limit.

    .venv/bin/python benchmarks/profile_step.py --recipe fast [--batch 256] [--repeats 30]

Times (medians over `--repeats`) for one batch of real MNIST images: the whole compiled Keras train step
(`train_on_batch`), the compiled forward pass (`predict_on_batch`), and each layer's forward and
backward pass run on its own under tf.GradientTape (eager, so the per-layer sum carries some
dispatch overhead the compiled step does not). FLOPs are counted analytically (a multiply-add is 2).
Never part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def clock_ghz() -> float:
    with open("/proc/cpuinfo") as f:
        mhz = re.search(r"cpu MHz\s*:\s*([\d.]+)", f.read())
    return float(mhz.group(1)) / 1000 if mhz else float("nan")


def layer_flops(layer, in_shape, out_shape) -> float:
    """Forward FLOPs per image of a Conv2D or Dense layer (2 per multiply-add); 0 for the rest."""
    kind = type(layer).__name__
    if kind == "Conv2D":
        kh, kw = layer.kernel_size
        return 2.0 * np.prod(out_shape[1:]) * kh * kw * in_shape[-1]
    if kind == "Dense":
        return 2.0 * in_shape[-1] * layer.units
    return 0.0


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="fast")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()

    import keras
    import tensorflow as tf

    import mnistlab
    from mnistlab.recipes import get_recipe
    from mnistlab.runs import to_model_input

    recipe = get_recipe(args.recipe)
    batch = args.batch or recipe.batch_size
    (x, y), _ = mnistlab.load_data()
    model = recipe.build(235, recipe.epochs)
    xb = to_model_input(model, x[:batch])
    yb = np.eye(10, dtype=np.float32)[y[:batch]] if recipe.one_hot else y[:batch]

    step = median_ms(lambda: model.train_on_batch(xb, yb), args.repeats)
    forward = median_ms(lambda: model.predict_on_batch(xb), args.repeats)

    rows, h, total_flops = [], tf.constant(xb), 0.0
    for index, layer in enumerate(model.layers):
        inp = tf.Variable(h)
        # Training never needs the gradient of the input images, only of the later layers' inputs.
        wrt = [*([inp] if index else []), *layer.trainable_variables]

        def fwd():
            return layer(inp, training=True)

        def fwd_bwd():
            with tf.GradientTape() as tape:
                out = layer(inp, training=True)
            return tape.gradient(out, wrt) if wrt else None

        f_ms = median_ms(fwd, args.repeats)
        fb_ms = median_ms(fwd_bwd, args.repeats)
        out = fwd()
        flops = layer_flops(layer, tuple(h.shape), tuple(out.shape))
        total_flops += flops
        rows.append((f"{layer.name} ({type(layer).__name__})", tuple(out.shape[1:]), flops, f_ms, fb_ms - f_ms))
        h = tf.convert_to_tensor(out)

    ghz = clock_ghz()
    peak_avx2 = 2 * 32 * ghz  # GFLOP/s: 2 cores x 32 FP32 FLOPs/cycle (AVX2, 2 FMA units)
    train_flops = 3 * total_flops * batch  # forward + backward (about twice the forward)
    achieved = train_flops / (step / 1000) / 1e9
    print(f"\nRecipe `{args.recipe}`, batch {batch}, Keras {keras.__version__} on {keras.backend.backend()}, "
          f"{os.cpu_count()} cores at {ghz:.2f} GHz\n")
    print("| layer | output | MFLOP/image fwd | forward ms | backward ms |")
    print("|---|---|---|---|---|")
    for name, shape, flops, f_ms, b_ms in rows:
        print(f"| {name} | {shape} | {flops / 1e6:.2f} | {f_ms:.2f} | {max(b_ms, 0):.2f} |")
    per_layer = sum(r[3] + max(r[4], 0) for r in rows)
    print(f"| **sum of layers** | | {total_flops / 1e6:.2f} | {sum(r[3] for r in rows):.2f} | "
          f"{sum(max(r[4], 0) for r in rows):.2f} |")
    print(f"\n- compiled train step (`train_on_batch`): **{step:.1f} ms** per batch of {batch} "
          f"({batch / step * 1000:.0f} images/s); compiled forward pass: {forward:.1f} ms")
    print(f"- per-layer forward+backward, run one layer at a time: {per_layer:.1f} ms; the rest of the step "
          f"(optimizer update, loss, metrics, dispatch) ≈ {max(step - per_layer, 0):.1f} ms")
    print(f"- training arithmetic: {3 * total_flops / 1e6:.1f} MFLOP per image, {train_flops / 1e9:.2f} GFLOP per step "
          f"-> {achieved:.1f} GFLOP/s achieved, against a peak of {peak_avx2:.0f} GFLOP/s for AVX2+FMA "
          f"({achieved / peak_avx2:.1%} of it)")


if __name__ == "__main__":
    main()
