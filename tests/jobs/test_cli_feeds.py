"""`beacon feeds ...` and `beacon worker` as a user runs them: subprocesses, real databases."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.storage import registry
from bot.storage.db import make_engine, make_session_factory, session_scope, upgrade
from bot.storage.tables import FeedItem
from models.artifact import read_meta
from tests.conftest import _postgres_schema_url
from tests.jobs.feedserver import FeedServer, Route, fixture


def environment(env: dict[str, str]) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("BEACON_", "SLACK_", "DATABASE_URL"))}
    full.update({"BEACON_LOG_FORMAT": "json", "HF_HUB_OFFLINE": "1", "COLUMNS": "160", **env})
    return full


def beacon(*args: str, env: dict[str, str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", *args],
        env=environment(env), cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )


def activate(sessions: sessionmaker[Session], artifact: Path) -> None:
    """Register the tiny artifact as the active model (so nothing trains the default one)."""
    version = read_meta(artifact).model_version
    with session_scope(sessions) as session:
        registry.register_version(session=session, version=version, path=str(artifact), metrics={})
        registry.promote(session=session, version=version, actor="test")


def test_feeds_add_list_remove(db_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": db_url, "BEACON_HOME": str(tmp_path)}
    added = beacon("feeds", "add", "https://news.example.com/rss.xml", "--channel", "C0NEWS001",
                   "--watch", "Acme Corp,ACME,$ACME", "--interval", "5", env=env, cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    assert "feed 1 added" in added.stdout and "every 5 min" in added.stdout
    listed = beacon("feeds", "list", "--json", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["id"], row["channel"], row["interval_minutes"], row["status"]) == (1, "C0NEWS001", 5, "never polled")
    assert sorted(row["watches"]) == ["ACME", "Acme Corp"]  # ACME and $ACME are one watch
    table = beacon("feeds", "list", env=env, cwd=tmp_path)
    assert "never polled" in table.stdout and "next poll" in table.stdout
    removed = beacon("feeds", "remove", "1", env=env, cwd=tmp_path)
    assert removed.returncode == 0 and "feed 1 removed" in removed.stdout
    assert json.loads(beacon("feeds", "list", "--json", env=env, cwd=tmp_path).stdout) == []
    again = beacon("feeds", "remove", "1", env=env, cwd=tmp_path)
    assert again.returncode == 1 and "feed 1 does not exist" in again.stderr
    bad = beacon("feeds", "add", "not-a-url", "--channel", "C1", env=env, cwd=tmp_path)
    assert bad.returncode == 1 and "http(s)" in bad.stderr


def test_backfill_shows_a_progress_bar(tmp_path: Path, feed_server: FeedServer, feed_artifact: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'cli.db'}"  # the storage itself is tested on both databases elsewhere
    engine = make_engine(db_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    activate(sessions, feed_artifact)
    env = {"DATABASE_URL": db_url, "BEACON_HOME": str(tmp_path)}
    url = feed_server.route("/nyt.xml", Route(body=fixture("rss20.xml"), etag='"x"'))
    assert beacon("feeds", "add", url, "--channel", "C0NEWS001", env=env, cwd=tmp_path).returncode == 0
    out = beacon("feeds", "backfill", "1", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Analysing feed 1" in out.stdout and "3/3" in out.stdout
    assert "3 entries, 3 analysed, 3 new" in out.stdout
    assert "if-none-match" not in feed_server.seen("/nyt.xml")[0].headers  # a full fetch
    with sessions() as session:
        assert len(session.scalars(select(FeedItem).where(FeedItem.document_id.is_not(None))).all()) == 3
    polled = beacon("feeds", "poll", "--once", env=env, cwd=tmp_path)
    assert polled.returncode == 0, polled.stderr
    assert "not_modified" in polled.stdout and "alerts: 0 posted" in polled.stdout
    assert feed_server.seen("/nyt.xml")[1].headers["if-none-match"] == '"x"'
    engine.dispose()


# --- two `beacon worker` processes against PostgreSQL -------------------------------------------
@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _postgres_schema_url()


def events(stream: str) -> list[dict[str, Any]]:
    out = []
    for line in stream.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def wait_for_event(log: Path, event: str, timeout: float, *, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    """Wait until the worker's JSON log file holds ``event``; returns its first occurrence."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in events(log.read_text(errors="replace")) if e.get("event") == event]
        if found:
            return found[0]
        if proc.poll() is not None:
            raise AssertionError(f"worker exited ({proc.returncode}) before {event}: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    raise AssertionError(f"no {event} within {timeout}s: {log.read_text(errors='replace')[-2000:]}")


def start_worker(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "worker"],
                                env=environment(env), cwd=cwd, stdout=subprocess.DEVNULL, stderr=sink)


@pytest.mark.postgres
def test_two_worker_processes_one_leader_and_a_takeover(pg_url: str, tmp_path: Path, feed_server: FeedServer,
                                                        feed_artifact: Path) -> None:
    """Two real `beacon worker` processes: one leads and polls, the standby takes over after SIGTERM.
    (Crashes, where the lock is never released, are covered in-process in test_scheduler.py.)"""
    engine = make_engine(pg_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    activate(sessions, feed_artifact)
    env = {"DATABASE_URL": pg_url, "BEACON_HOME": str(tmp_path)}
    url = feed_server.route("/w.xml", Route(body=fixture("rss20.xml")))
    assert beacon("feeds", "add", url, "--channel", "C0NEWS001", env=env, cwd=tmp_path).returncode == 0
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = start_worker(env, tmp_path, first_log)
    second = None
    try:
        wait_for_event(first_log, "scheduler.leader", 90, proc=first)
        second = start_worker(env, tmp_path, second_log)
        wait_for_event(second_log, "scheduler.standby", 90, proc=second)
        wait_for_event(first_log, "feed.polled", 60, proc=first)
        assert len(feed_server.seen("/w.xml")) == 1  # only the leader polls
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)
        leader = wait_for_event(second_log, "scheduler.leader", 60, proc=second)
        assert "feeds.poll" in leader["jobs"]
        assert first.returncode == 0, first_log.read_text(errors="replace")[-3000:]
        assert wait_for_event(first_log, "scheduler.stopped", 1, proc=first)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        engine.dispose()
