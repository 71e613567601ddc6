"""The web API through the framework's test client: predictions, model info and every refusal."""

from __future__ import annotations

import base64
import io
import json
import socket
import sys
import threading
import urllib.request

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import mnistlab
from helpers import HOST, canvas_png, copy_run, png_declaring, run_cli, set_metrics
from mnistlab.errors import RunError, UsageError
from mnistlab.serve import create_app, serve
from mnistlab.serve.app import MAX_BODY_BYTES


@pytest.fixture(scope="module")
def client(trained_run):
    with TestClient(create_app(mnistlab.load_run(trained_run.path))) as c:
        yield c


@pytest.fixture(scope="module")
def digits(data_dir):
    (_, _), (x, y) = mnistlab.load_data(data_dir=data_dir)
    return x, y


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
        assert set(ra) - {"preprocessed"} == set(cli)  # the record of `predict --json`, plus the picture
        assert cli["digit"] == ra["digit"] and cli["confidence"] == pytest.approx(ra["confidence"], abs=1e-6)
        seen = Image.open(io.BytesIO(base64.b64decode(ra["preprocessed"])))
        assert seen.size == (28, 28)
        right += ra["digit"] == y[i]
    assert right >= 17


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
        ({"files": {"file": ("bomb.png", png_declaring(50000, 50000), "image/png")}}, 400, "pixels"),
        ({"content": b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc",
          "headers": {"content-type": "multipart/form-data; boundary=x"}}, 400, ""),
        ({"content": b"0" * (5 * 1024 * 1024 + 1), "headers": {"content-type": "application/json"}}, 413, "5 MB"),
        ({"content": b"{}", "headers": {"content-type": "application/json"}}, 400, '"image"'),
        ({"json": {"image": "data:image/png,rawbytes"}}, 400, "not a base64 one"),
        ({"json": {"image": base64.b64encode(b"GIF89a and nothing else").decode()}}, 400, "image: "),
        ({"content": b"\xff\xfe{", "headers": {"content-type": "application/json"}}, 400, "malformed JSON"),
        ({"content": b"", "headers": {}}, 415, "content type 'missing'"),
        ({"content": b"a=1", "headers": {"content-type": "application/x-www-form-urlencoded"}}, 415, "multipart"),
        ({"files": {"file": ("pic.png", b"abc", "image/png")}, "data": {"file": "text as well"}}, 400, ""),
        ({"files": [("file", ("a.png", b"1", "image/png")), ("file", ("b.png", b"2", "image/png"))]}, 400, ""),
        ({"content": b"1", "headers": {"content-type": "application/json", "content-length": "abc"}}, 400, "Content-Length"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_message(client, kwargs, status, message):
    response = client.post("/api/predict", **kwargs)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_errors_name_the_upload(client):
    r = client.post("/api/predict", files={"file": ("holiday.jpg", b"not a jpeg at all", "image/jpeg")})
    assert r.status_code == 400 and r.json()["detail"].startswith("holiday.jpg: not an image")


def chunks(total: int, size: int = 256 * 1024):
    """A request body of `total` bytes sent in chunks, without a Content-Length (Transfer-Encoding: chunked)."""
    for start in range(0, total, size):
        yield b"0" * min(size, total - start)


@pytest.mark.parametrize("kind", ["application/json", "multipart/form-data; boundary=x"])
def test_streamed_body_over_the_limit_is_cut_off_with_413(client, kind):
    r = client.post("/api/predict", content=chunks(MAX_BODY_BYTES + 1), headers={"content-type": kind})
    assert r.status_code == 413 and "5 MB" in r.json()["detail"]


def test_streamed_body_under_the_limit_is_read(client, digits):
    png = canvas_png(digits[0][0])
    body = json.dumps({"image": base64.b64encode(png).decode()}).encode()
    r = client.post("/api/predict", content=iter([body[:100], body[100:]]), headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["digit"] is not None


def test_base64_with_line_breaks_is_accepted(client, digits):
    png = canvas_png(digits[0][1])
    wrapped = base64.encodebytes(png).decode()  # 76 columns, as the `base64` tool writes it
    assert "\n" in wrapped
    r = client.post("/api/predict", json={"image": wrapped})
    assert r.status_code == 200 and r.json()["digit"] is not None


def test_large_photo_is_read(client, digits):
    x, y = digits
    rng = np.random.default_rng(0)
    paper = rng.normal(210, 8, (4000, 3000))
    ink = np.asarray(Image.fromarray(x[0]).resize((1500, 1500), Image.Resampling.BICUBIC), np.float32) / 255
    paper[1200:2700, 700:2200] *= 1 - 0.8 * ink
    buf = io.BytesIO()
    Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8)).convert("RGB").save(buf, format="JPEG", quality=85)
    assert len(buf.getvalue()) < MAX_BODY_BYTES
    r = client.post("/api/predict", files={"file": ("photo.jpg", buf.getvalue(), "image/jpeg")})
    assert r.status_code == 200 and r.json()["digit"] == y[0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=2000), kind=st.sampled_from([
    "application/json", "multipart/form-data", "multipart/form-data; boundary=b", "image/png", "", "text/plain"]),
    as_json=st.booleans())
