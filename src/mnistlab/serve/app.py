"""The draw-a-digit web app: one static page and a small JSON API around a run loaded once.

    GET  /              the page (static/index.html; its assets under /static/, shipped in the package)
    GET  /api/health    {"status": "ok"}
    GET  /api/model     recipe, dataset, test accuracy, status, class names, parameter count
    POST /api/predict   an image as multipart field "file", or JSON {"image": "<base64 or data: URL>"}
    POST /api/read      the same inputs; the number written on one line (the record of `mnistlab read --json`)
    POST /api/correct?digit=D   the same inputs: saves the picture as a D in the corrections folder (serve
                        --corrections DIR; 404 when the server was started without one), ready for `finetune`

`POST /api/predict` answers with the prediction record of docs/design.md, the same as `mnistlab predict
--json`, plus one field for the page: `preprocessed`, the 28x28 image the model saw as a base64 PNG.
A picture that was read but holds no digit is a result, not a client error: 200 with `digit` null,
`no_digit` true and a `reason`: "no ink" (a blank picture; `error` "... no digit found ...") or "not a digit"
(a letter, a doodle, a photo: the run's not-a-digit detector refused it), as `predict` reports it. The page
says which.

Every other client input gets a 4xx answer {"detail": message}, never a 500: bodies over 5 MB get 413
(from Content-Length up front, or counted while a chunked body streams in), other content types 415,
malformed JSON or multipart, bad base64, a missing field, an empty or unreadable image 400, and an image
over the pixel cap 400 from its header, before a pixel is decoded. Inference runs in the threadpool so a
slow photo never blocks the event loop.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from ..errors import ImageError, NoDigitError
from ..runs import Run

MAX_BODY_BYTES = 5 * 1024 * 1024
# 25 megapixels: a 5 MB upload holds no real photo larger than this (a 24 MP camera JPEG is ~8 MB), while a
# decompression bomb declares far more; the header is checked before any pixel is decoded.
MAX_PIXELS = 25_000_000
STATIC = Path(__file__).parent / "static"
# Pictures up to this size (a 512x512 canvas: about 3 ms) are classified on the event loop, larger ones in the
# threadpool (a photo takes 20-60 ms).
QUICK_BYTES = 1024 * 1024
QUICK_PIXELS = 512 * 512
TOO_LARGE = f"request body over {MAX_BODY_BYTES // (1024 * 1024)} MB; send a smaller image"


class RequestTooLarge(HTTPException):
    """Raised from the body stream once a request has sent more than the limit."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail=TOO_LARGE)


class BodyLimit:
    """ASGI middleware: 413 for bodies over `limit` bytes, by Content-Length up front or counted as they stream.

    With `predict` (create_app's `classify(data, name) -> (status, body)`), it also answers the requests that make
    up a drawing page's traffic itself: POST /api/predict with a plainly written multipart body (`plain_multipart`)
    of a picture small enough for the event loop (`_quick`). Going through FastAPI's middleware, router, Request and
    JSONResponse cost about a sixth of such a request's server CPU (cProfile of the running server,
    docs/benchmarks.md "Serving speed, fifth pass"); the answer is the same one, from the same `classify`, sent as
    the same JSONResponse. Every other request, and any body this does not take (another
    content type, a body Starlette's parser must judge, one over the limit, a client gone mid-body), goes to the
    app with the body it has read replayed, so FastAPI answers it exactly as before.
    """

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES, predict: Any = None):
        self.app, self.limit, self.predict = app, limit, predict

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return await _send_json(send, 400, {"detail": "Content-Length is not a number"})
            if int(declared) > self.limit:
                return await _send_json(send, 413, {"detail": TOO_LARGE})
        if self.predict is not None and scope["method"] == "POST" and scope["path"] == "/api/predict":
            content_types = [v for k, v in scope["headers"] if k == b"content-type"]  # Starlette reads the first
            if len(content_types) == 1 and content_types[0][:19].lower() == b"multipart/form-data":
                receive = await self._answer(content_types[0].decode("latin-1"), scope, receive, send)
                if receive is None:
                    return
        seen = 0

        async def limited_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # An HTTPException raised inside the endpoint's body read is answered by the app's
                    # exception handler (413 JSON); a plain exception would reach Starlette's 500 handler.
                    raise RequestTooLarge()
            return message

        await self.app(scope, limited_receive, send)

    async def _answer(self, content_type: str, scope: dict, receive: Any, send: Any) -> Any:
        """Answer a canvas upload here and return None; otherwise a `receive` that replays what was read."""
        chunks, size = [], 0
        while True:
            message = await receive()
            chunks.append(message)
            if message["type"] != "http.request":
                break  # the client went away: the app sees it as it would have
            size += len(message.get("body", b""))
            if size > self.limit or not message.get("more_body", False):
                break
        plain = None
        if chunks[-1]["type"] == "http.request" and not chunks[-1].get("more_body", False) and size <= self.limit:
            plain = plain_multipart(b"".join(m.get("body", b"") for m in chunks), content_type)
        if plain is not None and plain[0] and _quick(plain[0]):
            status, answer = self.predict(*plain)
            await JSONResponse(answer, status_code=status)(scope, receive, send)  # what the route would send
            return None
        replay = iter(chunks)

        async def replayed() -> dict:
            for message in replay:
                return message
            return await receive()

        return replayed


