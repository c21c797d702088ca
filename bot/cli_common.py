"""What every `beacon` subcommand module shares: the process Context from the root callback."""

from __future__ import annotations

import typer

from bot.context import Context
from bot.errors import ConfigError


def context(ctx: typer.Context) -> Context:
    """The Context the root callback built from the settings."""
    obj = ctx.find_root().obj
    if not isinstance(obj, Context):
        raise ConfigError("settings were not loaded")
    return obj


def migrated(ctx: typer.Context) -> Context:
    """The Context, with pending migrations applied (commands that touch the database)."""
    c = context(ctx)
    c.migrate()
    return c
