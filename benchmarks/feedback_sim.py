"""The real Slack path for the feedback-loop benchmark: one bot, its HTTP endpoint, the fake Slack Web API,
signed events, and simulated agents who react 👍, or 👎 and correct through the modal.

Each variant (clean, noisy) gets its own database, bot and fake Slack; `beacon retrain` runs as a
subprocess on the same database, and the bot swaps the promoted model in as its poll would.
"""

from __future__ import annotations

import html
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select

from bot.deps import Deps
from bot.log import get_logger
from bot.model_holder import ModelHolder
from bot.settings import load_settings
from bot.storage import registry
from bot.storage.db import make_engine, make_session_factory, session_scope, upgrade
from bot.storage.tables import BotPost, Feedback, Prediction
from tests.fakes import events
from tests.fakes.events import SlackSender
from tests.fakes.slack import FakeSlack

SECRET = "5f2b6c1d9e8a7b6c5d4e3f2a1b0c9d8e"
TOKEN = "xoxb-100-200-feedbackloopbenchmark"
CHANNEL = "C0TWEETS01"
AGENTS = [f"U0AGENT{i:03d}" for i in range(1, 6)]
SENTIMENTS = ("negative", "neutral", "positive")
T = TypeVar("T")


def wait_until(check: Callable[[], T], what: str, timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)
    return value


@dataclass
class Counts:
    events: int = 0
    confirms: int = 0
    corrections: int = 0
    flipped: int = 0
    agreed: int = 0  # predictions that matched the gold label