async def _send_json(send: Any, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})


def _png_base64(digit: np.ndarray) -> str:
    """The 28x28 image the model saw, as a base64 grey PNG."""
    from ..images import digit_png

    return base64.b64encode(digit_png(digit)).decode("ascii")


def _decode_base64(text: Any) -> bytes:
    if not isinstance(text, str) or not text:
        raise ValueError('JSON body needs "image": a non-empty base64 string (or a data: URL)')
    if text.startswith("data:"):
        header, comma, text = text.partition(",")
        if not comma or not header.endswith(";base64"):
            raise ValueError('"image" is a data: URL but not a base64 one (data:image/png;base64,...)')
    # Line breaks (base64 tools wrap at 76 columns) and the URL-safe alphabet are harmless; anything else is not.
    text = re.sub(r"\s+", "", text).replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError('"image" is not valid base64') from None


# One part's Content-Disposition as browsers (FormData), curl, requests and httpx write it, with nothing to unescape.
_DISPOSITION = re.compile(rb'form-data; *name="([^"\\\r\n]*)"(?:; *filename="([^"\\\r\n]*)")?')
_BOUNDARY = re.compile(r'boundary=(?:"([^"]{1,70})"|([^\s;"]{1,70}))')


def plain_multipart(body: bytes, content_type: str) -> tuple[bytes, str] | None:
    """The file in field "file" and its name from a plainly written multipart body (at most 10 other fields,
    no other file), or None for any other body, which Starlette's parser then reads and judges.

    Hand-written for speed: python-multipart's state machine and Starlette's form machinery were the largest part
    of the event loop's time for a canvas (cProfile). Whatever this does not recognise exactly goes to that
    parser, so the answers stay its own.
    """
    found = _BOUNDARY.search(content_type)
    if found is None:
        return None
    delimiter = b"--" + (found.group(1) or found.group(2)).encode("latin-1")
    if not body.startswith(delimiter + b"\r\n"):
        return None
    parts = body[len(delimiter) + 2:].split(b"\r\n" + delimiter)
    if len(parts) < 2 or len(parts) > 12 or parts[-1] not in (b"--", b"--\r\n"):
        return None
    upload = None
    for i, part in enumerate(parts[:-1]):
        if i > 0:
            if not part.startswith(b"\r\n"):
                return None
            part = part[2:]
        head, blank, data = part.partition(b"\r\n\r\n")
        dispositions = [line[20:].strip() for line in head.split(b"\r\n") if line[:20].lower() == b"content-disposition:"]
        if not blank or len(dispositions) != 1:
            return None
        match = _DISPOSITION.fullmatch(dispositions[0])
        if match is None:
            return None
        name, filename = match.groups()
        if filename is not None:
            if name != b"file" or upload is not None:
                return None
            upload = (data, filename)
        elif name == b"file":
            return None
    if upload is None:
        return None
    data, filename = upload
    try:
        text = filename.decode("utf-8")
    except UnicodeDecodeError:
        text = filename.decode("latin-1")  # what Starlette does with a name that is not UTF-8
    return data, (text or "upload")[:200]


