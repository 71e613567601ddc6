"""`mnistlab.prediction`: records for files, folders, PIL images, arrays and bytes; the table; the CLI's JSON."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mnistlab
from helpers import copy_run, encode_png, on_paper, run_cli, set_metrics
from mnistlab.errors import ImageError, RunError, UsageError
from mnistlab.images import preprocess
from mnistlab.prediction import DEFAULT_MIN_CONFIDENCE, expand_paths, format_table, predict, predict_paths

KEYS = {"file", "digit", "label", "confidence", "probabilities", "top", "low_confidence", "error", "no_digit", "reason"}


@pytest.fixture(scope="module")
def digits(data_dir):
    (_, _), (x, y) = mnistlab.load_data(data_dir=data_dir)
    return x[:40], y[:40]


def test_records_follow_the_design(trained_run, digits, tmp_path):
    x, y = digits
    paths = []
    for i in range(20):
        paths.append(tmp_path / f"d{i}.png")
        on_paper(x[i]).save(paths[-1])
    records = predict(trained_run, paths)
    assert [r["file"] for r in records] == [str(p) for p in paths]
    for r in records:
        assert set(r) == KEYS
        assert r["error"] is None and r["no_digit"] is False
        assert len(r["probabilities"]) == 10 and abs(sum(r["probabilities"]) - 1) < 1e-4
        assert r["digit"] == int(np.argmax(r["probabilities"])) and r["label"] == str(r["digit"])
        assert len(r["top"]) == 3 and r["top"][0] == [r["digit"], r["confidence"]]
        assert [p for _, p in r["top"]] == sorted((p for _, p in r["top"]), reverse=True)
        assert r["confidence"] == pytest.approx(max(r["probabilities"]), abs=1e-6)
        assert r["low_confidence"] == (r["confidence"] < DEFAULT_MIN_CONFIDENCE)
        json.dumps(r, allow_nan=False)  # plain JSON types only, as `predict --json` prints them
    right = sum(r["digit"] == label for r, label in zip(records, y))
    assert right >= 17, f"{right}/20 right: the small test model reads about 93% of MNIST"


def test_every_kind_of_input_gives_the_same_answer(trained_run, digits, tmp_path):
    x, _ = digits
    im = on_paper(x[3])
    path = tmp_path / "three.png"
    im.save(path)
    data = encode_png(im)
    sources = [path, str(path), data, im, np.asarray(im), np.asarray(im, np.float32) / 255, io.BytesIO(data)]
    records = predict(trained_run.path, sources)
    assert [r["file"] for r in records] == [str(path), str(path)] + [f"<image {i}>" for i in range(2, 7)]
    for r in records[1:]:
        assert r["probabilities"] == pytest.approx(records[0]["probabilities"], abs=1e-5)
    # One image on its own (not in a list) is one record.
    assert predict(trained_run, im)[0]["digit"] == records[0]["digit"]
    assert len(predict(trained_run, np.asarray(im))) == 1
    assert len(predict(trained_run, io.BytesIO(encode_png(im)))) == 1
    # A stack of 28x28 arrays is that many images.
    assert [r["file"] for r in predict(trained_run, x[:4])] == [f"<image {i}>" for i in range(4)]


def test_all_readable_images_go_to_the_model_in_one_call(trained_run, digits, tmp_path, monkeypatch):
    x, _ = digits
    run = mnistlab.load_run(trained_run.path)
    calls = []
    original = run.predict_proba
    monkeypatch.setattr(run, "predict_proba", lambda batch: calls.append(len(batch)) or original(batch))
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    images = [on_paper(x[0]), bad, encode_png(on_paper(x[1])), tmp_path / "missing.png", on_paper(x[2])]
    records = predict(run, images)
    assert calls == [3]
    assert [r["digit"] is None for r in records] == [False, True, False, True, False]


def test_unreadable_and_blank_images_get_records_and_do_not_stop_the_others(trained_run, digits, tmp_path):
    x, y = digits
    good = tmp_path / "good.png"
    on_paper(x[0]).save(good)
    text = tmp_path / "notes.png"
    text.write_text("these are not pixels\n" * 10)
    blank = tmp_path / "blank.png"
    Image.new("L", (100, 100), 255).save(blank)
    records = predict(trained_run, [text, good, tmp_path / "missing.png", blank, b"", b"\x89PNG\r\n\x1a\n"])
    assert [Path(r["file"]).name for r in records[:4]] == ["notes.png", "good.png", "missing.png", "blank.png"]
    notes, ok, missing, empty_page, no_bytes, cut = records
    assert ok["digit"] == y[0] and ok["error"] is None
    for r, what in [(notes, "not an image"), (missing, "no such file"), (no_bytes, "empty"), (cut, "")]:
        assert r["digit"] is r["confidence"] is r["probabilities"] is r["top"] is None
        assert what in r["error"] and "\n" not in r["error"] and r["no_digit"] is False, r
    assert empty_page["digit"] is None and empty_page["no_digit"] is True and "no digit found" in empty_page["error"]


def test_top_and_min_confidence(trained_run, digits):
    x, _ = digits
    pictures = [on_paper(x[i]) for i in range(5)]
    five = predict(trained_run, pictures, top=5)
    assert all(len(r["top"]) == 5 for r in five)
    assert len(predict(trained_run, pictures[:1], top=50)[0]["top"]) == 10
    assert all(r["low_confidence"] for r in predict(trained_run, pictures, min_confidence=1.0))
    assert not any(r["low_confidence"] for r in predict(trained_run, pictures, min_confidence=0.0))
    middle = sorted(r["confidence"] for r in five)[2]
    flagged = [r["low_confidence"] for r in predict(trained_run, pictures, min_confidence=middle)]
    assert flagged == [r["confidence"] < middle for r in five] and 0 < sum(flagged) < 5
    for bad in [{"top": 0}, {"top": 2.5}, {"min_confidence": 1.5}, {"min_confidence": -0.1}, {"min_confidence": "high"}]:
        with pytest.raises(UsageError):
            predict(trained_run, pictures, **bad)


def test_unfinished_run_is_refused_unless_allowed(trained_run, digits, tmp_path):
    x, y = digits
    run_dir = copy_run(trained_run.path, tmp_path / "partial", set_metrics(status="interrupted"))
    with pytest.raises(RunError, match="did not finish"):
        predict(run_dir, [on_paper(x[0])])
    with pytest.raises(RunError, match="--allow-partial"):
        predict_paths(run_dir, [], top=3)
    assert predict(run_dir, [on_paper(x[0])], allow_partial=True)[0]["digit"] == y[0]
    with pytest.raises(RunError, match="no such run"):
        predict(tmp_path / "nowhere", [on_paper(x[0])])


def test_expand_paths(tmp_path):
    root = tmp_path / "pics"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".thumbnails").mkdir()
    for name in ["b.png", "a.JPG", "sub/c.webp", "sub/deeper/d.TIFF", "sub/e.gif", "f.bmp", "g.jpeg", "h.tif"]:
        (root / name).write_bytes(b"x")
    for name in ["notes.txt", "model.keras", "sub/readme", ".thumbnails/b.png", "._b.png"]:
        (root / name).write_bytes(b"x")
    (root / "folder.png").mkdir()  # a folder whose name looks like an image is not one
    single = tmp_path / "single.png"
    missing = tmp_path / "missing.png"
    found = expand_paths([single, root, missing])
    assert found[0] == single and found[-1] == missing  # files as given, even a missing one
    assert [p.relative_to(root).as_posix() for p in found[1:-1]] == [
        "a.JPG", "b.png", "f.bmp", "g.jpeg", "h.tif", "sub/c.webp", "sub/deeper/d.TIFF", "sub/e.gif"]
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no pictures here")
    with pytest.raises(ImageError, match="empty: folder holds no image files"):
        expand_paths([tmp_path / "empty"])


def test_predict_paths_saves_what_the_model_saw(trained_run, digits, tmp_path):
    x, y = digits
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    inputs = [tmp_path / "a" / "seven.png", tmp_path / "b" / "seven.png", tmp_path / "a" / "blank.png"]
    on_paper(x[0]).save(inputs[0])
    on_paper(x[1], size=300).convert("RGB").save(tmp_path / "b" / "seven.png")
    Image.new("L", (60, 60), 255).save(inputs[2])
    out = tmp_path / "seen"
    records = predict_paths(trained_run.path, [tmp_path / "a", inputs[1]], top=2, min_confidence=None,
                            save_preprocessed=out, allow_partial=False)
    assert [r["file"] for r in records] == [str(inputs[2]), str(inputs[0]), str(inputs[1])]
    assert records[0]["no_digit"] and [r["digit"] for r in records[1:]] == list(y[:2])
    assert all(len(r["top"]) == 2 for r in records[1:])
    saved = sorted(p.name for p in out.iterdir())
    assert saved == ["seven-2.png", "seven.png"]  # same stem twice: both kept; the blank one saw nothing
    for name, source in [("seven.png", inputs[0]), ("seven-2.png", inputs[1])]:
        with Image.open(out / name) as im:
            assert im.size == (28, 28) and im.mode == "L"
            seen = np.asarray(im, np.float32) / 255
        assert np.abs(seen - preprocess(source)).max() <= 0.5 / 255 + 1e-6


def test_format_table(trained_run, digits, tmp_path):
    x, _ = digits
    good = tmp_path / "good-digit.png"
    on_paper(x[0]).save(good)
    (tmp_path / "bad.png").write_text("nope")
    records = predict(trained_run, [good, tmp_path / "bad.png"], min_confidence=1.0)
    lines = format_table(records).splitlines()
    assert lines[0].split() == ["file", "digit", "confidence", "top", "note"]
    assert len(lines) == 3
    row = lines[1].split()
    assert row[0] == str(good) and row[1] == str(records[0]["digit"])
    assert row[2] == f"{records[0]['confidence']:.1%}"
    assert row[3:6] == [f"{d}:{p:.2f}" for d, p in records[0]["top"]]
    assert "LOW" in lines[1]
    assert lines[2].split()[:3] == [str(tmp_path / "bad.png"), "-", "-"] and records[1]["error"] in lines[2]
    assert "LOW" not in format_table(predict(trained_run, [good], min_confidence=0.0))
    # Columns line up whatever the file names' lengths: digit and confidence are right-aligned under their heads.
    for line, head in [(lines[1], "digit"), (lines[1], "confidence")]:
        value = row[1] if head == "digit" else row[2]
        assert line.index(f" {value} ") + 1 + len(value) == lines[0].index(head) + len(head)


def test_cli_json_is_the_api_record_and_status_follows_unreadable_files(trained_run, digits, tmp_path):
    x, _ = digits
    good = tmp_path / "good.png"
    on_paper(x[5]).save(good)
    blank = tmp_path / "blank.png"
    Image.new("L", (80, 80), 255).save(blank)
    r = run_cli("predict", trained_run.path, good, blank, "--json")
    assert r.returncode == 0, r.stderr  # "no digit" is an answer, not an unreadable file
    assert json.loads(r.stdout) == json.loads(json.dumps(predict(trained_run, [good, blank])))
    r = run_cli("predict", trained_run.path, good, tmp_path / "missing.png")
    assert r.returncode == 2
    [line] = r.stderr.strip().splitlines()
    assert line.startswith(f"mnistlab: error: {tmp_path / 'missing.png'}: no such file"), r.stderr
    assert r.stdout.splitlines()[1].split()[0] == str(good)


def test_choose_reads_the_second_input_only_where_the_first_is_refused_or_doubtful():
    # `prediction.choose` on a stand-in run: its detector refuses inputs with much ink, and its confidence in the
    # digit 3 is the input's top-left pixel. A form field's box side left in (first input) is refused, or read
    # with low confidence, and the digit alone (second) is not: the second is taken. An answer given with
    # confidence is never replaced, nor is a first input by a second that is refused or less sure.
    from types import SimpleNamespace

    from mnistlab.prediction import DEFAULT_MIN_CONFIDENCE, choose

    def digit(ink: int, confidence: float) -> np.ndarray:
        x = np.zeros((28, 28), np.float32)
        x[4:24, 10:10 + ink] = 1.0
        x[0, 0] = confidence
        return x

    def proba(x: np.ndarray) -> np.ndarray:
        p = np.clip(x[:, 0, 0], 0.1, 0.99)[:, None]
        return np.where(np.arange(10) == 3, p, (1 - p) / 9).astype(np.float32)

    rejector = SimpleNamespace(threshold=100.0, score=lambda x, p: x.reshape(len(x), -1).sum(axis=1))
    run = SimpleNamespace(rejector=rejector, temperature=1.0, predict_proba=proba)
    heavy, low, sure, surer = digit(10, 0.95), digit(2, 0.5), digit(2, 0.95), digit(3, 0.98)
    assert low[0, 0] < DEFAULT_MIN_CONFIDENCE <= sure[0, 0]
    # A confident first answer gives way only to a second input far more digit-like (here: 40 pixels less ink
    # against CHOICE_MARGIN), never to one only slightly so.
    boxed, nudged = digit(4, 0.95), digit(2, 0.95)
    nudged[26, 20:26] = 1.0  # 6 pixels more ink than `surer`'s 2-column stroke: within the margin
    cases = [[heavy, sure], [low, sure], [sure, surer], [low, digit(2, 0.4)], [low, heavy], [heavy], [heavy, heavy],
             [boxed, digit(2, 0.98)], [nudged, digit(2, 0.98)]]
    x, p, refused = choose(run, cases)
    taken = [next(k for k, c in enumerate(case) if np.array_equal(c, x[i])) for i, case in enumerate(cases)]
    assert taken == [1, 1, 0, 0, 0, 0, 0, 1, 0]
    assert refused.tolist() == [False, False, False, False, False, True, True, False, False]
    assert np.allclose(p.max(axis=1)[:3], [0.95, 0.95, 0.95], atol=1e-3)
    x, p, refused = choose(run, [])
    assert x.shape == (0, 28, 28) and p.shape == (0, 10) and refused.shape == (0,)
