"""Bad input is refused cleanly: every row of one table runs the real `mnistlab` command on a damaged or
wrong input and must get exit status 2, exactly one line on stderr that names the problem and says how to
fix it, no traceback, and no file created, changed or removed in the folders involved.

The rows run through the command line's `main()` in this process (tests/helpers.py `run_cli`: the same
parser, commands and error handling as the installed command, without a TensorFlow import per row), then
one parametrized test checks each row's outcome. A few positive checks about images sit outside the table: an animated GIF is read from
its first frame, "no digit found" is a result rather than an error, unreadable files do not stop the others,
and a PNG declaring 50000x50000 pixels is refused before it is decoded.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import subprocess
import sys
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from helpers import copy_run, encode_png, on_paper, png_declaring, run_cli, set_metrics
from mnistlab import runs

# TensorFlow's C++ start-up lines; the CLI is meant to drop them, so seeing one is reported as a warning.
TF_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog|[IWE]\d{4} )")
MNIST_FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
               "t10k-labels-idx1-ubyte.gz"]
# The data folder inside a row's folder: links to the real MNIST files, the damaged one a real file.
FIX_DATA = "data"
# How a message may say what to do: an instruction, or (scikit-learn style) what is allowed.
FIX_HINT = re.compile(r"copy or download|replace it|add the missing|choose one of|must be (at least|between)|"
                      r"--force|upgrade mnistlab|nothing to resume|larger than the \d+|give |train it again|"
                      r"check the path|resize it|save it as|save the picture|PNG, JPEG|\(\.\w+, \.|see mnistlab .* --help", re.I)


@dataclass
class Ctx:
    """What the rows build their bad inputs from."""

    run: Path  # a finished, valid run (never modified: rows copy it)
    data: Path  # the real data folder holding mnist/
    digits: dict[int, np.ndarray]  # label -> a 28x28 uint8 MNIST test digit (light on dark) the run gets right


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root with its content hash (links by target): any change, addition or removal shows."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "link " + os.readlink(p)
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def error_lines(stderr: str) -> list[str]:
    """stderr without blank lines and TensorFlow start-up lines (those are reported as a warning)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    noise = [line for line in lines if TF_NOISE.match(line)]
    if noise:
        warnings.warn(f"TensorFlow start-up lines on stderr: {noise[0]!r}", stacklevel=2)
    return [line for line in lines if not TF_NOISE.match(line)]


# --- building bad inputs ---------------------------------------------------------------------------------

def data_copy(d: Path, ctx: Ctx, replace: str | None = None, content: bytes | None = None,
              name: str | None = None) -> Path:
    """d/data/mnist with links to the real files, one of them (`replace`) removed or replaced by `content`."""
    folder = d / FIX_DATA / "mnist"
    folder.mkdir(parents=True)
    for f in MNIST_FILES:
        if f != replace:
            (folder / f).symlink_to(ctx.data / "mnist" / f)
    if content is not None:
        (folder / (name or replace)).write_bytes(content)
    return d / FIX_DATA


def real(ctx: Ctx, name: str) -> bytes:
    """The real content of an MNIST file (decompressed)."""
    return zlib.decompress((ctx.data / "mnist" / name).read_bytes(), wbits=31)


def flip_bit(data: bytes, at: int, bit: int = 0) -> bytes:
    b = bytearray(data)
    b[at] ^= 1 << bit
    return bytes(b)


def png_bytes(array: np.ndarray | None = None, size: tuple[int, int] = (8, 8)) -> bytes:
    """A real PNG: the given uint8 array, or grey noise of `size` (which compresses badly, so cuts hit pixels)."""
    if array is None:
        array = np.random.default_rng(0).integers(0, 256, (size[1], size[0]), dtype=np.uint8)
    return encode_png(array)


def picture(d: Path, name: str, im: Image.Image, **save: object) -> Path:
    path = d / name
    im.save(path, **save)
    return path


