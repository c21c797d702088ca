"""Console mode: a terminal chat that drives the bot's real listeners, no Slack workspace needed.

An in-process stand-in for the Slack platform turns each line into the payload Slack would
send (``app_mention``, ``reaction_added``, slash command, ``block_actions``, ``view_submission``)
and dispatches it to the same Bolt app as HTTP mode; the bot's Web API calls are answered by
:class:`~bot.console_client.ConsoleWebClient`, which prints the Block Kit as text. Lazy
listeners run synchronously here, so each answer is printed before the next prompt.

Lines: plain text (a mention), ``+1``/``-1`` (react to the last answer), ``fix`` (correct it
through prompts), ``why``, ``/beacon ...``, ``home``, ``help``, ``quit``. Scriptable through stdin.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import IO, Any

from slack_bolt import App, BoltRequest

from bot.console_client import BOT_ID, BOT_USER_ID, TEAM_ID, ConsoleWebClient, mrkdwn_to_text, render_blocks
from bot.deps import Deps
from bot.views import escape

__all__ = ["BOT_ID", "BOT_USER_ID", "TEAM_ID", "Console", "SyncExecutor", "run_console"]
USER_ID = "U0CONSOLE"
CHANNEL = "C0CONSOLE"
APP_ID = "A0BEACON01"
INTRO = """Beacon console: type a message and I analyse it, as if you had mentioned me in Slack.
  +1 / -1     react to my last answer        fix   correct my last answer
  why         explain my last answer         home  show the Home tab
  /beacon …   slash commands (/beacon help)  quit  leave"""


class SyncExecutor(Executor):
    """Runs submitted work immediately, in the caller's thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the future, as a thread pool would
            future.set_exception(exc)
        return future


