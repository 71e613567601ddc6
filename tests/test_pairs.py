"""The reader of two touching digits (pairs.py) and how `read` offers a candidate as a pair (reading.py)."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest

import mnistlab
from mnistlab import pairs, reading, runs
from mnistlab.errors import RunError
from test_read import glyphs, number, touching  # noqa: F401  (glyphs: a fixture)


@pytest.fixture(scope="module")
def small_reader(data_dir) -> pairs.PairReader:
    (x, y), _ = mnistlab.load_data(data_dir=data_dir)
    return pairs.fit(x[:600], y[:600], seed=3)


def test_pairs_are_drawn_with_their_labels(data_dir):
    (x, y), _ = mnistlab.load_data(data_dir=data_dir)
    digits = x[:50].astype(np.float32) / 255
    a, la = pairs.draw(20, np.random.default_rng(0), digits, y[:50])
    b, lb = pairs.draw(20, np.random.default_rng(0), digits, y[:50])
    assert a.shape == (20, 28, 28) and np.array_equal(a, b) and np.array_equal(la, lb)
    assert 0 <= la.min() and la.max() <= 99 and len(set(la.tolist())) > 5
    assert a.max() == pytest.approx(1.0) and a.min() == 0.0
    # Two digits side by side: the ink is wider than tall, framed with its width at 20 pixels.
    cols = (a > 0.2).any(axis=1).sum(axis=1)
    rows = (a > 0.2).any(axis=2).sum(axis=1)
    assert np.median(cols) > np.median(rows)


def test_the_numpy_reader_computes_what_its_keras_network_does(small_reader, data_dir):
    (x, y), _ = mnistlab.load_data(data_dir=data_dir)
    xs, _ = pairs.draw(40, np.random.default_rng(5), x[1000:1100].astype(np.float32) / 255, y[1000:1100])
    net = pairs._keras_net()
    for name in ("conv1", "conv2", "out"):
        net.get_layer(name).set_weights([small_reader.weights[f"{name}_k"], small_reader.weights[f"{name}_b"]])
    logits = np.asarray(net.predict(xs[..., None], verbose=0), np.float64) / small_reader.temperature
    want = np.exp(logits - logits.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    got = small_reader.proba(xs)
    assert got.shape == (40, 101) and np.allclose(got.sum(1), 1, atol=1e-5)
    assert np.abs(got - want).max() < 1e-4
    assert small_reader.temperature != 1.0  # fitted on pairs of the held-out tenth


def test_marginals_are_each_digits_probabilities():
    p = np.zeros((2, 101), np.float32)
    p[0, 27], p[0, 21], p[1, 90], p[1, 100] = 0.3, 0.2, 0.1, 0.9  # given a pair: 60% "27", 40% "21"
    first, second = pairs.marginals(p)
    assert np.allclose(first[0], np.eye(10)[2]) and np.allclose(second[0], 0.6 * np.eye(10)[7] + 0.4 * np.eye(10)[1])
    assert first[1].argmax() == 9 and second[1].argmax() == 0


def test_a_run_keeps_its_pair_reader_and_an_unreadable_one_says_what_to_do(trained_run, small_reader, tmp_path):
    assert isinstance(trained_run.pair_reader, pairs.PairReader)  # fitted at the end of training
    copy = tmp_path / "run"
    shutil.copytree(trained_run.path, copy)
    small_reader.save(copy / runs.PAIRS_FILE)
    loaded = mnistlab.load_run(copy).pair_reader
    assert loaded.temperature == pytest.approx(small_reader.temperature)
    assert all(np.array_equal(loaded.weights[k], v) for k, v in small_reader.weights.items())
    (copy / runs.PAIRS_FILE).write_bytes(b"not a numpy file")
    with pytest.raises(RunError, match="pairs.npz: unreadable.*delete it"):
        _ = mnistlab.load_run(copy).pair_reader
    (copy / runs.PAIRS_FILE).unlink()
    assert mnistlab.load_run(copy).pair_reader is None


class _Sure:
    """A pair reader that reads every picture as the pair `text`, sure of it."""

    def __init__(self, text: str):
        self.label = int(text)

    def proba(self, x):
        out = np.full((len(x), 101), 1e-6, np.float32)
        out[:, self.label] = 1 - 100e-6
        return out


def test_a_sure_pair_replaces_the_two_digits_it_is_made_of_with_their_own_boxes(trained_run, glyphs):
    """The mechanics, with a pair reader sure of one reading: the two digits read alone give way to the pair's,
    each with the pair's marginal probabilities and its own box, side by side inside the pair's."""
    im = touching(glyphs, 2, 7)
    assert mnistlab.read(trained_run, [im])[0]["text"] == "27"
    run = dataclasses.replace(trained_run, _pair_reader=_Sure("35"))
    c = reading.candidates(im, run)
    assert len(c.pair_spans) and c.pair_probabilities.shape == (len(c.pair_spans), 101)
    assert [e >= len(c.spans) for e in c.chosen] == [True]
    [r] = mnistlab.read(run, [im])
    assert r["text"] == "35" and len(r["digits"]) == 2, r
    (l1, t1, r1, b1), (l2, t2, r2, b2) = (d["box"] for d in r["digits"])
    assert l1 < r1 == l2 < r2
    assert r["digits"][0]["confidence"] > 0.99 and r["digits"][1]["probabilities"][5] > 0.99
    assert 60 - 4 <= l1 and r2 <= im.width - 60 + 4  # the pair's ink, in the original picture's pixels


def test_a_pair_reader_that_is_not_sure_leaves_the_reading_alone(trained_run, glyphs):
    class Unsure(_Sure):
        def proba(self, x):
            out = super().proba(x)
            out[:, self.label], out[:, 100] = 0.5, 0.5 - 100e-6
            return out

    im = number(glyphs, "1905", gaps=[0, 4, 0, 0])
    before = mnistlab.read(trained_run, [im])[0]["text"]
    assert mnistlab.read(dataclasses.replace(trained_run, _pair_reader=Unsure("35")), [im])[0]["text"] == before
    # What keeps it is the reader's confidence: sure of the same pair, it reads it.
    assert "35" in mnistlab.read(dataclasses.replace(trained_run, _pair_reader=_Sure("35")), [im])[0]["text"]


def test_without_a_pair_reader_no_candidate_is_a_pair(trained_run, glyphs):
    # As a run trained before pairs were read: no pairs.npz to load (the detector already loaded).
    run = dataclasses.replace(trained_run, path=trained_run.path / "nowhere", _pair_reader=None,
                              _rejector=trained_run.rejector)
    c = reading.candidates(number(glyphs, "1905"), run)
    assert len(c.pair_spans) == 0 and all(e < len(c.spans) for e in c.chosen)


def _picture_of_three_pieces(pair_top: float, refused: bool) -> reading.Candidates:
    """Candidates for three pieces read "8", "3" ("8" made of pieces 0-1, "3" of piece 2), the first sure of
    itself (0.99) and refused by the detector or not, and a pair "14" over pieces 0-1 at `pair_top`."""
    spans = [(0, 1), (1, 2), (0, 2), (2, 3)]
    proba = np.full((4, 10), 0.001, np.float32)
    proba[2, 8], proba[3, 3], proba[0, 1], proba[1, 4] = 0.99, 0.99, 0.99, 0.99
    features = np.zeros((4, len(reading.FEATURES)), np.float32)
    features[2, 1] = 5.0 if refused else -5.0  # the not-a-digit log-odds of "8"
    c = reading.Candidates([None] * 3, spans, np.zeros((4, 28, 28), np.float32), [[0, 0, 10, 10]] * 4, proba,
                           features, 1.0, (10, 10))
    pair = np.full(101, (1 - pair_top) / 100, np.float32)
    pair[14] = pair_top
    c.pair_spans, c.pair_inputs, c.pair_boxes, c.pair_splits = [(0, 2)], [np.zeros((28, 28))], [[0, 0, 10, 10]], [5]
    c.pair_probabilities = pair[None]
    return c


@pytest.mark.parametrize("pair_top, refused, replaced", [
    (0.995, False, True),   # surer than the digit it replaces
    (0.7, False, False),    # less sure than the digit, which the detector takes for a digit: kept
    (0.7, True, True),      # the detector refuses the "8": two digits taken for one
    (reading.PAIR_CONFIDENCE - 0.05, True, False),  # never below PAIR_CONFIDENCE
])
def test_which_digits_a_pair_replaces(pair_top, refused, replaced):
    c = _picture_of_three_pieces(pair_top, refused)
    chosen = reading._read_pairs(c, [2, 3], threshold=0.0)
    text = "".join(str(int(np.argmax(p))) for p, _, _ in c.digits(chosen))
    assert (chosen, text) == (([4, 3], "143") if replaced else ([2, 3], "83"))


@pytest.mark.parametrize("cut, replaced", [(None, False), (2, True)])
def test_two_digits_a_cut_separated_are_doubted(cut, replaced):
    # "1" and "4" each 0.95 sure (0.9025 together) against a pair "74" at 0.85: separate pieces keep their reading;
    # where a cut through two strokes separated them, their confidence counts for less (CUT_DOUBT) and the pair wins.
    pieces = [reading._Piece([1], [0, 0, 10, 5]), reading._Piece([1], [0, 5, 10, 10], cut_left=cut)]
    proba = np.full((2, 10), 0.05 / 9, np.float32)
    proba[0, 1], proba[1, 4] = 0.95, 0.95
    c = reading.Candidates(pieces, [(0, 1), (1, 2)], np.zeros((2, 28, 28), np.float32), [[0, 0, 5, 10], [5, 0, 10, 10]],
                           proba, np.zeros((2, len(reading.FEATURES)), np.float32), 1.0, (10, 10))
    pair = np.full(101, 0.15 / 100, np.float32)
    pair[74] = 0.85
    c.pair_spans, c.pair_inputs, c.pair_boxes, c.pair_splits = [(0, 2)], [np.zeros((28, 28))], [[0, 0, 10, 10]], [5]
    c.pair_probabilities = pair[None]
    text = "".join(str(int(np.argmax(p))) for p, _, _ in c.digits(reading._read_pairs(c, [0, 1], threshold=0.0)))
    assert text == ("74" if replaced else "14")


def test_a_pair_placed_by_ink_slides_under_its_neighbours_bar(data_dir, monkeypatch):
    # A "7"-like left digit (a top bar over a stroke at its left side) and a "1" starting below the bar: by box
    # they would stand side by side; by ink the 1 slides under the bar until it meets the stroke.
    a = np.zeros((20, 20), np.float32)
    a[:3, :], a[:, :3] = 1, 1
    b = np.ones((14, 4), np.float32)
    assert pairs._touching(a, b, 0, 6) == 3
    assert pairs._touching(a, b, 0, 30) is None  # no row with ink of both
    # Placed by ink, two digits always touch: no empty column between them. By box, some stand apart.
    (x, _), _ = mnistlab.load_data(data_dir=data_dir)
    digits = x[:40].astype(np.float32) / 255

    def apart(touch: float) -> int:
        monkeypatch.setattr(pairs, "TOUCH", touch)
        rng = np.random.default_rng(0)
        drawn = [pairs._pair(rng, digits, (k, k + 1)) for k in range(28)]  # digit 29 has a gap of its own
        return sum(not (p > 0.3).any(axis=0)[3:-3].all() for p in drawn)

    assert apart(1.0) == 0 and apart(0.0) >= 10