def test_no_client_input_gets_a_500(client, body, kind, as_json):
    if as_json:  # valid JSON carrying arbitrary bytes as base64
        body, kind = json.dumps({"image": base64.b64encode(body).decode()}).encode(), "application/json"
    r = client.post("/api/predict", content=body, headers={"content-type": kind} if kind else {})
    assert r.status_code in (200, 400, 413, 415), r.text
    assert ("detail" in r.json()) == (r.status_code != 200)


def test_a_canvas_is_classified_on_the_event_loop_and_a_photo_off_it(trained_run, digits, monkeypatch):
    import mnistlab.images as images_module

    threads = []
    original = images_module.preprocess_choices
    monkeypatch.setattr(images_module, "preprocess_choices",
                        lambda *a, **k: threads.append(threading.current_thread().name) or original(*a, **k))
    photo = io.BytesIO()
    Image.fromarray(255 - digits[0][1]).resize((1200, 900)).convert("RGB").save(photo, format="JPEG")
    with TestClient(create_app(mnistlab.load_run(trained_run.path))) as c:
        loop_thread = c.portal.call(lambda: threading.current_thread().name)
        assert c.post("/api/predict", files={"file": ("d.png", canvas_png(digits[0][0]), "image/png")}).status_code == 200
        assert c.post("/api/predict", files={"file": ("p.jpg", photo.getvalue(), "image/jpeg")}).status_code == 200
    canvas, big = threads
    assert canvas == loop_thread, "a 280x280 canvas (a few ms) is classified on the loop: no thread hand-over"
    assert big != loop_thread, "a photo (tens of ms) must not hold up the loop"