def animated_gif(d: Path, ctx: Ctx) -> Path:
    """Two frames, a 7 then a 3: a reader must use the first."""
    return picture(d, "anim.gif", on_paper(ctx.digits[7]), save_all=True, append_images=[on_paper(ctx.digits[3])],
                   duration=500, loop=0)


def run_copy(d: Path, ctx: Ctx, edit: Callable[[Path], None] | None = None) -> Path:
    """d/run: a copy of the valid run, then `edit`ed."""
    return copy_run(ctx.run, d / "run", edit)


def remove(name: str) -> Callable[[Path], None]:
    return lambda run: (run / name).unlink()


def model_bytes(content: bytes) -> Callable[[Path], None]:
    return lambda run: (run / runs.MODEL_FILE).write_bytes(content)


def garbage_zip(run: Path) -> None:
    """A zip archive with the entries of a .keras file, all garbage."""
    with zipfile.ZipFile(run / runs.MODEL_FILE, "w") as z:
        z.writestr("metadata.json", b"\x00\xff not json")
        z.writestr("config.json", b"{{{{ garbage")
        z.writestr("model.weights.h5", os.urandom(512))


def keras_model(kind: str) -> Callable[[Path], None]:
    """A real .keras file that is not a usable digit model: wrong input shape, or a code-carrying Lambda."""
    def edit(run: Path) -> None:
        import keras

        if kind == "rgb32":
            model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                                      keras.layers.Dense(10, activation="softmax")])
        else:
            marker = run / "lambda-ran"
            # If loading ever ran this function, the marker file would appear and the snapshot would differ.
            touch = eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]")  # self-contained: no closure
            model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Lambda(touch),
                                      keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
            marker.unlink(missing_ok=True)  # building the model above ran it once, here in the test
        model.save(run / runs.MODEL_FILE)
    return edit


def image(d: Path, name: str, content: bytes | None) -> Path:
    """d/name holding `content` (None: a folder of that name holding only a text file)."""
    path = d / name
    if content is None:
        path.mkdir()
        (path / "notes.txt").write_text("no pictures here\n")
    else:
        path.write_bytes(content)
    return path


def predict_row(name: str, content: bytes | None) -> Callable[[Path, Ctx], list[object]]:
    return lambda d, c: ["predict", c.run, image(d, name, content)]


@dataclass
class Row:
    id: str
    setup: Callable[[Path, Ctx], list[object]]  # builds the bad input in its folder, returns the CLI arguments
    message: str  # a substring naming the problem
    known_bug: str = ""  # set when the message is known to lack how-to-fix: the test expects that, strictly



