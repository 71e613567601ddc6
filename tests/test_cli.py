"""End to end through the real `mnistlab` command: train each recipe briefly, check the run directory,
re-evaluate it, and check that user errors give one line and exit status 2."""

from __future__ import annotations

import csv
import json
import stat
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from helpers import run_cli, run_cli_process
from mnistlab import runs


def mnistlab(*args):
    """Run the real command line (its main(), in this process) under umask 022, the usual one."""
    return run_cli(*args, umask=0o022)


def assert_picture(path):
    """A PNG that decodes and is not blank."""
    with Image.open(path) as im:
        im.load()
        assert im.format == "PNG"
        pixels = np.asarray(im.convert("L"), dtype=np.float32)
    assert min(pixels.shape) >= 100, f"{path} is only {pixels.shape}"
    assert pixels.std() > 5, f"{path} is blank"


@pytest.fixture(scope="module", params=["mlp", "dense512", "cnn"])
def cli_run(request, tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("cli") / request.param
    # The not-a-digit detector is fitted for cnn only: mlp and dense512 also show that --no-detector skips it.
    detector = [] if request.param == "cnn" else ["--no-detector"]
    result = mnistlab("train", "--recipe", request.param, "--limit", 3000, "--epochs", 1, "--seed", 3, *detector,
                      "--out", out, "--data-dir", data_dir)
    assert result.returncode == 0, result.stderr
    return request.param, out, result


def test_train_writes_a_complete_run_directory(cli_run):
    recipe, out, result = cli_run
    assert "test accuracy" in result.stdout and str(out) in result.stdout
    for name in [runs.MODEL_FILE, runs.HISTORY_FILE, runs.METRICS_FILE]:
        assert (out / name).is_file()
    for name in runs.PLOT_FILES.values():
        assert_picture(out / runs.PLOTS_DIR / name)

    m = json.loads((out / runs.METRICS_FILE).read_text())
    for key in ["dataset", "recipe", "epochs", "batch_size", "seed", "backend", "versions", "data_sha256",
                "train_seconds", "test_loss", "test_accuracy", "per_class_accuracy", "confusion_matrix"]:
        assert key in m, key
    assert (m["recipe"], m["dataset"], m["epochs"], m["seed"], m["status"]) == (recipe, "mnist", 1, 3, "complete")
    assert m["detector"] is (recipe == "cnn") and (out / runs.REJECTION_FILE).is_file() is (recipe == "cnn")
    assert (out / runs.PAIRS_FILE).is_file() is (recipe == "cnn")  # the pair reader: the same switch
    assert m["train_images"] == 3000 and m["train_seconds"] > 0
    assert len(m["data_sha256"]) == 4
    assert m["test_accuracy"] > 0.6, "clearly above chance (0.1) after one epoch on 3000 images"
    cm = np.array(m["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == 10000
    assert np.trace(cm) / cm.sum() == pytest.approx(m["test_accuracy"])
    assert len(m["per_class_accuracy"]) == 10

    with open(out / runs.HISTORY_FILE) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and rows[0]["epoch"] == "1", "epochs count from 1, as on the console and in the plots"
    expected = {"epoch", "loss", "accuracy"} | ({"val_loss", "val_accuracy"} if recipe != "dense512" else set())
    assert set(rows[0]) == expected


def test_evaluate_agrees_with_metrics(cli_run, data_dir):
    recipe, out, _ = cli_run
    result = mnistlab("evaluate", out, "--json", "--data-dir", data_dir)
    assert result.returncode == 0, result.stderr
    ev = json.loads(result.stdout)
    m = json.loads((out / runs.METRICS_FILE).read_text())
    assert ev["test_accuracy"] == pytest.approx(m["test_accuracy"], abs=1e-9)
    assert ev["test_loss"] == pytest.approx(m["test_loss"], rel=1e-4)
    assert ev["confusion_matrix"] == m["confusion_matrix"]
    text = mnistlab("evaluate", out, "--data-dir", data_dir)
    assert text.returncode == 0 and "precision" in text.stdout and f"{m['test_accuracy']:.2%}" in text.stdout


def test_summary_prints_the_model(cli_run):
    recipe, out, _ = cli_run
    result = mnistlab("summary", out)
    assert result.returncode == 0, result.stderr
    assert "Total params" in result.stdout and "model parameters:" in result.stdout
    m = json.loads((out / runs.METRICS_FILE).read_text())
    ours = result.stdout.strip().splitlines()[-1]
    assert f"model parameters: {m['params']:,} (" in ours and "optimizer" in ours
    assert ("conv2d" in result.stdout.lower()) == (recipe == "cnn")


def test_help_is_fast_and_complete():
    # A real process: what `mnistlab --help` imports at start-up is what this test is about.
    start = time.perf_counter()
    result = run_cli_process("--help")
    took = time.perf_counter() - start
    assert result.returncode == 0
    for command in ["train", "evaluate", "summary", "data", "predict", "read", "serve", "export", "finetune"]:
        assert command in result.stdout
    train_help = mnistlab("train", "--help").stdout
    assert "--recipe" in train_help and "dense512" in train_help and "--limit" in train_help
    # Not a timing assertion on training: a guard that --help never imports Keras (which alone takes seconds).
    assert took < 5, f"--help took {took:.1f} s: something imports Keras at start-up"
    probe = subprocess.run([sys.executable, "-c", "import mnistlab.cli, sys; mnistlab.cli.build_parser(); "
                            "print('keras' in sys.modules, 'tensorflow' in sys.modules)"], capture_output=True, text=True)
    assert probe.stdout.split() == ["False", "False"]
    # A user error through the interpreter's own exit: one line on stderr, status 2.
    bad = run_cli_process("train", "--epochs", "0")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "mnistlab train: error: argument --epochs: must be at least 1, got 0 (see mnistlab train --help)"], bad.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--recipe", "nope"], "unknown recipe 'nope'"),
        (["train", "--dataset", "cifar"], "unknown dataset 'cifar'"),
        (["train", "--epochs", "0"], "--epochs: must be at least 1"),
        (["train", "--batch-size", "-5"], "--batch-size: must be at least 1"),
        (["train", "--epochs", "ten"], "expected a whole number"),
        (["train", "--limit", "70000"], "--limit 70000: larger than the 60000 training images"),
        (["serve", "run", "--port", "abc"], "--port: expected a whole number, got 'abc'"),
        (["serve", "run", "--port", "70000"], "--port: must be between 0 and 65535, got 70000"),
        (["evaluate", "/nonexistent/run"], "no such run directory"),
        (["summary", "/nonexistent/run"], "no such run directory"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_user_errors_are_one_line_with_status_2(args, message, data_dir, tmp_path):
    result = mnistlab(*args, "--data-dir", data_dir) if args[0] == "train" else mnistlab(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_train_refuses_to_overwrite_a_run(cli_run, data_dir):
    _, out, _ = cli_run
    before = (out / runs.METRICS_FILE).read_bytes()
    result = mnistlab("train", "--recipe", "mlp", "--limit", 100, "--epochs", 1, "--out", out, "--data-dir", data_dir)
    assert result.returncode == 2 and "--force" in result.stderr
    assert (out / runs.METRICS_FILE).read_bytes() == before


def test_data_command_reports_and_draws(data_dir, tmp_path):
    png = tmp_path / "samples.png"
    result = mnistlab("data", "--data-dir", data_dir, "--out", png)
    assert result.returncode == 0, result.stderr
    assert "(60000, 28, 28)" in result.stdout and "(10000,)" in result.stdout
    assert "5923" in result.stdout and "1135" in result.stdout
    assert result.stdout.count("OK") == 4
    assert_picture(png)


def test_data_command_fails_on_a_corrupt_copy(data_dir, tmp_path):
    bad = tmp_path / "data" / "mnist"
    bad.mkdir(parents=True)
    for f in (data_dir / "mnist").iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    (bad / "t10k-labels-idx1-ubyte.gz").write_bytes((data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()[:2000])
    result = mnistlab("data", "--data-dir", tmp_path / "data")
    assert result.returncode == 2
    assert "t10k-labels-idx1-ubyte.gz" in result.stderr and "Traceback" not in result.stderr


def test_run_files_are_readable_by_others_under_umask_022(cli_run):
    _, out, _ = cli_run
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, f"{p} is {oct(stat.S_IMODE(p.stat().st_mode))}"


@pytest.mark.parametrize("command", [["summary"], ["evaluate", "--json"]])
def test_a_closed_pipe_ends_quietly(command, trained_run, data_dir):
    out = trained_run.path  # one run for both commands: each case costs a subprocess that imports TensorFlow
    extra = ["--data-dir", str(data_dir)] if command[0] == "evaluate" else []
    proc = subprocess.Popen([sys.executable, "-m", "mnistlab.cli", command[0], str(out), *command[1:], *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # the reader is gone before anything is written, as `| head -n 1` can be
    err = proc.stderr.read()
    proc.wait(timeout=300)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == 141


def test_a_fashion_run_predicts_class_names(tmp_path, data_dir):
    from mnistlab.data import load_dataset
    from mnistlab.errors import DataError

    try:
        data = load_dataset("fashion-mnist", splits=("test",), download=False)
    except DataError:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    out = tmp_path / "fashion"
    assert mnistlab("train", "--recipe", "mlp", "--dataset", "fashion-mnist", "--limit", 2000, "--epochs", 1,
                    "--out", out).returncode == 0
    Image.fromarray(255 - data.x_test[0]).resize((112, 112)).save(tmp_path / "item.png")
    result = mnistlab("predict", out, tmp_path / "item.png")
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()[:2]
    assert header.split()[:2] == ["file", "class"]
    assert any(name in row for name in data.spec.class_names), row
    record = json.loads(mnistlab("predict", out, tmp_path / "item.png", "--json").stdout)[0]
    assert record["label"] == data.spec.class_names[record["digit"]]
