"""Alert rules over constructed predictions (no model), posted through the real SlackPoster to the
fake Slack Web API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.deps import Deps
from bot.storage import crud
from bot.storage import feeds as store
from bot.storage.db import session_scope
from bot.storage.tables import Alert, BotPost, utcnow
from jobs.alert_rules import WatchKey, entity_rule, matches, spike_stats
from jobs.alerts import run_alerts
from tests.fakes.slack import Call, FakeSlack

MakeDeps = Callable[..., tuple[Deps, Any]]
FEEDS = "C0FEEDS01"


def ent(text: str, label: str = "ORG", source: str = "model") -> dict[str, Any]:
    return {"text": text, "label": label, "start": 0, "end": len(text), "score": 0.9, "source": source}


def story(
    session: Session, feed_id: int, title: str, *, sentiment: str, score: float, entities: list[dict[str, Any]],
    key: str, channel: str = FEEDS, published_at: datetime | None = None,
) -> int:
    doc = crud.add_document(session=session, source="feed", text=title, channel=channel, external_id=f"feed:{key}")
    pred = crud.add_prediction(
        session=session, document=doc, model_version="vtest-1", entities=entities, sentiment_label=sentiment,
        sentiment_score=score, sentiment_probs={sentiment: score}, latency_ms=1.0,
    )
    item = store.add_item(session=session, feed_id=feed_id, guid_key=f"guid:{key}", story_key=key,
                          link=f"https://news.example.com/{key}", title=title, summary="", published_at=published_at,
                          document_id=doc.id)
    assert item is not None
    return pred.id


def new_feed(sessions: sessionmaker[Session], *, channel: str = FEEDS, watches: list[str] | None = None,
             title: str = "Market Wire") -> int:
    with session_scope(sessions) as session:
        feed = store.add_feed(session=session, url=f"https://news.example.com/{channel}.xml", channel=channel,
                              watches=watches)
        feed.title = title
        return feed.id


def posts(slack: FakeSlack, channel: str | None = None) -> list[Call]:
    return slack.calls_to("chat.postMessage", where=lambda c: channel is None or c.arg("channel") == channel)


def blocks_text(call: Call) -> str:
    blocks = call.arg("blocks")
    return blocks if isinstance(blocks, str) else json.dumps(blocks)


# --- pure rules --------------------------------------------------------------------------------
WATCHES = [WatchKey("Acme Corp", "acme corp"), WatchKey("ACME", "acme"), WatchKey("$ACME", "acme")]


def test_entity_rule_fires_only_on_negative_items_about_a_watch() -> None:
    def fire(label: str, score: float, entities: list[dict[str, Any]]) -> bool:
        return entity_rule(sentiment_label=label, sentiment_score=score, entities=entities, watches=WATCHES,
                           threshold=0.8) is not None

    assert fire("negative", 0.93, [ent("ACME CORP.")])
    assert fire("negative", 0.80, [ent("$ACME", "TICKER", "pattern")])
    assert fire("negative", 0.85, [ent("NASDAQ: ACME", "TICKER", "pattern")])
    assert not fire("positive", 0.99, [ent("Acme Corp")])
    assert not fire("negative", 0.79, [ent("Acme Corp")])
    assert not fire("negative", 0.99, [ent("Globex")])
    assert not fire("negative", 0.99, [ent("Acmeco")])
    assert not fire("negative", 0.99, [])


def test_matching_is_case_insensitive_and_whole_word() -> None:
    assert matches("acme corp's", WatchKey("Acme Corp", "acme corp"))
    assert matches("Acme Corp Holdings", WatchKey("Acme Corp", "acme corp"))
    assert not matches("Acme", WatchKey("Acme Corp", "acme corp"))
    assert not matches("Pacme", WatchKey("ACME", "acme"))


def test_spike_stats() -> None:
    assert spike_stats(["negative"] * 5 + ["neutral"] * 5, min_items=10, threshold=0.4).fires
    assert not spike_stats(["negative"] * 4 + ["neutral"] * 6, min_items=10, threshold=0.4).fires  # 40% is not above
    assert not spike_stats(["negative"] * 9, min_items=10, threshold=0.4).fires


# --- entity alerts end to end ---------------------------------------------------------------------
def test_entity_alert_fires_once_per_channel_and_stores_its_post(
    make_deps: MakeDeps, sessions: sessionmaker[Session], slack: FakeSlack
) -> None:
    deps, poster = make_deps(model=False)
    feed_id = new_feed(sessions, watches=["Acme Corp", "ACME", "$ACME"])
    with session_scope(sessions) as session:
        hit = story(session, feed_id, "Acme Corp <!channel> shares plunge & fraud probe", sentiment="negative",
                    score=0.93, entities=[ent("Acme Corp")], key="acme-1")
        story(session, feed_id, "Acme Corp posts record profit", sentiment="positive", score=0.97,
              entities=[ent("Acme Corp")], key="acme-2")
        story(session, feed_id, "Globex hit by lawsuit", sentiment="negative", score=0.95,
              entities=[ent("Globex")], key="globex-1")
        story(session, feed_id, "$ACME slips", sentiment="negative", score=0.55,
              entities=[ent("$ACME", "TICKER", "pattern")], key="acme-3")
    counts = run_alerts(deps, poster)
    assert counts["entity_alerts"] == 1 and counts["posted"] == 1
    [call] = posts(slack)
    assert call.arg("channel") == FEEDS
    shown = blocks_text(call)
    assert "<https://news.example.com/acme-1|Acme Corp &lt;!channel&gt; shares plunge &amp; fraud probe>" in shown
    assert "<!channel>" not in shown and "<!channel>" not in call.arg("text")
    assert "Market Wire" in shown and "Acme Corp" in shown and "negative" in shown and "93%" in shown
    assert "vtest-1" in shown
    with sessions() as session:
        alert = session.scalars(select(Alert)).one()
        assert (alert.kind, alert.status, alert.prediction_id, alert.matched) == ("entity", "posted", hit, "Acme Corp")
        post = session.scalars(select(BotPost)).one()
        assert (post.channel, post.ts, post.kind, post.prediction_id, post.alert_id) == (
            FEEDS, call.response["ts"], "alert", hit, alert.id)
    # the same story again: a second feed in the same channel, and a re-run
    other = new_feed(sessions, watches=["acme corp"], title="Other Wire")
    with session_scope(sessions) as session:
        story(session, other, "Acme Corp shares plunge", sentiment="negative", score=0.93,
              entities=[ent("Acme Corp")], key="acme-1")
    assert run_alerts(deps, poster)["posted"] == 0
    assert len(posts(slack)) == 1
    # ...but a feed in another channel still alerts there, and global watches count too
    elsewhere = new_feed(sessions, channel="C0ELSE001", title="Elsewhere")
    with session_scope(sessions) as session:
        store.add_watch(session=session, name="Acme Corp")
        story(session, elsewhere, "Acme Corp shares plunge", sentiment="negative", score=0.93,
              entities=[ent("Acme Corp")], key="acme-1", channel="C0ELSE001")
    assert run_alerts(deps, poster)["posted"] == 1
    assert len(posts(slack, "C0ELSE001")) == 1
    assert slack.spec_violations == []


def test_rate_limit_posts_five_then_one_digest(
    make_deps: MakeDeps, sessions: sessionmaker[Session], slack: FakeSlack
) -> None:
    deps, poster = make_deps(model=False)
    feed_id = new_feed(sessions, watches=["Acme"])
    with session_scope(sessions) as session:
        for n in range(8):
            story(session, feed_id, f"Acme setback number {n}", sentiment="negative", score=0.9,
                  entities=[ent("Acme")], key=f"acme-{n}")
    now = utcnow()
    counts = run_alerts(deps, poster, now=now)
    assert (counts["posted"], counts["digests"], counts["digested"]) == (5, 1, 3)
    calls = posts(slack, FEEDS)
    assert len(calls) == 6
    digest = calls[-1]
    assert "3 more alerts" in digest.arg("text")
    assert all(f"Acme setback number {n}" in blocks_text(digest) for n in (5, 6, 7))
    with sessions() as session:
        statuses = sorted(a.status for a in session.scalars(select(Alert).where(Alert.kind == "entity")))
        assert statuses == ["digested"] * 3 + ["posted"] * 5
        kinds = sorted(p.kind for p in session.scalars(select(BotPost)))
        assert kinds == ["alert"] * 5 + ["digest"]
    # more alerts within the same window wait (no second digest), then go out when it has passed
    with session_scope(sessions) as session:
        story(session, feed_id, "Acme setback number 8", sentiment="negative", score=0.9,
              entities=[ent("Acme")], key="acme-8")
    later = run_alerts(deps, poster, now=now + timedelta(minutes=2))
    assert (later["posted"], later["digests"], later["deferred"]) == (0, 0, 1)
    after = run_alerts(deps, poster, now=now + timedelta(minutes=11))
    assert after["posted"] == 1 and len(posts(slack, FEEDS)) == 7


# --- spike alerts -----------------------------------------------------------------------------------
def add_messages(sessions: sessionmaker[Session], channel: str, labels: list[str], at: datetime,
                 source: str = "slack") -> None:
    with session_scope(sessions) as session:
        for n, label in enumerate(labels):
            doc = crud.add_document(session=session, source=source, text=f"message {n} ({label})", channel=channel,
                                    external_id=f"{at.timestamp()}-{n}")
            pred = crud.add_prediction(session=session, document=doc, model_version="vtest-1", entities=[],
                                       sentiment_label=label, sentiment_score=0.9, sentiment_probs={label: 0.9},
                                       latency_ms=1.0)
            pred.created_at = at - timedelta(minutes=1)


def test_spike_fires_once_then_cools_down(make_deps: MakeDeps, sessions: sessionmaker[Session], slack: FakeSlack
                                          ) -> None:
    deps, poster = make_deps(model=False, BEACON_MONITOR_CHANNELS="C0SUPPORT", BEACON_ALERT_CHANNEL="C0ALERTS")
    now = utcnow()
    add_messages(sessions, "C0SUPPORT", ["negative"] * 5 + ["neutral"] * 5, now)
    first = run_alerts(deps, poster, now=now)
    assert first["spike_alerts"] == 1 and first["posted"] == 1
    [call] = posts(slack, "C0ALERTS")
    assert "5 of 10 items (50%)" in blocks_text(call) and "<#C0SUPPORT>" in blocks_text(call)
    add_messages(sessions, "C0SUPPORT", ["negative"] * 4, now + timedelta(minutes=30))
    assert run_alerts(deps, poster, now=now + timedelta(minutes=30))["spike_alerts"] == 0  # cooling down
    assert run_alerts(deps, poster, now=now + timedelta(minutes=119))["spike_alerts"] == 0
    later = now + timedelta(hours=3)
    add_messages(sessions, "C0SUPPORT", ["negative"] * 6 + ["positive"] * 4, later)
    assert run_alerts(deps, poster, now=later)["spike_alerts"] == 1
    assert len(posts(slack, "C0ALERTS")) == 2


def test_feed_spike_counts_items_by_their_date_and_needs_enough_of_them(
    make_deps: MakeDeps, sessions: sessionmaker[Session], slack: FakeSlack
) -> None:
    deps, poster = make_deps(model=False)
    feed_id = new_feed(sessions)
    other = new_feed(sessions, title="Other Wire")
    now = utcnow()

    def add(n: int, label: str, published: datetime, prefix: str, feed: int = feed_id) -> None:
        with session_scope(sessions) as session:
            for i in range(n):
                story(session, feed, f"{prefix} {label} {i}", sentiment=label, score=0.9, entities=[],
                      key=f"{prefix}-{label}-{i}", published_at=published)

    add(30, "negative", now - timedelta(days=2), "backlog")  # an imported backlog is not a spike
    add(9, "negative", now - timedelta(minutes=10), "fresh")
    assert run_alerts(deps, poster, now=now)["spike_alerts"] == 0  # 9 items: not enough
    with session_scope(sessions) as session:  # the same story in a second feed of the channel counts once
        story(session, other, "fresh negative 0", sentiment="negative", score=0.9, entities=[],
              key="fresh-negative-0", published_at=now - timedelta(minutes=10))
    assert run_alerts(deps, poster, now=now)["spike_alerts"] == 0
    add(3, "neutral", now - timedelta(minutes=5), "fresh")
    assert run_alerts(deps, poster, now=now)["spike_alerts"] == 1
    [call] = posts(slack, FEEDS)
    assert "9 of 12 items (75%)" in blocks_text(call)