def test_a_canvas_upload_is_answered_before_fastapi_with_fastapis_own_bytes(trained_run, digits):
    """The front (BodyLimit with `predict`) answers a plain canvas upload itself; FastAPI, given the same request,
    answers byte for byte the same. Whatever the front does not take reaches FastAPI with its body intact."""
    from mnistlab.serve.app import BodyLimit

    front = create_app(mnistlab.load_run(trained_run.path))
    calls = []
    fastapi_app = front.app

    async def counted(scope, receive, send):
        if scope["type"] == "http":
            calls.append(scope["path"])
        await fastapi_app(scope, receive, send)

    front.app = counted
    png = canvas_png(digits[0][0])
    blank = canvas_png(np.zeros((28, 28), np.uint8))
    uploads = [("d.png", png), ("blank.png", blank), ("a.txt", b"not an image at all"), ("bomb.png", png_declaring(50000, 50000))]
    with TestClient(front) as fast, TestClient(BodyLimit(fastapi_app)) as plain:
        for name, data in uploads:
            a = fast.post("/api/predict", files={"file": (name, data, "image/png")})
            b = plain.post("/api/predict", files={"file": (name, data, "image/png")})
            assert (a.status_code, a.content) == (b.status_code, b.content), name
            assert a.headers["content-type"] == b.headers["content-type"] == "application/json"
            assert a.headers["content-length"] == b.headers["content-length"]
        assert calls == [], "plain canvas uploads (and their errors) are answered by the front"
        # Not taken by the front: JSON, a body only Starlette's parser reads, a photo too large for the event loop.
        photo = io.BytesIO()
        Image.fromarray(255 - digits[0][1]).resize((1200, 900)).convert("RGB").save(photo, format="JPEG")
        answers = [fast.post("/api/predict", json={"image": base64.b64encode(png).decode()}),
                   fast.post("/api/predict", content=b"--b\r\nContent-Disposition: form-data; "
                             b"filename=\"d.png\"; name=\"file\"\r\n\r\n" + png + b"\r\n--b--\r\n",
                             headers={"content-type": "multipart/form-data; boundary=b"}),
                   fast.post("/api/predict", files={"file": ("p.jpg", photo.getvalue(), "image/jpeg")})]
        assert [r.status_code for r in answers] == [200, 200, 200]
        assert [r.json()["digit"] for r in answers[:2]] == [a.json()["digit"] for a in [fast.post(
            "/api/predict", files={"file": ("d.png", png, "image/png")})]] * 2
        assert calls == ["/api/predict"] * 3


def _starlette_reads(body: bytes, content_type: str):
    """What Starlette's own multipart parser makes of a body: (data, name), or the error's type."""
    import asyncio

    from starlette.datastructures import Headers
    from starlette.formparsers import MultiPartParser

    async def parse():
        async def stream():
            yield body
            yield b""
        try:
            form = await MultiPartParser(Headers({"content-type": content_type}), stream(), max_files=1,
                                         max_fields=10).parse()
        except Exception as exc:
            return type(exc).__name__
        upload = form.get("file")
        return None if upload is None or isinstance(upload, str) else (await upload.read(), upload.filename or "upload")

    return asyncio.run(parse())


@pytest.mark.parametrize("disposition, other, expected", [
    ('form-data; name="file"; filename="canvas.png"', "", "plain"),
    ('form-data;name="file";filename="blob"', 'form-data; name="note"', "plain"),
    ('form-data; name="file"; filename=""', "", "plain"),
    ('form-data; name="file"; filename="caf\xc3\xa9.png"', "", "plain"),
    ('form-data; name="file"; filename="a\\"b.png"', "", None),  # escaped quote: left to Starlette
    ('form-data; name="file"', "", None),  # a text field, not a file
    ('form-data; name="file"; filename="a.png"', 'form-data; name="x"; filename="b.png"', None),  # two files
    ('form-data; name="file"; filename*=utf-8\'\'a.png', "", None),
])
def test_plain_multipart_reads_what_starlette_reads_or_hands_over(disposition, other, expected):
    from mnistlab.serve.app import plain_multipart

    parts = [(disposition.encode("latin-1"), b"\x89PNG\r\n--not-the-boundary\r\n\x00")]
    if other:
        parts.insert(0, (other.encode(), b"value"))
    for boundary, quoted in (("----WebKitFormBoundaryAbC", False), ("a+b/c", True)):
        body = b"".join(b"--%s\r\nContent-Disposition: %s\r\nContent-Type: image/png\r\n\r\n%s\r\n"
                        % (boundary.encode(), d, v) for d, v in parts) + b"--%s--\r\n" % boundary.encode()
        content_type = f'multipart/form-data; boundary="{boundary}"' if quoted else f"multipart/form-data; boundary={boundary}"
        got = plain_multipart(body, content_type)
        if expected is None:
            assert got is None
        else:
            assert got == _starlette_reads(body, content_type) and got[0].startswith(b"\x89PNG")
        assert plain_multipart(body[:-9], content_type) is None  # cut short: Starlette's parser judges it


