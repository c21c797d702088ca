"""`beacon feeds ...` (subscriptions, polling, backfill) and `beacon worker` (the scheduler alone).

Thin: parses arguments and calls ``bot.storage.feeds``, ``jobs.feeds``, ``jobs.alerts`` and
``jobs.scheduler``. Heavy imports (torch through the analyzer, APScheduler) happen inside commands.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot.cli_common import migrated
from bot.log import get_logger
from bot.storage import feeds as store
from bot.storage.db import session_scope

if TYPE_CHECKING:
    from bot.context import Context
    from bot.deps import Deps
    from bot.poster import Poster
    from jobs.feeds import FeedPoller, PollOutcome

feeds_app = typer.Typer(help="RSS/Atom feed subscriptions: add, list, remove, poll, backfill.",
                        no_args_is_help=True)
console = Console()


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(feeds_app, name="feeds")
    app.command("worker")(worker_cmd)


# --- plumbing ---------------------------------------------------------------------------------
def _ensure_model(c: Context) -> None:
    """An active model (trains the default one when none is registered, like `beacon run`)."""
    from bot.bootstrap import ensure_active_model

    ensure_active_model(c)


def _deps(c: Context) -> Deps:
    from bot.deps import Deps
    from bot.model_holder import ModelHolder

    return Deps(settings=c.settings, sessions=c.sessions, models=ModelHolder(c.sessions, device=c.settings.device),
                log=get_logger("beacon.feeds"))


class LogPoster:
    """The poster without Slack: each message is a log line (and gets a unique fake ``ts``)."""

    def __init__(self) -> None:
        self.log = get_logger("beacon.post")
        self._seq = itertools.count(1)

    def post(self, *, channel: str, text: str, blocks: Sequence[Any] | None = None,
             thread_ts: str | None = None) -> str:
        ts = f"{int(time.time())}.{next(self._seq):06d}"
        self.log.info("post.console", channel=channel, text=text, blocks=len(blocks or []), thread_ts=thread_ts, ts=ts)
        return ts


def make_poster(c: Context) -> Poster:
    """The Slack Web API poster when SLACK_BOT_TOKEN is set, else a log poster."""
    if c.settings.slack_bot_token is not None and c.settings.slack_bot_token.get_secret_value():
        from bot.slack_client import SlackGateway, SlackPoster, make_web_client

        return SlackPoster(SlackGateway(make_web_client(c.settings)))
    return LogPoster()


def _poller(c: Context, *, batch_size: int = 256) -> tuple[FeedPoller, Deps, Poster]:
    from jobs.feeds import FeedPoller

    _ensure_model(c)
    deps, poster = _deps(c), make_poster(c)
    return FeedPoller(deps, poster, batch_size=batch_size), deps, poster


def _when(value: datetime | None, *, unset: str = "—") -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else unset


def _split_watches(watch: str | None) -> list[str]:
    return [part.strip() for part in (watch or "").split(",") if part.strip()]


# --- subscriptions ------------------------------------------------------------------------------
@feeds_app.command("add")
def add_cmd(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="The feed's http(s) URL."),
    channel: str = typer.Option(..., "--channel", "-c", help="Slack channel (ID or #name) for its alerts."),
    watch: str | None = typer.Option(
        None, "--watch", "-w", help='Names or tickers to watch, e.g. "Acme Corp,ACME,$ACME".'),
    interval: int | None = typer.Option(
        None, "--interval", min=1, help="Minutes between polls (default from settings)."),
) -> None:
    """Subscribe to a feed."""
    c = migrated(ctx)
    minutes = interval or c.settings.feed_default_interval_minutes
    names = _split_watches(watch)
    with session_scope(c.sessions) as session:
        feed = store.add_feed(session=session, url=url, channel=channel, interval_minutes=minutes,
                              created_by="cli", watches=names)
        feed_id = feed.id
    watching = f"; watching {', '.join(names)}" if names else ""
    typer.echo(f"feed {feed_id} added: {url} → {channel}, every {minutes} min{watching}")


@feeds_app.command("list")
def list_cmd(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show every feed with its last status, error and next poll time."""
    c = migrated(ctx)
    rows: list[dict[str, Any]] = []
    with c.sessions() as session:
        for feed in store.list_feeds(session=session):
            watches = [w.name for w in store.list_watches(session=session, feed_id=feed.id, include_global=False)]
            rows.append({
                "id": feed.id, "url": feed.url, "title": feed.title, "channel": feed.channel,
                "interval_minutes": max(feed.interval_minutes, feed.min_interval_minutes or 0),
                "status": feed.last_status or "never polled", "error": feed.last_error,
                "last_polled_at": feed.last_polled_at, "next_poll_at": feed.next_poll_at,
                "failures": feed.consecutive_failures, "items": store.count_items(session=session, feed_id=feed.id),
                "watches": watches,
            })
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        typer.echo("no feeds yet: add one with `beacon feeds add URL --channel C`")
        return
    table = Table("id", "feed", "channel", "every", "status", "error", "last poll", "next poll", "items", "watches",
                  title="Feeds")
    for r in rows:
        table.add_row(
            str(r["id"]), r["title"] or r["url"], r["channel"], f"{r['interval_minutes']} min", r["status"],
            (r["error"] or "")[:80], _when(r["last_polled_at"]), _when(r["next_poll_at"], unset="now"), str(r["items"]),
            ", ".join(r["watches"]),
        )
    console.print(table)


