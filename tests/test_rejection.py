"""Honest answers: pictures that are not digits are refused everywhere, and confidences are calibrated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

import mnistlab
from mnistlab import calibration, runs, training
from mnistlab.prediction import NO_INK, NOT_A_DIGIT, predict

from helpers import run_cli

FASHION = Path("/usr/share/datasets/fashion-mnist")


def letter() -> Image.Image:
    """A capital W in Pillow's bundled font, black on white."""
    im = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(im).text((30, 40), "W", font=ImageFont.load_default(size=120), fill=0, stroke_width=4, stroke_fill=0)
    return im


def doodle() -> Image.Image:
    """A five-pointed star drawn in one stroke."""
    im = Image.new("L", (200, 200), 255)
    pts = [(100 + 80 * np.sin(a), 100 - 80 * np.cos(a)) for a in np.arange(6) * 4 * np.pi / 5]
    ImageDraw.Draw(im).line(pts, fill=0, width=10, joint="curve")
    return im


def photo() -> Image.Image:
    """A photo-like colour picture: a lit scene with soft gradients, a dark object and sensor noise."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:240, 0:320].astype(np.float32)
    sky = np.stack([120 + 0.3 * yy, 150 + 0.2 * yy, 220 - 0.2 * yy], -1)
    ground = yy[..., None] > 150 + 20 * np.sin(xx[..., None] / 40)
    img = np.where(ground, np.array([70, 120, 40], np.float32), sky)
    body = ((yy - 140) / 45) ** 2 + ((xx - 160) / 80) ** 2 < 1
    img[body] = [60, 40, 30]
    img += rng.normal(0, 6, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def fashion_item() -> Image.Image:
    """A Fashion-MNIST test item (a sneaker), light on dark as the dataset stores it, enlarged."""
    from mnistlab.data import load_dataset

    try:
        data = load_dataset("fashion-mnist", FASHION.parent, splits=("test",))
    except mnistlab.MnistlabError:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    i = int(np.flatnonzero(data.y_test == 7)[0])  # 7: Sneaker
    return Image.fromarray(data.x_test[i]).resize((140, 140), Image.Resampling.BILINEAR)


def blank() -> Image.Image:
    return Image.new("L", (120, 120), 255)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory, data_dir) -> dict[str, Path]:
    """Not-digits, a blank and a clear digit (an MNIST test "3" the small model reads), as PNG files."""
    folder = tmp_path_factory.mktemp("pictures")
    (_, _), (x, y) = mnistlab.load_data(data_dir=data_dir)
    three = Image.fromarray(255 - x[int(np.flatnonzero(y == 3)[0])]).resize((140, 140), Image.Resampling.BILINEAR)
    out = {}
    for name, im in [("letter", letter()), ("doodle", doodle()), ("photo", photo()), ("fashion", fashion_item()),
                     ("blank", blank()), ("digit", three)]:
        out[name] = folder / f"{name}.png"
        im.save(out[name])
    return out


REFUSED = ["letter", "doodle", "photo", "fashion", "blank"]


def _check(records: list[dict], names: list[str]) -> None:
    for name, r in zip(names, records):
        if name == "digit":
            assert r["digit"] == 3 and r["no_digit"] is False and r["reason"] is None, r
        else:
            assert r["digit"] is None and r["no_digit"] is True, (name, r)
            assert r["reason"] == (NO_INK if name == "blank" else NOT_A_DIGIT), (name, r)


def test_python_api_refuses_what_is_not_a_digit(trained_run, pictures):
    names = [*REFUSED, "digit"]
    records = mnistlab.predict(trained_run, [pictures[n] for n in names])
    _check(records, names)
    assert records[0]["top"] is not None  # a refusal still says what the model would have guessed


def test_cli_refuses_what_is_not_a_digit(trained_run, pictures):
    names = [*REFUSED, "digit"]
    r = run_cli("predict", trained_run.path, *(pictures[n] for n in names), "--json")
    assert r.returncode == 0, r.stderr  # a refusal is an answer
    _check(json.loads(r.stdout), names)
    table = run_cli("predict", trained_run.path, pictures["letter"])
    assert "not a digit" in table.stdout


def test_http_refuses_what_is_not_a_digit(trained_run, pictures):
    from fastapi.testclient import TestClient

    from mnistlab.serve import create_app

    names = [*REFUSED, "digit"]
    with TestClient(create_app(mnistlab.load_run(trained_run.path))) as client:
        records = []
        for n in names:
            answer = client.post("/api/predict", files={"file": (f"{n}.png", pictures[n].read_bytes(), "image/png")})
            assert answer.status_code == 200, answer.text
            records.append(answer.json())
        page = client.get("/static/app.js").text
    _check(records, names)
    assert '"not a digit"' in page


def test_temperature_is_fitted_on_the_validation_split_only_and_stored(trained_run, data_dir, monkeypatch):
    calib = trained_run.metrics["calibration"]
    assert calib["fitted_on"] == "validation split (600 training images held out)"
    assert 0.05 <= calib["temperature"] <= 20 and {"test_ece_before", "test_ece_after"} <= set(calib)
    reread = mnistlab.load_run(trained_run.path)
    assert reread.temperature == calib["temperature"] and reread.rejector is not None
    assert (trained_run.path / runs.PLOT_FILES["calibration"]).name in {p.name for p in (trained_run.path / "plots").iterdir()}

    # What the fitting sees: exactly the images Keras' validation_split held out, never the test set.
    (x_train, y_train), (x_test, _) = mnistlab.load_data(data_dir=data_dir)
    x_train, y_train = x_train[:6000], y_train[:6000]
    seen = []
    monkeypatch.setattr(training, "_predict", lambda model, x: seen.append(x) or trained_run.predict_proba(x))
    recipe = training.get_recipe("cnn")
    got, _ = training._calibrate(trained_run.model, recipe, x_train, y_train, trained_run.predict_proba(x_test[:500]),
                                 np.zeros(500, int))
    [x_fit] = seen
    assert np.array_equal(x_fit, x_train[5400:])
    assert got["temperature"] == calib["temperature"]


def test_temperature_scaling_recovers_a_known_temperature_and_lowers_ece():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (20000, 10))
    true_p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(10, p=p) for p in true_p])
    overconfident = calibration.apply_temperature(true_p, 0.5)  # logits doubled
    t = calibration.fit_temperature(overconfident, labels)
    assert t == pytest.approx(2.0, rel=0.05)
    before = calibration.expected_calibration_error(overconfident, labels)
    after = calibration.expected_calibration_error(calibration.apply_temperature(overconfident, t), labels)
    assert after < 0.02 < before
    assert np.array_equal(calibration.apply_temperature(overconfident, t).argmax(1), overconfident.argmax(1))


def test_an_old_run_without_the_new_fields_still_predicts(tmp_path, data_dir):
    from test_training import _format1_run

    run = mnistlab.load_run(_format1_run("complete", tmp_path))
    assert run.temperature == 1.0 and run.rejector is None
    (_, _), (x, _) = mnistlab.load_data(data_dir=data_dir)
    [r, empty] = predict(run, [x[0], np.zeros((28, 28), np.uint8)])
    assert r["digit"] is not None and r["reason"] is None
    raw = run.predict_proba(mnistlab.preprocess(x[0])[None])
    assert r["confidence"] == pytest.approx(float(raw.max()), abs=1e-6)  # the raw softmax: temperature 1
    assert empty["no_digit"] and empty["reason"] == NO_INK


def test_the_detector_trains_on_no_font_and_no_fashion_split_the_benchmark_scores_on(monkeypatch):
    """Published refusal rates are on unseen material: the detector's fonts and Fashion-MNIST split are not the
    benchmark's (benchmarks/synth_digits.py, synth_nondigits.py)."""
    import sys
    from types import SimpleNamespace

    import mnistlab.data
    from mnistlab import rejection

    bench = str(Path(__file__).resolve().parents[1] / "benchmarks")
    sys.path.insert(0, bench)
    try:
        import synth_digits
        import synth_nondigits
    finally:
        sys.path.remove(bench)
    benchmark_fonts = {Path(f).name.lower() for f in [*synth_digits.FONT_FILES, *synth_nondigits.PRINT_FONTS]}
    assert not benchmark_fonts & {Path(f).name.lower() for f in rejection.TRAIN_FONTS}
    assert None in rejection.train_fonts()  # Pillow's bundled font: letters even where no package is installed

    asked = []
    stub = SimpleNamespace(x_train=np.zeros((1, 28, 28), np.uint8), x_test=np.ones((1, 28, 28), np.uint8),
                           y_test=np.zeros(1, int))
    monkeypatch.setattr(mnistlab.data, "load_dataset", lambda name, *a, splits, **k: asked.append((name, splits)) or stub)
    assert rejection.fashion_items() is stub.x_train
    synth_nondigits._fashion_items(None)
    assert asked == [("fashion-mnist", ("train",)), ("fashion-mnist", ("test",))]


