"""Every Slack Web API call the bot makes goes through here.

``make_web_client`` builds ``WebClient(base_url=SLACK_API_URL)`` with slack_sdk's retry handlers
(429 with ``Retry-After``, connection errors, 5xx). :class:`SlackGateway` wraps the calls the
listeners need: a failure is logged with its context, counted, and raised as
:class:`~bot.errors.SlackError`, which the listeners' boundary logs; it never crashes the app.
:class:`SlackPoster` is the :class:`bot.poster.Poster` for jobs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import HttpRequest, HttpResponse, RetryHandler, RetryState
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

from bot import metrics
from bot.errors import SlackError
from bot.log import get_logger
from bot.settings import Settings

log = get_logger("beacon.slack")
MAX_RETRY_AFTER = 30  # seconds; a longer Retry-After fails the call instead of blocking a worker
CACHE_SECONDS = 300.0

Webhook = Callable[[str, dict[str, Any]], None]


class CountingRateLimitHandler(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handler that also counts each rate-limited response by method."""

    def _can_retry(
        self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        metrics.SLACK_RATE_LIMITED.labels(method=_method_of(request.url)).inc()
        wait = _retry_after(response)
        log.warning("slack.rate_limited", method=_method_of(request.url), retry_after=wait)
        return wait <= MAX_RETRY_AFTER


def _method_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]


def _retry_after(response: HttpResponse) -> int:
    for key, values in response.headers.items():
        if key.lower() == "retry-after" and values:
            try:
                return int(values[0])
            except ValueError:
                return 1
    return 1


def retry_handlers(max_retries: int = 2) -> list[RetryHandler]:
    return [
        CountingRateLimitHandler(max_retry_count=max_retries),
        ConnectionErrorRetryHandler(max_retry_count=max_retries),
        ServerErrorRetryHandler(max_retry_count=max_retries),
    ]


def make_web_client(settings: Settings, *, timeout: int = 10) -> WebClient:
    """The bot's WebClient: ``SLACK_BOT_TOKEN`` against ``SLACK_API_URL``, with retries."""
    return WebClient(
        token=settings.secret("slack_bot_token"), base_url=settings.slack_api_url, timeout=timeout,
        retry_handlers=retry_handlers(),
    )


def webhook_sender(timeout: int = 10) -> Webhook:
    """Posts to a ``response_url`` (slash commands, shortcuts), with the same retry handlers."""

    def send(url: str, payload: dict[str, Any]) -> None:
        response = WebhookClient(url, timeout=timeout, retry_handlers=retry_handlers()).send_dict(payload)
        if response.status_code != 200:
            metrics.SLACK_API_ERRORS.labels(method="response_url", error=str(response.status_code)).inc()
            log.error("slack.respond_failed", status=response.status_code, body=response.body[:200])
            raise SlackError(f"response_url answered {response.status_code}")

    return send


