"""The Python API: training is reproducible, ensembles average their members, runs reload."""

from __future__ import annotations

import csv
import dataclasses
import inspect
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import mnistlab
from helpers import copy_run
from mnistlab import runs
from mnistlab.errors import RunError, UsageError
from mnistlab.recipes import get_recipe


def _quiet(**kwargs):
    return {"verbose": 0, "log": lambda msg: None, **kwargs}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, data_dir):
    """Three small mlp runs, two with seed 7 and one with seed 8, and the label order each epoch's fit was given."""
    import keras

    orders: list[np.ndarray] = []
    fit = keras.Model.fit

    def spy(self, x=None, y=None, **kwargs):
        if "initial_epoch" in kwargs:  # an epoch of the run's model (the not-a-digit detector has fits of its own)
            orders.append(np.asarray(y).copy())
        return fit(self, x, y, **kwargs)

    out = tmp_path_factory.mktemp("seeded")
    trained = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(keras.Model, "fit", spy)
        for name, seed in [("a", 7), ("b", 7), ("c", 8)]:
            start = len(orders)
            run = mnistlab.train("mlp", epochs=3, limit=1000, batch_size=100, seed=seed, detector=False,
                                 out=out / name, data_dir=data_dir, **_quiet())
            trained[name] = (run, orders[start:])
    return trained


def test_same_seed_gives_the_same_result(seeded):
    (a, _), (b, _), (c, _) = seeded["a"], seeded["b"], seeded["c"]
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
    run = mnistlab.train("dense512", epochs=1, limit=1500, ensemble=2, detector=False, out=tmp_path / "ens",
                         data_dir=data_dir, **_quiet())
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
        ({"epochs": 0}, "epochs=0: must be between 1 and 1000"),
        ({"epochs": 10**6}, "epochs=1000000: must be between 1 and 1000"),
        ({"batch_size": 0}, "batch_size=0: must be between"),
        ({"seed": -1}, "seed=-1: must be between"),
        ({"limit": 0}, "limit=0: must be between"),
        ({"epochs": 2.5}, "epochs=2.5: must be a whole number"),
        ({"ensemble": 100}, "ensemble=100: must be between"),
        ({"recipe": "nope"}, "unknown recipe 'nope'"),
    ],
)
def test_bad_hyperparameters_are_refused_before_any_work(kwargs, message, tmp_path):
    with pytest.raises(UsageError, match=message) as caught:
        mnistlab.train(out=tmp_path / "x", **kwargs)
    assert isinstance(caught.value, ValueError), "a caller's bad argument is also a standard ValueError"
    assert not (tmp_path / "x").exists()


def test_python_errors_name_the_parameter_and_are_standard_types(tmp_path, data_dir):
    with pytest.raises(ValueError, match=r"^limit=70000: larger than the 60000 training images"):
        mnistlab.train("mlp", limit=70000, out=tmp_path / "x", data_dir=data_dir, **_quiet())
    with pytest.raises(FileNotFoundError, match="no such run directory"):
        mnistlab.load_run(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no such file"):
        mnistlab.preprocess(tmp_path / "missing.png")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"^out='.*full': directory exists and is not empty.*force=True"):
        mnistlab.train("mlp", out=tmp_path / "full", data_dir=data_dir, **_quiet())


@pytest.mark.parametrize("name", ["train", "resume_run", "predict", "evaluate", "load_run", "load_data"])
def test_the_api_shows_its_real_parameters(name):
    function = getattr(mnistlab, name)
    parameters = inspect.signature(function).parameters
    assert not any(p.kind is p.VAR_KEYWORD for p in parameters.values()), f"{name} hides its parameters in **kwargs"
    expected = {"train": {"recipe", "dataset", "epochs", "batch_size", "seed", "limit", "ensemble", "out", "force",
                          "data_dir"},
                "resume_run": {"run_dir", "data_dir"}, "predict": {"images", "top", "min_confidence"},
                "evaluate": {"run_dir", "data_dir"}, "load_run": {"allow_partial"}, "load_data": {"dataset", "data_dir"}}
    assert expected[name] <= set(parameters)
    assert function.__doc__ and function.__module__.startswith("mnistlab.")


def test_settings_are_a_typed_frozen_record(trained_run):
    run = mnistlab.load_run(trained_run.path)
    s = run.settings
    assert isinstance(s, runs.RunSettings) and run.status is runs.RunStatus.COMPLETE
    assert (s.recipe, s.dataset, s.epochs, s.batch_size, s.seed, s.limit, s.ensemble) == ("cnn", "mnist", 2, 128, 1,
                                                                                            6000, 1)
    assert s.class_names == tuple("0123456789") and len(s.data_sha256) == 4 and s.format == runs.FORMAT_VERSION
    assert s.detector is True and (run.path / runs.REJECTION_FILE).is_file()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.seed = 2
    with pytest.raises(TypeError):
        s.data_sha256["x"] = "y"
    assert runs.RunSettings.from_json(s.to_json(), run.path) == s


