"""The real web server under abuse: `mnistlab serve RUN` (uvicorn, a subprocess on 127.0.0.1) gets malformed,
oversized, truncated, slow and concurrent requests from raw sockets and http.client.

Every answer must be a 4xx with a JSON {"detail": message}: never a 5xx, never a dropped connection, except
where HTTP itself has the server close (h11 refusing an oversized header block). Slow clients must not
block others or pile up, and afterwards the server must still answer a real MNIST test digit correctly and
must never have logged a traceback. Everything is bounded in count and time.
"""

from __future__ import annotations

import base64
import concurrent.futures
import http.client
import json
import os
import socket
import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest

from helpers import HOST, Server, bomb_png, canvas_png, png_declaring

LIMIT = 5 * 1024 * 1024  # the server's body limit (serve/app.py MAX_BODY_BYTES)


@dataclass
class Digit:
    label: int
    png: bytes  # a 280x280 canvas-like PNG the trained run is known to classify correctly


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "b0undary") -> tuple[str, bytes]:
    """(content type, body) for form parts (field name, file name or None, content)."""
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
    return f"multipart/form-data; boundary={boundary}", body + f"--{boundary}--\r\n".encode()


def request(server: Server, method: str, path: str, body: bytes | None = None, content_type: str | None = None,
            conn: http.client.HTTPConnection | None = None, timeout: float = 30) -> tuple[int, str, bytes]:
    """One request; (status, content type, body). A given `conn` is reused (keep-alive)."""
    c = conn or http.client.HTTPConnection(HOST, server.port, timeout=timeout)
    headers = {"Content-Type": content_type} if content_type else {}
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    if conn is None:
        c.close()
    return r.status, r.getheader("Content-Type") or "", data


def predict(server: Server, png: bytes, conn: http.client.HTTPConnection | None = None) -> tuple[int, str, bytes]:
    ctype, body = multipart([("file", "digit.png", png)])
    return request(server, "POST", "/api/predict", body, ctype, conn=conn)


