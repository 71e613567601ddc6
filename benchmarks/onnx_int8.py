"""Whether `--quantize int8` should be offered for ONNX: onnxruntime's static int8 quantization of a run's export.

    PYTHONPATH=src .venv/bin/python benchmarks/onnx_int8.py RUN_DIR [--data-dir ../shared/data]

Needs RUN_DIR/export/model.onnx (`mnistlab export RUN_DIR --format onnx`). Quantizes it with
onnxruntime.quantization.quantize_static (QDQ, per-channel int8 weights, activations calibrated on the same 500
training images the LiteRT int8 export uses), then compares it with the float export on the whole test set:
accuracy, agreement, size, and single-image latency (median of 500 calls, one thread). Never part of the tests.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mnistlab import runs  # noqa: E402
from mnistlab.data import load_dataset  # noqa: E402
from mnistlab.export import REPRESENTATIVE_IMAGES  # noqa: E402


def latency_ms(model: runs.OnnxModel, one: np.ndarray, calls: int = 500) -> float:
    model.predict(one)
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        model.predict(one)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--data-dir")
    args = ap.parse_args()
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    float_path = runs.export_path(args.run_dir, "onnx")
    float_model = runs.OnnxModel(float_path)
    data = load_dataset("mnist", args.data_dir)
    rng = np.random.default_rng(0)
    picks = np.sort(rng.choice(len(data.x_train), size=REPRESENTATIVE_IMAGES, replace=False))
    calibration = runs.to_input_shape(data.x_train[picks], float_model.input_shape)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(calibration)

        def get_next(self) -> dict | None:
            x = next(self.items, None)
            return None if x is None else {float_model.input_name: x[None]}

    with tempfile.TemporaryDirectory() as tmp:
        int8_path = Path(tmp) / "model-int8.onnx"
        quantize_static(str(float_path), str(int8_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QInt8)
        int8_model = runs.OnnxModel(int8_path)
        p_float, p_int8 = float_model.predict(data.x_test), int8_model.predict(data.x_test)
        one = data.x_test[:1]
        rows = [("float32", float_path.stat().st_size, p_float, latency_ms(float_model, one)),
                ("int8 (QDQ, static)", int8_path.stat().st_size, p_int8, latency_ms(int8_model, one))]
    print(f"\n`{args.run_dir}`, onnxruntime, one thread, {len(data.y_test):,} test images\n")
    print("| ONNX model | KiB | test accuracy | same digit as float | ms / image (median of 500) |")
    print("|---|---|---|---|---|")
    for name, size, p, ms in rows:
        acc = float((p.argmax(1) == data.y_test).mean())
        same = int((p.argmax(1) == p_float.argmax(1)).sum())
        print(f"| {name} | {size / 1024:.0f} | {acc:.2%} | {same:,} | {ms:.3f} |")


if __name__ == "__main__":
    main()
