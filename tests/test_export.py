"""`mnistlab export`: every format from a small real run checked against Keras; refusals; inference without TensorFlow."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import mnistlab
from helpers import canvas_png, cli_env, copy_run, set_metrics
from mnistlab import runs
from mnistlab.cli import main
from mnistlab.errors import RunError, UsageError
from mnistlab.export import export_run
from mnistlab.serve import create_app

EXPORTS = [("onnx", None), ("litert", None), ("litert", "int8"), ("saved_model", None)]


@pytest.fixture(scope="module")
def exported(trained_run, data_dir, tmp_path_factory):
    """A copy of the small trained run with every export made in it: (run dir, {(format, quantize): record})."""
    run_dir = copy_run(trained_run.path, tmp_path_factory.mktemp("export") / "run")  # the shared run stays as it is
    records = {(f, q): export_run(run_dir, f, quantize=q, data_dir=data_dir, log=lambda _: None) for f, q in EXPORTS}
    return run_dir, records


@pytest.fixture(scope="module")
def test_digits(data_dir):
    (_, _), (x, y) = mnistlab.load_data(data_dir=data_dir)
    return x, y


@pytest.mark.parametrize("fmt,quantize", EXPORTS)
def test_each_export_passes_its_check(exported, fmt, quantize):
    run_dir, records = exported
    record = records[(fmt, quantize)]
    path = runs.export_path(run_dir, fmt, quantize)
    assert path.exists() and record["passed"]
    assert json.loads(runs.parity_path(path).read_text()) == record  # the figures are stored beside the export
    assert record["images"] == 1000 and record["model_sha256"] == runs.file_sha256(run_dir / runs.MODEL_FILE)
    if quantize:
        full = record["full_test"]
        assert full["images"] == 10000 and full["drop_points"] <= 0.2
        assert record["bytes"] < 0.5 * records[("litert", None)]["bytes"]  # int8 weights: about a quarter
    else:
        assert record["same_digit"] == 1000 and record["max_abs_diff"] <= 1e-4


def test_onnx_file_agrees_with_keras_on_other_images(exported, trained_run, test_digits):
    """Checked independently of the export's own record, on test images it was not checked on."""
    import onnxruntime as ort

    run_dir, _ = exported
    x = test_digits[0][1000:1200]
    session = ort.InferenceSession(str(runs.export_path(run_dir, "onnx")), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: runs.to_model_input(trained_run.model, x)})[0]
    want = trained_run.predict_proba(x)
    assert (got.argmax(1) == want.argmax(1)).all() and np.abs(got - want).max() <= 1e-4


def test_the_onnx_export_brings_the_detector_scoring_like_numpy(exported, test_digits):
    """The onnxruntime path scores not-a-digit with the detector's ONNX copy: within 1e-3 of NumPy's log-odds,
    the same refusals, on test digits and generated non-digits it was not checked on."""
    from mnistlab import rejection

    run_dir, _ = exported
    detector = runs.detector_export_path(run_dir)
    record = json.loads(runs.parity_path(detector).read_text())
    assert detector.is_file() and record["passed"] and record["same_refusal"] == record["images"] == 1300
    assert record["rejection_sha256"] == runs.file_sha256(run_dir / runs.REJECTION_FILE)
    onnx, plain = runs.load_run(run_dir, engine="onnx"), runs.load_run(run_dir, engine="keras")
    assert onnx.rejector.runtime is not None and plain.rejector.runtime is None
    others = rejection.negatives(100, np.random.default_rng(5), test_digits[0][:500].astype(np.float32) / 255)
    x = np.concatenate([test_digits[0][1000:1200].astype(np.float32) / 255, others])
    proba = onnx.predict_proba(x)
    got, want = onnx.rejector.score(x, proba), plain.rejector.score(x, proba)
    assert np.abs(got - want).max() <= 1e-3
    assert ((got > onnx.rejector.threshold) == (want > plain.rejector.threshold)).all()
    assert (want > plain.rejector.threshold).sum() >= 50  # the non-digits' side was scored too
    assert onnx.rejector.score(x[:0], proba[:0]).shape == (0,)
    assert f"`{runs.DETECTOR_EXPORT}`" in (run_dir / runs.EXPORT_DIR / runs.MODEL_CARD_FILE).read_text()
    assert f"`{runs.PAIRS_FILE}`" in (run_dir / runs.EXPORT_DIR / runs.MODEL_CARD_FILE).read_text()


