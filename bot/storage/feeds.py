"""Feed subscriptions and watches (the entities and tickers alert rules look for)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.errors import InputError, NotFound, StorageError
from bot.storage.crud import insert_or_skip
from bot.storage.tables import Feed, FeedItem, Watch

_EXCHANGE = re.compile(r"^(?:nyse|nasdaq|amex|lse|tsx|otc|nyse\s*american)\s*:\s*", re.IGNORECASE)


def normalize_alias(name: str) -> str:
    """Case-insensitive key for an entity name or ticker: '$ACME', 'NASDAQ: ACME' → 'acme'."""
    value = " ".join(name.split()).strip().strip("()")
    value = _EXCHANGE.sub("", value)
    value = value.lstrip("$").strip()
    return value.casefold()


def add_watch(*, session: Session, name: str, feed_id: int | None = None, created_by: str | None = None) -> Watch:
    key = normalize_alias(name)
    if not key:
        raise InputError("watch: give an entity name or a ticker, e.g. `Acme Corp` or `$ACME`")
    if len(key) > 200:
        raise InputError("watch: names are limited to 200 characters")
    same_feed = Watch.feed_id.is_(None) if feed_id is None else Watch.feed_id == feed_id
    existing = session.scalars(select(Watch).where(Watch.normalized == key, same_feed)).first()
    if existing is not None:
        return existing
    watch = Watch(name=name.strip(), normalized=key, feed_id=feed_id, created_by=created_by)
    if not insert_or_skip(session=session, row=watch):
        found = session.scalars(select(Watch).where(Watch.normalized == key)).first()
        if found is None:
            raise StorageError(f"watch {name!r}: a concurrent change conflicted; try again")
        return found
    return watch


def remove_watch(*, session: Session, name: str, feed_id: int | None = None) -> int:
    """Remove the watch; returns how many rows went. NotFound when none matched."""
    key = normalize_alias(name)
    stmt = select(Watch).where(Watch.normalized == key)
    stmt = stmt.where(Watch.feed_id.is_(None) if feed_id is None else Watch.feed_id == feed_id)
    rows = list(session.scalars(stmt))
    if not rows:
        raise NotFound(f"not watching {name!r}")
    for row in rows:
        session.delete(row)
    session.flush()
    return len(rows)


def list_watches(*, session: Session, feed_id: int | None = None, include_global: bool = True) -> list[Watch]:
    """Global watches, plus those of ``feed_id`` when given."""
    stmt = select(Watch).order_by(Watch.normalized)
    if feed_id is None:
        stmt = stmt.where(Watch.feed_id.is_(None)) if not include_global else stmt
    else:
        cond = Watch.feed_id == feed_id
        stmt = stmt.where(or_(cond, Watch.feed_id.is_(None)) if include_global else cond)
    return list(session.scalars(stmt))


def validate_feed_url(url: str) -> str:
    url = url.strip().strip("<>").split("|", 1)[0]  # Slack wraps links as <url|label>
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise InputError(f"feed URL must be http(s)://…, got {url!r}")
    if len(url) > 2048:
        raise InputError("feed URL longer than 2048 characters")
    return url


def add_feed(
    *, session: Session, url: str, channel: str, interval_minutes: int = 15, created_by: str | None = None,
    watches: list[str] | None = None,
) -> Feed:
    if interval_minutes < 1:
        raise InputError("feed interval must be at least 1 minute")
    if not channel:
        raise InputError("a feed needs a channel to post alerts to")
    feed = Feed(url=validate_feed_url(url), channel=channel, interval_minutes=interval_minutes, created_by=created_by)
    session.add(feed)
    session.flush()
    for name in watches or []:
        add_watch(session=session, name=name, feed_id=feed.id, created_by=created_by)
    return feed


def get_feed(*, session: Session, feed_id: int) -> Feed:
    feed = session.get(Feed, feed_id)
    if feed is None or not feed.active:
        raise NotFound(f"feed {feed_id} does not exist (see `beacon feeds list`)")
    return feed


def list_feeds(*, session: Session, include_inactive: bool = False) -> list[Feed]:
    stmt = select(Feed).order_by(Feed.id)
    if not include_inactive:
        stmt = stmt.where(Feed.active.is_(True))
    return list(session.scalars(stmt))


def remove_feed(*, session: Session, feed_id: int) -> Feed:
    """Deactivate a feed (its items and predictions stay as history)."""
    feed = get_feed(session=session, feed_id=feed_id)
    feed.active = False
    session.flush()
    return feed


# --- poll state and items (used by jobs.feeds) ---------------------------------------------
def due_feeds(*, session: Session, now: datetime, feed_id: int | None = None) -> list[Feed]:
    """Active feeds whose next poll time has come (never-polled feeds first)."""
    stmt = select(Feed).where(Feed.active.is_(True))
    if feed_id is not None:
        return list(session.scalars(stmt.where(Feed.id == feed_id)))
    stmt = stmt.where(or_(Feed.next_poll_at.is_(None), Feed.next_poll_at <= now))
    return list(session.scalars(stmt.order_by(Feed.next_poll_at.is_not(None), Feed.next_poll_at, Feed.id)))


def find_item(*, session: Session, feed_id: int, guid_key: str) -> FeedItem | None:
    stmt = select(FeedItem).where(FeedItem.feed_id == feed_id, FeedItem.guid_key == guid_key)
    return session.scalars(stmt).first()


def find_items(*, session: Session, feed_id: int, guid_keys: Sequence[str]) -> dict[str, FeedItem]:
    """The feed's stored items among ``guid_keys``, by key (one query per 500 keys)."""
    found: dict[str, FeedItem] = {}
    for part in _chunks(guid_keys):
        stmt = select(FeedItem).where(FeedItem.feed_id == feed_id, FeedItem.guid_key.in_(part))
        found.update({item.guid_key: item for item in session.scalars(stmt)})
    return found


