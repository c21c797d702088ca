"""`beacon serve` as a real subprocess: send signed traffic, scrape /metrics, parse it with
prometheus_client's parser, and check that the counters moved."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.storage.db import make_engine, make_session_factory, upgrade
from tests.bot.conftest import AGENT, GENERAL, MODEL_VERSION, SECRET, TOKEN, register_active, wait_until
from tests.fakes import events
from tests.fakes.events import SlackSender
from tests.fakes.slack import FakeSlack


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(db_url: str, bot_model_dir: Path, fake_slack: FakeSlack, tmp_path: Path) -> Iterator[str]:
    engine = make_engine(db_url)
    upgrade(engine)
    register_active(make_session_factory(engine), bot_model_dir)
    engine.dispose()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BEACON_", "SLACK_", "DATABASE_URL"))}
    env.update({
        "DATABASE_URL": db_url, "BEACON_HOME": str(tmp_path / "home"), "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake_slack.api_url, "BEACON_LOG_FORMAT": "json",
        "BEACON_RETRAIN_SCHEDULER": "external", "HF_HUB_OFFLINE": "1",
    })
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from bot.cli import main; main()", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "beacon serve did not come up in 90 s"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url + "/metrics", timeout=5).text
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_with_traffic(served: str, fake_slack: FakeSlack) -> None:
    before = scrape(served)
    assert value(before, "beacon_model_info", version=MODEL_VERSION) == 1.0
    sender = SlackSender(served + "/slack/events", SECRET)
    event = events.app_mention("<@UBEACON00> Acme Corp lost my parcel again", user=AGENT, channel=GENERAL,
                               bot_user_id=fake_slack.bot_user_id)
    response = sender.event(events.envelope(event, bot_user_id=fake_slack.bot_user_id))
    assert response.status_code == 200
    reply = fake_slack.wait_for("chat.postMessage", 1)[-1]
    sender.event(events.envelope(
        events.reaction("reaction_added", "+1", user=AGENT, channel=GENERAL, ts=reply.response["ts"],
                        item_user=fake_slack.bot_user_id), bot_user_id=fake_slack.bot_user_id))
    bad = sender.event({"type": "event_callback"}, secret="wrong-secret")
    assert bad.status_code == 401

    after = wait_until(
        lambda: (s := scrape(served)) and value(s, "beacon_feedback_total", kind="confirm") >= 1 and s,
        timeout=20, what="the confirm to be counted",
    )
    assert value(after, "beacon_events_received_total", type="app_mention") >= 1
    assert value(after, "beacon_events_acked_total", type="app_mention") >= 1
    assert value(after, "beacon_events_received_total", type="reaction_added") >= 1
    assert value(after, "beacon_ack_latency_seconds_count") > value(before, "beacon_ack_latency_seconds_count")
    analysis = "beacon_analysis_latency_seconds_count"
    assert value(after, analysis) > value(before, analysis)
    processed = sum(v for (name, labels), v in after.items()
                    if name == "beacon_events_processed_total" and ("type", "app_mention") in labels)
    assert processed >= 1