def test_each_epoch_shuffles_differently_and_reproducibly(seeded):
    (_, first), (_, second), (_, other) = seeded["a"], seeded["b"], seeded["c"]
    assert len(first) == len(second) == len(other) == 3, "one fit call per epoch"
    for a, b in [(first[0], first[1]), (first[1], first[2]), (first[0], first[2])]:
        assert not np.array_equal(a, b), "two epochs visited the training images in the same order"
        assert np.array_equal(np.sort(a), np.sort(b)), "every epoch visits the same images"
    for a, b, c in zip(first, second, other):
        np.testing.assert_array_equal(a, b)  # the same seed gives the same orders
        assert not np.array_equal(a, c), "another seed gives other orders"


FORMAT1 = Path(__file__).parent / "fixtures" / "format1"


def _format1_run(name: str, tmp_path: Path, model_from: str = "mlp") -> Path:
    """A run directory written by mnistlab before the typed settings (tests/fixtures/format1), with a fresh model.

    The fixtures hold metrics.json, history.csv and checkpoint/state.json exactly as that code wrote them
    (the data path rewritten to a relative one); no model is committed, so an untrained one of the same
    recipe stands in for it.
    """
    path = shutil.copytree(FORMAT1 / name, tmp_path / name)
    recipe = mnistlab.RunSettings.from_json(json.loads((path / runs.METRICS_FILE).read_text()), path).recipe
    model = get_recipe(recipe).build(10, 1)
    model.optimizer.build(model.trainable_variables)  # saved with its state, as a trained model would be
    state = path / runs.CHECKPOINT_DIR / runs.CHECKPOINT_STATE
    if state.is_file():
        model.save(path / runs.CHECKPOINT_DIR / json.loads(state.read_text())["members"][-1]["model"])
    else:
        model.save(path / runs.MODEL_FILE)
    return path


@pytest.mark.parametrize("name, ensemble", [("complete", 1), ("ensemble", 2)])
def test_finished_runs_of_format_1_still_load(name, ensemble, tmp_path, data_dir):
    run = mnistlab.load_run(_format1_run(name, tmp_path))
    assert run.status is runs.RunStatus.COMPLETE and run.complete
    assert (run.settings.recipe, run.settings.epochs, run.settings.seed, run.settings.ensemble) == ("mlp", 1, 3, ensemble)
    assert run.settings.limit == 600 and run.class_names == list("0123456789")
    assert mnistlab.evaluate(run.path, data_dir=data_dir)["status"] == "complete"
    assert mnistlab.predict(run, np.zeros((28, 28), np.float32))[0]["no_digit"]


def test_an_interrupted_run_of_format_1_resumes(tmp_path, data_dir):
    path = _format1_run("interrupted", tmp_path)
    partial = mnistlab.load_run(path)
    assert partial.status is runs.RunStatus.INTERRUPTED and not partial.complete
    assert partial.model_file.name == "member0-epoch0001.keras"
    with pytest.raises(RunError, match="did not finish"):
        mnistlab.load_run(path, allow_partial=False)
    done = mnistlab.resume_run(path, data_dir=data_dir, **_quiet())
    assert done.status is runs.RunStatus.COMPLETE and done.settings == partial.settings
    with open(path / runs.HISTORY_FILE) as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["1", "2", "3", "4"]
    assert not (path / runs.CHECKPOINT_DIR).exists()


def test_broken_run_directories_are_refused(trained_run, tmp_path):
    missing_model = copy_run(trained_run.path, tmp_path / "missing")
    (missing_model / runs.MODEL_FILE).unlink()
    with pytest.raises(RunError, match="model.keras missing"):
        mnistlab.load_run(missing_model)

    not_zip = copy_run(trained_run.path, tmp_path / "notzip")
    (not_zip / runs.MODEL_FILE).write_bytes(b"\x80\x04 this is a pickle, not a .keras file")
    with pytest.raises(RunError, match="not a .keras model file"):
        mnistlab.load_run(not_zip).model

    bad_zip = copy_run(trained_run.path, tmp_path / "badzip")
    with zipfile.ZipFile(bad_zip / runs.MODEL_FILE, "w") as z:
        z.writestr("config.json", "{not json")
    with pytest.raises(RunError, match="cannot load the model"):
        mnistlab.load_run(bad_zip).model

    newer = copy_run(trained_run.path, tmp_path / "newer")
    m = json.loads((newer / runs.METRICS_FILE).read_text())
    (newer / runs.METRICS_FILE).write_text(json.dumps({**m, "format": runs.FORMAT_VERSION + 1}))
    with pytest.raises(RunError, match="newer mnistlab"):
        mnistlab.load_run(newer)

    no_metrics = copy_run(trained_run.path, tmp_path / "nometrics")
    (no_metrics / runs.METRICS_FILE).unlink()
    with pytest.raises(RunError, match="metrics.json missing"):
        mnistlab.load_run(no_metrics)


def test_model_with_the_wrong_input_shape_is_refused(trained_run, tmp_path):
    import keras

    odd = copy_run(trained_run.path, tmp_path / "odd")
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    model.save(odd / runs.MODEL_FILE)
    with pytest.raises(RunError, match=r"input of shape \(32, 32, 3\)"):
        mnistlab.load_run(odd).model