class Console:
    """The stand-in platform: reads lines, dispatches payloads, walks modals as prompts."""

    def __init__(self, app: App, client: ConsoleWebClient, stdin: IO[str], stdout: IO[str], *, echo: bool) -> None:
        self.app = app
        self.client = client
        self.stdin = stdin
        self.out = stdout
        self.echo = echo
        self._ids = itertools.count(1)

    # --- input ---------------------------------------------------------------------------------
    def ask(self, prompt: str) -> str | None:
        self.out.write(prompt)
        self.out.flush()
        line = self.stdin.readline()
        if not line:
            self.out.write("\n")
            return None
        if self.echo:
            self.out.write(line if line.endswith("\n") else line + "\n")
        return line.rstrip("\r\n")

    def loop(self) -> int:
        self.out.write(INTRO + "\n")
        while (line := self.ask("you ▸ ")) is not None:
            text = line.strip()
            if text in ("quit", "exit"):
                break
            if text:
                self.handle(text)
        return 0

    def handle(self, text: str) -> None:
        if text in ("+1", "-1"):
            self.react(text)
        elif text == "fix":
            self.fix()
        elif text == "why":
            self.click("beacon_why")
        elif text == "home":
            self.event({"type": "app_home_opened", "user": USER_ID, "channel": "D0CONSOLE", "tab": "home",
                        "event_ts": self.client.next_ts()})
        elif text == "help":
            self.out.write(INTRO + "\n")
        elif text.startswith("/beacon"):
            self.command(text.removeprefix("/beacon").strip())
        else:
            self.mention(text)

    # --- payloads ---------------------------------------------------------------------------------
    def dispatch(self, body: dict[str, Any]) -> Any:
        return self.app.dispatch(BoltRequest(body=body, mode="socket_mode"))

    def event(self, event: dict[str, Any]) -> None:
        self.dispatch({
            "token": "", "team_id": TEAM_ID, "api_app_id": APP_ID, "type": "event_callback",
            "event_id": f"Ev0CONSOLE{next(self._ids):06d}", "event_time": 1_700_000_000, "event": event,
            "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
        })

    def mention(self, text: str) -> None:
        ts = self.client.next_ts()
        slack_text = f"<@{BOT_USER_ID}> {escape(text)}"  # Slack escapes &, < and > in what people type
        self.client.add_user_message(CHANNEL, slack_text, ts, USER_ID)
        self.event({"type": "app_mention", "user": USER_ID, "text": slack_text, "ts": ts, "channel": CHANNEL,
                    "event_ts": ts, "team": TEAM_ID})

    def last(self) -> dict[str, Any] | None:
        if self.client.last_analysis is None:
            self.out.write("(nothing to react to yet: send me a message first)\n")
        return self.client.last_analysis

    def react(self, sign: str) -> None:
        post = self.last()
        if post is not None:
            self.event({"type": "reaction_added", "user": USER_ID, "reaction": sign, "item_user": BOT_USER_ID,
                        "item": {"type": "message", "channel": post["channel"], "ts": post["ts"]},
                        "event_ts": self.client.next_ts()})

    def command(self, text: str) -> None:
        self.dispatch({
            "token": "", "team_id": TEAM_ID, "team_domain": "console", "channel_id": CHANNEL,
            "channel_name": "console", "user_id": USER_ID, "user_name": "you", "command": "/beacon", "text": text,
            "api_app_id": APP_ID, "response_url": "https://console.invalid/respond", "trigger_id": "console.trigger",
        })

    def click(self, action_id: str) -> bool:
        post = self.last()
        if post is None:
            return False
        self.dispatch({
            "type": "block_actions", "team": {"id": TEAM_ID, "domain": "console"}, "api_app_id": APP_ID,
            "user": {"id": USER_ID, "username": "you", "name": "you", "team_id": TEAM_ID},
            "trigger_id": "console.trigger", "channel": {"id": post["channel"], "name": "console"},
            "container": {"type": "message", "message_ts": post["ts"], "channel_id": post["channel"],
                          "is_ephemeral": False, "thread_ts": post.get("thread_ts")},
            "message": {"type": "message", "ts": post["ts"], "thread_ts": post.get("thread_ts"),
                        "text": post["text"], "user": BOT_USER_ID, "bot_id": BOT_ID},
            "actions": [{"action_id": action_id, "block_id": f"beacon_actions_{post['prediction_id']}",
                         "value": str(post["prediction_id"]), "type": "button", "action_ts": self.client.next_ts()}],
        })
        return True

    # --- the correction modal, as prompts --------------------------------------------------------
    def fix(self) -> None:
        self.client.last_view = None
        if not self.click("beacon_correct") or self.client.last_view is None:
            return
        view = self.client.last_view
        self.out.write("Correcting my answer (Enter keeps the current choice):\n")
        for line in render_blocks([b for b in view.get("blocks", []) if b.get("type") == "section"]):
            self.out.write("  " + line + "\n")
        values: dict[str, Any] = {}
        inputs = [b for b in view.get("blocks", []) if b.get("type") == "input"]
        todo = inputs
        for _attempt in range(3):
            for block in todo:
                answer = self.prompt_input(block)
                if answer is None:
                    self.out.write("(correction cancelled)\n")
                    return
                values[block["block_id"]] = answer
            errors = self.submit(view, values)
            if not errors:
                self.out.write("beacon ▸ Correction saved. Thank you!\n")
                return
            for message in errors.values():
                self.out.write(f"  ✗ {message}\n")
            todo = [b for b in inputs if b["block_id"] in errors] or inputs
        self.out.write("(correction not saved)\n")

    def prompt_input(self, block: dict[str, Any]) -> dict[str, Any] | None:
        element = block["element"]
        action = element.get("action_id", "value")
        label = mrkdwn_to_text(block["label"]["text"])
        if element.get("type") == "static_select":
            options = element.get("options", [])
            initial = element.get("initial_option")
            self.out.write(f"{label}\n")
            for n, option in enumerate(options, 1):
                mark = " (current)" if initial and option["value"] == initial["value"] else ""
                self.out.write(f"  {n}) {option['text']['text']}{mark}\n")
            reply = self.ask("  choice ▸ ")
            if reply is None:
                return None
            chosen = self.pick(options, reply.strip(), initial)
            return {action: {"type": "static_select", "selected_option": chosen}}
        reply = self.ask(f"{label} ▸ ")
        if reply is None:
            return None
        return {action: {"type": "plain_text_input", "value": reply.strip() or None}}

    @staticmethod
    def pick(options: list[dict[str, Any]], reply: str, initial: dict[str, Any] | None) -> dict[str, Any] | None:
        if not reply:
            return initial
        if reply.isdigit() and 1 <= int(reply) <= len(options):
            return options[int(reply) - 1]
        for option in options:
            if reply.lower() in (option["value"].lower(), option["text"]["text"].lower()):
                return option
        return initial

    def submit(self, view: dict[str, Any], values: dict[str, Any]) -> dict[str, str]:
        payload = {
            "type": "view_submission", "team": {"id": TEAM_ID, "domain": "console"}, "api_app_id": APP_ID,
            "user": {"id": USER_ID, "username": "you", "name": "you", "team_id": TEAM_ID},
            "trigger_id": "console.trigger", "view": {**view, "state": {"values": values}},
        }
        response = self.dispatch(payload)
        body = response.body if isinstance(response.body, str) else ""
        if not body:
            return {}
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            return {}
        return dict(data.get("errors") or {}) if data.get("response_action") == "errors" else {}


def run_console(deps: Deps, *, stdin: IO[str], stdout: IO[str], echo: bool | None = None) -> int:
    """Build the same app as HTTP mode around the console client, and chat until EOF or ``quit``."""
    from bot.app import build_app, make_runtime

    client = ConsoleWebClient(stdout)
    runtime = make_runtime(deps, client=client, webhook=client.webhook)
    app = build_app(deps, runtime=runtime, console=True, ack_executor=SyncExecutor(), lazy_executor=SyncExecutor())
    do_echo = (not stdin.isatty()) if echo is None else echo
    return Console(app, client, stdin, stdout, echo=do_echo).loop()
