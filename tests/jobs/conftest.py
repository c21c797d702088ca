"""Fixtures for the feeds, alerts and scheduler tests: a feed server, the fake Slack Web API with
the real SlackPoster, a tiny model artifact, and Deps over a real database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.deps import Deps
from bot.model_holder import ModelHolder
from bot.slack_client import SlackGateway, SlackPoster, make_web_client
from tests.fakes.slack import FakeSlack
from tests.jobs.feedserver import FeedServer


class RecordingLog:
    """A structlog-like logger that records (event, fields); ``bind`` shares the record."""

    def __init__(self, events: list[tuple[str, dict[str, Any]]] | None = None, **bound: Any) -> None:
        self.events = events if events is not None else []
        self.bound = bound

    def bind(self, **kw: Any) -> RecordingLog:
        return RecordingLog(self.events, **{**self.bound, **kw})

    def _add(self, event: str, **kw: Any) -> None:
        self.events.append((event, {**self.bound, **kw}))

    debug = info = warning = error = exception = _add

    def named(self, event: str) -> list[dict[str, Any]]:
        return [kw for name, kw in list(self.events) if name == event]


@pytest.fixture(scope="session")
def feed_artifact(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared tiny artifact when the root conftest provides one, else a tiny one trained here."""
    try:
        return Path(request.getfixturevalue("tiny_artifact"))
    except pytest.FixtureLookupError:
        from tests.models.tiny import train_tiny_artifact

        return train_tiny_artifact(tmp_path_factory.mktemp("feeds-model"), epochs=1, n=12)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def make_deps(
    make_settings: Any, db_url: str, sessions: sessionmaker[Session], slack: FakeSlack, feed_artifact: Path
) -> Callable[..., tuple[Deps, SlackPoster]]:
    """Deps (settings from ``env``, the test database, the tiny model) and a real SlackPoster
    talking to the fake Slack Web API."""

    def build(*, model: bool = True, log: Any = None, **env: str) -> tuple[Deps, SlackPoster]:
        base = {
            "DATABASE_URL": db_url, "SLACK_BOT_TOKEN": "xoxb-test-token-0000", "SLACK_API_URL": slack.api_url,
            "BEACON_FEED_CONNECT_TIMEOUT": "2", "BEACON_FEED_READ_TIMEOUT": "0.5",
        }
        settings = make_settings(**{**base, **env})
        holder = ModelHolder(sessions, device="cpu")
        if model:
            holder.load_path(feed_artifact)
        deps = Deps(settings=settings, sessions=sessions, models=holder, log=log or RecordingLog())
        return deps, SlackPoster(SlackGateway(make_web_client(settings)))

    return build