class SlackGateway:
    """The Web API calls the listeners make, with uniform error handling."""

    def __init__(self, client: WebClient, *, webhook: Webhook | None = None) -> None:
        self.client = client
        self.webhook = webhook or webhook_sender()
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}
        self._cache_lock = threading.Lock()

    # --- the wrapper ---------------------------------------------------------------------
    def call(self, method: str, **kwargs: Any) -> Any:
        """Call ``method`` (e.g. ``"chat.postMessage"``); SlackError on any failure."""
        context = {k: kwargs[k] for k in ("channel", "user", "user_id", "thread_ts", "ts") if kwargs.get(k)}
        func = getattr(self.client, method.replace(".", "_"))
        try:
            return func(**kwargs)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or f"http_{exc.response.status_code}")
            metrics.SLACK_API_ERRORS.labels(method=method, error=error).inc()
            log.error("slack.api_error", method=method, error=error, status=exc.response.status_code, **context)
            raise SlackError(f"{method} failed: {error}") from exc
        except (SlackClientError, URLError, OSError) as exc:
            metrics.SLACK_API_ERRORS.labels(method=method, error=type(exc).__name__).inc()
            log.error("slack.request_failed", method=method, error=str(exc), **context)
            raise SlackError(f"{method} failed: {exc}") from exc

    # --- messages --------------------------------------------------------------------------
    def post_message(
        self, *, channel: str, text: str, blocks: Sequence[Any] | None = None, thread_ts: str | None = None
    ) -> str:
        args: dict[str, Any] = {"channel": channel, "text": text}
        if blocks is not None:
            args["blocks"] = list(blocks)
        if thread_ts:
            args["thread_ts"] = thread_ts
        response = self.call("chat.postMessage", **args)
        return str(response["ts"])

    def post_ephemeral(
        self, *, channel: str, user: str, text: str, blocks: Sequence[Any] | None = None,
        thread_ts: str | None = None,
    ) -> None:
        args: dict[str, Any] = {"channel": channel, "user": user, "text": text}
        if blocks is not None:
            args["blocks"] = list(blocks)
        if thread_ts:
            args["thread_ts"] = thread_ts
        self.call("chat.postEphemeral", **args)

    def update_message(self, *, channel: str, ts: str, text: str, blocks: Sequence[Any] | None = None) -> None:
        args: dict[str, Any] = {"channel": channel, "ts": ts, "text": text}
        if blocks is not None:
            args["blocks"] = list(blocks)
        self.call("chat.update", **args)

    def permalink(self, *, channel: str, ts: str) -> str | None:
        """The message's permalink, or None when Slack will not give one (logged)."""
        try:
            return str(self.call("chat.getPermalink", channel=channel, message_ts=ts)["permalink"])
        except SlackError:
            return None

    def respond(self, response_url: str, *, text: str, blocks: Sequence[Any] | None = None) -> None:
        """An ephemeral answer through a slash command's or shortcut's ``response_url``."""
        payload: dict[str, Any] = {"text": text, "response_type": "ephemeral"}
        if blocks is not None:
            payload["blocks"] = [b.to_dict() if hasattr(b, "to_dict") else b for b in blocks]
        try:
            self.webhook(response_url, payload)
        except (SlackClientError, URLError, OSError) as exc:
            metrics.SLACK_API_ERRORS.labels(method="response_url", error=type(exc).__name__).inc()
            log.error("slack.respond_failed", error=str(exc))
            raise SlackError(f"response_url failed: {exc}") from exc

    # --- views -----------------------------------------------------------------------------
    def open_view(self, *, trigger_id: str, view: Any) -> str:
        return str(self.call("views.open", trigger_id=trigger_id, view=view)["view"]["id"])

    def publish_home(self, *, user_id: str, view: Any) -> None:
        self.call("views.publish", user_id=user_id, view=view)

    # --- reads -------------------------------------------------------------------------------
    def thread_parent(self, *, channel: str, thread_ts: str) -> dict[str, Any] | None:
        """The parent message of a thread (``conversations.replies``, first message)."""
        response = self.call("conversations.replies", channel=channel, ts=thread_ts, limit=1, inclusive=True)
        messages = response.get("messages") or []
        return dict(messages[0]) if messages else None

    def is_bot_user(self, user_id: str) -> bool:
        """True for bot users and Slackbot (cached). Unknown users count as humans."""
        if user_id == "USLACKBOT":
            return True

        def load() -> bool:
            user = self.call("users.info", user=user_id).get("user") or {}
            return bool(user.get("is_bot") or user.get("is_app_user"))

        return bool(self._cached("is_bot", user_id, load))

    def usergroup_members(self, group_id: str) -> frozenset[str]:
        def load() -> frozenset[str]:
            return frozenset(self.call("usergroups.users.list", usergroup=group_id).get("users") or [])

        return frozenset(self._cached("group", group_id, load))

    def _cached(self, kind: str, key: str, load: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._cache_lock:
            hit = self._cache.get((kind, key))
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        value = load()
        with self._cache_lock:
            self._cache[(kind, key)] = (now, value)
        return value


class SlackPoster:
    """:class:`bot.poster.Poster` over the Web API: returns the message ``ts``; SlackError on failure."""

    def __init__(self, gateway: SlackGateway) -> None:
        self.gateway = gateway

    def post(
        self, *, channel: str, text: str, blocks: Sequence[Any] | None = None, thread_ts: str | None = None
    ) -> str:
        return self.gateway.post_message(channel=channel, text=text, blocks=blocks, thread_ts=thread_ts)

    def upload_file(
        self, *, channel: str, content: bytes, filename: str, title: str, thread_ts: str | None = None
    ) -> None:
        """Upload a file (``files_upload_v2``: getUploadURLExternal, upload, completeUploadExternal)."""
        args: dict[str, Any] = {"channel": channel, "file": content, "filename": filename, "title": title}
        if thread_ts:
            args["thread_ts"] = thread_ts
        self.gateway.call("files_upload_v2", **args)
