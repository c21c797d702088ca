"""A feed's poll state: validators, status, pace, exponential backoff, and the 24-hour failure notice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot import metrics
from bot import views_alerts as views
from bot.deps import Deps
from bot.errors import SlackError
from bot.poster import Poster
from bot.storage import crud
from bot.storage.db import session_scope
from bot.storage.tables import Alert, Feed
from jobs.feed_fetch import FetchResult

FAILURE_NOTICE_AFTER = timedelta(hours=24)


def as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def next_delay(
    *, interval_minutes: int, pace_minutes: int = 0, failures: int = 0, max_backoff_minutes: int = 360,
    retry_after_s: float | None = None,
) -> timedelta:
    """Time to the next poll: the interval (at least the feed's own pace); after ``failures``
    consecutive errors it doubles each time, capped at ``max_backoff_minutes``; never before
    ``Retry-After``."""
    base = max(interval_minutes, pace_minutes, 1)
    minutes = float(base)
    if failures > 0:
        minutes = max(float(base), min(base * 2.0 ** (failures - 1), float(max_backoff_minutes)))
    delay = timedelta(minutes=minutes)
    if retry_after_s:
        delay = max(delay, timedelta(seconds=retry_after_s))
    return delay


@dataclass(frozen=True)
class FeedSnapshot:
    id: int
    url: str
    channel: str
    etag: str | None
    last_modified: str | None
    interval_minutes: int

    @classmethod
    def of(cls, feed: Feed) -> FeedSnapshot:
        return cls(feed.id, feed.url, feed.channel, feed.etag, feed.last_modified, feed.interval_minutes)


def record_success(deps: Deps, snap: FeedSnapshot, result: FetchResult, *, status: str, warning: str | None,
                   title: str | None, pace_minutes: int | None, now: datetime) -> datetime | None:
    """A good poll (200 or 304): store the validators, reset the backoff. Returns the next poll time."""
    with session_scope(deps.sessions) as session:
        feed = session.get(Feed, snap.id)
        if feed is None:
            return None
        if result.etag or not result.not_modified:
            feed.etag = result.etag
        if result.last_modified or not result.not_modified:
            feed.last_modified = result.last_modified
        if pace_minutes is not None:
            feed.min_interval_minutes = pace_minutes
        feed.title = feed.title or title
        feed.last_status, feed.last_error, feed.last_polled_at = status, warning, now
        feed.consecutive_failures = 0
        feed.failing_since = feed.failure_notified_at = None
        delay = next_delay(interval_minutes=feed.interval_minutes, pace_minutes=feed.min_interval_minutes,
                           retry_after_s=result.retry_after_s)
        feed.next_poll_at = now + delay
        return feed.next_poll_at


@dataclass(frozen=True)
class Failure:
    next_poll_at: datetime
    failures: int
    since: datetime
    title: str | None
    notify: bool  # failing for 24 h and not yet notified


def record_failure(deps: Deps, snap: FeedSnapshot, message: str, *, retry_after_s: float | None,
                   now: datetime) -> Failure | None:
    """A failed poll: the error, one more failure, the backed-off next poll time."""
    with session_scope(deps.sessions) as session:
        feed = session.get(Feed, snap.id)
        if feed is None:
            return None
        feed.consecutive_failures = (feed.consecutive_failures or 0) + 1
        feed.failing_since = feed.failing_since or now
        feed.last_status, feed.last_error, feed.last_polled_at = "error", message, now
        delay = next_delay(
            interval_minutes=feed.interval_minutes, pace_minutes=feed.min_interval_minutes,
            failures=feed.consecutive_failures, max_backoff_minutes=deps.settings.feed_max_backoff_minutes,
            retry_after_s=retry_after_s,
        )
        feed.next_poll_at = now + delay
        since = as_utc(feed.failing_since)
        return Failure(next_poll_at=feed.next_poll_at, failures=feed.consecutive_failures, since=since,
                       title=feed.title,
                       notify=feed.failure_notified_at is None and now - since >= FAILURE_NOTICE_AFTER)


def notify_failure(deps: Deps, poster: Poster, snap: FeedSnapshot, failure: Failure, error: str,
                   *, now: datetime) -> bool:
    """Post the one notice of a feed failing for 24 hours in its channel; stored like every post."""
    text, blocks = views.feed_failure(url=snap.url, title=failure.title, error=error, since=failure.since)
    try:
        ts = poster.post(channel=snap.channel, text=text, blocks=blocks)
    except SlackError as exc:
        deps.log.error("feed.failure_notice_failed", feed_id=snap.id, channel=snap.channel, error=str(exc))
        return False
    with session_scope(deps.sessions) as session:
        feed = session.get(Feed, snap.id)
        if feed is not None:
            feed.failure_notified_at = now
        alert = Alert(kind="feed_failure", channel=snap.channel, dedupe_key=f"feed_failure:{snap.id}:{ts}",
                      payload={"feed_id": snap.id, "error": error, "since": failure.since.isoformat()},
                      status="posted", posted_ts=ts, created_at=now)
        session.add(alert)
        session.flush()
        crud.record_bot_post(session=session, channel=snap.channel, ts=ts, kind="notice", alert_id=alert.id)
    metrics.ALERTS_POSTED.labels("feed_failure").inc()
    deps.log.info("feed.failure_notice_posted", feed_id=snap.id, channel=snap.channel, ts=ts)
    return True
