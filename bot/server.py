"""HTTP mode: one Starlette app on one port, served by uvicorn.

- ``POST /slack/events``: Slack's Events API, slash commands and interactivity (Bolt's Starlette
  adapter; Bolt checks the signature and answers 401 to a bad or stale one);
- ``GET /healthz``: liveness and the active model version;
- ``GET /metrics``: Prometheus.

Bolt's sync ``App.dispatch`` runs in Starlette's thread pool, never on the event loop.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import SlackRequestHandler, to_bolt_request, to_starlette_response
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import metrics
from bot.model_holder import ModelHolder

EVENTS_PATH = "/slack/events"


class ThreadedSlackRequestHandler(SlackRequestHandler):
    """Bolt's Starlette handler, with the blocking dispatch moved off the event loop."""

    async def handle(self, req: Request, addition_context_properties: dict[str, Any] | None = None) -> Response:
        if req.method != "POST":
            return await super().handle(req, addition_context_properties)
        body = await req.body()
        bolt_request = to_bolt_request(req, body, addition_context_properties)
        bolt_response = await run_in_threadpool(self.app.dispatch, bolt_request)
        return to_starlette_response(bolt_response)


def create_web_app(app: App, models: ModelHolder) -> Starlette:
    handler = ThreadedSlackRequestHandler(app)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "model_version": models.version})

    async def metrics_endpoint(_: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return Starlette(routes=[
        Route(EVENTS_PATH, events, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ])


def make_server(web_app: Starlette, *, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(web_app, host=host, port=port, log_level="warning", access_log=False,
                            lifespan="off", timeout_graceful_shutdown=5)
    return uvicorn.Server(config)


class BackgroundServer:
    """uvicorn in a thread (tests and benchmarks): ``start()`` returns once it listens."""

    def __init__(self, web_app: Starlette, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = make_server(web_app, host=host, port=port)
        self.thread = threading.Thread(target=self.server.run, name="beacon-http", daemon=True)

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the HTTP server did not start")
            time.sleep(0.01)
        return self

    @property
    def url(self) -> str:
        sockets = [s for srv in (self.server.servers or []) for s in (srv.sockets or [])]
        host, port = sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
