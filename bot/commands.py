"""``/beacon`` subcommands, Slack-free: parse the text, run it against storage, say what happened.

``analyze`` is returned as an :class:`Analyze` request (the listener analyses and posts);
every other subcommand returns a :class:`Reply` of mrkdwn lines (user text already escaped).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from bot.errors import InputError, NotFound, PermissionDenied
from bot.settings import Settings
from bot.storage import feeds, registry
from bot.views import safe

_CHANNEL_REF = re.compile(r"^<#([CG][A-Z0-9]+)(?:\|[^>]*)?>$|^([CG][A-Z0-9]{6,})$")
USAGE = {
    "analyze": "`/beacon analyze TEXT`",
    "watch": "`/beacon watch NAME`",
    "unwatch": "`/beacon unwatch NAME`",
    "feeds": "`/beacon feeds add URL [#channel]`, `/beacon feeds list` or `/beacon feeds remove ID`",
}


@dataclass(frozen=True)
class Reply:
    text: str
    ok: bool = True
    show_help: bool = False


@dataclass(frozen=True)
class Analyze:
    text: str


@dataclass(frozen=True)
class Invocation:
    text: str
    user_id: str
    channel_id: str


def split(text: str) -> tuple[str, str]:
    """``("feeds", "add https://…")``: the subcommand (lower case) and the rest, as typed."""
    parts = text.strip().split(None, 1)
    if not parts:
        return "", ""
    return parts[0].lower(), parts[1].strip() if len(parts) > 1 else ""


def is_admin(settings: Settings, user_id: str) -> bool:
    """Empty ``BEACON_ADMINS`` means every user may manage feeds."""
    return not settings.admins or user_id in settings.admins


def run(inv: Invocation, *, settings: Settings, session: Session) -> Reply | Analyze:
    """Execute one ``/beacon`` invocation."""
    name, rest = split(inv.text)
    if name in ("", "help"):
        return Reply("", show_help=True)
    if name in ("analyze", "analyse"):
        return Analyze(rest) if rest else Reply(f"Usage: {USAGE['analyze']}", ok=False)
    if name == "watch":
        return _watch(rest, inv, session) if rest else _list_watches(session)
    if name == "unwatch":
        return _unwatch(rest, session) if rest else Reply(f"Usage: {USAGE['unwatch']}", ok=False)
    if name == "feeds":
        return _feeds(rest, inv, settings, session)
    if name == "model":
        return _model(session)
    return Reply(f"I don't know `{safe(name, 40)}`.", ok=False, show_help=True)


def _watch(name: str, inv: Invocation, session: Session) -> Reply:
    watch = feeds.add_watch(session=session, name=name, created_by=inv.user_id)
    return Reply(f"Watching *{safe(watch.name, 200)}*: alerts mention it when news about it turns negative.")


def _unwatch(name: str, session: Session) -> Reply:
    try:
        feeds.remove_watch(session=session, name=name)
    except NotFound:
        return Reply(f"I was not watching *{safe(name, 200)}*.", ok=False)
    return Reply(f"Stopped watching *{safe(name, 200)}*.")


def _list_watches(session: Session) -> Reply:
    names = [f"• {safe(w.name, 200)}" for w in feeds.list_watches(session=session)]
    return Reply("*Watching:*\n" + "\n".join(names) if names else f"Nothing watched yet. {USAGE['watch']}")


def _feeds(rest: str, inv: Invocation, settings: Settings, session: Session) -> Reply:
    action, args = split(rest)
    if action == "list":
        return _list_feeds(session)
    if action not in ("add", "remove"):
        return Reply(f"Usage: {USAGE['feeds']}", ok=False)
    if not is_admin(settings, inv.user_id):
        raise PermissionDenied("only Beacon admins (BEACON_ADMINS) can add or remove feeds")
    if action == "add":
        return _add_feed(args, inv, session)
    try:
        feed_id = int(args.strip().lstrip("#"))
    except ValueError:
        return Reply(f"Usage: {USAGE['feeds']}", ok=False)
    feed = feeds.remove_feed(session=session, feed_id=feed_id)
    return Reply(f"Removed feed {feed.id} ({safe(feed.url, 300)}).")


def _add_feed(args: str, inv: Invocation, session: Session) -> Reply:
    parts = args.split()
    if not parts or len(parts) > 2:
        return Reply(f"Usage: {USAGE['feeds']}", ok=False)
    channel = inv.channel_id
    if len(parts) == 2:
        match = _CHANNEL_REF.match(parts[1])
        if match is None:
            raise InputError(f"{parts[1]!r} is not a channel; pick one with #")
        channel = match.group(1) or match.group(2)
    feed = feeds.add_feed(session=session, url=parts[0], channel=channel, created_by=inv.user_id)
    return Reply(f"Added feed {feed.id}: {safe(feed.url, 300)} → <#{feed.channel}>. It is polled every "
                 f"{feed.interval_minutes} minutes.")


def _list_feeds(session: Session) -> Reply:
    rows = feeds.list_feeds(session=session)
    if not rows:
        return Reply(f"No feeds yet. {USAGE['feeds']}")
    lines = [f"• `{f.id}` {safe(f.title or f.url, 200)} → <#{f.channel}> ({f.last_status or 'not polled yet'})"
             for f in rows]
    return Reply("*Feeds:*\n" + "\n".join(lines))


def metrics_line(metrics: dict[str, Any]) -> str:
    """A short summary of a model's metrics (whatever numbers it has, two levels deep)."""
    parts: list[str] = []
    for key, value in sorted(metrics.items()):
        if isinstance(value, int | float) and not isinstance(value, bool):
            parts.append(f"{key} {value:.3g}")
        elif isinstance(value, dict):
            for sub, number in sorted(value.items()):
                if isinstance(number, int | float) and not isinstance(number, bool) and sub in (
                        "f1", "accuracy", "macro_f1"):
                    parts.append(f"{key} {sub} {number:.3f}")
    return ", ".join(parts[:8]) or "no metrics recorded"


def _model(session: Session) -> Reply:
    active = registry.active_version(session=session)
    if active is None:
        return Reply("No active model yet.", ok=False)
    when = active.promoted_at or active.created_at
    return Reply(f"*Active model:* `{safe(active.version, 64)}` (since {when:%Y-%m-%d %H:%M} UTC)\n"
                 f"{safe(metrics_line(active.metrics), 2000)}")