@pytest.mark.parametrize("version", [3, 4])
def test_the_numpy_detector_computes_what_the_keras_networks_it_was_fitted_as_do(version):
    """The detector is trained in Keras and scored in NumPy (any engine, no Keras on a server): same logits, for
    a version-3 file (one 16-32-64 network) and a version-4 one (MEMBERS wider networks, each with its own
    normalisation of the extras, their logits averaged)."""
    from mnistlab import rejection

    rng = np.random.default_rng(0)
    x = rng.random((300, 28, 28)).astype(np.float32)
    proba = rng.dirichlet(np.ones(10), 300).astype(np.float32)
    e = rejection.extras(x, proba)
    members, widths = (1, (16, 32, 64)) if version == 3 else (rejection.MEMBERS, rejection.WIDTHS)
    weights, expected = {}, []
    for m in range(members):
        net = rejection._keras_net(e.shape[1], widths)
        w = {"feat_mean": e.mean(0) + 0.3 * m, "feat_std": e.std(0) + 1e-6 + 0.2 * m}
        for name in ("conv1", "conv2", "dense", "out"):
            kernel, bias = net.get_layer(name).get_weights()
            bias = rng.normal(0, 0.1, bias.shape).astype(np.float32)  # Keras starts biases at 0: make them count
            net.get_layer(name).set_weights([kernel, bias])
            w[f"{name}_k"], w[f"{name}_b"] = kernel, bias
        expected.append(net.predict([x[..., None], (e - w["feat_mean"]) / w["feat_std"]], verbose=0)[:, 0])
        weights.update({("" if version == 3 else f"m{m}_") + k: np.asarray(v, np.float32) for k, v in w.items()})
    detector = rejection.Rejector(weights, threshold=0.0, version=version)
    assert len(detector.members()) == members
    assert np.allclose(detector.score(x, proba), np.mean(expected, axis=0), atol=1e-4)
    # The Keras form that `mnistlab export` converts to ONNX computes the same whole score.
    scorer = rejection.keras_scorer(detector)
    assert np.allclose(scorer.predict([x, proba], verbose=0)[:, 0], detector.score(x, proba), atol=1e-4)


