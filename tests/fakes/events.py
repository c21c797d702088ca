"""Payloads shaped like Slack's (see ../shared/slack/java-slack-sdk/json-logs/samples), and a sender
that posts them to the bot's HTTP endpoint signed exactly as Slack signs them.

- Events API: ``event_callback`` envelopes sent as ``application/json``;
- slash commands: plain ``application/x-www-form-urlencoded`` fields;
- interactivity (block_actions, message_action, view_submission): form-encoded ``payload=<JSON>``.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.fakes.signing import signed_headers

TEAM = "T0FAKE001"
APP = "A0BEACON01"
_seq = itertools.count(1)


def next_ts() -> str:
    return f"{int(time.time())}.{next(_seq):06d}"


def event_id() -> str:
    return f"Ev{next(_seq):010d}"


def envelope(event: dict[str, Any], *, bot_user_id: str, eid: str | None = None) -> dict[str, Any]:
    """The ``event_callback`` outer body (AppMentionPayload.json's keys)."""
    return {
        "token": "verification-token-unused", "team_id": TEAM, "enterprise_id": None, "api_app_id": APP,
        "type": "event_callback", "event_id": eid or event_id(), "event_time": int(time.time()),
        "event_context": "4-eyJldCI6ImFwcF9tZW50aW9uIn0", "is_ext_shared_channel": False,
        "authorizations": [{"enterprise_id": None, "team_id": TEAM, "user_id": bot_user_id, "is_bot": True,
                            "is_enterprise_install": False}],
        "event": event,
    }


def app_mention(text: str, *, user: str, channel: str, bot_user_id: str, ts: str | None = None,
                thread_ts: str | None = None) -> dict[str, Any]:
    ts = ts or next_ts()
    event: dict[str, Any] = {
        "type": "app_mention", "client_msg_id": f"c{next(_seq)}", "user": user, "text": f"<@{bot_user_id}> {text}",
        "ts": ts, "team": TEAM, "channel": channel, "event_ts": ts,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def message(text: str, *, user: str, channel: str, ts: str | None = None, channel_type: str = "channel",
            thread_ts: str | None = None) -> dict[str, Any]:
    ts = ts or next_ts()
    event: dict[str, Any] = {"type": "message", "client_msg_id": f"c{next(_seq)}", "user": user, "text": text,
                             "ts": ts, "team": TEAM, "channel": channel, "event_ts": ts, "channel_type": channel_type}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def message_changed(channel: str, ts: str, new_text: str, old_text: str, *, user: str) -> dict[str, Any]:
    now = next_ts()
    return {
        "type": "message", "subtype": "message_changed", "channel": channel, "hidden": True, "event_ts": now,
        "ts": now, "channel_type": "channel",
        "message": {"type": "message", "user": user, "text": new_text, "ts": ts, "team": TEAM,
                    "edited": {"user": user, "ts": now}},
        "previous_message": {"type": "message", "user": user, "text": old_text, "ts": ts, "team": TEAM},
    }


def message_deleted(channel: str, ts: str, old_text: str, *, user: str) -> dict[str, Any]:
    now = next_ts()
    return {
        "type": "message", "subtype": "message_deleted", "channel": channel, "hidden": True, "deleted_ts": ts,
        "event_ts": now, "ts": now, "channel_type": "channel",
        "previous_message": {"type": "message", "user": user, "text": old_text, "ts": ts, "team": TEAM},
    }


def reaction(kind: str, name: str, *, user: str, channel: str, ts: str, item_user: str) -> dict[str, Any]:
    """``reaction_added`` or ``reaction_removed`` (ReactionAddedPayload.json's event keys)."""
    return {"type": kind, "user": user, "item": {"type": "message", "channel": channel, "ts": ts},
            "reaction": name, "item_user": item_user, "event_ts": next_ts()}


def app_home_opened(user: str) -> dict[str, Any]:
    return {"type": "app_home_opened", "user": user, "channel": "D0HOME0001", "tab": "home", "event_ts": next_ts()}


def slash_command(text: str, *, user: str, channel: str, response_url: str) -> dict[str, str]:
    """The form fields of SlashCommandPayload.json."""
    return {
        "token": "verification-token-unused", "api_app_id": APP, "team_id": TEAM, "team_domain": "fake-workspace",
        "channel_id": channel, "channel_name": "support", "user_id": user, "user_name": user.lower(),
        "command": "/beacon", "text": text, "response_url": response_url, "trigger_id": f"{next(_seq)}.trigger",
        "is_enterprise_install": "false",
    }


def _user(user: str) -> dict[str, Any]:
    return {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM}


def block_action(action_id: str, value: str, *, user: str, channel: str, message_ts: str, response_url: str,
                 thread_ts: str | None = None, ephemeral: bool = False) -> dict[str, Any]:
    container: dict[str, Any] = {"type": "message", "message_ts": message_ts, "channel_id": channel,
                                 "is_ephemeral": ephemeral}
    payload: dict[str, Any] = {
        "type": "block_actions", "team": {"id": TEAM, "domain": "fake-workspace"}, "user": _user(user),
        "api_app_id": APP, "token": "verification-token-unused", "container": container,
        "trigger_id": f"{next(_seq)}.trigger", "channel": {"id": channel, "name": "support"},
        "response_url": response_url, "is_enterprise_install": False,
        "actions": [{"action_id": action_id, "block_id": "beacon_actions", "value": value, "type": "button",
                     "text": {"type": "plain_text", "text": "button", "emoji": True}, "action_ts": next_ts()}],
    }
    if thread_ts:
        container["thread_ts"] = thread_ts
    if not ephemeral:
        payload["message"] = {"type": "message", "ts": message_ts, "thread_ts": thread_ts, "text": "analysis",
                              "user": "UBEACON00", "bot_id": "BBEACON00"}
    return payload


def message_shortcut(callback_id: str, *, user: str, channel: str, text: str, message_ts: str, author: str,
                     response_url: str) -> dict[str, Any]:
    """MessageShortcutPayload.json's keys."""
    return {
        "type": "message_action", "callback_id": callback_id, "trigger_id": f"{next(_seq)}.trigger",
        "message_ts": message_ts, "response_url": response_url, "team": {"id": TEAM, "domain": "fake-workspace"},
        "user": _user(user), "channel": {"id": channel, "name": "support"}, "token": "verification-token-unused",
        "action_ts": next_ts(), "is_enterprise_install": False,
        "message": {"type": "message", "user": author, "text": text, "ts": message_ts, "team": TEAM},
    }


def view_submission(view: dict[str, Any], values: dict[str, Any], *, user: str) -> dict[str, Any]:
    """ViewSubmissionPayload.json's keys: the opened view with ``state.values`` filled in."""
    submitted = {**view, "state": {"values": values}}
    return {
        "type": "view_submission", "team": {"id": TEAM, "domain": "fake-workspace"}, "user": _user(user),
        "api_app_id": APP, "token": "verification-token-unused", "trigger_id": f"{next(_seq)}.trigger",
        "view": submitted, "is_enterprise_install": False, "response_urls": [],
    }


def select(value: str, text: str | None = None) -> dict[str, Any]:
    """A ``static_select`` state value."""
    return {"value": {"type": "static_select",
                      "selected_option": {"text": {"type": "plain_text", "text": text or value}, "value": value}}}


def typed(value: str | None) -> dict[str, Any]:
    """A ``plain_text_input`` state value."""
    return {"value": {"type": "plain_text_input", "value": value}}


class SlackSender:
    """Posts signed requests to the bot's ``/slack/events`` like Slack does."""

    def __init__(self, url: str, secret: str, *, client: httpx.Client | None = None) -> None:
        self.url = url
        self.secret = secret
        self.client = client or httpx.Client(timeout=10.0)

    def send(self, body: str, content_type: str, *, timestamp: int | None = None, retry_num: int | None = None,
             secret: str | None = None) -> httpx.Response:
        headers = signed_headers(secret or self.secret, body, timestamp=timestamp, content_type=content_type,
                                 retry_num=retry_num)
        return self.client.post(self.url, content=body.encode("utf-8"), headers=headers)

    def event(self, payload: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.send(json.dumps(payload), "application/json", **kwargs)

    def command(self, fields: dict[str, str], **kwargs: Any) -> httpx.Response:
        return self.send(urlencode(fields), "application/x-www-form-urlencoded", **kwargs)

    def interactive(self, payload: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.send(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded", **kwargs)

    def close(self) -> None:
        self.client.close()