def analysed_stories(*, session: Session, story_keys: Sequence[str], exclude_feed_id: int) -> dict[str, int]:
    """story key → document id, for stories other feeds already analysed (cross-feed dedupe)."""
    found: dict[str, int] = {}
    for part in _chunks(story_keys):
        stmt = (
            select(FeedItem.story_key, FeedItem.document_id)
            .where(FeedItem.story_key.in_(part), FeedItem.feed_id != exclude_feed_id,
                   FeedItem.document_id.is_not(None))
            .order_by(FeedItem.id)
        )
        for key, document_id in session.execute(stmt):
            if document_id is not None:
                found.setdefault(key, document_id)
    return found


def _chunks(keys: Sequence[str], size: int = 500) -> list[list[str]]:
    unique = list(dict.fromkeys(keys))
    return [unique[i : i + size] for i in range(0, len(unique), size)]


def add_items(*, session: Session, items: Sequence[FeedItem]) -> int:
    """Insert many items at once; on a conflict (another writer), one by one. Returns how many went in."""
    if not items:
        return 0
    try:
        with session.begin_nested():
            session.add_all(items)
            session.flush()
        return len(items)
    except IntegrityError:
        pass
    inserted = 0
    for item in items:
        fresh = FeedItem(
            feed_id=item.feed_id, guid_key=item.guid_key, story_key=item.story_key, link=item.link, title=item.title,
            summary=item.summary, published_at=item.published_at, document_id=item.document_id,
        )
        try:
            with session.begin_nested():
                session.add(fresh)
                session.flush()
            inserted += 1
        except IntegrityError:
            continue
    return inserted


def add_item(
    *, session: Session, feed_id: int, guid_key: str, story_key: str, link: str | None, title: str, summary: str,
    published_at: datetime | None, document_id: int | None,
) -> FeedItem | None:
    """Insert an item; None when another writer stored the same (feed, guid) first."""
    item = FeedItem(
        feed_id=feed_id, guid_key=guid_key, story_key=story_key, link=link, title=title, summary=summary,
        published_at=published_at, document_id=document_id,
    )
    return item if insert_or_skip(session=session, row=item) else None


def list_items(*, session: Session, feed_id: int, limit: int = 100) -> list[FeedItem]:
    stmt = select(FeedItem).where(FeedItem.feed_id == feed_id).order_by(FeedItem.id.desc()).limit(limit)
    return list(session.scalars(stmt))


def count_items(*, session: Session, feed_id: int) -> int:
    stmt = select(func.count(FeedItem.id)).where(FeedItem.feed_id == feed_id)
    return int(session.scalar(stmt) or 0)


def feed_channels(*, session: Session) -> list[str]:
    """The distinct channels active feeds post to."""
    stmt = select(Feed.channel).where(Feed.active.is_(True)).distinct().order_by(Feed.channel)
    return list(session.scalars(stmt))