def test_a_detector_copy_from_another_rejection_file_is_not_used(exported, tmp_path):
    """A refitted or fine-tuned detector (another rejection.npz) must not be scored by the old copy."""
    from mnistlab.rejection import Rejector

    run_dir = copy_run(exported[0], tmp_path / "run")
    old = Rejector.load(run_dir / runs.REJECTION_FILE)
    Rejector(old.weights, old.threshold + 1.0, old.version).save(run_dir / runs.REJECTION_FILE)
    run = runs.load_run(run_dir, engine="onnx")
    assert run.engine == "onnx" and run.rejector.runtime is None
    assert run.rejector.threshold == pytest.approx(old.threshold + 1.0)


def test_model_card_describes_the_run_and_every_export(exported, trained_run):
    run_dir, records = exported
    card = (run_dir / runs.EXPORT_DIR / runs.MODEL_CARD_FILE).read_text()
    for heading in ["## Model", "## Data", "## Accuracy", "## Input contract", "## Exports in this folder",
                    "## What it was not tested on"]:
        assert heading in card
    assert "95% Wilson interval" in card and "[0, 1]" in card
    for digest in trained_run.settings.data_sha256.values():
        assert digest in card
    for (fmt, quantize), record in records.items():
        assert f"`{record['file']}`" in card