@feeds_app.command("remove")
def remove_cmd(
    ctx: typer.Context, feed_id: int = typer.Argument(..., help="The feed's ID (see `feeds list`).")
) -> None:
    """Unsubscribe from a feed (its items and predictions stay as history)."""
    c = migrated(ctx)
    with session_scope(c.sessions) as session:
        feed = store.remove_feed(session=session, feed_id=feed_id)
        url = feed.url
    typer.echo(f"feed {feed_id} removed: {url}")


# --- polling -----------------------------------------------------------------------------------------
def _print_outcomes(outcomes: Sequence[PollOutcome]) -> None:
    table = Table("feed", "status", "entries", "new", "updated", "analysed", "error / warning", "next poll",
                  title="Poll")
    for o in sorted(outcomes, key=lambda o: o.feed_id):
        table.add_row(str(o.feed_id), o.status, str(o.entries), str(o.new), str(o.updated), str(o.analysed),
                      (o.error or "")[:80], _when(o.next_poll_at))
    console.print(table)


@feeds_app.command("poll")
def poll_cmd(
    ctx: typer.Context,
    once: bool = typer.Option(False, "--once", help="Poll every feed (or --feed) once now, evaluate alerts, exit."),
    feed_id: int | None = typer.Option(None, "--feed", help="Only this feed."),
    every: float = typer.Option(60.0, "--every", min=1.0, help="Seconds between rounds without --once."),
) -> None:
    """Poll feeds and evaluate alerts: once, or in a loop until Ctrl-C (due feeds only)."""
    from jobs.alerts import run_alerts

    c = migrated(ctx)
    poller, deps, poster = _poller(c)
    try:
        while True:
            report = poller.poll_due(feed_id=feed_id, force=once)
            alerts = run_alerts(deps, poster)
            _print_outcomes(report.outcomes)
            typer.echo(f"alerts: {alerts.get('posted', 0)} posted, {alerts.get('digests', 0)} digests")
            if once:
                break
            time.sleep(every)
    finally:
        poller.close()


@feeds_app.command("backfill")
def backfill_cmd(
    ctx: typer.Context,
    feed_id: int = typer.Argument(..., help="The feed's ID (see `feeds list`)."),
    reanalyse: bool = typer.Option(False, "--reanalyse", help="Analyse again items analysed before."),
) -> None:
    """Analyse everything the feed currently lists, with a progress bar."""
    c = migrated(ctx)
    poller = _poller(c, batch_size=32)[0]  # smaller analysis batches: a smoother progress bar
    columns = (TextColumn("[bold]Analysing feed {task.fields[feed]}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("backfill", total=None, feed=feed_id)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            outcome = poller.backfill(feed_id, progress=advance, reanalyse=reanalyse)
    finally:
        poller.close()
    if outcome.status == "error":
        typer.echo(f"feed {feed_id}: error: {outcome.error}", err=True)
        raise typer.Exit(1)
    warn = f" (warning: {outcome.error})" if outcome.error else ""
    typer.echo(f"feed {feed_id}: {outcome.entries} entries, {outcome.analysed} analysed, {outcome.new} new, "
               f"{outcome.updated} updated, {outcome.unchanged} already analysed{warn}")


# --- the worker --------------------------------------------------------------------------------------
def worker_cmd(ctx: typer.Context) -> None:
    """Run the scheduler alone: feed polling, alerts and the nightly retrain (one leader per deployment)."""
    from jobs.scheduler import run_worker

    c = migrated(ctx)
    _ensure_model(c)
    deps, poster = _deps(c), make_poster(c)
    watcher = deps.models.start_watcher(c.settings.model_reload_seconds)
    try:
        run_worker(deps, poster)
    finally:
        deps.models.stop()
        # A daemon thread still holding the model when the interpreter finalizes would free torch
        # tensors without the GIL and abort the process ("terminate called..."): end it first.
        watcher.join(timeout=30)
