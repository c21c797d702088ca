"""Polling end to end over real HTTP into a real database (SQLite and PostgreSQL), with the tiny model."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.deps import Deps
from bot.errors import InputError, NotFound
from bot.storage import feeds as store
from bot.storage.db import session_scope
from bot.storage.tables import BotPost, Document, Feed, FeedItem, Prediction, utcnow
from jobs.feeds import FeedPoller, PollOutcome, next_delay
from tests.fakes.slack import FakeSlack
from tests.jobs.feedserver import FeedServer, Route, fixture

MakeDeps = Callable[..., tuple[Deps, Any]]


def add_feed(deps: Deps, url: str, *, channel: str = "C0FEEDS01", interval: int = 15,
             watches: list[str] | None = None) -> int:
    with session_scope(deps.sessions) as session:
        return store.add_feed(session=session, url=url, channel=channel, interval_minutes=interval,
                              watches=watches).id


def feed_row(sessions: sessionmaker[Session], feed_id: int) -> Feed:
    with sessions() as session:
        feed = session.get(Feed, feed_id)
        assert feed is not None
        return feed


def items_of(sessions: sessionmaker[Session], feed_id: int) -> list[FeedItem]:
    with sessions() as session:
        return list(session.scalars(select(FeedItem).where(FeedItem.feed_id == feed_id).order_by(FeedItem.id)))


def count(sessions: sessionmaker[Session], column: Any) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count(column))) or 0)


def by_feed(outcomes: list[PollOutcome]) -> dict[int, PollOutcome]:
    return {o.feed_id: o for o in outcomes}


def test_subscription_crud(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        feed = store.add_feed(session=session, url="<https://news.example.com/rss|news>", channel="C1",
                              interval_minutes=5, watches=["Acme Corp", "$ACME", "acme corp"])
        store.add_watch(session=session, name="Globex")
        feed_id = feed.id
    with sessions() as session:
        assert [f.url for f in store.list_feeds(session=session)] == ["https://news.example.com/rss"]
        own = store.list_watches(session=session, feed_id=feed_id, include_global=False)
        assert sorted(w.normalized for w in own) == ["acme", "acme corp"]  # "acme corp" twice is one watch
        assert sorted(w.normalized for w in store.list_watches(session=session, feed_id=feed_id)) == [
            "acme", "acme corp", "globex"]
    with session_scope(sessions) as session:
        store.remove_feed(session=session, feed_id=feed_id)
    with sessions() as session:
        assert store.list_feeds(session=session) == []
        with pytest.raises(NotFound):
            store.get_feed(session=session, feed_id=feed_id)
        with pytest.raises(InputError):
            store.add_feed(session=session, url="ftp://example.com/feed", channel="C1")


def test_poll_analyses_and_stores_then_conditional_get_gets_304(
    make_deps: MakeDeps, feed_server: FeedServer, sessions: sessionmaker[Session]
) -> None:
    deps, poster = make_deps()
    url = feed_server.route("/rss.xml", Route(body=fixture("rss20.xml"), etag='"e1"',
                                              last_modified="Mon, 06 Sep 2021 16:45:00 GMT"))
    feed_id = add_feed(deps, url, interval=15)
    poller = FeedPoller(deps, poster)
    t0 = utcnow()
    first = poller.poll_due(now=t0).outcomes
    assert [(o.status, o.new, o.analysed) for o in first] == [("ok", 3, 3)]
    items = items_of(sessions, feed_id)
    assert len(items) == 3 and all(i.document_id for i in items)
    with sessions() as session:
        acme = next(i for i in items if i.guid_key == "guid:mw-1001")
        doc = session.get(Document, acme.document_id)
        assert doc is not None and doc.source == "feed" and doc.channel == "C0FEEDS01"
        assert doc.text == ("Acme Corp shares plunge after fraud probe\n"
                            "Regulators opened an investigation into Acme Corp & its auditors.")
        assert session.scalar(select(func.count(Prediction.id))) == 3
    feed = feed_row(sessions, feed_id)
    assert feed.etag == '"e1"' and feed.min_interval_minutes == 30 and feed.title == "Market Wire & Co"
    assert feed.last_status == "ok" and feed.next_poll_at is not None
    # <ttl>30</ttl> beats the 15-minute interval
    assert poller.poll_due(now=t0 + timedelta(minutes=20)).outcomes == []
    second = poller.poll_due(now=t0 + timedelta(minutes=31)).outcomes
    assert [o.status for o in second] == ["not_modified"]
    sent = feed_server.seen("/rss.xml")[1].headers
    assert sent["if-none-match"] == '"e1"' and sent["if-modified-since"] == "Mon, 06 Sep 2021 16:45:00 GMT"
    assert feed_row(sessions, feed_id).last_status == "not_modified"
    assert count(sessions, Prediction.id) == 3
    poller.close()


def test_size_cap_and_timeout_fail_only_their_feed(
    make_deps: MakeDeps, feed_server: FeedServer, sessions: sessionmaker[Session]
) -> None:
    deps, poster = make_deps(BEACON_FEED_MAX_BYTES="20000")
    good = add_feed(deps, feed_server.route("/good.xml", Route(body=fixture("atom10.xml"))))
    big = add_feed(deps, feed_server.route("/big.xml", Route(stream_bytes=10_000_000)))
    slow = add_feed(deps, feed_server.route("/slow.xml", Route(body=fixture("rss20.xml"), delay_s=2.0)))
    t0 = utcnow()
    outcomes = by_feed(FeedPoller(deps, poster).poll_due(now=t0).outcomes)
    assert outcomes[good].status == "ok" and outcomes[good].new == 2
    assert outcomes[big].status == "error" and "cap" in (outcomes[big].error or "")
    assert outcomes[slow].status == "error" and "timeout" in (outcomes[slow].error or "")
    for feed_id, needle in ((big, "cap"), (slow, "timeout")):
        feed = feed_row(sessions, feed_id)
        assert feed.last_status == "error" and needle in (feed.last_error or "")
        assert feed.consecutive_failures == 1 and feed.etag is None
    assert len(items_of(sessions, good)) == 2 and items_of(sessions, big) == items_of(sessions, slow) == []


def test_dedupe_across_two_polls_and_two_feeds(
    make_deps: MakeDeps, feed_server: FeedServer, sessions: sessionmaker[Session]
) -> None:
    deps, poster = make_deps()
    same_story = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>Other Wire</title>'
        b"<item><title>Acme Corp shares plunge after fraud probe</title><guid>ow-55</guid>"
        b"<link>https://news.example.com/acme-fraud?utm_source=other&amp;utm_campaign=z</link></item>"
        b"<item><title>Hooli opens office</title><guid>ow-56</guid><link>https://other.example/hooli</link></item>"
        b"</channel></rss>"
    )
    feed_a = add_feed(deps, feed_server.route("/a.xml", Route(body=fixture("rss20.xml"))))
    feed_b = add_feed(deps, feed_server.route("/b.xml", Route(body=same_story)), channel="C0OTHER01")
    poller = FeedPoller(deps, poster)
    poller.poll_feed(feed_a)
    b = poller.poll_feed(feed_b)
    assert (b.new, b.shared, b.analysed) == (2, 1, 1)
    again = poller.poll_feed(feed_a)  # no validators on this route: a full 200 again
    assert (again.new, again.unchanged, again.analysed) == (0, 3, 0)
    assert count(sessions, FeedItem.id) == 5
    assert count(sessions, Document.id) == 4  # the shared story was analysed once
    shared = next(i for i in items_of(sessions, feed_b) if i.guid_key == "guid:ow-55")
    original = next(i for i in items_of(sessions, feed_a) if i.guid_key == "guid:mw-1001")
    assert shared.story_key == original.story_key and shared.document_id == original.document_id


def test_the_same_story_in_two_feeds_of_one_round_is_analysed_once(
    make_deps: MakeDeps, feed_server: FeedServer, sessions: sessionmaker[Session]
) -> None:
    deps, poster = make_deps()
    copy = fixture("rss20.xml").replace(b"mw-1001", b"copy-1").replace(b"Market Wire", b"Copy Wire")
    add_feed(deps, feed_server.route("/a.xml", Route(body=fixture("rss20.xml"))))
    add_feed(deps, feed_server.route("/b.xml", Route(body=copy)), channel="C0OTHER01")
    report = FeedPoller(deps, poster).poll_due()
    counts = report.counts()
    assert (counts["feeds"], counts["ok"], counts["new"], counts["analysed"], counts["shared"]) == (2, 2, 6, 3, 3)
    assert count(sessions, Document.id) == 3 and count(sessions, FeedItem.id) == 6


def test_edited_title_is_an_update_not_a_new_item(
    make_deps: MakeDeps, feed_server: FeedServer, sessions: sessionmaker[Session]
) -> None:
    deps, poster = make_deps()
    template = ('<?xml version="1.0"?><rss version="2.0"><channel><title>E</title><item><title>{}</title>'
                "<guid>ed-1</guid><link>https://e.example/1</link></item></channel></rss>")
    route = Route(body=template.format("Acme beats estimates").encode())
    feed_id = add_feed(deps, feed_server.route("/e.xml", route))
    poller = FeedPoller(deps, poster)
    poller.poll_feed(feed_id)
    before = items_of(sessions, feed_id)[0]
    route.body = template.format("Acme misses estimates, shares fall").encode()
    outcome = poller.poll_feed(feed_id)
    assert (outcome.new, outcome.updated, outcome.analysed) == (0, 1, 1)
    after = items_of(sessions, feed_id)
    assert len(after) == 1 and after[0].id == before.id
    assert after[0].title == "Acme misses estimates, shares fall" and after[0].updated_at is not None
    assert after[0].document_id != before.document_id


def test_malformed_feeds_keep_entries_and_garbage_fails_alone(
    make_deps: MakeDeps, feed_server: FeedServer, sessions: sessionmaker[Session]
) -> None:
    deps, poster = make_deps()
    names = ["rss20.xml", "atom10.xml", "rss10_rdf.xml", "broken_encoding.xml", "truncated.xml", "html_entities.xml"]
    ids = {name: add_feed(deps, feed_server.route(f"/{name}", Route(body=fixture(name)))) for name in names}
    junk = add_feed(deps, feed_server.route("/junk", Route(body=b"<html><p>gone</p></html>", content_type="text/html")))
    outcomes = by_feed(FeedPoller(deps, poster).poll_due().outcomes)
    for name in names[:3]:
        assert outcomes[ids[name]].status == "ok", name
    for name in names[3:]:
        assert outcomes[ids[name]].status == "warning" and outcomes[ids[name]].new == 2, name
        assert (feed_row(sessions, ids[name]).last_error or "").startswith("ill-formed feed, entries kept")
    assert outcomes[junk].status == "error" and "feed" in (outcomes[junk].error or "")
    assert feed_row(sessions, junk).last_status == "error"


def test_backoff_doubles_caps_and_resets_on_recovery(
    make_deps: MakeDeps, feed_server: FeedServer, sessions: sessionmaker[Session]
) -> None:
    deps, poster = make_deps(BEACON_FEED_MAX_BACKOFF_MINUTES="4")
    route = Route(body=fixture("atom10.xml"), fail_times=4, fail_status=500)
    feed_id = add_feed(deps, feed_server.route("/flaky.xml", route), interval=1)
    poller = FeedPoller(deps, poster)
    now = utcnow()
    gaps = []
    for _ in range(4):
        outcome = poller.poll_feed(feed_id, now=now)
        assert outcome.status == "error" and "500" in (outcome.error or "")
        assert outcome.next_poll_at is not None
        gaps.append(outcome.next_poll_at - now)
        now = outcome.next_poll_at
    assert gaps == [timedelta(minutes=m) for m in (1, 2, 4, 4)]
    recovered = poller.poll_feed(feed_id, now=now)
    assert recovered.status == "ok" and recovered.next_poll_at == now + timedelta(minutes=1)
    feed = feed_row(sessions, feed_id)
    assert feed.consecutive_failures == 0 and feed.failing_since is None and feed.last_error is None


def test_retry_after_sets_the_next_poll(make_deps: MakeDeps, feed_server: FeedServer) -> None:
    deps, poster = make_deps()
    feed_id = add_feed(deps, feed_server.route("/busy.xml", Route(fail_times=1, fail_status=429, retry_after="7200")))
    now = utcnow()
    outcome = FeedPoller(deps, poster).poll_feed(feed_id, now=now)
    assert outcome.status == "error" and outcome.next_poll_at == now + timedelta(hours=2)


def test_next_delay() -> None:
    assert next_delay(interval_minutes=15) == timedelta(minutes=15)
    assert next_delay(interval_minutes=15, pace_minutes=60) == timedelta(minutes=60)
    assert next_delay(interval_minutes=10, failures=3, max_backoff_minutes=360) == timedelta(minutes=40)
    assert next_delay(interval_minutes=10, failures=30, max_backoff_minutes=360) == timedelta(minutes=360)
    assert next_delay(interval_minutes=10, retry_after_s=3600) == timedelta(hours=1)


def test_a_feed_failing_for_24h_gets_one_notice(
    make_deps: MakeDeps, feed_server: FeedServer, sessions: sessionmaker[Session], slack: FakeSlack
) -> None:
    deps, poster = make_deps()
    route = Route(body=fixture("rss20.xml"), fail_times=1000, fail_status=502)
    feed_id = add_feed(deps, feed_server.route("/down.xml", route), channel="C0NEWS001")
    poller = FeedPoller(deps, poster)
    t0 = utcnow()
    for hours in (0, 12, 25, 26, 30):
        assert poller.poll_feed(feed_id, now=t0 + timedelta(hours=hours)).status == "error"
    posts = slack.calls_to("chat.postMessage")
    assert len(posts) == 1
    assert posts[0].arg("channel") == "C0NEWS001" and "Feed failing since" in posts[0].arg("text")
    assert "502" in posts[0].body_text
    with sessions() as session:
        kinds = session.scalars(select(BotPost.kind).where(BotPost.channel == "C0NEWS001")).all()
    assert kinds == ["notice"]
    route.fail_times = 0
    assert poller.poll_feed(feed_id, now=t0 + timedelta(hours=31)).status == "ok"
    assert feed_row(sessions, feed_id).failure_notified_at is None
    assert slack.spec_violations == []
