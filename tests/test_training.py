"""The Python API: training is reproducible, ensembles average their members, runs reload."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import mnistlab
from mnistlab import runs
from mnistlab.errors import RunError, UsageError


def _quiet(**kwargs):
    return {"verbose": 0, "log": lambda msg: None, **kwargs}


def test_same_seed_gives_the_same_result(tmp_path, data_dir):
    a = mnistlab.train("mlp", epochs=1, limit=2000, seed=7, out=tmp_path / "a", data_dir=data_dir, **_quiet())
    b = mnistlab.train("mlp", epochs=1, limit=2000, seed=7, out=tmp_path / "b", data_dir=data_dir, **_quiet())
    c = mnistlab.train("mlp", epochs=1, limit=2000, seed=8, out=tmp_path / "c", data_dir=data_dir, **_quiet())
    assert a.metrics["test_accuracy"] == b.metrics["test_accuracy"]
    assert a.metrics["confusion_matrix"] == b.metrics["confusion_matrix"]
    assert a.metrics["confusion_matrix"] != c.metrics["confusion_matrix"]


def test_trained_run_reloads_and_predicts(trained_run, data_dir):
    (_, _), (x_test, y_test) = mnistlab.load_data(data_dir=data_dir)
    run = mnistlab.load_run(trained_run.path)
    assert run.complete and run.metrics["recipe"] == "cnn"
    proba = run.predict_proba(x_test[:500])
    assert proba.shape == (500, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert (proba.argmax(axis=1) == y_test[:500]).mean() > 0.8
    # Floats in [0, 1] and uint8 give the same answer; a direct call (<= 256 images) matches model.predict.
    np.testing.assert_allclose(run.predict_proba(x_test[:10] / 255.0), proba[:10], atol=1e-5)


def test_ensemble_averages_its_members(tmp_path, data_dir):
    run = mnistlab.train("dense512", epochs=1, limit=1500, ensemble=2, out=tmp_path / "ens", data_dir=data_dir,
                         **_quiet())
    m = run.metrics
    assert m["ensemble"] == 2 and len(m["member_test_accuracy"]) == 2
    reloaded = mnistlab.load_run(run.path)
    members = [layer for layer in reloaded.model.layers if layer.name.startswith("member_")]
    assert len(members) == 2
    x = np.random.default_rng(0).random((4, 28, 28), dtype=np.float32)
    flat = x.reshape(4, 784)
    expected = (np.asarray(members[0](flat)) + np.asarray(members[1](flat))) / 2
    np.testing.assert_allclose(reloaded.predict_proba(x), expected, atol=1e-6)
    assert (run.path / "history.csv").read_text().splitlines()[0].startswith("member,epoch")
    assert mnistlab.evaluate(run.path, data_dir=data_dir)["test_accuracy"] == pytest.approx(m["test_accuracy"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "epochs must be between 1 and 1000"),
        ({"epochs": 10**6}, "epochs must be between 1 and 1000"),
        ({"batch_size": 0}, "batch size must be between"),
        ({"seed": -1}, "seed must be between"),
        ({"limit": 0}, "limit must be between"),
        ({"epochs": 2.5}, "epochs must be a whole number"),
        ({"ensemble": 100}, "ensemble must be between"),
    ],
)
def test_bad_hyperparameters_are_refused_before_any_work(kwargs, message, tmp_path):
    with pytest.raises(UsageError, match=message):
        mnistlab.train("mlp", out=tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def _copy_run(run, dest):
    import shutil

    shutil.copytree(run.path, dest)
    return dest


def test_broken_run_directories_are_refused(trained_run, tmp_path):
    missing_model = _copy_run(trained_run, tmp_path / "missing")
    (missing_model / runs.MODEL_FILE).unlink()
    with pytest.raises(RunError, match="model.keras missing"):
        mnistlab.load_run(missing_model)

    not_zip = _copy_run(trained_run, tmp_path / "notzip")
    (not_zip / runs.MODEL_FILE).write_bytes(b"\x80\x04 this is a pickle, not a .keras file")
    with pytest.raises(RunError, match="not a .keras model file"):
        mnistlab.load_run(not_zip).model

    bad_zip = _copy_run(trained_run, tmp_path / "badzip")
    with zipfile.ZipFile(bad_zip / runs.MODEL_FILE, "w") as z:
        z.writestr("config.json", "{not json")
    with pytest.raises(RunError, match="cannot load the model"):
        mnistlab.load_run(bad_zip).model

    newer = _copy_run(trained_run, tmp_path / "newer")
    m = json.loads((newer / runs.METRICS_FILE).read_text())
    (newer / runs.METRICS_FILE).write_text(json.dumps({**m, "format": runs.FORMAT_VERSION + 1}))
    with pytest.raises(RunError, match="newer mnistlab"):
        mnistlab.load_run(newer)

    no_metrics = _copy_run(trained_run, tmp_path / "nometrics")
    (no_metrics / runs.METRICS_FILE).unlink()
    with pytest.raises(RunError, match="metrics.json missing"):
        mnistlab.load_run(no_metrics)


def test_model_with_the_wrong_input_shape_is_refused(trained_run, tmp_path):
    import keras

    odd = _copy_run(trained_run, tmp_path / "odd")
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    model.save(odd / runs.MODEL_FILE)
    with pytest.raises(RunError, match=r"input of shape \(32, 32, 3\)"):
        mnistlab.load_run(odd).model
