"""The composition root of the Slack app: ``build_app(deps) -> slack_bolt.App``.

The same App (same listeners) serves HTTP (``bot.server``), Socket Mode and the console
(``bot.console``, which passes its own in-process WebClient and synchronous executors).
Acks happen in milliseconds: listeners ack first and do the work in lazy listeners, which run
on their own thread pool so slow analyses never delay another request's ack.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.lazy_listener.thread_runner import ThreadLazyListenerRunner
from slack_sdk import WebClient

from bot import metrics
from bot.console_client import BOT_ID, BOT_USER_ID, TEAM_ID
from bot.deps import Deps
from bot.listeners import register_all
from bot.listeners.common import Runtime
from bot.log import get_logger
from bot.slack_client import SlackGateway, Webhook, make_web_client
from bot.storage import crud
from bot.storage.db import session_scope

log = get_logger("beacon.app")
ACK_WORKERS = 8
LAZY_WORKERS = 8


def request_kind(body: dict[str, Any]) -> str:
    """A short label for metrics: the event type, the interactive payload type, or "command"."""
    if body.get("command"):
        return "command"
    kind = str(body.get("type") or "unknown")
    if kind == "event_callback":
        return str((body.get("event") or {}).get("type") or "event")
    return kind


class BeaconApp(App):
    """Bolt's App, timing every request from arrival to ack (all modes)."""

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        kind = request_kind(req.body if isinstance(req.body, dict) else {})
        metrics.EVENTS_RECEIVED.labels(type=kind).inc()
        start = time.perf_counter()
        response = super().dispatch(req)
        metrics.ACK_LATENCY.observe(time.perf_counter() - start)
        if response.status < 400:
            metrics.EVENTS_ACKED.labels(type=kind).inc()
        return response


def make_runtime(deps: Deps, *, client: WebClient | None = None, webhook: Webhook | None = None) -> Runtime:
    return Runtime(deps=deps, slack=SlackGateway(client or make_web_client(deps.settings), webhook=webhook))


def dedupe_middleware(rt: Runtime) -> Callable[..., BoltResponse | None]:
    """Ack Slack's retries (same ``event_id``) without processing them again."""

    def beacon_dedupe(body: dict[str, Any], request: BoltRequest, next: Callable[[], None]) -> BoltResponse | None:
        event_id = body.get("event_id")
        if body.get("type") != "event_callback" or not event_id:
            next()
            return None
        retry = request.headers.get("x-slack-retry-num") or ["0"]
        event_type = str((body.get("event") or {}).get("type") or "event")
        with session_scope(rt.deps.sessions) as session:
            fresh = crud.claim_event(session=session, event_id=str(event_id), event_type=event_type,
                                     retry_num=int(retry[0] or 0))
        if fresh:
            next()
            return None
        log.info("event.duplicate", event_id=event_id, event_type=event_type, retry_num=retry[0])
        metrics.EVENTS_PROCESSED.labels(type=event_type, outcome="duplicate").inc()
        return BoltResponse(status=200, body="")

    return beacon_dedupe


def error_handler(error: Exception, body: dict[str, Any]) -> None:
    """Errors in ack functions and middleware: logged with the traceback; Bolt answers Slack."""
    event = body.get("event") or {}
    log.error("slack.listener_error", event_id=body.get("event_id"), kind=request_kind(body),
              channel=event.get("channel"), error=str(error), exc_info=error)


def console_authorize(**_: Any) -> AuthorizeResult:
    return AuthorizeResult(enterprise_id=None, team_id=TEAM_ID, bot_token="xoxb-console", bot_id=BOT_ID,
                           bot_user_id=BOT_USER_ID)


def build_app(
    deps: Deps, *, runtime: Runtime | None = None, console: bool = False, ack_executor: Executor | None = None,
    lazy_executor: Executor | None = None,
) -> App:
    """The Bolt app with every listener, the retry dedupe and the error handler."""
    settings = deps.settings
    rt = runtime or make_runtime(deps)
    executor = ack_executor or ThreadPoolExecutor(max_workers=ACK_WORKERS, thread_name_prefix="beacon-ack")
    common: dict[str, Any] = {
        "name": "beacon", "client": rt.slack.client, "process_before_response": False,
        "listener_executor": executor,
    }
    if console:
        app = BeaconApp(authorize=console_authorize, request_verification_enabled=False, **common)
    else:
        secret = settings.slack_signing_secret
        app = BeaconApp(  # the token comes with the client (SLACK_BOT_TOKEN)
            signing_secret=settings.secret("slack_signing_secret") if secret is not None else None,
            request_verification_enabled=secret is not None, **common,
        )
    lazy = lazy_executor or ThreadPoolExecutor(max_workers=LAZY_WORKERS, thread_name_prefix="beacon-lazy")
    app.listener_runner.lazy_listener_runner = ThreadLazyListenerRunner(logger=app.logger, executor=lazy)
    app.middleware(dedupe_middleware(rt))
    app.error(error_handler)
    register_all(app, rt)
    return app
