"""The ``beacon`` command line. Thin: it parses arguments and calls functions.

Errors are translated here, at the boundary: a BeaconError becomes one line on stderr and an
exit code (2 for configuration and database problems, 1 otherwise), with no traceback.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as pkg_version
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from bot import cli_feeds, cli_learn, cli_models, cli_serve
from bot.cli_common import context
from bot.context import make_context
from bot.errors import BeaconError, ConfigError, StorageError
from bot.log import get_logger
from bot.settings import load_settings
from bot.storage.db import current_revision, downgrade, upgrade

app = typer.Typer(
    name="beacon",
    help="Beacon: a chat-ops Slack bot that reads entities and sentiment in support messages and news.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
db_app = typer.Typer(help="Database migrations (Alembic).", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console()


@app.callback()
def _root(
    ctx: typer.Context,
    env_file: Path = typer.Option(Path(".env"), "--env-file", help="Optional .env file with settings."),
) -> None:
    """Settings come from environment variables and an optional .env file (see `beacon config`)."""
    ctx.obj = make_context(load_settings(env_file=env_file if env_file.exists() else None))


@app.command("config")
def config_cmd(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show the effective settings, secrets masked."""
    values = context(ctx).settings.public_dict()
    if as_json:
        typer.echo(json.dumps(values, indent=2, default=str))
        return
    table = Table("setting", "value", title="Beacon settings")
    for key, value in values.items():
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    console.print(table)


@app.command("version")
def version_cmd() -> None:
    """Print Beacon's version."""
    try:
        typer.echo(f"beacon {pkg_version('beacon')}")
    except PackageNotFoundError:
        typer.echo("beacon (not installed)")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations (default: up to the newest)."""
    c = context(ctx)
    upgrade(c.engine, revision)
    typer.echo(f"database at revision {current_revision(c.engine)} ({c.settings.public_dict()['DATABASE_URL']})")


@db_app.command("downgrade")
def db_downgrade(
    ctx: typer.Context,
    revision: str = typer.Argument("base", help="Target revision; 'base' removes every table."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Revert migrations. Destroys data in the dropped tables."""
    if not yes:
        typer.confirm(f"Downgrade to {revision}? Tables above it are dropped with their data", abort=True)
    c = context(ctx)
    downgrade(c.engine, revision)
    typer.echo(f"database at revision {current_revision(c.engine) or 'base'}")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Print the database's current migration revision."""
    typer.echo(current_revision(context(ctx).engine) or "base")


for _module in (cli_models, cli_serve, cli_feeds, cli_learn):
    _module.register(app)


def main() -> None:
    """Console-script entry point: run the CLI and translate errors at the boundary."""
    try:
        rc = app(standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (ConfigError, StorageError) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except BeaconError as exc:
        get_logger("beacon.cli").debug("cli.failed", exc_info=True)
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # usage errors (typer's bundled click) arrive here in non-standalone mode
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        raise
