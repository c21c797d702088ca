"""The HTTP endpoint as Slack sees it: url_verification, signatures, health and metrics."""

from __future__ import annotations

import json
import time

import httpx

from tests.bot.conftest import AGENT, GENERAL, Bot
from tests.fakes import events


def test_url_verification_echoes_the_challenge(bot: Bot) -> None:
    body = {"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification"}
    response = bot.sender.event(body)
    assert response.status_code == 200
    assert response.json() == {"challenge": body["challenge"]}


def test_bad_signature_is_rejected_with_401(bot: Bot) -> None:
    payload = events.envelope(events.app_mention("hello", user=AGENT, channel=GENERAL, bot_user_id="UBEACON00"),
                              bot_user_id="UBEACON00")
    response = bot.sender.event(payload, secret="not-the-signing-secret")
    assert response.status_code == 401
    unsigned = httpx.post(bot.sender.url, content=json.dumps(payload), headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    assert bot.slack.calls_to("chat.postMessage") == []


def test_stale_timestamp_is_rejected_with_401(bot: Bot) -> None:
    payload = events.envelope(events.app_mention("hello", user=AGENT, channel=GENERAL, bot_user_id="UBEACON00"),
                              bot_user_id="UBEACON00")
    response = bot.sender.event(payload, timestamp=int(time.time()) - 10 * 60)
    assert response.status_code == 401
    fresh = bot.sender.event({"type": "url_verification", "challenge": "x", "token": "t"})
    assert fresh.status_code == 200


def test_healthz_and_metrics_share_the_port(bot: Bot) -> None:
    health = httpx.get(bot.url + "/healthz")
    assert health.status_code == 200
    assert health.json()["model_version"] == bot.deps.models.version
    bot.sender.event({"type": "url_verification", "challenge": "c", "token": "t"})
    metrics = httpx.get(bot.url + "/metrics")
    assert metrics.status_code == 200
    assert "beacon_ack_latency_seconds_bucket" in metrics.text
    assert 'beacon_events_received_total{type="url_verification"}' in metrics.text