async def read_upload(request: Request) -> tuple[bytes, str]:
    """The image bytes and a name from a multipart field "file" or a JSON {"image": base64}; 4xx otherwise."""
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        try:
            plain = plain_multipart(await request.body(), content_type)
            if plain is not None:
                data, name = plain
            else:
                async with request.form(max_files=1, max_fields=10) as form:
                    upload = form.get("file")
                    if upload is None or isinstance(upload, str):
                        raise HTTPException(400, 'multipart body needs an image file in the field "file"')
                    data = await upload.read()
                    name = (upload.filename or "upload")[:200]
        except HTTPException:  # RequestTooLarge included
            raise
        except Exception:  # python-multipart and Starlette raise several types for a broken body
            raise HTTPException(400, "malformed multipart body") from None
    elif kind == "application/json":
        raw = await request.body()
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPException(400, f"malformed JSON body: {exc}") from None
        except RecursionError:  # "[[[[..." thousands deep: json's C parser gives up with this, not ValueError
            raise HTTPException(400, "malformed JSON body: nested too deeply") from None
        try:
            data = _decode_base64(body.get("image") if isinstance(body, dict) else None)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        name = "image"
    else:
        raise HTTPException(415, f"content type {kind or 'missing'!r}: send an image as multipart form field \"file\" "
                                 'or as JSON {"image": "<base64 PNG or data: URL>"}')
    if not data:
        raise HTTPException(400, f"{name}: the image is empty (0 bytes)")
    return data, name


def create_app(run: Run, *, max_pixels: int = MAX_PIXELS, corrections: str | Path | None = None) -> Any:
    """The ASGI application serving `run` (its model is loaded and warmed now, once, not per request).

    With `corrections` (a folder, created if missing), POST /api/correct saves pictures the user labels there.
    """
    from .. import __version__
    from ..images import preprocess, preprocess_choices
    from ..prediction import DEFAULT_MIN_CONFIDENCE, record
    from ..prediction import choose
    from ..labelled import CorrectionsFolder
    from ..reading import record as read_record
    from ..reading import segment

    saved = CorrectionsFolder(corrections, run.class_names) if corrections is not None else None
    run.predict_proba(np.zeros((1, 28, 28), np.float32))  # load and trace the model before the first request
    info = {
        "recipe": run.settings.recipe, "dataset": run.settings.dataset,
        "test_accuracy": run.metrics.get("test_accuracy"), "status": run.status.value,
        "class_names": run.class_names, "params": run.metrics.get("params"), "ensemble": run.settings.ensemble,
        "min_confidence": DEFAULT_MIN_CONFIDENCE, "mnistlab": __version__, "engine": run.engine,
        "corrections": saved is not None,
    }

    app = FastAPI(title="mnistlab", version=__version__, description=__doc__)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def fail(status: int, message: str) -> JSONResponse:
        return JSONResponse({"detail": message}, status_code=status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return fail(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return fail(400, "malformed request")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/api/model")
    async def model_info() -> dict:
        return info

    def classify(data: bytes, name: str) -> tuple[int, dict]:
        try:
            # Bytes, not a decoded image: preprocess checks the pixel cap from the header and lets a large
            # JPEG decode at a reduced scale (a 12-megapixel photo then costs tens of ms, not hundreds).
            choices = preprocess_choices(data, max_pixels=max_pixels)
        except NoDigitError as exc:
            return 200, {**record(name, None, error=NoDigitError(_named(exc, name))), "preprocessed": None}
        except ImageError as exc:
            return 400, {"detail": _named(exc, name)}
        x, proba, refused = choose(run, [choices])
        return 200, {**record(name, proba[0], min_confidence=DEFAULT_MIN_CONFIDENCE, class_names=run.class_names,
                              refused=bool(refused[0])), "preprocessed": _png_base64(x[0])}

    @app.post("/api/predict")
    async def predict(request: Request) -> JSONResponse:
        data, name = await read_upload(request)
        if _quick(data):
            # A canvas-sized picture costs a few ms: classified here, on the event loop. Handed to the threadpool
            # it cost twice the CPU under load (the worker thread and the loop contend for the GIL: 4.7 against
            # 9.9 ms of server CPU per canvas from 8 clients, docs/benchmarks.md) and 10% more with one client.
            status, body = classify(data, name)
        else:  # a photo: tens of ms, which must not hold up the other connections
            status, body = await run_in_threadpool(classify, data, name)
        return JSONResponse(body, status_code=status)

    def read_number(data: bytes, name: str) -> tuple[int, dict]:
        try:
            reading = segment(data, run, max_pixels=max_pixels)
        except NoDigitError as exc:
            return 200, read_record(name, None, min_confidence=DEFAULT_MIN_CONFIDENCE,
                                    error=NoDigitError(_named(exc, name)))
        except ImageError as exc:
            return 400, {"detail": _named(exc, name)}
        return 200, {**read_record(name, reading, min_confidence=DEFAULT_MIN_CONFIDENCE, class_names=run.class_names),
                     "size": list(reading.size)}

    @app.post("/api/read")
    async def read(request: Request) -> JSONResponse:
        """Read the number written on one line: the record of `mnistlab read --json`, plus the picture's size."""
        data, name = await read_upload(request)
        status, body = await run_in_threadpool(read_number, data, name)
        return JSONResponse(body, status_code=status)

    def save_correction(data: bytes, name: str, label: int) -> tuple[int, dict]:
        from ..errors import CorrectionsFullError

        try:
            digit = preprocess(data, max_pixels=max_pixels)
        except NoDigitError as exc:
            return 400, {"detail": f"{_named(exc, name)}; nothing to save"}
        except ImageError as exc:
            return 400, {"detail": _named(exc, name)}
        try:
            return 200, saved.add(data, label, digit)
        except CorrectionsFullError as exc:
            return 507, {"detail": str(exc)}

    @app.post("/api/correct")
    async def correct(request: Request, digit: str = "") -> JSONResponse:
        """Save the picture as class `digit` (0-9 for digits) in the corrections folder, for `mnistlab finetune`."""
        if saved is None:
            raise HTTPException(404, "corrections are off: start the server with --corrections DIR to save them")
        classes = len(run.class_names)
        if not re.fullmatch(r"[0-9]{1,3}", digit) or not 0 <= int(digit) < classes:  # not str.isdigit: "²" is one
            raise HTTPException(400, f"digit={digit!r}: give the right answer as ?digit=0 to {classes - 1}")
        data, name = await read_upload(request)
        status, body = await run_in_threadpool(save_correction, data, name, int(digit))
        return JSONResponse(body, status_code=status)

    return BodyLimit(app, predict=classify)


def _quick(data: bytes) -> bool:
    """Whether a picture is small enough to classify on the event loop (at most QUICK_PIXELS by its header, read
    without decoding; an unreadable one too: its error is quick)."""
    import io
    import warnings

    from PIL import Image

    if len(data) > QUICK_BYTES:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's decompression-bomb and metadata warnings: preprocess judges
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
    except Exception:  # not an image, or a damaged header: preprocess says which, quickly
        return True
    return width * height <= QUICK_PIXELS


def _named(exc: ImageError, name: str) -> str:
    """The error's message with images.py's '<N bytes>' placeholder replaced by the upload's name."""
    return re.sub(r"^<\d+ bytes>", lambda _: name, str(exc))


MAX_WORKERS = 4  # the default's cap: a worker process per core, each with its own copy of the model
_WORKER_ENV = "MNISTLAB_SERVE_WORKER"  # how `serve` tells its worker processes what to load


def default_workers(engine: str, corrections: bool) -> int:
    """`serve`'s worker processes when none are asked for: one per core (at most MAX_WORKERS) on the onnxruntime
    path, where a worker is a light process (about 0.5 s and 150 MB each); one on the Keras path (each would import
    TensorFlow: seconds and about a gigabyte) and when corrections are saved (one process keeps their count)."""
    if engine != "onnx" or corrections:
        return 1
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else os.cpu_count() or 1))


