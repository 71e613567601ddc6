"""Your own labelled pictures: evaluating on a folder in the Keras layout, and fine-tuning a run on it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mnistlab
from helpers import corner_field, on_paper, run_cli
from mnistlab import runs
from mnistlab.errors import UsageError
from mnistlab.images import preprocess_choices


def labelled_folder(root: Path, x: np.ndarray, y: np.ndarray, per_class: int) -> Path:
    """root/<digit>/<n>.png pictures of real MNIST digits as dark ink on paper, `per_class` of each digit."""
    for digit in range(10):
        (root / str(digit)).mkdir(parents=True)
        for n, i in enumerate(np.flatnonzero(y == digit)[:per_class]):
            on_paper(x[i]).save(root / str(digit) / f"{n:02d}.png")
    return root


@pytest.fixture(scope="module")
def mnist_pictures(data_dir):
    # Training digits the shared run never saw (it trained on the first 6000): pictures a user might bring.
    (x, y), _ = mnistlab.load_data(data_dir=data_dir)
    return x[50000:], y[50000:]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, mnist_pictures):
    return labelled_folder(tmp_path_factory.mktemp("labelled") / "mine", *mnist_pictures, per_class=6)


def test_evaluate_on_a_labelled_folder(trained_run, folder, tmp_path):
    r = run_cli("evaluate", trained_run.path, "--images", folder, "--json", "--plots", tmp_path / "plots")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["source"] == str(folder) and report["test_images"] == 60
    cm = np.asarray(report["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum(axis=1).tolist() == [6] * 10
    assert report["test_accuracy"] == pytest.approx(np.trace(cm) / 60)
    assert report["test_accuracy"] > 0.7, "real MNIST digits on paper are mostly read right"
    # Beside the model's accuracy, what predict would answer: the not-a-digit detector's refusals count as wrong.
    assert report["refused"]["no_digit_found"] == 0
    assert report["answered_accuracy"] <= report["test_accuracy"]
    assert len(report["refusals"]) == report["refused"]["not_a_digit"]
    assert len(report["mistakes"]) == 60 - np.trace(cm)
    for m in report["mistakes"]:
        assert Path(m["file"]).parent.name == m["true"] != m["predicted"]
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["confident_mistakes.png", "confusion_matrix.png"]
    text = run_cli("evaluate", trained_run.path, "--images", folder)
    assert text.returncode == 0 and "precision" in text.stdout and f"{report['test_accuracy']:.2%}" in text.stdout
    assert (trained_run.path / runs.EVALUATIONS_DIR / "mine" / "confusion_matrix.png").is_file()  # the default place


def _broken(kind: str, root: Path, mnist_pictures) -> Path:
    folder = labelled_folder(root / "mine", *mnist_pictures, per_class=2)
    if kind == "empty-class":
        for f in (folder / "3").iterdir():
            f.unlink()
    elif kind == "not-a-digit":
        (folder / "x").mkdir()
        (folder / "x" / "a.png").write_bytes((folder / "1" / "00.png").read_bytes())
    elif kind == "unreadable":
        (folder / "7" / "00.png").write_bytes(b"not a picture at all")
    elif kind == "blank":
        on_paper(np.zeros((28, 28), np.uint8)).save(folder / "5" / "00.png")
    elif kind == "no-classes":
        for sub in folder.iterdir():
            for f in sub.iterdir():
                f.rename(folder / f"{sub.name}-{f.name}")
            sub.rmdir()
    return folder


@pytest.mark.parametrize("kind, message", [
    ("empty-class", "class folder .*3 holds no pictures"),
    ("not-a-digit", "'x' is not a class of this model"),
    ("unreadable", "00.png: not an image"),
    ("no-classes", "holds no class folders"),
])
@pytest.mark.parametrize("command", ["evaluate", "finetune"])
def test_a_bad_labelled_folder_is_one_line_and_nothing_is_written(command, kind, message, trained_run, tmp_path,
                                                                   mnist_pictures):
    folder = _broken(kind, tmp_path, mnist_pictures)
    out = tmp_path / "out"
    args = ["--plots", out] if command == "evaluate" else ["--out", out]
    r = run_cli(command, trained_run.path, "--images", folder, *args)
    assert r.returncode == 2, r.stderr
    [line] = r.stderr.strip().splitlines()
    assert line.startswith("mnistlab: error: ") and "Traceback" not in r.stderr
    import re

    assert re.search(message, line), line
    assert not out.exists()


def test_a_picture_with_no_digit_found_is_a_miss_not_an_error(trained_run, tmp_path, mnist_pictures, data_dir):
    # Real handwriting by other writers holds pictures preprocessing finds no digit in (faint ink on blotchy
    # paper): evaluate counts them as wrong answers and finetune leaves them out, naming them; neither stops.
    folder = _broken("blank", tmp_path, mnist_pictures)
    blank = folder / "5" / "00.png"
    # And a 3 in a form field whose box line runs through its foot and past it at one end: a picture with a
    # second input (images.preprocess_choices), which evaluate and finetune weigh as predict does.
    field = corner_field(mnist_pictures[0][np.flatnonzero(mnist_pictures[1] == 3)[0]])
    low = int(np.flatnonzero(field.any(1))[-1])
    field[low - 1: low + 2, 12:60] = True
    Image.fromarray((~field).astype(np.uint8) * 255).save(folder / "3" / "00.png")
    assert len(preprocess_choices(folder / "3" / "00.png")) == 2
    r = run_cli("evaluate", trained_run.path, "--images", folder, "--json", "--plots", tmp_path / "plots")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    cm = np.asarray(report["confusion_matrix"])
    assert report["test_images"] == 20 and cm.sum() == 19 and report["refused"]["no_digit_found"] == 1
    assert report["test_accuracy"] == pytest.approx(np.trace(cm) / 20)
    assert report["per_class"][5]["support"] == 2 and report["per_class"][5]["correct"] <= 1
    [missed] = [m for m in report["mistakes"] if m["predicted"] is None]
    assert missed["file"] == str(blank) and missed["true"] == "5" and "no digit found" in missed["reason"]
    assert missed in [{**m, "predicted": None, "confidence": None} for m in report["refusals"]]
    text = run_cli("evaluate", trained_run.path, "--images", folder, "--plots", tmp_path / "plots")
    assert text.returncode == 0 and "no digit found in 1 (counted wrong above)" in text.stdout
    assert f"{blank}: 5 not read (no digit found" in text.stdout

    said = []
    tuned = mnistlab.finetune(trained_run.path, folder, out=tmp_path / "tuned", epochs=1, data_dir=data_dir,
                              verbose=0, log=said.append)
    assert any(f"no digit found in 1 of the 20 pictures; fine-tuning without them: {blank}" in m for m in said)
    assert tuned.settings.finetune["no_digit_found"] == [str(blank)]
    assert tuned.settings.finetune["per_class"] == [2] * 5 + [1] + [2] * 4
    # Nothing to learn from at all: one line, nothing written.
    for f in folder.rglob("*.png"):
        on_paper(np.zeros((28, 28), np.uint8)).save(f)
    r = run_cli("finetune", trained_run.path, "--images", folder, "--out", tmp_path / "none")
    assert r.returncode == 2 and "no digit found in any of its 20 pictures" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "none").exists()


def test_finetune_writes_a_normal_run_that_learned_the_pictures(trained_run, folder, tmp_path, data_dir):
    out = tmp_path / "tuned"
    tuned = mnistlab.finetune(trained_run.path, folder, out=out, epochs=3, data_dir=data_dir, verbose=0,
                              log=lambda msg: None)
    assert tuned.complete and tuned.path == out
    record = tuned.settings.finetune
    assert record["from"] == str(trained_run.path) and record["images"] == str(folder)
    assert record["per_class"] == [6] * 10 and record["validation_pictures"] == 10 and record["train_pictures"] == 50
    gain = tuned.metrics["finetune_validation_accuracy"]
    assert 0 <= gain["before"] <= 1 and 0 <= gain["after"] <= 1
    # What it knew of MNIST is kept (a small learning rate, MNIST mixed in).
    assert tuned.metrics["test_accuracy"] > trained_run.metrics["test_accuracy"] - 0.03
    # Honest answers carry over: a temperature refitted on held-out data and the not-a-digit detector.
    assert tuned.metrics["calibration"]["fitted_on"].startswith("validation split")
    assert tuned.temperature > 0 and tuned.rejector is not None
    assert tuned.rejector.weights.keys() == trained_run.rejector.weights.keys()
    # The reader of touching pairs does not read the model: it comes along as it is.
    assert (out / runs.PAIRS_FILE).read_bytes() == (trained_run.path / runs.PAIRS_FILE).read_bytes()
    # A normal run directory: reloads, evaluates on its pictures, predicts.
    again = mnistlab.load_run(out)
    assert again.settings == tuned.settings
    assert mnistlab.evaluate(out, images=folder, plots=tmp_path / "p")["test_accuracy"] >= 0.8
    assert mnistlab.predict(out, [folder / "7" / "00.png"])[0]["digit"] is not None
    for name in runs.PLOT_FILES.values():
        assert (out / runs.PLOTS_DIR / name).is_file()
    with pytest.raises(UsageError, match="already finished"):
        mnistlab.resume_run(out)


def test_finetune_refuses_bad_arguments_before_any_work(trained_run, folder, tmp_path):
    with pytest.raises(ValueError, match=r"^learning_rate=2: must be a number between 0 and 1"):
        mnistlab.finetune(trained_run.path, folder, out=tmp_path / "x", learning_rate=2)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        mnistlab.finetune(trained_run.path, tmp_path / "nowhere", out=tmp_path / "x")
    assert not (tmp_path / "x").exists()
