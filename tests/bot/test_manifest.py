"""deploy/slack/manifest.yml and the registered listeners agree: events, commands, shortcuts,
interactivity, request URLs, and exactly the scopes the code needs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from bot.listeners import register_all
from bot.server import EVENTS_PATH

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "slack" / "manifest.yml"
EVENT_SCOPES = {
    "app_mention": {"app_mentions:read"}, "message.channels": {"channels:history"},
    "message.groups": {"groups:history"}, "message.im": {"im:history"}, "reaction_added": {"reactions:read"},
    "reaction_removed": {"reactions:read"}, "app_home_opened": set(),
}
METHOD_SCOPES = {
    "chat.postMessage": {"chat:write"}, "chat.postEphemeral": {"chat:write"}, "chat.update": {"chat:write"},
    "chat.getPermalink": set(), "views.open": set(), "views.publish": set(),
    "conversations.replies": {"channels:history", "groups:history", "im:history"},
    "users.info": {"users:read"}, "usergroups.users.list": {"usergroups:read"}, "files_upload_v2": {"files:write"},
}


class Recorder:
    """Stands in for the Bolt App: records what each listener module registers."""

    def __init__(self) -> None:
        self.seen: dict[str, set[str]] = {"event": set(), "command": set(), "shortcut": set(), "action": set(),
                                          "view_submission": set()}

    def __getattr__(self, kind: str) -> Any:
        if kind not in self.seen:
            raise AttributeError(kind)

        def register(key: Any, *args: Any, **kwargs: Any) -> Any:
            self.seen[kind].add(key if isinstance(key, str) else key.get("type"))
            return lambda *a, **k: None

        return register


def registered() -> dict[str, set[str]]:
    recorder = Recorder()
    register_all(recorder, None)  # type: ignore[arg-type]
    return recorder.seen


def manifest() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def methods_called() -> set[str]:
    """Web API methods the bot's code calls (through the gateway's ``call("...")``)."""
    found: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        found |= set(re.findall(r"""\.call\(\s*["']([a-zA-Z0-9_.]+)["']""", path.read_text(encoding="utf-8")))
    for path in (ROOT / "jobs").rglob("*.py"):
        found |= set(re.findall(r"""\.call\(\s*["']([a-zA-Z0-9_.]+)["']""", path.read_text(encoding="utf-8")))
    return found


def test_events_match_the_event_listeners() -> None:
    events = set(manifest()["settings"]["event_subscriptions"]["bot_events"])
    as_listeners = {e.split(".", 1)[0] for e in events}
    assert as_listeners == registered()["event"]
    assert {"message.channels", "message.groups", "message.im"} <= events  # monitored channels and DMs


def test_commands_and_shortcuts_match() -> None:
    data = manifest()
    seen = registered()
    assert {c["command"] for c in data["features"]["slash_commands"]} == seen["command"]
    shortcuts = data["features"]["shortcuts"]
    assert {s["callback_id"] for s in shortcuts if s["type"] == "message"} == seen["shortcut"]
    assert any(s["name"] == "Analyze with Beacon" for s in shortcuts)
    assert data["settings"]["interactivity"]["is_enabled"] is bool(seen["action"] or seen["view_submission"])
    assert data["features"]["app_home"]["home_tab_enabled"] is ("app_home_opened" in seen["event"])


def test_request_urls_point_at_the_events_endpoint_and_socket_mode_is_declared() -> None:
    data = manifest()
    urls = [data["settings"]["event_subscriptions"]["request_url"], data["settings"]["interactivity"]["request_url"],
            *[c["url"] for c in data["features"]["slash_commands"]]]
    assert all(url.endswith(EVENTS_PATH) for url in urls)
    assert isinstance(data["settings"]["socket_mode_enabled"], bool)


def test_scopes_are_exactly_what_the_code_needs() -> None:
    data = manifest()
    called = methods_called()
    assert {"chat.postMessage", "views.open", "views.publish", "users.info"} <= called
    unknown = called - METHOD_SCOPES.keys()
    assert not unknown, f"add the scopes of {unknown} to METHOD_SCOPES and the manifest"
    needed = {"commands"}
    for event in data["settings"]["event_subscriptions"]["bot_events"]:
        needed |= EVENT_SCOPES[event]
    for method in called:
        needed |= METHOD_SCOPES[method]
    assert set(data["oauth_config"]["scopes"]["bot"]) == needed
