"""The draw-a-digit web app (FastAPI + uvicorn): `create_app(run)` and `serve(run_dir, host, port)`."""

from .app import create_app, serve

__all__ = ["create_app", "serve"]
