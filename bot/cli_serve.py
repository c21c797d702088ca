"""`beacon run`, `beacon serve` and `beacon console`: the serving commands.

Each one migrates the database, makes sure a model is active (training the default one from the
seed data when none is registered), loads it and watches the registry for a newly promoted one.
`run` also starts the leader-locked scheduler (feeds, alerts, nightly retrain).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from bot.cli_common import context
from bot.log import get_logger

if TYPE_CHECKING:
    from bot.context import Context
    from bot.deps import Deps
    from bot.poster import Poster

log = get_logger("beacon.serve")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("run")(run_cmd)
    app.command("serve")(serve_cmd)
    app.command("console")(console_cmd)


# --- plumbing ----------------------------------------------------------------------------------
def prepare(ctx: typer.Context) -> tuple[Context, Deps]:
    """Settings checked, database migrated, a model active and loaded, hot reload on."""
    from bot.deps import Deps
    from bot.model_holder import ModelHolder

    c = context(ctx)
    c.settings.require_slack()
    c.migrate()
    ensure_model(c)
    models = ModelHolder(c.sessions, device=c.settings.device)
    models.current()  # load now, not on the first message
    models.start_watcher(c.settings.model_reload_seconds)
    return c, Deps(settings=c.settings, sessions=c.sessions, models=models, log=get_logger("beacon"))


def ensure_model(c: Context) -> None:
    try:
        bootstrap = importlib.import_module("bot.bootstrap")
    except ModuleNotFoundError:
        log.warning("serve.no_bootstrap", hint="bot.bootstrap is missing: a model must already be active")
        return
    bootstrap.ensure_active_model(c)


def start_scheduler(deps: Deps, poster: Poster) -> Any:
    """The feeds/alerts/retrain scheduler (``jobs.scheduler``), or None where it is not installed."""
    try:
        scheduler = importlib.import_module("jobs.scheduler")
    except ModuleNotFoundError:
        log.warning("serve.no_scheduler", hint="jobs.scheduler is missing: feeds and retraining will not run")
        return None
    return scheduler.start_scheduler(deps, poster)


def serve_http(deps: Deps, *, host: str, port: int) -> None:
    from bot.app import build_app
    from bot.server import create_web_app, make_server

    app = build_app(deps)
    log.info("serve.http", host=host, port=port, path="/slack/events", model_version=deps.models.version)
    make_server(create_web_app(app, deps.models), host=host, port=port).run()


def serve_socket(deps: Deps) -> None:
    """Socket Mode, plus /healthz and /metrics on the HTTP port in the background."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.app import build_app
    from bot.server import BackgroundServer, create_web_app

    app = build_app(deps)
    settings = deps.settings
    BackgroundServer(create_web_app(app, deps.models), host=settings.host, port=settings.port).start()
    log.info("serve.socket_mode", model_version=deps.models.version, health_port=settings.port)
    SocketModeHandler(app, settings.secret("slack_app_token")).start()


def console_poster(deps: Deps) -> Poster:
    """Scheduled jobs' posts in console mode: printed like the bot's replies."""
    from bot.console_client import ConsoleWebClient
    from bot.slack_client import SlackGateway, SlackPoster

    return SlackPoster(SlackGateway(ConsoleWebClient(sys.stdout)))


# --- commands ------------------------------------------------------------------------------------
def run_cmd(ctx: typer.Context) -> None:
    """Run Beacon: Socket Mode with SLACK_APP_TOKEN, HTTP with SLACK_SIGNING_SECRET, else the console."""
    c, deps = prepare(ctx)
    mode = c.settings.mode
    if mode == "console":
        _console_logging(deps)  # before the scheduler starts logging
        handle = start_scheduler(deps, console_poster(deps))
        try:
            _console(deps)
        finally:
            if handle is not None:
                handle.shutdown()
            deps.models.stop()
        return
    from bot.slack_client import SlackGateway, SlackPoster, make_web_client

    handle = start_scheduler(deps, SlackPoster(SlackGateway(make_web_client(c.settings))))
    try:
        if mode == "socket":
            serve_socket(deps)
        else:
            serve_http(deps, host=c.settings.host, port=c.settings.port)
    finally:
        if handle is not None:
            handle.shutdown()
        deps.models.stop()


def serve_cmd(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Interface to listen on (default BEACON_HOST, 0.0.0.0)."),
    port: int | None = typer.Option(None, "--port", help="Port (default BEACON_PORT, 3000)."),
) -> None:
    """HTTP mode alone (POST /slack/events, GET /healthz, GET /metrics), for scaled deployments."""
    settings = context(ctx).settings
    settings.secret("slack_signing_secret")
    settings.secret("slack_bot_token")
    _, deps = prepare(ctx)
    try:
        serve_http(deps, host=host or settings.host, port=port or settings.port)
    finally:
        deps.models.stop()


def console_cmd(ctx: typer.Context) -> None:
    """A terminal chat with the bot's real listeners: no Slack workspace needed. Scriptable via stdin."""
    settings = context(ctx).settings
    if settings.mode != "console":
        settings = settings.model_copy(update={"slack_app_token": None, "slack_signing_secret": None})
        context(ctx).settings = settings
    _, deps = prepare(ctx)
    try:
        _console(deps)
    finally:
        deps.models.stop()


def _console_logging(deps: Deps) -> Path:
    """Send logs to BEACON_HOME/logs/console.log so the chat stays readable (scheduler included)."""
    from bot.context import setup_logging

    log_file = deps.settings.home / "logs" / "console.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    stream = log_file.open("a", encoding="utf-8")  # open for the process's life
    setup_logging(deps.settings, stream=stream)
    return log_file


def _console(deps: Deps) -> None:
    from bot.console import run_console

    log_file = _console_logging(deps)
    sys.stdout.write(f"(logs: {log_file})\n")
    raise typer.Exit(run_console(deps, stdin=sys.stdin, stdout=sys.stdout))
