"""The console's in-process stand-in for the Slack Web API: renders Block Kit as text.

:class:`ConsoleWebClient` is a real ``slack_sdk.WebClient`` whose ``api_call`` answers locally
(like Slack would) instead of over HTTP, so the bot's gateway and listeners run unchanged.
"""

from __future__ import annotations

import html
import itertools
import re
import threading
from collections.abc import Mapping, Sequence
from typing import IO, Any

from slack_sdk import WebClient
from slack_sdk.web import SlackResponse

BOT_USER_ID = "UBEACON0CON"
BOT_ID = "BBEACON0CON"
TEAM_ID = "T0CONSOLE"
EMOJI = {
    ":red_circle:": "🔴", ":white_circle:": "⚪", ":large_green_circle:": "🟢", ":+1:": "👍", ":-1:": "👎",
    ":warning:": "⚠️", ":rotating_light:": "🚨", ":pencil:": "✏️", ":arrow_up:": "↑", ":arrow_down:": "↓",
    ":grey_question:": "?",
}
_LINK = re.compile(r"<([^<>|]+)\|([^<>]+)>")
_REF = re.compile(r"<([#@!])([^<>|]+)>")


def mrkdwn_to_text(text: str) -> str:
    """Slack mrkdwn → terminal text: links and references unwrapped, entities decoded, emoji drawn."""
    text = _LINK.sub(lambda m: m.group(2), text)
    text = _REF.sub(lambda m: m.group(1) + m.group(2), text)
    for code, char in EMOJI.items():
        text = text.replace(code, char)
    return html.unescape(text.replace("*", ""))


def _text(obj: Any) -> str:
    if isinstance(obj, Mapping):
        return mrkdwn_to_text(str(obj.get("text", "")))
    return ""


def render_blocks(blocks: Sequence[Mapping[str, Any]]) -> list[str]:
    """One or more lines per block."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind in ("section", "header"):
            lines.extend(_text(block.get("text")).splitlines())
        elif kind == "context":
            lines.append("  " + " · ".join(_text(e) for e in block.get("elements", [])))
        elif kind == "actions":
            lines.append("  " + " ".join(f"[{_text(e.get('text'))}]" for e in block.get("elements", [])))
        elif kind == "divider":
            lines.append("  ─────")
    return lines


def prediction_of(blocks: Sequence[Mapping[str, Any]]) -> int | None:
    """The prediction id behind a message's "Correct it" button, if it has one."""
    for block in blocks:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == "beacon_correct" and str(element.get("value", "")).isdigit():
                return int(element["value"])
    return None


class ConsoleWebClient(WebClient):
    """Answers Web API calls in process and prints what the bot posts."""

    def __init__(self, out: IO[str]) -> None:
        super().__init__(token="xoxb-console", base_url="http://console.invalid/api/")
        self.out = out
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.last_view: dict[str, Any] | None = None
        self.last_analysis: dict[str, Any] | None = None  # the last post with a prediction (has buttons)
        self._ts = itertools.count(1)
        self._print_lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> ConsoleWebClient:
        return self  # Bolt copies requests for lazy listeners; this client is shared, never copied

    def next_ts(self) -> str:
        return f"{1_700_000_000 + next(self._ts)}.000100"

    def show(self, lines: Sequence[str], *, who: str = "beacon", note: str = "") -> None:
        with self._print_lock:
            head = f"{who} ▸ "
            pad = " " * len(head)
            for n, line in enumerate(lines or [""]):
                self.out.write((head if n == 0 else pad) + line + "\n")
            if note:
                self.out.write(pad + note + "\n")
            self.out.flush()

    def webhook(self, url: str, payload: dict[str, Any]) -> None:
        """``response_url`` posts (slash commands, shortcuts): shown like ephemeral messages."""
        del url
        lines = render_blocks(payload.get("blocks") or []) or [mrkdwn_to_text(str(payload.get("text", "")))]
        self.show(lines, note="(only you can see this)")

    def api_call(  # type: ignore[override]
        self, api_method: str, *, http_verb: str = "POST", files: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None, headers: dict[str, Any] | None = None, auth: Any = None,
    ) -> SlackResponse:
        args = {**(params or {}), **(data or {}), **(json or {})}
        body = self.answer(api_method, args)
        return SlackResponse(client=self, http_verb=http_verb, api_url=self.base_url + api_method, req_args={},
                             data=body, headers={}, status_code=200).validate()

    def answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if method == "chat.postMessage":
            return self._post(channel, args)
        if method == "chat.postEphemeral":
            self.show(render_blocks(args.get("blocks") or []) or [mrkdwn_to_text(str(args.get("text", "")))],
                      note="(only you can see this)")
            return {"ok": True, "message_ts": self.next_ts()}
        if method == "chat.update":
            self.show(render_blocks(args.get("blocks") or []), note="(edited)")
            return {"ok": True, "channel": channel, "ts": args.get("ts")}
        if method == "chat.getPermalink":
            return {"ok": True, "channel": channel, "permalink": f"https://console.invalid/{channel}/{args['message_ts']}"}
        if method == "views.open":
            self.last_view = {**dict(args.get("view") or {}), "id": "VCONSOLE"}
            return {"ok": True, "view": self.last_view}
        if method == "views.publish":
            self.show(render_blocks((args.get("view") or {}).get("blocks") or []), who="home")
            return {"ok": True, "view": args.get("view")}
        if method == "conversations.replies":
            found = [m for m in self.messages.get(channel, []) if m["ts"] == args.get("ts")]
            return {"ok": True, "messages": found, "has_more": False}
        if method == "auth.test":
            return {"ok": True, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "team_id": TEAM_ID, "user": "beacon"}
        if method == "users.info":
            return {"ok": True, "user": {"id": args.get("user"), "is_bot": False, "name": "you"}}
        if method == "usergroups.users.list":
            return {"ok": True, "users": []}
        return {"ok": True}

    def _post(self, channel: str, args: dict[str, Any]) -> dict[str, Any]:
        ts = self.next_ts()
        message = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "text": args.get("text", ""),
                   "ts": ts, "thread_ts": args.get("thread_ts"), "blocks": args.get("blocks") or []}
        self.messages.setdefault(channel, []).append(message)
        prediction = prediction_of(message["blocks"])
        if prediction is not None:
            self.last_analysis = {**message, "channel": channel, "prediction_id": prediction}
        self.show(render_blocks(message["blocks"]) or [mrkdwn_to_text(str(message["text"]))])
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def add_user_message(self, channel: str, text: str, ts: str, user: str) -> None:
        self.messages.setdefault(channel, []).append({"type": "message", "user": user, "text": text, "ts": ts})
