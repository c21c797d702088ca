"""A fake Slack Web API: a real HTTP server on 127.0.0.1 that records calls and answers like Slack.

Use::

    with FakeSlack() as slack:            # random port, threaded
        settings = make_settings(SLACK_API_URL=slack.api_url, ...)
        ...
        calls = slack.wait_for("chat.postMessage")    # bounded poll, never a fixed sleep
        slack.script("chat.postMessage", RateLimited(retry_after=1), Ok())  # then normal answers

Every call is recorded (HTTP method, path, query, form or JSON body, headers) and checked
against the official OpenAPI spec (``spec_violations``). Besides ``/api/<method>``, the server
takes ``response_url`` posts (``/respond/<id>``) and file uploads (``/upload/<file id>``).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes import responses
from tests.fakes.openapi import SPEC_PATH, SpecChecker

JSON_ARGS = {"blocks", "view", "files", "attachments", "metadata"}


# --- scripted answers ---------------------------------------------------------------------
@dataclass(frozen=True)
class Ok:
    """Answer normally."""


@dataclass(frozen=True)
class Error:
    """HTTP 200 with ``{"ok": false, "error": ...}`` (channel_not_found, not_in_channel, invalid_auth...)."""

    error: str


@dataclass(frozen=True)
class ServerError:
    """An HTTP 5xx answer."""

    status: int = 503


@dataclass(frozen=True)
class RateLimited:
    """HTTP 429 with ``Retry-After`` (seconds)."""

    retry_after: int = 1


Script = Ok | Error | ServerError | RateLimited


@dataclass
class Call:
    """One request the fake received."""

    method: str  # Web API method ("chat.postMessage"), "respond" or "upload"
    http_method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    json: dict[str, Any] | None
    headers: dict[str, str]
    raw_body: bytes
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def args(self) -> dict[str, Any]:
        """Query, form and JSON parameters merged (JSON wins)."""
        merged: dict[str, Any] = {**self.query, **self.form}
        if isinstance(self.json, dict):
            merged.update(self.json)
        return merged

    def arg(self, name: str) -> Any:
        """A parameter, with JSON-in-a-string values (blocks, view...) decoded."""
        value = self.args.get(name)
        if name in JSON_ARGS and isinstance(value, str):
            return json.loads(value)
        return value

    @property
    def body_text(self) -> str:
        return self.raw_body.decode("utf-8", "replace")


class FakeSlack:
    """The fake Web API server. Thread-safe; start/stop or use as a context manager."""

    def __init__(
        self, *, bot_user_id: str = "UBEACON00", bot_id: str = "BBEACON00", team_id: str = "T0FAKE001",
        check_spec: bool = True,
    ) -> None:
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.team_id = team_id
        self.calls: list[Call] = []
        self.spec_violations: list[str] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}  # channel -> messages (for conversations.replies)
        self.uploads: dict[str, bytes] = {}
        self._scripts: dict[str, list[Script]] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._checker = SpecChecker() if check_spec and SPEC_PATH.is_file() else None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> FakeSlack:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-slack",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeSlack is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    @property
    def api_url(self) -> str:
        """The value for SLACK_API_URL."""
        return self.base_url + "api/"

    @property
    def spec_checked(self) -> bool:
        return self._checker is not None

    def response_url(self, name: str = "cmd") -> str:
        return f"{self.base_url}respond/{name}"

    # --- scripting and fixtures -------------------------------------------------------------
    def script(self, method: str, *answers: Script) -> None:
        """Answer the next calls of ``method`` with ``answers``, in order; then normally."""
        with self._lock:
            self._scripts.setdefault(method, []).extend(answers)

    def add_user(self, user_id: str, *, name: str | None = None, is_bot: bool = False) -> None:
        self.users[user_id] = responses.user(user_id, name=name or user_id.lower(), is_bot=is_bot, team=self.team_id)

    def add_message(self, channel: str, ts: str, text: str, *, user: str = "U0CUSTOMER", thread_ts: str | None = None
                    ) -> dict[str, Any]:
        message = {"type": "message", "user": user, "text": text, "ts": ts, "team": self.team_id}
        if thread_ts:
            message["thread_ts"] = thread_ts
        with self._lock:
            self.messages.setdefault(channel, []).append(message)
        return message

    def next_ts(self) -> str:
        return f"{1_700_000_000 + next(self._ts)}.{next(self._ts):06d}"

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08X}"

    # --- inspection ---------------------------------------------------------------------------
    def calls_to(self, method: str, where: Callable[[Call], bool] | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and (where is None or where(c))]

    def wait_for(
        self, method: str, count: int = 1, *, where: Callable[[Call], bool] | None = None, timeout: float = 10.0
    ) -> list[Call]:
        """Block until ``count`` matching calls arrived (bounded poll); AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [c for c in self.calls if c.method == method and (where is None or where(c))]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = sorted({c.method for c in self.calls})
                    raise AssertionError(f"waited {timeout}s for {count} {method} call(s), got {len(found)}; "
                                         f"calls so far: {seen}")
                self._changed.wait(left)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    def iter_calls(self) -> Iterator[Call]:
        with self._lock:
            return iter(list(self.calls))

    # --- request handling (server threads) -------------------------------------------------------
    def _record(self, call: Call) -> None:
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    def _next_script(self, method: str) -> Script:
        with self._lock:
            queue = self._scripts.get(method)
            return queue.pop(0) if queue else Ok()

    def handle(self, call: Call) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Status, JSON body and extra headers for ``call``."""
        if call.method in ("respond", "upload"):
            return self._handle_side_channel(call)
        if self._checker is not None:
            problems = self._checker.check(
                call.method, call.args, has_auth_header="authorization" in {k.lower() for k in call.headers}
            )
            with self._lock:
                self.spec_violations.extend(problems)
        answer = self._next_script(call.method)
        if isinstance(answer, RateLimited):
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(answer.retry_after)}
        if isinstance(answer, ServerError):
            return answer.status, {"ok": False, "error": "fatal_error"}, {}
        if isinstance(answer, Error):
            return 200, {"ok": False, "error": answer.error}, {}
        if not _authorized(call):
            return 200, {"ok": False, "error": "not_authed"}, {}
        return 200, responses.answer(self, call), {}

    def _handle_side_channel(self, call: Call) -> tuple[int, dict[str, Any], dict[str, str]]:
        answer = self._next_script(call.method)
        if isinstance(answer, ServerError | RateLimited):
            return (answer.status if isinstance(answer, ServerError) else 429), {"ok": False}, {}
        if call.method == "upload":
            self.uploads[call.path.rsplit("/", 1)[-1]] = call.raw_body
        return 200, {"ok": True}, {}


def _authorized(call: Call) -> bool:
    if call.method == "api.test":
        return True
    auth = next((v for k, v in call.headers.items() if k.lower() == "authorization"), "")
    token = auth.removeprefix("Bearer ").strip() or str(call.args.get("token", ""))
    return bool(re.match(r"^xox[bpe]-", token))


def _parse(path: str, headers: dict[str, str], body: bytes, http_method: str) -> Call:
    parts = urlsplit(path)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    form: dict[str, str] = {}
    data: dict[str, Any] | None = None
    route = parts.path.strip("/").split("/")
    if route[0] == "upload":
        pass  # raw file bytes
    elif "application/json" in ctype and body:
        loaded = json.loads(body.decode("utf-8"))
        data = loaded if isinstance(loaded, dict) else {"_": loaded}
    elif "application/x-www-form-urlencoded" in ctype and body:
        form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    if route[0] == "api" and len(route) == 2:
        method = route[1]
    elif route[0] in ("respond", "upload"):
        method = route[0]
    else:
        method = "/" + "/".join(route)
    return Call(method=method, http_method=http_method, path=parts.path, query=query, form=form, json=data,
                headers=headers, raw_body=body)


def _handler_for(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            del format, args

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            call = _parse(self.path, dict(self.headers.items()), body, self.command)
            status, payload, extra = fake.handle(call)
            call.status, call.response = status, payload
            fake._record(call)
            raw = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)

        do_GET = _serve
        do_POST = _serve

    return Handler
