"""Successful Web API answers shaped like Slack's (see ../shared/slack/java-slack-sdk/json-logs/samples/api)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.slack import Call, FakeSlack


def user(user_id: str, *, name: str, is_bot: bool, team: str) -> dict[str, Any]:
    return {
        "id": user_id, "team_id": team, "name": name, "deleted": False, "real_name": name.title(),
        "tz": "Europe/London", "tz_offset": 0, "is_admin": False, "is_owner": False, "is_bot": is_bot,
        "is_app_user": False, "updated": 1_700_000_000,
        "profile": {"real_name": name.title(), "display_name": name, "team": team},
    }


def _message(fake: FakeSlack, call: Call, ts: str) -> dict[str, Any]:
    args = call.args
    message: dict[str, Any] = {
        "type": "message", "subtype": "bot_message", "text": args.get("text", ""), "user": fake.bot_user_id,
        "bot_id": fake.bot_id, "app_id": "A0BEACON01", "team": fake.team_id, "ts": ts,
        "bot_profile": {"id": fake.bot_id, "app_id": "A0BEACON01", "name": "Beacon", "deleted": False,
                        "team_id": fake.team_id, "updated": 1_700_000_000, "icons": {}},
    }
    blocks = call.arg("blocks")
    if blocks:
        message["blocks"] = blocks
    if args.get("thread_ts"):
        message["thread_ts"] = args["thread_ts"]
    return message


def _view(fake: FakeSlack, call: Call) -> dict[str, Any]:
    view = dict(call.arg("view") or {})
    view_id = str(call.args.get("view_id") or fake.new_id("V"))
    view.update({
        "id": view_id, "team_id": fake.team_id, "state": {"values": {}},
        "hash": hashlib.sha1(view_id.encode()).hexdigest()[:20], "root_view_id": view_id, "previous_view_id": None,
        "app_id": "A0BEACON01", "bot_id": fake.bot_id, "app_installed_team_id": fake.team_id,
    })
    view.setdefault("private_metadata", "")
    view.setdefault("callback_id", "")
    return view


def answer(fake: FakeSlack, call: Call) -> dict[str, Any]:
    """The ``ok`` answer to ``call``, or a Slack error for unknown users, groups and methods."""
    args = call.args
    method = call.method
    if method in ("chat.postMessage", "chat.update"):
        ts = str(args.get("ts") or fake.next_ts())
        channel = str(args.get("channel", ""))
        message = _message(fake, call, ts)
        if method == "chat.postMessage":
            with fake._lock:
                fake.messages.setdefault(channel, []).append(message)
        return {"ok": True, "channel": channel, "ts": ts, "text": args.get("text", ""), "message": message}
    if method == "chat.postEphemeral":
        return {"ok": True, "message_ts": fake.next_ts()}
    if method == "chat.getPermalink":
        channel, ts = str(args.get("channel", "")), str(args.get("message_ts", ""))
        return {"ok": True, "channel": channel,
                "permalink": f"https://fake-workspace.slack.com/archives/{channel}/p{ts.replace('.', '')}"}
    if method in ("views.open", "views.publish", "views.update", "views.push"):
        return {"ok": True, "view": _view(fake, call)}
    if method == "conversations.replies":
        return _replies(fake, str(args.get("channel", "")), str(args.get("ts", "")))
    if method in ("reactions.add", "reactions.remove", "api.test"):
        return {"ok": True}
    if method == "auth.test":
        return {"ok": True, "url": "https://fake-workspace.slack.com/", "team": "Fake Workspace", "user": "beacon",
                "team_id": fake.team_id, "user_id": fake.bot_user_id, "bot_id": fake.bot_id,
                "is_enterprise_install": False}
    if method == "users.info":
        found = fake.users.get(str(args.get("user", "")))
        return {"ok": True, "user": found} if found else {"ok": False, "error": "user_not_found"}
    if method == "usergroups.users.list":
        members = fake.usergroups.get(str(args.get("usergroup", "")))
        return {"ok": True, "users": members} if members is not None else {"ok": False, "error": "no_such_subteam"}
    if method == "files.getUploadURLExternal":
        file_id = fake.new_id("F")
        return {"ok": True, "upload_url": f"{fake.base_url}upload/{file_id}", "file_id": file_id}
    if method == "files.completeUploadExternal":
        files = call.arg("files") or []
        return {"ok": True, "files": [{"id": f.get("id"), "title": f.get("title"), "name": f.get("title")}
                                      for f in files]}
    return {"ok": False, "error": "unknown_method"}


def _replies(fake: FakeSlack, channel: str, ts: str) -> dict[str, Any]:
    with fake._lock:
        messages = list(fake.messages.get(channel, []))
    parent = [m for m in messages if m["ts"] == ts]
    if not parent:
        return {"ok": False, "error": "thread_not_found"}
    replies = [m for m in messages if m.get("thread_ts") == ts and m["ts"] != ts]
    return {"ok": True, "messages": parent + replies, "has_more": False,
            "response_metadata": {"next_cursor": ""}}
