"""Real local HTTP mirrors for download tests: a threaded server on 127.0.0.1, a closed port, a silent port."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


@dataclass
class Route:
    """What the server answers for one path: a status, a body, and optionally a Content-Length that lies."""

    status: int = 200
    body: bytes = b""
    declared_length: int | None = None


class MirrorServer:
    """A threaded HTTP server on a free port of 127.0.0.1 that serves the routes it is given and logs requests."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
                server.requests.append(self.path)
                route = server.routes.get(self.path, Route(status=404))
                if route.status != 200:
                    self.send_error(route.status)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(route.declared_length or len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)
                if route.declared_length:
                    self.close_connection = True  # hang up before the declared length: a broken transfer

            def log_message(self, *args: object) -> None:
                pass  # keep test output clean

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        # A short poll interval: shutdown() waits for it, and the tests start many servers.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def mirror(self, prefix: str, files: dict[str, bytes], *, status: int = 200,
               truncate_to: int | None = None) -> str:
        """Serve `files` under /prefix/ (with a status, or cut short after `truncate_to` bytes); return its base URL."""
        for name, body in files.items():
            if truncate_to is None:
                self.routes[f"/{prefix}/{name}"] = Route(status, body)
            else:
                self.routes[f"/{prefix}/{name}"] = Route(status, body[:truncate_to], declared_length=len(body))
        return f"{self.base}/{prefix}/"

    def __enter__(self) -> "MirrorServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@contextlib.contextmanager
def silent_port_url() -> Iterator[str]:
    """A base URL on 127.0.0.1 that accepts connections (into the backlog) but never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield f"http://127.0.0.1:{s.getsockname()[1]}/"