def assert_client_error(status: int, ctype: str, body: bytes, expected: int | None = None) -> str:
    """A 4xx (the expected one, if given) with a one-line JSON message; returns the message."""
    assert 400 <= status < 500, f"HTTP {status}: {body[:300]!r}"
    if expected is not None:
        assert status == expected, f"HTTP {status}, expected {expected}: {body[:300]!r}"
    assert ctype.startswith("application/json"), f"{ctype}: {body[:300]!r}"
    detail = json.loads(body)["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail and len(detail) < 500, detail
    return detail


def raw_response(sock: socket.socket) -> tuple[int, str, bytes] | None:
    """Read one HTTP response from a raw socket; None if the server closed it without answering."""
    r = http.client.HTTPResponse(sock)
    try:
        r.begin()
    except (http.client.RemoteDisconnected, ConnectionResetError):
        return None
    return r.status, r.getheader("Content-Type") or "", r.read()


def raw_connect(server: Server, timeout: float = 15) -> socket.socket:
    return socket.create_connection((HOST, server.port), timeout=timeout)


def chunked(data: bytes, size: int = 64 * 1024):
    for i in range(0, len(data), size):
        piece = data[i:i + size]
        yield b"%x\r\n" % len(piece) + piece + b"\r\n"
    yield b"0\r\n\r\n"


# ------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def digits(trained_run, data_dir) -> list[Digit]:
    """Three MNIST test digits (3, 7, 1) drawn as canvases, each checked to be classified right in-process."""
    from mnistlab.data import load_dataset
    from mnistlab.images import preprocess

    data = load_dataset("mnist", data_dir)
    out = []
    for label in (3, 7, 1):
        for i in np.flatnonzero(data.y_test[:500] == label):
            png = canvas_png(data.x_test[i])
            proba = trained_run.predict_proba(preprocess(png)[None])[0]
            if proba.argmax() == label and proba.max() > 0.9:
                out.append(Digit(label, png))
                break
    assert len(out) == 3, "the trained run should get a clear 3, 7 and 1 right"
    return out


@pytest.fixture(scope="module")
def baseline(server, digits) -> dict:
    """The server's memory after warming up, before any abuse."""
    for d in digits:
        assert predict(server, d.png)[0] == 200
    return {"rss": server.rss_mb(), "fds": server.open_fds()}


# ---------------------------------------------------------------------------------------------------- tests

MP_WRONG_FIELD = multipart([("picture", "a.png", b"\x89PNG")])
CASES = {
    # JSON
    "json-malformed": ("application/json", b'{"image": ', 400),
    "json-not-utf8": ("application/json", b'{"image": "\xff\xfe"}', 400),
    "json-nested-100000-deep": ("application/json", b"[" * 100000, 400),
    "json-array": ("application/json", b"[1, 2, 3]", 400),
    "json-null": ("application/json", b"null", 400),
    "json-empty-object": ("application/json", b"{}", 400),
    "json-image-number": ("application/json", b'{"image": 123}', 400),
    "json-image-list": ("application/json", b'{"image": ["iVBORw0KGgo="]}', 400),
    "json-image-object": ("application/json", b'{"image": {"data": "x"}}', 400),
    "json-image-empty": ("application/json", b'{"image": ""}', 400),
    "json-bad-base64": ("application/json", b'{"image": "!!! not base64 !!!"}', 400),
    "json-base64-of-text": ("application/json", json.dumps({"image": base64.b64encode(b"hello").decode()}).encode(),
                            400),
    "json-data-url-not-base64": ("application/json", b'{"image": "data:image/png,abc"}', 400),
    "json-lone-surrogate": ("application/json", b'{"image": "\\ud800"}', 400),
    # Content types
    "text-plain": ("text/plain", b"7", 415),
    "application-xml": ("application/xml", b"<image>7</image>", 415),
    "no-content-type": (None, b"\x89PNG\r\n", 415),
    # Multipart
    "multipart-missing-field": (*MP_WRONG_FIELD, 400),
    "multipart-field-not-a-file": (*multipart([("file", None, b"just text")]), 400),
    "multipart-no-boundary": ("multipart/form-data", b"--x\r\n\r\n", 400),
    "multipart-garbage": ("multipart/form-data; boundary=b0undary", os.urandom(2048), 400),
    "multipart-unterminated": ("multipart/form-data; boundary=b0undary",
                               b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n', 400),
    "multipart-two-files": (*multipart([("file", "a.png", b"a"), ("file", "b.png", b"b")]), 400),
    "multipart-50-fields": (*multipart([(f"f{i}", None, b"x") for i in range(50)]), 400),
    "multipart-empty-file": (*multipart([("file", "a.png", b"")]), 400),
    "multipart-100kB-filename": (*multipart([("file", "a" * 100_000 + ".png", b"x")]), 400),
    # Images
    "image-text": (*multipart([("file", "a.png", b"not an image at all\n" * 50)]), 400),
    "image-truncated-png": (*multipart([("file", "a.png", bomb_png(300)[:60])]), 400),
    "image-bomb-8000x8000": (*multipart([("file", "bomb.png", bomb_png(8000))]), 400),
    "image-declares-50000x50000": (*multipart([("file", "huge.png", png_declaring(50000, 50000))]), 400),
    "json-image-bomb": ("application/json", json.dumps({"image": base64.b64encode(bomb_png(8000)).decode()}).encode(),
                        400),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_request_gets_a_4xx_json_answer(server, baseline, case):
    content_type, body, expected = CASES[case]
    start = time.perf_counter()
    status, ctype, data = request(server, "POST", "/api/predict", body, content_type)
    assert_client_error(status, ctype, data, expected)
    # Bombs and huge declarations are refused from the header: quickly, not after decoding.
    assert time.perf_counter() - start < 5


def test_wrong_method_and_path_get_json(server, baseline):
    assert_client_error(*request(server, "GET", "/api/predict"), 405)
    assert_client_error(*request(server, "POST", "/api/nope", b"{}", "application/json"), 404)
    assert_client_error(*request(server, "PUT", "/api/health", b"x", "text/plain"), 405)


def test_oversized_body_by_content_length_is_refused_before_it_is_sent(server, baseline):
    # 6 MB declared: the answer must come from the headers alone, without waiting for (or reading) the body.
    for ctype in ["application/json", "multipart/form-data; boundary=b0undary", "image/png"]:
        with raw_connect(server, timeout=10) as s:
            s.sendall(f"POST /api/predict HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {ctype}\r\n"
                      f"Content-Length: {6 * 1024 * 1024}\r\n\r\n".encode() + b"x" * 1000)
            answer = raw_response(s)
        assert answer is not None, "dropped without an answer"
        assert_client_error(*answer, 413)


@pytest.mark.parametrize("kind", ["json", "multipart"])
def test_oversized_chunked_body_is_cut_off(server, baseline, kind):
    blob = b"A" * (6 * 1024 * 1024)
    if kind == "json":
        ctype, body = "application/json", b'{"image": "' + blob + b'"}'
    else:
        ctype, body = multipart([("file", "big.png", blob)])
    with raw_connect(server, timeout=20) as s:
        s.sendall(f"POST /api/predict HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {ctype}\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n".encode())
        try:
            for piece in chunked(body):
                s.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may stop reading once it has answered; the answer is what counts
        answer = raw_response(s)
    assert answer is not None, "dropped without an answer"
    assert_client_error(*answer, 413)


@pytest.mark.parametrize("how", ["content-length", "chunked"])
def test_truncated_body_then_close_does_no_harm(server, baseline, digits, how):
    ctype, body = multipart([("file", "digit.png", digits[0].png)])
    framing = f"Content-Length: {len(body)}" if how == "content-length" else "Transfer-Encoding: chunked"
    head = f"POST /api/predict HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {ctype}\r\n{framing}\r\n\r\n".encode()
    part = body[: len(body) // 3]
    with raw_connect(server) as s:
        s.sendall(head + (part if how == "content-length" else b"%x\r\n" % len(body) + part))
        s.shutdown(socket.SHUT_WR)  # the client gives up mid-body
        answer = raw_response(s)
    if answer is not None:  # nobody is left to read it, but if it is sent it must be a 4xx
        assert_client_error(*answer)
    status, _, data = predict(server, digits[0].png)
    assert status == 200 and json.loads(data)["digit"] == digits[0].label


def test_huge_headers(server, baseline):
    # 100 kB in one header line: within what h11 buffers; processed normally or refused with 400/431.
    with raw_connect(server) as s:
        s.sendall(f"GET /api/health HTTP/1.1\r\nHost: {HOST}\r\nX-Big: {'a' * 100_000}\r\n\r\n".encode())
        answer = raw_response(s)
    assert answer is not None and answer[0] in (200, 400, 431), answer
    # 2 MB of headers streamed in: h11 must refuse (400/431 and close) long before holding it all.
    before = server.rss_mb()
    refused = False
    with raw_connect(server) as s:
        try:
            s.sendall(f"GET /api/health HTTP/1.1\r\nHost: {HOST}\r\n".encode())
            for i in range(2048):
                s.sendall(f"X-Pad-{i}: {'b' * 1000}\r\n".encode())
            s.sendall(b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            refused = True  # closed on us mid-headers: the protocol-level refusal
        answer = raw_response(s)
    assert refused or (answer is not None and answer[0] in (400, 431)), answer
    assert server.rss_mb() - before < 50


def test_many_concurrent_uploads(server, baseline, digits):
    """32 clients x 5 requests on keep-alive connections: good digits answered right, bad images 400, no 5xx."""
    bad = [("text", b"this is not an image\n" * 10), ("bomb", bomb_png(8000)), ("truncated", digits[1].png[:200])]

    def client(n: int) -> list[str]:
        problems = []
        conn = http.client.HTTPConnection(HOST, server.port, timeout=60)
        for k in range(5):
            if (n + k) % 2 == 0:
                d = digits[(n + k) % len(digits)]
                status, ctype, data = predict(server, d.png, conn=conn)
                if status != 200 or json.loads(data)["digit"] != d.label:
                    problems.append(f"{d.label}: HTTP {status} {data[:200]!r}")
            else:
                name, content = bad[(n + k) % len(bad)]
                status, ctype, data = predict(server, content, conn=conn)
                try:
                    assert_client_error(status, ctype, data, 400)
                except AssertionError as e:
                    problems.append(f"{name}: {e}")
        conn.close()
        return problems

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        problems = [p for ps in pool.map(client, range(32)) for p in ps]
    assert problems == []
    assert time.perf_counter() - start < 40


def test_slow_clients_neither_block_others_nor_exhaust_the_server(server, baseline, digits):
    stop = threading.Event()
    slow: list[socket.socket] = []
    ctype, body = multipart([("file", "digit.png", digits[0].png)])

    def dribble(s: socket.socket, data: bytes) -> None:
        for i in range(len(data)):
            if stop.wait(0.1):
                return
            try:
                s.send(data[i:i + 1])
            except OSError:
                return

    threads = []
    for i in range(20):
        s = raw_connect(server)
        slow.append(s)
        if i % 2 == 0:  # headers one byte every 0.1 s (a slowloris)
            head = f"POST /api/predict HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {ctype}\r\n".encode()
            threads.append(threading.Thread(target=dribble, args=(s, head), daemon=True))
        else:  # complete headers, a third of the body, then silence
            s.sendall(f"POST /api/predict HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {ctype}\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n".encode() + body[: len(body) // 3])
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        for d in digits * 2:
            start = time.perf_counter()
            status, _, data = predict(server, d.png)
            took = time.perf_counter() - start
            assert status == 200 and json.loads(data)["digit"] == d.label
            assert took < 2.0, f"a normal request took {took:.1f} s while 20 slow clients were connected"
        assert request(server, "GET", "/api/health", timeout=2)[0] == 200
    finally:
        stop.set()
        for s in slow:
            s.close()
        for t in threads:
            t.join(timeout=5)
    # Their connections are released once they go: no file descriptors left behind.
    deadline = time.monotonic() + 10
    while server.open_fds() > baseline["fds"] + 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.open_fds() <= baseline["fds"] + 5, f"{server.open_fds()} fds open, {baseline['fds']} before"


def test_after_all_that_a_normal_request_is_answered_right(server, baseline, digits):
    assert server.proc.poll() is None, "the server died"
    for d in digits:
        status, ctype, data = predict(server, d.png)
        assert status == 200 and ctype.startswith("application/json")
        record = json.loads(data)
        assert record["digit"] == d.label and record["error"] is None and len(record["probabilities"]) == 10
    status, _, data = request(server, "POST", "/api/predict",
                              json.dumps({"image": "data:image/png;base64," + base64.b64encode(digits[1].png).decode()}
                                         ).encode(), "application/json")
    assert status == 200 and json.loads(data)["digit"] == digits[1].label
    grown = server.rss_mb() - baseline["rss"]
    assert grown < 300, f"the server grew by {grown:.0f} MB during the abuse"
