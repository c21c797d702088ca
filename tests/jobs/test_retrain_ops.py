"""The ops report's Promote / Rollback buttons over real HTTP: signed block_actions into the bot's endpoint,
the fake Slack Web API, admins only, audited, and the serving model swapped without restart."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.deps import Deps
from bot.log import get_logger
from bot.model_holder import ModelHolder
from bot.storage import registry
from bot.storage.tables import ModelAudit
from models.artifact import read_meta, write_meta
from tests.fakes import events
from tests.fakes.events import SlackSender
from tests.fakes.slack import FakeSlack
from tests.jobs.learn_fixtures import register_active, shared_tiny_world

SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "xoxb-1-2-opsbuttonstoken"
ADMIN, AGENT, OPS = "U0ADMIN001", "U0AGENT001", "C0OPS0001"
T = TypeVar("T")


def wait_until(check: Callable[[], T], what: str, timeout: float = 10.0) -> T:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return value


@pytest.fixture
def ops_bot(make_settings: Any, db_url: str, sessions: sessionmaker[Session], tmp_path: Path
            ) -> Iterator[tuple[Deps, FakeSlack, SlackSender, str, str]]:
    from bot import listeners
    from bot.app import build_app, make_runtime
    from bot.listeners import ops
    from bot.server import BackgroundServer, create_web_app

    world = shared_tiny_world()
    second = tmp_path / "v1"
    shutil.copytree(world.artifact, second)
    meta = read_meta(second)
    meta.model_version = "20990101-000000-c0ffee"
    write_meta(second, meta)
    with sessions() as session:
        first = register_active(session, world.artifact)
        registry.register_version(session=session, version=meta.model_version, path=str(second), metrics={})
        registry.reject(session=session, version=meta.model_version, actor="retrain", reason="dev fell")
        session.commit()
    with FakeSlack() as slack:
        settings = make_settings(SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=slack.api_url,
                                 DATABASE_URL=db_url, BEACON_ADMINS=ADMIN, BEACON_OPS_CHANNEL=OPS, BEACON_DEVICE="cpu")
        models = ModelHolder(sessions, device="cpu")
        models.current()
        deps = Deps(settings=settings, sessions=sessions, models=models, log=get_logger("tests.ops"))
        rt = make_runtime(deps)
        acks, lazies = ThreadPoolExecutor(2), ThreadPoolExecutor(2)
        app = build_app(deps, runtime=rt, ack_executor=acks, lazy_executor=lazies)
        if ops not in getattr(listeners, "MODULES", ()):
            ops.register(app, rt)
        server = BackgroundServer(create_web_app(app, models)).start()
        sender = SlackSender(server.url + "/slack/events", SECRET)
        try:
            yield deps, slack, sender, first, meta.model_version
        finally:
            server.stop()
            acks.shutdown(wait=True)
            lazies.shutdown(wait=True)
            sender.close()
        assert slack.spec_violations == []


def _click(slack: FakeSlack, sender: SlackSender, action: str, value: str, user: str) -> None:
    payload = events.block_action(action, value, user=user, channel=OPS, message_ts="1700000000.000100",
                                  response_url=slack.response_url())
    response = sender.interactive(payload)
    assert response.status_code == 200, response.text


def _active(deps: Deps) -> str | None:
    with deps.sessions() as session:
        row = registry.active_version(session=session)
        return row.version if row else None


def test_promote_and_rollback_buttons(ops_bot: tuple[Deps, FakeSlack, SlackSender, str, str]) -> None:
    from jobs.report import ACTION_PROMOTE, ACTION_ROLLBACK

    deps, slack, sender, first, candidate = ops_bot
    _click(slack, sender, ACTION_PROMOTE, candidate, AGENT)
    refusal = slack.wait_for("chat.postEphemeral")[0]
    assert refusal.arg("user") == AGENT and "admins" in refusal.arg("text")
    assert _active(deps) == first and deps.models.version == first

    _click(slack, sender, ACTION_PROMOTE, candidate, ADMIN)
    note = slack.wait_for("chat.postMessage", where=lambda c: c.arg("channel") == OPS)[0]
    assert note.arg("thread_ts") == "1700000000.000100" and candidate in note.arg("text")
    assert _active(deps) == candidate
    assert deps.models.version == candidate  # swapped in this process without restart
    with deps.sessions() as session:
        audit = session.scalars(select(ModelAudit).where(ModelAudit.action == "promote",
                                                         ModelAudit.version == candidate)).one()
        assert audit.actor == f"slack:{ADMIN}" and "overriding the gate" in (audit.reason or "")

    _click(slack, sender, ACTION_ROLLBACK, candidate, ADMIN)
    wait_until(lambda: len(slack.calls_to("chat.postMessage", lambda c: c.arg("channel") == OPS)) == 2, "rollback")
    assert _active(deps) == first and deps.models.version == first
    with deps.sessions() as session:
        rollback = session.scalars(select(ModelAudit).where(ModelAudit.action == "rollback")).one()
        assert rollback.actor == f"slack:{ADMIN}" and rollback.version == first

    _click(slack, sender, ACTION_PROMOTE, "no-such-version", ADMIN)
    failure = slack.wait_for("chat.postEphemeral", 2)[-1]
    assert failure.arg("user") == ADMIN and "Could not promote" in failure.arg("text")
