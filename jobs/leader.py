"""The scheduler's leader lock: one scheduler per deployment (APScheduler 3 job stores must not
be shared between running schedulers).

- PostgreSQL: a session-level advisory lock held on a dedicated connection. If the process
  dies, its connection closes and the server releases the lock at once.
- SQLite: a lease row in ``locks`` (``crud.try_acquire_lock``), renewed by a heartbeat; a dead
  holder's lease expires after ``ttl`` and a standby takes it.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from datetime import timedelta
from typing import Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.storage import crud
from bot.storage.db import session_scope

LOCK_NAME = "scheduler-leader"


def holder_id() -> str:
    """Who holds the lock: host, pid and a random suffix (two workers in one process differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaderLock(Protocol):
    holder: str

    def try_acquire(self) -> bool: ...

    def renew(self) -> bool: ...

    def release(self) -> None: ...

    def abandon(self) -> None: ...

    def current_holder(self) -> str | None: ...


class LeaseLock:
    """A lease row: works on every database (the default on SQLite)."""

    def __init__(self, sessions: sessionmaker[Session], *, holder: str, ttl: timedelta, name: str = LOCK_NAME) -> None:
        self.sessions = sessions
        self.holder = holder
        self.ttl = ttl
        self.name = name

    def try_acquire(self) -> bool:
        with session_scope(self.sessions) as session:
            return crud.try_acquire_lock(session=session, name=self.name, holder=self.holder, ttl=self.ttl)

    def renew(self) -> bool:
        return self.try_acquire()

    def release(self) -> None:
        with session_scope(self.sessions) as session:
            crud.release_lock(session=session, name=self.name, holder=self.holder)

    def abandon(self) -> None:
        """Stop renewing without releasing (what a crash looks like): the lease expires."""

    def current_holder(self) -> str | None:
        with self.sessions() as session:
            return crud.lock_holder(session=session, name=self.name)


class AdvisoryLock:
    """A PostgreSQL session-level advisory lock keyed by database and schema."""

    def __init__(self, engine: Engine, *, holder: str, name: str = LOCK_NAME,
                 sessions: sessionmaker[Session] | None = None) -> None:
        self.engine = engine
        self.holder = holder
        self.name = name
        self.sessions = sessions
        self._conn: Connection | None = None
        self._key: int | None = None

    def _lock_key(self, conn: Connection) -> int:
        if self._key is None:
            db, schema = conn.execute(text("SELECT current_database(), current_schema()")).one()
            digest = hashlib.sha256(f"beacon:{self.name}:{db}:{schema}".encode()).digest()
            self._key = int.from_bytes(digest[:8], "big", signed=True)
        return self._key

    def try_acquire(self) -> bool:
        if self._conn is not None:
            return self.renew()
        conn = self.engine.connect()
        try:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._lock_key(conn)}).scalar())
            conn.commit()
        except SQLAlchemyError:
            conn.invalidate()
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        self._note_holder()
        return True

    def _note_holder(self) -> None:
        """Also write the lease row, so `lock_holder` can say who leads (informational)."""
        if self.sessions is None:
            return
        with session_scope(self.sessions) as session:
            crud.release_lock(session=session, name=self.name, holder=crud.lock_holder(session=session,
                                                                                          name=self.name) or "")
            crud.try_acquire_lock(session=session, name=self.name, holder=self.holder, ttl=timedelta(days=3650))

    def renew(self) -> bool:
        """Still leader while the lock's connection is alive."""
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1")).scalar()
            self._conn.commit()
        except SQLAlchemyError:
            self._drop(invalidate=True)
            return False
        return True

    def release(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            self._conn.commit()
        except SQLAlchemyError:
            self._drop(invalidate=True)
            return
        self._drop(invalidate=False)
        if self.sessions is not None:
            with session_scope(self.sessions) as session:
                crud.release_lock(session=session, name=self.name, holder=self.holder)

    def abandon(self) -> None:
        """Close the lock's connection without unlocking (what a crash looks like)."""
        self._drop(invalidate=True)

    def _drop(self, *, invalidate: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if invalidate:
            conn.invalidate()
        conn.close()

    def current_holder(self) -> str | None:
        if self.sessions is None:
            return None
        with self.sessions() as session:
            return crud.lock_holder(session=session, name=self.name)


def make_leader_lock(engine: Engine, sessions: sessionmaker[Session], *, ttl: timedelta) -> LeaderLock:
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine, holder=holder_id(), sessions=sessions)
    return LeaseLock(sessions, holder=holder_id(), ttl=ttl)
