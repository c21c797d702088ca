"""The Slack bot under test: a real uvicorn server, the fake Slack Web API over HTTP, signed requests,
real SQLite and PostgreSQL, and a tiny random BERT artifact (never real weights).

``make_bot(**env)`` starts one bot (settings from ``env``) and stops it at teardown, after its
lazy listeners finished, so no thread outlives the test's database.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.deps import Deps
from bot.log import get_logger
from bot.model_holder import ModelHolder
from bot.settings import Settings
from bot.storage import registry
from bot.storage.db import session_scope
from tests.fakes import events
from tests.fakes.events import SlackSender
from tests.fakes.slack import FakeSlack

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
AGENT = "U0AGENT001"
CUSTOMER = "U0CUSTOMER"
SUPPORT = "C0SUPPORT1"
ALERTS = "C0ALERTS01"
GENERAL = "C0GENERAL1"
NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
MODEL_VERSION = "20240101-000000-b0b0b0"
T = TypeVar("T")


@pytest.fixture(scope="session")
def bot_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny random-BERT artifact (hidden 32, 2 layers): milliseconds per analysis."""
    import torch

    from models.artifact import ArtifactMeta, save_artifact
    from tests.models.tiny import tiny_model, write_tokenizer

    torch.manual_seed(7)
    root = tmp_path_factory.mktemp("bot-model")
    tokenizer = write_tokenizer(root / "tokenizer")
    model = tiny_model(tokenizer, labels=len(NER_LABELS))
    meta = ArtifactMeta(model_version=MODEL_VERSION, ner_labels=NER_LABELS,
                        sentiment_labels=["negative", "neutral", "positive"], encoder_config={},
                        metrics={"dev": {"task": "sentiment", "accuracy": 0.5, "macro_f1": 0.4}})
    return save_artifact(root / "artifact", model, tokenizer, meta)


def register_active(sessions: sessionmaker[Session], path: Path) -> str:
    with session_scope(sessions) as session:
        registry.register_version(session=session, version=MODEL_VERSION, path=str(path),
                                  metrics={"dev": {"accuracy": 0.5, "macro_f1": 0.4}})
        registry.promote(session=session, version=MODEL_VERSION, actor="tests")
    return MODEL_VERSION


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """For tests that run the CLI in process: its logging setup must not outlive the test's streams."""
    import logging

    import structlog

    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**saved)
    root.handlers, root.level = handlers, level


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """The fake Web API; the test fails if the bot used a parameter the official spec doesn't know."""
    slack = FakeSlack()
    slack.add_user(AGENT, name="dana")
    slack.add_user(CUSTOMER, name="casey")
    slack.add_user("U0OTHERBOT", name="otherbot", is_bot=True)
    with slack:
        yield slack
    assert slack.spec_violations == [], slack.spec_violations


def wait_until(check: Callable[[], T], *, timeout: float = 10.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy (bounded); AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Bot:
    settings: Settings
    deps: Deps
    slack: FakeSlack
    sender: SlackSender
    url: str
    stops: list[Callable[[], None]] = field(default_factory=list)

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.deps.sessions

    def rows(self, model: Any, *where: Any) -> list[Any]:
        with self.sessions() as session:
            return list(session.scalars(select(model).where(*where).order_by(model.id)))

    def send_event(self, event: dict[str, Any], **kwargs: Any) -> Any:
        response = self.sender.event(events.envelope(event, bot_user_id=self.slack.bot_user_id), **kwargs)
        assert response.status_code == 200, response.text
        return response

    def mention(self, text: str, *, channel: str = GENERAL, user: str = AGENT, **kwargs: Any) -> dict[str, Any]:
        event = events.app_mention(text, user=user, channel=channel, bot_user_id=self.slack.bot_user_id, **kwargs)
        self.slack.add_message(channel, event["ts"], event["text"], user=user, thread_ts=kwargs.get("thread_ts"))
        self.send_event(event)
        return event

    def wait_post(self, channel: str, count: int = 1) -> Any:
        """The ``count``-th chat.postMessage in ``channel``, once its bot_posts row is stored."""
        from bot.storage.tables import BotPost

        call = self.slack.wait_for("chat.postMessage", count,
                                   where=lambda c: c.args.get("channel") == channel and c.response.get("ok"))[-1]
        ts = call.response["ts"]
        wait_until(lambda: self.rows(BotPost, BotPost.channel == channel, BotPost.ts == ts), what="bot_posts row")
        return call

    def react(self, kind: str, name: str, *, channel: str, ts: str, user: str = AGENT) -> None:
        self.send_event(events.reaction(kind, name, user=user, channel=channel, ts=ts,
                                        item_user=self.slack.bot_user_id))


@pytest.fixture
def bot_model(sessions: sessionmaker[Session], bot_model_dir: Path) -> str:
    return register_active(sessions, bot_model_dir)


@pytest.fixture
def make_bot(
    make_settings: Callable[..., Settings], sessions: sessionmaker[Session], bot_model: str, fake_slack: FakeSlack,
    db_url: str,
) -> Iterator[Callable[..., Bot]]:
    from bot.app import build_app
    from bot.server import BackgroundServer, create_web_app

    bots: list[Bot] = []

    def start(**env: str) -> Bot:
        base = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake_slack.api_url,
                "DATABASE_URL": db_url, "BEACON_MONITOR_CHANNELS": SUPPORT, "BEACON_ALERT_CHANNEL": ALERTS,
                "BEACON_DEVICE": "cpu"}
        settings = make_settings(**{**base, **env})
        models = ModelHolder(sessions, device="cpu")
        models.current()
        deps = Deps(settings=settings, sessions=sessions, models=models, log=get_logger("tests.bot"))
        acks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="test-ack")
        lazies = ThreadPoolExecutor(max_workers=4, thread_name_prefix="test-lazy")
        app = build_app(deps, ack_executor=acks, lazy_executor=lazies)
        server = BackgroundServer(create_web_app(app, models)).start()
        sender = SlackSender(server.url + "/slack/events", SECRET)
        bot = Bot(settings=settings, deps=deps, slack=fake_slack, sender=sender, url=server.url)
        bot.stops += [sender.close, server.stop, lambda: acks.shutdown(wait=True), lambda: lazies.shutdown(wait=True)]
        bots.append(bot)
        return bot

    yield start
    for bot in bots:
        for stop in bot.stops:
            stop()


@pytest.fixture
def bot(make_bot: Callable[..., Bot]) -> Bot:
    return make_bot()