def test_serve_refuses_an_unfinished_run(trained_run, tmp_path):
    run_dir = copy_run(trained_run.path, tmp_path / "partial", set_metrics(status="interrupted"))
    with pytest.raises(RunError, match="--allow-partial"):
        serve(run_dir, port=0)


def test_a_busy_port_is_one_line_and_status_2(trained_run):
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run_cli("serve", trained_run.path, "--host", HOST, "--port", port)
    assert r.returncode == 2, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert "Traceback" not in r.stderr and "serving" not in r.stdout, r.stdout + r.stderr
    [line] = r.stderr.strip().splitlines()
    assert line.startswith(f"mnistlab: error: --port {port}: already in use on {HOST}"), line


def test_an_address_not_of_this_machine_is_a_usage_error(trained_run):
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): documentation only, never an address of this machine.
    with pytest.raises(UsageError, match=r"^host='192\.0\.2\.1': not an address of this machine"):
        serve(trained_run.path, host="192.0.2.1", port=0)


@pytest.mark.parametrize("args, message", [
    (("--workers", "0"), "argument --workers: must be between 1 and 64, got 0"),
    (("--workers", "2", "--corrections", "c"), "--workers 2: corrections are saved by one process"),
])
def test_bad_worker_counts_are_one_line_and_status_2(trained_run, tmp_path, args, message):
    r = run_cli("serve", trained_run.path, "--port", "0", *args, cwd=tmp_path)
    assert r.returncode == 2 and "serving" not in r.stdout, r.stdout + r.stderr
    assert message in r.stderr.strip().splitlines()[-1] and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "c").exists()


def test_port_0_serves_on_a_free_port_and_prints_it(trained_run, server):
    # The session's real server was started with --port 0 (conftest.py).
    assert server.port != 0
    [line] = [line for line in server.log_text().splitlines() if "serving" in line]
    assert line == f"mnistlab: serving {trained_run.path} at http://{HOST}:{server.port}/  (Ctrl-C to stop)"
    with urllib.request.urlopen(server.url + "/api/model", timeout=10) as r:
        assert json.load(r)["recipe"] == "cnn"


def test_blank_image_is_a_record_without_a_digit(client, trained_run):
    buf = io.BytesIO()
    Image.new("L", (200, 200), 255).save(buf, format="PNG")
    r = client.post("/api/predict", files={"file": ("blank.png", buf.getvalue(), "image/png")})
    assert r.status_code == 200
    body = r.json()
    assert body["digit"] is None and body["no_digit"] and "no digit" in body["error"]
    assert body["file"] == "blank.png" and body["preprocessed"] is None
    api = mnistlab.predict(trained_run, [buf.getvalue()])[0]
    assert {k: v for k, v in body.items() if k not in ("preprocessed", "file", "error")} == \
        {k: v for k, v in api.items() if k not in ("file", "error")}


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


# ---------------------------------------------------------------------------------- corrections (serve --corrections)


def test_a_correction_is_saved_into_a_labelled_folder_finetune_reads(trained_run, digits, tmp_path):
    from mnistlab.labelled import PREPROCESSED_DIR, read_labelled_folder

    folder = tmp_path / "mine"
    png = canvas_png(digits[0][0])
    with TestClient(create_app(mnistlab.load_run(trained_run.path), corrections=folder)) as c:
        assert c.get("/api/model").json()["corrections"] is True
        first = c.post("/api/correct?digit=7", files={"file": ("pad.png", png, "image/png")})
        assert first.status_code == 200, first.text
        saved = first.json()
        assert (saved["label"], saved["digit"], saved["added"], saved["pictures"]) == ("7", 7, True, 1)
        again = c.post("/api/correct?digit=7", json={"image": base64.b64encode(png).decode()}).json()
        assert again["added"] is False and again["file"] == saved["file"], "the same picture is kept once"
        other = c.post("/api/correct?digit=3", files={"file": ("p.png", canvas_png(digits[0][1]), "image/png")})
        assert other.json()["pictures"] == 2 and other.json()["class_pictures"] == 1
    assert (folder / saved["file"]).read_bytes() == png, "the picture is kept as it was sent"
    with Image.open(folder / saved["preprocessed_file"]) as seen:
        assert seen.size == (28, 28)
    assert saved["preprocessed_file"].startswith(PREPROCESSED_DIR)
    labelled = read_labelled_folder(folder, trained_run.class_names)  # what finetune --images reads
    assert sorted(labelled.y.tolist()) == [3, 7] and len(labelled.files) == 2
    assert not [p for p in folder.rglob("*") if p.name.startswith(".") and p.name != PREPROCESSED_DIR]


