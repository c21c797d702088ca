"""The composition root's state for one process: settings, engine and sessions, built lazily.

Created once at the entry point (CLI command, server, worker) and passed down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.log import configure_logging, get_logger
from bot.settings import Settings
from bot.storage.db import make_engine, make_session_factory, upgrade


@dataclass
class Context:
    settings: Settings
    _engine: Engine | None = field(default=None, repr=False)
    _sessions: sessionmaker[Session] | None = field(default=None, repr=False)
    migrated: bool = False

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.settings.db_url)
        return self._engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        if self._sessions is None:
            self._sessions = make_session_factory(self.engine)
        return self._sessions

    def migrate(self) -> None:
        """Apply pending migrations once per process (long-running commands call this at start)."""
        if not self.migrated:
            upgrade(self.engine)
            self.migrated = True

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def secrets_of(settings: Settings) -> list[str]:
    values = [settings.slack_bot_token, settings.slack_signing_secret, settings.slack_app_token]
    return [v.get_secret_value() for v in values if v is not None]


def setup_logging(settings: Settings, *, stream: Any = None) -> None:
    configure_logging(
        level=settings.log_level, fmt=settings.log_format, secrets=secrets_of(settings),
        pii=settings.redact_pii, stream=stream,
    )


def make_context(settings: Settings, *, stream: Any = None) -> Context:
    setup_logging(settings, stream=stream)
    get_logger("beacon").debug("context.created", database=settings.public_dict()["DATABASE_URL"])
    return Context(settings=settings)
