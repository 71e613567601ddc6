"""The web API through the framework's test client: predictions, model info and every refusal."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import mnistlab
from mnistlab.serve import create_app


@pytest.fixture(scope="module")
def client(trained_run):
    with TestClient(create_app(mnistlab.load_run(trained_run.path))) as c:
        yield c


@pytest.fixture(scope="module")
def digits(data_dir):
    (_, _), (x, y) = mnistlab.load_data(data_dir=data_dir)
    return x, y


def canvas_png(digit: np.ndarray) -> bytes:
    """An MNIST digit drawn the way the page sends it: black ink on a white 280x280 canvas."""
    im = Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def test_page_and_assets_are_served_offline(client):
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN: works offline
    for asset in ["/static/app.js", "/static/style.css"]:
        assert client.get(asset).status_code == 200


def test_health_and_model(client, trained_run):
    assert client.get("/api/health").json() == {"status": "ok"}
    info = client.get("/api/model").json()
    assert info["recipe"] == "cnn" and info["dataset"] == "mnist"
    assert info["test_accuracy"] == trained_run.metrics["test_accuracy"]


def test_multipart_and_json_give_the_same_record_as_predict(client, digits, trained_run):
    x, y = digits
    right = 0
    for i in range(20):
        png = canvas_png(x[i])
        a = client.post("/api/predict", files={"file": ("d.png", png, "image/png")})
        b = client.post("/api/predict", json={"image": "data:image/png;base64," + base64.b64encode(png).decode()})
        assert a.status_code == b.status_code == 200
        ra, rb = a.json(), b.json()
        assert ra["probabilities"] == rb["probabilities"]
        assert len(ra["probabilities"]) == 10 and abs(sum(ra["probabilities"]) - 1) < 1e-3
        cli = mnistlab.predict(trained_run.path, [png])[0]
        assert cli["digit"] == ra["digit"] and cli["confidence"] == pytest.approx(ra["confidence"], abs=1e-6)
        seen = Image.open(io.BytesIO(base64.b64decode(ra["preprocessed"])))
        assert seen.size == (28, 28)
        right += ra["digit"] == y[i]
    assert right >= 17


def _png_header(width: int, height: int) -> bytes:
    """A small valid PNG that declares a huge size: a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "kwargs, status, message",
    [
        ({"content": b"x", "headers": {"content-type": "text/plain"}}, 415, "multipart form field"),
        ({"content": b"{bad", "headers": {"content-type": "application/json"}}, 400, "malformed JSON"),
        ({"json": {"image": 5}}, 400, "base64 string"),
        ({"json": {"image": "%%%not base64"}}, 400, "not valid base64"),
        ({"json": ["image"]}, 400, "base64 string"),
        ({"files": {"other": ("a.png", b"123", "image/png")}}, 400, 'field "file"'),
        ({"files": {"file": ("a.png", b"", "image/png")}}, 400, "empty"),
        ({"files": {"file": ("a.txt", b"hello, not an image", "text/plain")}}, 400, "not an image"),
        ({"files": {"file": ("bomb.png", _png_header(50000, 50000), "image/png")}}, 400, "pixels"),
        ({"content": b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc",
          "headers": {"content-type": "multipart/form-data; boundary=x"}}, 400, ""),
        ({"content": b"0" * (5 * 1024 * 1024 + 1), "headers": {"content-type": "application/json"}}, 413, "5 MB"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_message(client, kwargs, status, message):
    response = client.post("/api/predict", **kwargs)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_blank_image_is_a_record_without_a_digit(client):
    buf = io.BytesIO()
    Image.new("L", (200, 200), 255).save(buf, format="PNG")
    r = client.post("/api/predict", files={"file": ("blank.png", buf.getvalue(), "image/png")})
    assert r.status_code == 200
    body = r.json()
    assert body["digit"] is None and body["no_digit"] and "no digit" in body["error"]


def test_model_is_loaded_once(trained_run, monkeypatch, digits):
    import mnistlab.runs as runs_module

    run = mnistlab.load_run(trained_run.path)
    loads = []
    original = runs_module.load_model
    monkeypatch.setattr(runs_module, "load_model", lambda path: loads.append(path) or original(path))
    with TestClient(create_app(run)) as c:
        for i in range(3):
            assert c.post("/api/predict", files={"file": ("d.png", canvas_png(digits[0][i]), "image/png")}).status_code == 200
    assert len(loads) == 1