def test_bad_corrections_are_refused_and_nothing_is_saved(trained_run, digits, tmp_path, monkeypatch):
    import mnistlab.labelled as labelled

    folder = tmp_path / "mine"
    png = canvas_png(digits[0][0])
    blank = io.BytesIO()
    Image.new("L", (100, 100), 255).save(blank, format="PNG")
    monkeypatch.setattr(labelled, "MAX_CORRECTIONS", 1)
    with TestClient(create_app(mnistlab.load_run(trained_run.path), corrections=folder)) as c:
        for query in ["", "?digit=", "?digit=x", "?digit=10", "?digit=-1", "?digit=%C2%B2", "?digit=1e0"]:
            r = c.post(f"/api/correct{query}", files={"file": ("pad.png", png, "image/png")})
            assert r.status_code == 400 and "digit=" in r.json()["detail"], (query, r.text)
        r = c.post("/api/correct?digit=1", files={"file": ("blank.png", blank.getvalue(), "image/png")})
        assert r.status_code == 400 and "nothing to save" in r.json()["detail"]
        r = c.post("/api/correct?digit=1", files={"file": ("notes.txt", b"not an image", "text/plain")})
        assert r.status_code == 400 and r.json()["detail"].startswith("notes.txt")
        assert list(folder.iterdir()) == []
        assert c.post("/api/correct?digit=1", files={"file": ("a.png", png, "image/png")}).status_code == 200
        full = c.post("/api/correct?digit=2", files={"file": ("b.png", canvas_png(digits[0][1]), "image/png")})
        assert full.status_code == 507 and "full (1 pictures)" in full.json()["detail"]
    with TestClient(create_app(mnistlab.load_run(trained_run.path))) as off:
        r = off.post("/api/correct?digit=1", files={"file": ("a.png", png, "image/png")})
        assert r.status_code == 404 and "--corrections" in r.json()["detail"]
        assert off.get("/api/model").json()["corrections"] is False
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(UsageError, match=r"^corrections='.*a-file': not a folder"):
        create_app(mnistlab.load_run(trained_run.path), corrections=tmp_path / "a-file")


_BURSTS = """
import resource, sys
import numpy as np
from mnistlab.backend import keep_freed_memory
kept = keep_freed_memory()
def burst():  # what a canvas request does to memory: a few dozen arrays of 0.3 MB, made and freed
    arrays = [np.ones((280, 280), np.float32) for _ in range(20)]
    del arrays
burst()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    burst()
print(kept, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_the_server_process_keeps_freed_memory_unless_the_user_set_glibcs_own():
    import subprocess

    from helpers import cli_env

    def bursts(**env: str) -> tuple[str, float]:
        out = subprocess.run([sys.executable, "-c", _BURSTS], env={**cli_env(), **env}, capture_output=True,
                             text=True, check=True).stdout.split()
        return out[0], float(out[1])

    kept, faults = bursts()
    assert kept == "True" and faults < 10, faults  # glibc's defaults: about 1,500 page faults a burst
    # A user's own setting of glibc's allocator wins: nothing is changed.
    assert bursts(MALLOC_MMAP_THRESHOLD_="131072")[0] == "False"