def worker_app() -> Any:
    """The app of one of `serve`'s worker processes (uvicorn's factory, called in the spawned process)."""
    import threading
    import time

    from ..backend import keep_freed_memory
    from ..runs import load_run

    keep_freed_memory()  # the pages a request frees stay for the next one (backend.py says why)
    settings = json.loads(os.environ[_WORKER_ENV])
    # The supervisor's pid comes from the supervisor, not from os.getppid() here: a worker reaches this point only
    # after its imports (seconds on a busy machine), and a supervisor killed before then has already left it to
    # init, whose pid getppid() would then answer; watched for, it would never go away.
    parent = settings["parent"]

    def orphaned() -> None:
        # uvicorn's supervisor stops its workers on Ctrl-C and SIGTERM; a supervisor killed outright (SIGKILL)
        # cannot, so a worker whose parent is gone stops itself (SIGTERM: uvicorn's graceful shutdown, or, while
        # the run is still loading, uvicorn's signal capture ends the start-up).
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=orphaned, name="mnistlab-parent-watch", daemon=True).start()
    run = load_run(settings["run_dir"], allow_partial=settings["allow_partial"], engine=settings["engine"])
    return create_app(run)


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, allow_partial: bool = False,
          engine: str = "auto", corrections: str | Path | None = None, workers: int | None = None) -> None:
    """Load a run (refusing an unfinished one unless allow_partial) and serve the app with uvicorn until interrupted.

    `engine` is load_run's: through onnxruntime (no TensorFlow) when the run has a checked ONNX export, by default.
    `corrections`: a folder where the page's "wrong? it is a ..." answers are saved (off by default).
    `workers`: server processes sharing the port (None: `default_workers`). One process serves one request at a
    time on the CPU (Python's GIL), so a second core needs a second process: on 2 cores, 2 workers answered
    8 clients about twice as fast as one (docs/benchmarks.md).

    The port is taken before anything is loaded or printed, so a busy one is a UsageError at once; port 0 takes
    any free port, and the line printed names the one taken.
    """
    import errno
    import socket

    import uvicorn

    from ..errors import UsageError
    from ..runs import load_run

    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 64):
        raise UsageError("give a number of worker processes from 1 to 64", param="workers", value=workers)
    if workers is not None and workers > 1 and corrections is not None:
        raise UsageError("corrections are saved by one process, which keeps their count and limit; serve them "
                         "with --workers 1 (the default with --corrections)", param="workers", value=workers)
    shown = f"[{host}]" if ":" in host else host
    # What uvicorn does itself (Config.bind_socket), but here an error becomes one line, not a log and exit 3.
    # IPPROTO_TCP named explicitly: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets whose proto
    # says TCP, and a socket made with proto 0 is not one. With Nagle on, a response's body waited for the client's
    # delayed ACK of its headers: 40 ms on every keep-alive request (benchmarks/serve_latency.py).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # uvicorn's default backlog
    except OverflowError:  # a port outside 0..65535
        sock.close()
        raise UsageError("not a port number; choose one between 0 and 65535", param="port", value=port) from None
    except OSError as exc:
        sock.close()
        code = f"Errno {exc.errno}"
        # Named by the Python parameter (host=, port=); the CLI shows them as --host and --port.
        if isinstance(exc, socket.gaierror):
            param, value, problem = "host", host, f"not a known host name or address ({exc.strerror})"
        elif exc.errno == errno.EADDRINUSE:
            param, value, problem = "port", port, (f"already in use on {host} ({code}); choose another port, "
                                                   "or stop the program using it")
        elif exc.errno in (errno.EACCES, errno.EPERM):
            param, value, problem = "port", port, (f"permission denied on {host} ({code}); choose another port "
                                                   "(ports below 1024 need privileges)")
        elif exc.errno == errno.EADDRNOTAVAIL:
            param, value, problem = "host", host, f"not an address of this machine ({code}); choose another"
        else:
            param, value, problem = "port", port, f"cannot listen on {host}: {exc.strerror or exc} ({code})"
        raise UsageError(problem, param=param, value=value) from None
    try:
        from ..backend import keep_freed_memory

        keep_freed_memory()  # the pages a request frees stay for the next one: 0.5 ms a canvas (backend.py)
        run = load_run(run_dir, allow_partial=allow_partial, engine=engine)  # errors here, before any worker starts
        if workers is None:
            workers = default_workers(run.engine, corrections is not None)
        port = sock.getsockname()[1]
        # h11 named, not left to uvicorn's choice: where httptools is installed (uvicorn[standard]) uvicorn would
        # take it, and httptools has no limit on a request's headers (tests/test_abuse.py test_huge_headers).
        options = dict(host=host, port=port, log_level="warning", timeout_keep_alive=5, http="h11",
                       h11_max_incomplete_event_size=65536)
        if workers == 1:
            config = uvicorn.Config(create_app(run, corrections=corrections), **options)
        else:
            # uvicorn's own supervisor: it spawns the workers on the socket taken above, restarts one that dies, and
            # stops them all on Ctrl-C or SIGTERM. Each worker loads the run itself (worker_app).
            os.environ[_WORKER_ENV] = json.dumps({"run_dir": str(Path(run_dir).resolve()), "parent": os.getpid(),
                                                  "allow_partial": allow_partial, "engine": run.engine})
            config = uvicorn.Config("mnistlab.serve.app:worker_app", factory=True, workers=workers, **options)
            del run  # the parent only supervises
        if corrections is not None:
            print(f"mnistlab: saving corrections to {corrections}", flush=True)
        processes = f", {workers} worker processes" if workers > 1 else ""
        print(f"mnistlab: serving {run_dir} at http://{shown}:{port}/  (Ctrl-C to stop{processes})", flush=True)
        try:
            if workers == 1:
                uvicorn.Server(config).run(sockets=[sock])
            else:
                from uvicorn.supervisors import Multiprocess

                Multiprocess(config, sockets=[sock]).run()
        except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown; as uvicorn.run, end quietly
            pass
    finally:
        sock.close()