@dataclass
class SlackBot:
    """A running bot (HTTP endpoint + lazy listeners) with its own database and fake Slack."""

    env: dict[str, str]
    deps: Deps
    slack: FakeSlack
    sender: SlackSender
    stops: list[Callable[[], None]] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)

    @classmethod
    def start(cls, folder: Path, *, artifact: Path, version: str, base_train: str, base_dev: str,
              device: str) -> SlackBot:
        from bot.app import build_app
        from bot.server import BackgroundServer, create_web_app

        folder.mkdir(parents=True, exist_ok=True)
        slack = FakeSlack(check_spec=False).start()
        for agent in AGENTS:
            slack.add_user(agent, name=agent.lower())
        env = {"DATABASE_URL": f"sqlite:///{folder / 'beacon.db'}", "BEACON_HOME": str(folder / "home"),
               "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack.api_url,
               "BEACON_BASE_TRAIN": base_train, "BEACON_BASE_DEV": base_dev, "BEACON_DEVICE": device,
               "BEACON_LOG_FORMAT": "json", "BEACON_LOG_LEVEL": "WARNING"}
        settings = load_settings(env, env_file=None)
        engine = make_engine(settings.db_url)
        upgrade(engine)
        sessions = make_session_factory(engine)
        with session_scope(sessions) as session:
            registry.register_version(session=session, version=version, path=str(artifact), metrics={})
            registry.promote(session=session, version=version, actor="benchmark", reason="trained on FPB only")
        models = ModelHolder(sessions, device=device)
        models.current()
        deps = Deps(settings=settings, sessions=sessions, models=models, log=get_logger("bench"))
        acks, lazies = ThreadPoolExecutor(4), ThreadPoolExecutor(4)
        app = build_app(deps, ack_executor=acks, lazy_executor=lazies)
        server = BackgroundServer(create_web_app(app, models)).start()
        sender = SlackSender(server.url + "/slack/events", SECRET)
        bot = cls(env, deps, slack, sender)
        bot.stops += [server.stop, lambda: acks.shutdown(wait=True), lambda: lazies.shutdown(wait=True),
                      sender.close, slack.stop, engine.dispose]
        return bot

    def stop(self) -> None:
        for stop in self.stops:
            stop()

    # ------------------------------------------------------------------ one conversation

    def _post_of(self, thread: str) -> tuple[str, int] | None:
        call = self.slack.calls_to("chat.postMessage", lambda c: c.args.get("thread_ts") == thread
                                   and bool(c.response.get("ok")))
        if not call:
            return None
        ts = call[0].response["ts"]
        with self.deps.sessions() as session:
            post = session.scalars(select(BotPost).where(BotPost.channel == CHANNEL, BotPost.ts == ts)).first()
            return (ts, post.prediction_id) if post is not None and post.prediction_id else None

    def ask(self, text: str, user: str) -> tuple[str, str, int, str]:
        """Mention the bot with ``text``; (event ts, reply ts, prediction id, predicted sentiment)."""
        event = events.app_mention(html.escape(text, quote=False), user=user, channel=CHANNEL,
                                   bot_user_id=self.slack.bot_user_id)
        response = self.sender.event(events.envelope(event, bot_user_id=self.slack.bot_user_id))
        if response.status_code != 200:
            raise RuntimeError(f"the bot answered {response.status_code}: {response.text[:200]}")
        found = wait_until(lambda: self._post_of(event["ts"]), "the bot's reply")
        assert found is not None
        reply_ts, prediction_id = found
        with self.deps.sessions() as session:
            prediction = session.get(Prediction, prediction_id)
            assert prediction is not None
            return event["ts"], reply_ts, prediction_id, prediction.sentiment_label

    def react(self, name: str, *, ts: str, user: str) -> None:
        self.sender.event(events.envelope(events.reaction("reaction_added", name, user=user, channel=CHANNEL, ts=ts,
                                                          item_user=self.slack.bot_user_id),
                                          bot_user_id=self.slack.bot_user_id))

    def correct(self, *, prediction_id: int, event_ts: str, user: str, sentiment: str) -> None:
        """👎, then the "Correct it" button from the bot's prompt, then the modal with the right sentiment."""
        before = len(self.slack.calls_to("views.open"))
        prompts = len(self.slack.calls_to("chat.postEphemeral"))
        self.react("-1", ts=self._reply_ts(event_ts), user=user)
        prompt = wait_until(lambda: [c for c in self.slack.calls_to("chat.postEphemeral")[prompts:]
                                     if c.arg("blocks")], "the correction prompt")[0]
        click = events.block_action("beacon_correct", str(prediction_id), user=user, channel=CHANNEL,
                                    message_ts=str(prompt.response.get("message_ts", event_ts)), thread_ts=event_ts,
                                    ephemeral=True, response_url=self.slack.response_url("action"))
        self.sender.interactive(click)
        opened = wait_until(lambda: self.slack.calls_to("views.open")[before:], "the correction modal")
        view = opened[0].response["view"]
        submitted = self.sender.interactive(events.view_submission(view, {"sentiment": events.select(sentiment)},
                                                                   user=user))
        if submitted.status_code != 200 or submitted.text:
            raise RuntimeError(f"the modal submission was refused: {submitted.text[:300]}")

    def _reply_ts(self, event_ts: str) -> str:
        found = self._post_of(event_ts)
        assert found is not None
        return found[0]

    def feedback_rows(self) -> int:
        with self.deps.sessions() as session:
            return len(session.scalars(select(Feedback.id).where(Feedback.retracted_at.is_(None))).all())

    def agent_turn(self, text: str, gold: str, rng: random.Random, *, noise: float) -> None:
        """One tweet, one agent, one feedback event (👍, or 👎 + correction); ``noise`` flips it."""
        user = AGENTS[self.counts.events % len(AGENTS)]
        event_ts, reply_ts, prediction_id, predicted = self.ask(text, user)
        right = predicted == gold
        self.counts.agreed += right
        flip = rng.random() < noise
        self.counts.flipped += flip
        before = self.feedback_rows()
        if right != flip:  # a correct answer (or a flipped wrong one) gets 👍
            self.react("+1", ts=reply_ts, user=user)
            self.counts.confirms += 1
            expected = before + 1
        else:
            label = gold if not flip else rng.choice([s for s in SENTIMENTS if s != predicted])
            self.correct(prediction_id=prediction_id, event_ts=event_ts, user=user, sentiment=label)
            self.counts.corrections += 1
            expected = before + 2  # the 👎 vote and the correction
        wait_until(lambda: self.feedback_rows() >= expected, "the feedback rows")
        self.counts.events += 1

    # ------------------------------------------------------------------ retraining

    def retrain(self, timeout: float) -> dict[str, Any]:
        """`beacon retrain --json` as an operator (or the CronJob) runs it; then the bot's hot reload."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BEACON_", "SLACK_", "DATABASE_URL"))}
        env.update(self.env)
        env.setdefault("HF_HUB_OFFLINE", "1")
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", "retrain", "--json"],
                              env=env, capture_output=True, text=True, timeout=timeout, check=False)
        try:
            result = json.loads(done.stdout)
        except json.JSONDecodeError:
            result = {"status": "failed", "error": (done.stderr or done.stdout)[-2000:]}
        result["seconds"] = round(time.monotonic() - started, 1)
        result["swapped"] = self.deps.models.reload_if_changed()
        return dict(result)

    def version_path(self, version: str) -> str:
        with self.deps.sessions() as session:
            return registry.get_version(session=session, version=version).path
