"""A real HTTP server on 127.0.0.1 serving feed fixtures, with the misbehaviours feeds have:
ETag/Last-Modified and 304, slow answers, oversized bodies, gzip, redirects and loops,
errors then recovery, and Retry-After. Every request is recorded (path and headers)."""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str | None = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    gzip: bool = False
    delay_s: float = 0.0  # before the status line
    redirect_to: str | None = None
    fail_times: int = 0  # the first N requests get fail_status
    fail_status: int = 500
    retry_after: str | None = None  # sent with failures
    stream_bytes: int = 0  # > 0: stream this many bytes with no Content-Length
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]
    at: float


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="feed-server", daemon=True)

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def route(self, path: str, route: Route) -> str:
        with self._lock:
            self.routes[path] = route
        return self.url(path)

    def seen(self, path: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _take(self, path: str, headers: dict[str, str]) -> Route | None:
        with self._lock:
            self.requests.append(Seen(path, headers, time.time()))
            return self.routes.get(path.split("?", 1)[0])


def _handler(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            route = server._take(self.path, headers)
            try:
                self._answer(route, headers)
            except (BrokenPipeError, ConnectionResetError):
                return

        def _answer(self, route: Route | None, headers: dict[str, str]) -> None:
            if route is None:
                return self._send(404, b"not found", {"Content-Type": "text/plain"})
            if route.delay_s:
                time.sleep(route.delay_s)
            if route.fail_times > 0:
                route.fail_times -= 1
                extra = {"Retry-After": route.retry_after} if route.retry_after else {}
                return self._send(route.fail_status, b"failure", {"Content-Type": "text/plain", **extra})
            if route.redirect_to:
                return self._send(302, b"", {"Location": route.redirect_to})
            validators = {k: v for k, v in (("ETag", route.etag), ("Last-Modified", route.last_modified)) if v}
            if (route.etag and headers.get("if-none-match") == route.etag) or (
                route.last_modified and headers.get("if-modified-since") == route.last_modified
            ):
                return self._send(304, b"", validators)
            if route.stream_bytes:
                return self._stream(route)
            body = gzip.compress(route.body) if route.gzip else route.body
            out = dict(validators)
            if route.content_type:
                out["Content-Type"] = route.content_type
            if route.gzip:
                out["Content-Encoding"] = "gzip"
            out.update(route.headers)
            return self._send(route.status, body, out)

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 304:
                self.wfile.write(body)

        def _stream(self, route: Route) -> None:
            self.send_response(200)
            self.send_header("Content-Type", route.content_type or "application/xml")
            self.end_headers()  # HTTP/1.0, no Content-Length: the body ends when the connection does
            chunk = b"<!-- padding -->" * 4096
            sent = 0
            while sent < route.stream_bytes:
                self.wfile.write(chunk)
                sent += len(chunk)

    return Handler