ROWS = [
    # Data files (the `data` command checks a copy; one row goes through `train`, which must not start a run).
    Row("data-missing-file", lambda d, c: ["data", "--data-dir", data_copy(d, c, "t10k-labels-idx1-ubyte.gz")],
        "but not t10k-labels-idx1-ubyte.gz"),
    Row("data-empty-file", lambda d, c: ["data", "--data-dir", data_copy(d, c, "t10k-labels-idx1-ubyte.gz", b"")],
        "t10k-labels-idx1-ubyte.gz: empty file"),
    Row("data-truncated-gzip", lambda d, c: ["data", "--data-dir", data_copy(
        d, c, "t10k-labels-idx1-ubyte.gz", (c.data / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()[:2000])],
        "t10k-labels-idx1-ubyte.gz: truncated gzip stream"),
    Row("data-truncated-idx", lambda d, c: ["data", "--data-dir", data_copy(
        d, c, "t10k-labels-idx1-ubyte.gz", real(c, "t10k-labels-idx1-ubyte.gz")[:5000], "t10k-labels-idx1-ubyte")],
        "t10k-labels-idx1-ubyte: truncated"),
    Row("data-bit-flip-checksum", lambda d, c: ["data", "--data-dir", data_copy(
        d, c, "t10k-labels-idx1-ubyte.gz", flip_bit(real(c, "t10k-labels-idx1-ubyte.gz"), 100),
        "t10k-labels-idx1-ubyte")], "t10k-labels-idx1-ubyte: sha256 mismatch"),
    Row("data-bit-flip-gzip", lambda d, c: ["data", "--data-dir", data_copy(
        d, c, "t10k-labels-idx1-ubyte.gz",
        flip_bit((c.data / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes(), 1000, 2))],
        "t10k-labels-idx1-ubyte.gz: corrupt gzip stream"),
    Row("data-png-as-idx", lambda d, c: ["train", "--limit", 200, "--epochs", 1, "--out", d / "new-run",
                                         "--data-dir", data_copy(d, c, "t10k-images-idx3-ubyte.gz", png_bytes())],
        "t10k-images-idx3-ubyte.gz: not an IDX file"),
    # Arguments.
    Row("unknown-recipe", lambda d, c: ["train", "--recipe", "resnet", "--out", d / "new-run"],
        "unknown recipe 'resnet'"),
    Row("unknown-dataset", lambda d, c: ["train", "--dataset", "cifar10", "--out", d / "new-run"],
        "unknown dataset 'cifar10'"),
    Row("epochs-zero", lambda d, c: ["train", "--epochs", 0, "--out", d / "new-run"], "--epochs"),
    Row("epochs-negative", lambda d, c: ["train", "--epochs", -3, "--out", d / "new-run"], "--epochs"),
    Row("epochs-not-a-number", lambda d, c: ["train", "--epochs", "1e3", "--out", d / "new-run"], "'1e3'"),
    Row("epochs-absurd", lambda d, c: ["train", "--epochs", 100000, "--out", d / "new-run"], "epochs"),
    Row("batch-size-negative", lambda d, c: ["train", "--batch-size", -1, "--out", d / "new-run"], "--batch-size"),
    Row("batch-size-absurd", lambda d, c: ["train", "--batch-size", 10**8, "--out", d / "new-run"],
        "--batch-size 100000000"),
    Row("limit-zero", lambda d, c: ["train", "--limit", 0, "--out", d / "new-run"], "--limit"),
    Row("limit-absurd", lambda d, c: ["train", "--limit", 99999999, "--out", d / "new-run"], "--limit 99999999"),
    Row("out-exists", lambda d, c: ["train", "--limit", 200, "--epochs", 1, "--out", run_copy(d, c)],
        "exists and is not empty"),
    Row("resume-finished-run", lambda d, c: ["train", "--resume", run_copy(d, c)], "already finished"),
    # Run directories.
    Row("run-missing-metrics", lambda d, c: ["summary", run_copy(d, c, remove(runs.METRICS_FILE))],
        "metrics.json missing"),
    Row("run-missing-model", lambda d, c: ["evaluate", run_copy(d, c, remove(runs.MODEL_FILE))],
        "model.keras missing"),
    Row("run-newer-format", lambda d, c: ["summary", run_copy(d, c, set_metrics(format=99))], "run format 99"),
    Row("run-wrong-input-shape", lambda d, c: ["summary", run_copy(d, c, keras_model("rgb32"))],
        "model.keras: model takes input of shape (32, 32, 3)"),
    Row("model-random-bytes",
        lambda d, c: ["summary", run_copy(d, c, model_bytes(np.random.default_rng(0).bytes(4096)))],
        "model.keras: not a .keras model file"),
    Row("model-pickle", lambda d, c: ["summary", run_copy(d, c, model_bytes(pickle.dumps({"weights": [1, 2]})))],
        "model.keras: not a .keras model file"),
    Row("model-zip-garbage", lambda d, c: ["summary", run_copy(d, c, garbage_zip)],
        "model.keras: cannot load the model"),
    Row("model-unsafe-lambda", lambda d, c: ["summary", run_copy(d, c, keras_model("lambda"))],
        "model.keras: cannot load the model"),
    # Images for `predict` (one unreadable file: exit 2 and its one-line message; "no digit" is not an error).
    Row("image-empty-file", predict_row("empty.png", b""), "empty.png: empty file"),
    Row("image-text-named-png", predict_row("notes.png", b"these are not the pixels you are looking for\n" * 20),
        "notes.png: not an image"),
    Row("image-declares-50000x50000", predict_row("huge.png", png_declaring(50000, 50000)), "huge.png: image too large"),
    Row("image-truncated-png", lambda d, c: ["predict", c.run, image(d, "cut.png", png_bytes(size=(300, 300))[:700])],
        "cut.png: cannot decode"),
    # A TIFF header and nothing else: Pillow warns about it, and no warning may reach stderr.
    Row("image-truncated-tiff", predict_row("scan.tif", b"II*\x00\x08\x00\x00\x00"), "scan.tif: not an image"),
    Row("image-missing", lambda d, c: ["predict", c.run, d / "no-such-digit.png"], "no-such-digit.png: no such file"),
    Row("image-folder-without-images", predict_row("photos", None), "photos: folder holds no image files"),
]


def mixed_files(d: Path, c: Ctx) -> list[object]:
    """A good digit, an animated GIF, a missing file and a text file, asked for as JSON."""
    seven = picture(d, "seven.png", on_paper(c.digits[7]))
    notes = image(d, "notes.png", b"not an image\n")
    return ["predict", c.run, seven, animated_gif(d, c), d / "missing.png", notes, "--json"]


def no_digit_files(d: Path, c: Ctx) -> list[object]:
    """An animated GIF, a flat grey picture and a 1x1 one, asked for as the table."""
    blank = picture(d, "blank.png", Image.new("L", (200, 200), 128))
    tiny = picture(d, "tiny.png", Image.new("L", (1, 1), 0))
    return ["predict", c.run, animated_gif(d, c), blank, tiny]


# Positive checks, run in the same batch as the rows: name -> setup.
CHECKS = {"mixed-json": mixed_files, "no-digit-and-gif": no_digit_files}


@pytest.fixture(scope="module")
def ctx(trained_run, data_dir) -> Ctx:
    from mnistlab.data import load_dataset

    data = load_dataset("mnist", data_dir)
    proba = trained_run.predict_proba(data.x_test[:300])
    # Clear digits the run gets right: images built from them have a known answer.
    clear = {label: next(data.x_test[i] for i in range(300) if data.y_test[i] == label and proba[i].argmax() == label
                         and proba[i].max() > 0.9) for label in (3, 7)}
    return Ctx(run=Path(trained_run.path), data=Path(data_dir), digits=clear)


@dataclass
class Outcome:
    result: subprocess.CompletedProcess
    before: dict[str, str]
    after: dict[str, str]


@pytest.fixture(scope="module")
def outcomes(ctx, tmp_path_factory) -> dict[str, Outcome]:
    """Every row's bad input built, then every row run through the command line's main() in this process."""
    base = tmp_path_factory.mktemp("bad-inputs")
    run_before = snapshot(ctx.run)
    jobs = {}
    for name, setup in [(row.id, row.setup) for row in ROWS] + list(CHECKS.items()):
        folder = base / name
        folder.mkdir()
        argv = setup(folder, ctx)
        jobs[name] = (folder, argv, snapshot(folder))

    def go(row_id: str) -> Outcome:
        folder, argv, before = jobs[row_id]
        # A download, should one start, meets a closed port.
        result = run_cli(*argv, cwd=folder, data_dir=ctx.data, env={"MNISTLAB_MIRRORS": "http://127.0.0.1:9/"})
        return Outcome(result, before, snapshot(folder))

    done = {row_id: go(row_id) for row_id in jobs}
    assert snapshot(ctx.run) == run_before, "a row changed the shared trained run"
    return done


@pytest.mark.parametrize("row", [pytest.param(r, id=r.id) for r in ROWS])
def test_bad_input_is_refused_cleanly(row: Row, outcomes: dict[str, Outcome]) -> None:
    o = outcomes[row.id]
    r = o.result
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 2, f"exit {r.returncode}\nstdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-2000:]}"
    lines = error_lines(r.stderr)
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{r.stderr}"
    line = lines[0]
    assert line.startswith("mnistlab"), line
    assert row.message in line, line
    assert len(line) < 600, f"a one-line message, not a dump ({len(line)} characters)"
    assert o.after == o.before, "files were created, changed or removed: " + ", ".join(
        sorted(k for k in o.before.keys() | o.after.keys() if o.before.get(k) != o.after.get(k)))
    says_fix = bool(FIX_HINT.search(line))
    if row.known_bug:
        if says_fix:
            pytest.fail(f"known bug fixed ({row.known_bug}): remove known_bug from row {row.id}: {line}")
        pytest.xfail(f"{row.known_bug}: {line}")
    assert says_fix, f"the message does not say how to fix the problem: {line}"


def test_predict_reads_what_it_can_and_reports_the_rest(outcomes: dict[str, Outcome]) -> None:
    o = outcomes["mixed-json"]
    r = o.result
    assert "Traceback" not in r.stderr and error_lines(r.stderr) == [], r.stderr  # --json: errors are in the records
    assert r.returncode == 2, "a file could not be read"
    records = json.loads(r.stdout)
    assert [Path(x["file"]).name for x in records] == ["seven.png", "anim.gif", "missing.png", "notes.png"]
    seven, gif, missing, notes = records
    assert (seven["digit"], seven["error"]) == (7, None) and seven["confidence"] > 0.5
    assert (gif["digit"], gif["error"]) == (7, None), "an animated GIF is read from its first frame (a 7; then a 3)"
    for bad, what in [(missing, "no such file"), (notes, "not an image")]:
        assert bad["digit"] is None and bad["probabilities"] is None and bad["top"] is None
        assert what in bad["error"] and "\n" not in bad["error"] and not bad["no_digit"]
    assert o.after == o.before


def test_no_digit_is_a_result_not_an_error(outcomes: dict[str, Outcome]) -> None:
    # predict --help: "Exit status 2 if any file could not be read"; a flat or 1x1 picture was read, and
    # holds no digit: that is its answer, shown in the table, with exit status 0.
    o = outcomes["no-digit-and-gif"]
    r = o.result
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and error_lines(r.stderr) == [], r.stderr
    rows = {Path(line.split()[0]).name: line for line in r.stdout.splitlines()[1:]}
    assert set(rows) == {"anim.gif", "blank.png", "tiny.png"}, r.stdout
    assert rows["anim.gif"].split()[1] == "7", r.stdout
    for name in ["blank.png", "tiny.png"]:
        assert "no digit found" in rows[name], r.stdout
    assert o.after == o.before


def test_huge_declared_png_is_refused_before_decoding(tmp_path: Path) -> None:
    """50000x50000 declared in 80 bytes: refused from the header, fast, without allocating the 2.5 GB."""
    path = tmp_path / "huge.png"
    path.write_bytes(png_declaring(50000, 50000))
    probe = (
        "import resource, sys, time\n"
        "from mnistlab.errors import ImageError\n"
        "from mnistlab.images import load_image, preprocess\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "start = time.perf_counter()\n"
        "for read in (load_image, preprocess):\n"
        "    try:\n"
        "        read(sys.argv[1])\n"
        "        print('accepted')\n"
        "    except ImageError as e:\n"
        "        print(e)\n"
        "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    r = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    first, second, figures = r.stdout.splitlines()
    for message in (first, second):
        assert "huge.png: image too large" in message and "resize it" in message, message
    seconds, grown_kb = figures.split()
    assert float(seconds) < 1.0, f"took {float(seconds):.2f} s"
    assert int(grown_kb) < 50 * 1024, f"peak memory grew by {int(grown_kb) // 1024} MB"
