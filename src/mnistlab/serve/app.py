"""The draw-a-digit web app: one static page and a small JSON API around a run loaded once.

Every client input gets an answer in the 4xx range with a message, never a 500: bodies over the size
limit are cut off while they stream in (413), unknown content types get 415, unreadable images 400,
and images over the pixel cap are refused from their header, before decoding.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
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
MAX_PIXELS = 25_000_000  # a 5 MB upload cannot hold a real photo larger than this; bombs declare far more
STATIC = Path(__file__).parent / "static"


class BodyLimit:
    """ASGI middleware: answer 413 for bodies over `limit` bytes, by Content-Length or while streaming."""

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        try:
            too_big = declared is not None and int(declared) > self.limit
        except ValueError:
            return await _send_json(send, 400, {"detail": "Content-Length is not a number"})
        if too_big:
            return await _send_json(send, 413, {"detail": f"request body over {self.limit // (1024 * 1024)} MB"})
        seen = 0
        started = False

        async def limited_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_json(send, 413, {"detail": f"request body over {self.limit // (1024 * 1024)} MB"})


class _TooLarge(Exception):
    pass


async def _send_json(send: Any, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})


def _png_base64(digit: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.round(digit * 255).astype(np.uint8), mode="L").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _decode_base64(text: Any) -> bytes:
    if not isinstance(text, str) or not text:
        raise ValueError('"image" must be a non-empty base64 string')
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError('"image" is not valid base64') from None


def create_app(run: Run, *, max_pixels: int = MAX_PIXELS) -> Any:
    """The FastAPI application serving `run` (its model is loaded now, once)."""
    from .. import __version__
    from ..images import load_image, preprocess
    from ..prediction import DEFAULT_MIN_CONFIDENCE, record

    run.predict_proba(np.zeros((1, 28, 28), np.float32))  # load and warm the model before the first request
    info = {
        "recipe": run.metrics.get("recipe"), "dataset": run.metrics.get("dataset"),
        "test_accuracy": run.metrics.get("test_accuracy"), "status": run.metrics.get("status", "complete"),
        "class_names": run.class_names, "params": run.metrics.get("params"), "ensemble": run.metrics.get("ensemble", 1),
        "run_dir": str(run.path), "mnistlab": __version__,
    }

    app = FastAPI(title="mnistlab", version=__version__, description="Draw or upload a digit; get the prediction.")
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
            digit = preprocess(load_image(data, max_pixels=max_pixels))
        except NoDigitError as exc:
            return 200, {**record(name, None, error=exc), "preprocessed": None}
        except ImageError as exc:
            return 400, {"detail": re.sub(r"^<[^>]*bytes>: ", f"{name}: ", str(exc))}
        proba = run.predict_proba(digit[None])[0]
        return 200, {**record(name, proba, min_confidence=DEFAULT_MIN_CONFIDENCE), "preprocessed": _png_base64(digit)}

    @app.post("/api/predict")
    async def predict(request: Request) -> JSONResponse:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        name = "upload"
        if kind == "multipart/form-data":
            try:
                form = await request.form(max_files=1, max_fields=10)
            except _TooLarge:
                raise
            except Exception:  # python-multipart raises several types for a broken body
                return fail(400, "malformed multipart body")
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                return fail(400, 'multipart body needs an image file in the field "file"')
            data = await upload.read()
            name = upload.filename or name
        elif kind == "application/json":
            try:
                body = json.loads(await request.body())
                data = _decode_base64(body.get("image") if isinstance(body, dict) else None)
            except (ValueError, UnicodeDecodeError) as exc:
                return fail(400, f"malformed JSON body: {exc}" if isinstance(exc, json.JSONDecodeError) else str(exc))
        else:
            return fail(415, 'send an image as multipart form field "file" or JSON {"image": "<base64 PNG>"}')
        if not data:
            return fail(400, "the image is empty")
        status, body = await run_in_threadpool(classify, data, name)
        return JSONResponse(body, status_code=status)

    return BodyLimit(app)


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, allow_partial: bool = False) -> None:
    """Load a run and serve the app with uvicorn until interrupted."""
    import uvicorn

    from ..runs import load_run

    run = load_run(run_dir, allow_partial=allow_partial)
    app = create_app(run)
    print(f"mnistlab: serving {run_dir} at http://{host}:{port}/  (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_keep_alive=5, h11_max_incomplete_event_size=65536)
