"""Shared fixtures: databases (SQLite and a real PostgreSQL), settings, contexts.

PostgreSQL: with CI=true the tests use BEACON_TEST_POSTGRES_URL or the CI default
(postgresql+psycopg://postgres@127.0.0.1:5432/test) and FAIL when it is unreachable.
Elsewhere they run only when BEACON_TEST_POSTGRES_URL is set. Each test gets its own schema.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from bot.settings import Settings, load_settings
from bot.storage.db import make_engine, make_session_factory, upgrade

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
CI_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str | None:
    url = os.environ.get("BEACON_TEST_POSTGRES_URL")
    if url:
        return url
    if os.environ.get("CI", "").lower() == "true":
        return CI_POSTGRES
    return None


def _postgres_schema_url() -> Iterator[str]:
    base = postgres_base_url()
    if base is None:
        pytest.skip("PostgreSQL tests need BEACON_TEST_POSTGRES_URL (they always run, and must pass, in CI)")
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # unreachable in CI is a failure, never a skip
        admin.dispose()
        pytest.fail(f"PostgreSQL at {base} is unreachable: {exc}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL: SQLite file, then a private PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'beacon.db'}"
    else:
        yield from _postgres_schema_url()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def make_settings(tmp_path: Path) -> Any:
    """Build Settings from an explicit environment (never the developer's own)."""

    def build(**env: str) -> Settings:
        base = {"BEACON_HOME": str(tmp_path / "home"), "BEACON_LOG_FORMAT": "json"}
        base.update(env)
        return load_settings(base, env_file=None)

    return build