def test_refuses_unknown_format_and_quantization_writing_nothing(trained_run, tmp_path, capsys):
    run_dir = copy_run(trained_run.path, tmp_path / "run")
    for argv, flag in [(["--format", "coreml"], "--format coreml"),
                       (["--format", "onnx", "--quantize", "int8"], "--quantize int8"),
                       (["--format", "litert", "--quantize", "int4"], "--quantize int4"),
                       (["--format", "onnx", "--out", str(tmp_path / "model.tflite")], "--out ")]:
        assert main(["export", str(run_dir), *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"mnistlab: error: {flag}") and err.count("\n") == 1
    assert not (run_dir / runs.EXPORT_DIR).exists() and not (tmp_path / "model.tflite").exists()
    with pytest.raises(UsageError) as e:
        export_run(run_dir, "tflite")
    assert e.value.param == "format"


def test_refuses_an_unfinished_run(trained_run, tmp_path, capsys):
    run_dir = copy_run(trained_run.path, tmp_path / "run", set_metrics(status="interrupted"))
    assert main(["export", str(run_dir), "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "did not finish" in err and "--resume" in err and err.count("\n") == 1
    assert not (run_dir / runs.EXPORT_DIR).exists()


def test_refuses_an_existing_output_without_force(exported, tmp_path, capsys):
    run_dir, _ = exported
    target = runs.export_path(run_dir, "onnx")
    before = (target.read_bytes(), runs.parity_path(target).read_bytes())
    assert main(["export", str(run_dir), "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err and err.count("\n") == 1
    assert (target.read_bytes(), runs.parity_path(target).read_bytes()) == before
    elsewhere = tmp_path / "model.onnx"
    elsewhere.write_bytes(b"mine")
    assert main(["export", str(run_dir), "--format", "onnx", "--out", str(elsewhere)]) == 2
    assert elsewhere.read_bytes() == b"mine" and not runs.parity_path(elsewhere).exists()
    capsys.readouterr()


def test_force_and_out_write_elsewhere(exported, data_dir, tmp_path):
    run_dir, _ = exported
    out = tmp_path / "deploy" / "digits.onnx"
    out.parent.mkdir()
    out.write_bytes(b"old")
    record = export_run(run_dir, "onnx", out=out, force=True, data_dir=data_dir, log=lambda _: None)
    assert record["passed"] and out.read_bytes() != b"old"
    assert runs.parity_path(out).is_file() and (out.parent / runs.MODEL_CARD_FILE).is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["MODEL_CARD.md", "digits.onnx", "digits.onnx.parity.json"]


def test_engine_rule(exported, trained_run):
    run_dir, _ = exported
    assert runs.load_run(run_dir).engine == "onnx"  # auto: the checked export is there
    assert runs.load_run(run_dir, engine="keras").engine == "keras"
    assert runs.load_run(trained_run.path).engine == "keras"  # no export
    with pytest.raises(RunError, match="no ONNX export"):
        runs.load_run(trained_run.path, engine="onnx")
    with pytest.raises(UsageError) as e:
        runs.load_run(run_dir, engine="tflite")
    assert e.value.param == "engine"


def test_an_export_of_an_older_model_is_not_used(exported, tmp_path):
    run_dir = copy_run(exported[0], tmp_path / "run")
    record_file = runs.parity_path(runs.export_path(run_dir, "onnx"))
    record_file.write_text(json.dumps({**json.loads(record_file.read_text()), "model_sha256": "0" * 64}))
    assert runs.load_run(run_dir).engine == "keras"
    with pytest.raises(RunError, match="older model.keras"):
        runs.load_run(run_dir, engine="onnx")


def test_predict_through_onnxruntime_never_imports_tensorflow(exported, trained_run, test_digits, tmp_path):
    """A deployed copy as README describes it (metrics.json, rejection.npz, pairs.npz, the ONNX export; no
    model.keras), predicted and read in a fresh interpreter."""
    run_dir, _ = exported
    bundle = tmp_path / "bundle"
    (bundle / runs.EXPORT_DIR).mkdir(parents=True)
    for name in [runs.METRICS_FILE, runs.REJECTION_FILE, runs.PAIRS_FILE]:
        if (run_dir / name).is_file():
            shutil.copy(run_dir / name, bundle)
    onnx, detector = runs.export_path(run_dir, "onnx"), runs.detector_export_path(run_dir)
    for f in [onnx, runs.parity_path(onnx), detector, runs.parity_path(detector)]:
        shutil.copy(f, bundle / runs.EXPORT_DIR)
    x, _ = test_digits
    pictures = []
    for i in range(5):
        pictures.append(tmp_path / f"d{i}.png")
        pictures[-1].write_bytes(canvas_png(x[i]))
    code = ("import contextlib, io, json, sys\nfrom mnistlab.cli import main\nfrom mnistlab.runs import load_run\n"
            f"rc = main(['predict', {str(bundle)!r}, *{[str(p) for p in pictures]!r}, '--json'])\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    rc += main(['read', {str(bundle)!r}, {str(pictures[0])!r}])\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras', 'jax', "
            "'torch'))\n"
            f"onnx_detector = load_run({str(bundle)!r}).rejector.runtime is not None\n"
            f"pairs = load_run({str(bundle)!r}).pair_reader is not None\n"
            "print(json.dumps({'rc': rc, 'heavy': heavy, 'onnx_detector': onnx_detector, 'pairs': pairs}), "
            "file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120)
    summary = json.loads(done.stderr.strip().splitlines()[-1])
    assert summary == {"rc": 0, "heavy": [], "onnx_detector": True, "pairs": True}, done.stderr
    got = json.loads(done.stdout)
    want = mnistlab.predict(runs.load_run(trained_run.path, engine="keras"), pictures)
    assert any(g["digit"] is not None for g in got)
    for g, w in zip(got, want):
        assert g["digit"] == w["digit"]
        if w["probabilities"] is not None:
            assert np.abs(np.array(g["probabilities"]) - np.array(w["probabilities"])).max() <= 1e-4


def test_server_on_the_onnx_path_answers_like_keras(exported, test_digits):
    run_dir, _ = exported
    x, _ = test_digits
    with TestClient(create_app(runs.load_run(run_dir, engine="onnx"))) as onnx_client, \
            TestClient(create_app(runs.load_run(run_dir, engine="keras"))) as keras_client:
        assert onnx_client.get("/api/model").json()["engine"] == "onnx"
        assert keras_client.get("/api/model").json()["engine"] == "keras"
        for i in range(10):
            files = {"file": ("canvas.png", canvas_png(x[i]), "image/png")}
            a, b = onnx_client.post("/api/predict", files=files), keras_client.post("/api/predict", files=files)
            assert a.status_code == b.status_code == 200
            ra, rb = a.json(), b.json()
            assert ra["digit"] == rb["digit"] and ra["preprocessed"] == rb["preprocessed"]
            if rb["probabilities"] is not None:
                assert np.abs(np.array(ra["probabilities"]) - np.array(rb["probabilities"])).max() <= 1e-4
        blank = io.BytesIO()
        Image.new("L", (280, 280), 255).save(blank, format="PNG")
        answer = onnx_client.post("/api/predict", files={"file": ("blank.png", blank.getvalue(), "image/png")})
        assert answer.status_code == 200 and answer.json()["no_digit"] is True


def _workers(pid: int) -> list[int]:
    """The uvicorn worker processes (multiprocessing's spawned children) of a `serve` process (Linux /proc)."""
    from pathlib import Path

    children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def _alive(pid: int) -> bool:
    from pathlib import Path

    try:  # a zombie (exited, not yet reaped) is gone for our purpose
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


_WORKER = """
import json, os, sys
from mnistlab import backend
from mnistlab.serve.app import _WORKER_ENV, worker_app
os.environ[_WORKER_ENV] = json.dumps({"run_dir": sys.argv[1], "parent": os.getppid(), "allow_partial": False,
                                      "engine": "onnx"})
worker_app()
print(backend._ALLOCATOR_SET)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_worker_process_keeps_freed_memory_like_the_single_server(exported):
    # What the setting buys (523 -> 0 page faults a canvas, 3.4 -> 2.9 ms of server CPU) is measured by
    # benchmarks/serve_ab.py; counting a worker's page faults here failed in CI when the machine was busy
    # (20-190 faults a canvas in every round), so the test checks that the worker sets the allocator at all.
    from helpers import cli_env

    run_dir, _ = exported

    def allocator_set(**env: str) -> str:
        return subprocess.run([sys.executable, "-c", _WORKER, str(run_dir)], env={**cli_env(), **env},
                              capture_output=True, text=True, check=True).stdout.strip()

    assert allocator_set() == "True"
    assert allocator_set(MALLOC_TRIM_THRESHOLD_="0") == "False"  # the user's own glibc setting wins in a worker too


def test_two_worker_processes_answer_like_one_and_stop_with_their_parent(exported, test_digits, tmp_path):
    import http.client
    import os
    import signal
    import time

    from helpers import served

    run_dir, _ = exported
    x, _ = test_digits
    canvases = [canvas_png(x[i]) for i in range(8)]
    with TestClient(create_app(runs.load_run(run_dir, engine="onnx"))) as c:
        want = [c.post("/api/predict", files={"file": ("c.png", png, "image/png")}).json() for png in canvases]
    with served(run_dir, tmp_path / "serve.log", args=("--workers", "2")) as server:
        [line] = [line for line in server.log_text().splitlines() if "serving" in line]
        assert line.endswith("(Ctrl-C to stop, 2 worker processes)"), line
        workers = _workers(server.proc.pid)
        assert len(workers) == 2, workers
        connections = [http.client.HTTPConnection(server.host, server.port, timeout=30) for _ in range(4)]
        bodies = [b'--b\r\nContent-Disposition: form-data; name="file"; filename="c.png"\r\n\r\n' + png
                  + b"\r\n--b--\r\n" for png in canvases]
        for i, body in enumerate(bodies):
            conn = connections[i % len(connections)]
            conn.request("POST", "/api/predict", body=body, headers={"Content-Type": "multipart/form-data; boundary=b"})
            response = conn.getresponse()
            assert response.status == 200
            got = json.loads(response.read())
            for key in ("digit", "probabilities", "no_digit", "preprocessed"):
                assert got[key] == want[i][key], (i, key)
        for conn in connections:
            conn.close()
        # Killed outright, the supervisor cannot stop its workers: they notice and stop themselves.
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
        _stop_with_parent(workers)
    # The same while the workers are still starting (importing, loading the run): killed as soon as they exist.
    with open(tmp_path / "early.log", "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mnistlab.cli", "serve", str(run_dir), "--port", "0",
                                 "--workers", "2"], stdout=out, stderr=subprocess.STDOUT, env=cli_env())
    try:
        deadline = time.monotonic() + 60
        while len(workers := _workers(proc.pid)) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "early.log").read_text()
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        _stop_with_parent(workers)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _stop_with_parent(workers: list[int]) -> None:
    """Wait for the worker processes of a `serve` killed outright to notice and stop themselves."""
    import time

    deadline = time.monotonic() + 30
    while any(map(_alive, workers)):
        assert time.monotonic() < deadline, "worker processes outlived their killed parent"
        time.sleep(0.2)


def test_exports_run_augmentation_layers_in_inference_mode(tmp_path):
    """`best` holds random augmentation layers, which Keras' exporters would trace in training mode."""
    import onnxruntime as ort

    from mnistlab.backend import import_keras
    from mnistlab.export import inference_model

    keras = import_keras()
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.RandomRotation(0.3, seed=1),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    x = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    want = np.asarray(model.predict_on_batch(x))
    assert np.abs(np.asarray(model(x)) - want).max() > 1e-3  # called plainly, the layer rotates at random
    wrapped = inference_model(model)
    assert np.abs(np.asarray(wrapped(x)) - want).max() < 1e-6
    wrapped.export(str(tmp_path / "m.onnx"), format="onnx", verbose=False)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert np.abs(session.run(None, {"image": x})[0] - want).max() < 1e-5