def test_a_first_version_detector_file_still_loads_and_scores(tmp_path):
    """Runs fitted before the convolutional detector hold a version-1 rejection.npz (no "version" key)."""
    from mnistlab import rejection

    rng = np.random.default_rng(1)
    k, d = 40, 40 + 1 + 4 + 8
    old = {"mean": rng.random(784), "components": rng.normal(size=(k, 784)), "variances": rng.random(k) + 0.5,
           "feat_mean": rng.normal(size=d), "feat_std": rng.random(d) + 0.5, "w1": rng.normal(size=(d, 64)),
           "b1": rng.normal(size=64), "w2": rng.normal(size=(64, 1)), "b2": rng.normal(size=1), "threshold": 0.25}
    np.savez(tmp_path / "rejection.npz", **old)
    detector = rejection.Rejector.load(tmp_path / "rejection.npz")
    assert detector.version == 1 and detector.threshold == 0.25
    x, proba = rng.random((5, 28, 28)).astype(np.float32), rng.dirichlet(np.ones(10), 5)
    flat = x.reshape(5, -1) - old["mean"]
    z = flat @ old["components"].T
    logp = np.log(np.sort(proba, 1)[:, ::-1][:, :4])
    f = np.concatenate([z / np.sqrt(old["variances"]), np.log1p(np.maximum((flat ** 2).sum(1) - (z ** 2).sum(1), 0))[:, None],
                        logp, rejection._shape_stats(x)], 1)
    f = (f - old["feat_mean"]) / old["feat_std"]
    expected = (np.maximum(f @ old["w1"] + old["b1"], 0) @ old["w2"] + old["b2"])[:, 0]
    assert np.allclose(detector.score(x, proba), expected, rtol=1e-3, atol=1e-3)
    detector.save(tmp_path / "again.npz")
    assert rejection.Rejector.load(tmp_path / "again.npz").version == 1


def test_two_digits_side_by_side_are_not_one_digit(trained_run, data_dir):
    """`read` tells a merged pair ("14" taken for an 8) from one digit by the detector: pairs are among its
    negatives. Pictures of two MNIST test digits touching or close are mostly refused, single ones are not."""
    from mnistlab import rejection

    (_, _), (x, _) = mnistlab.load_data(data_dir=data_dir)
    rng = np.random.default_rng(5)
    digits = x[:200].astype(np.float32) / 255
    pairs = []
    for _ in range(40):
        ink = np.clip(rejection._pair(rng, digits), 0, 1)
        im = Image.fromarray((255 - ink * 255).astype(np.uint8))
        pairs.append(im.resize((im.width * 3, im.height * 3), Image.Resampling.BILINEAR))
    singles = [Image.fromarray(255 - x[200 + i]).resize((140, 140), Image.Resampling.BILINEAR) for i in range(100)]
    refused_pairs = np.mean([r["no_digit"] for r in predict(trained_run, pairs)])
    refused_singles = np.mean([r["no_digit"] for r in predict(trained_run, singles)])
    assert refused_pairs >= 0.6 and refused_singles <= 0.05, (refused_pairs, refused_singles)
    assert rejection.pairs(3, rng, digits).shape == (3, 28, 28)


def test_generated_pictures_reach_the_detector_as_preprocessing_makes_them():
    """Half the detector's generated pictures go through `images.preprocess`'s own steps (`_photographed`): a
    hairline letter comes out with strokes thickened towards MNIST's, as a user's picture of it would, where
    `_frame` keeps the hairline; ink too faint for preprocessing to find falls back to `_frame`."""
    from mnistlab import images, rejection

    ink = np.zeros((120, 120), np.float32)
    ink[10:110, 58:61] = 1.0  # a 3-pixel upright bar: an "l" drawn with a fine pen
    ink[10:13, 40:80] = 1.0
    rng = np.random.default_rng(0)
    framed = rejection._frame(ink)
    shots = [rejection._photographed(ink, rng) for _ in range(8)]
    width = lambda x: images._stroke_width(x > 0.5)  # noqa: E731
    assert width(framed) < 1.5
    assert all(s.shape == (28, 28) and s.max() == pytest.approx(1.0, abs=0.05) for s in shots)
    assert np.median([width(s) for s in shots]) > 1.8  # preprocessing's TARGET_STROKE: about 2.2 px of a 20 px digit
    faint = ink * 0.06  # under MIN_CONTRAST on any paper: "no digit found"
    assert np.array_equal(rejection._photographed(faint, rng), rejection._frame(faint))
