"""Alert evaluation (a scheduled job): entity rule, spike rule, then rate-limited dispatch.

Alerts are rows first (``alerts``, unique per channel and dedupe key, so the same story never
alerts twice in one channel), then posts: each posted alert is stored in ``bot_posts`` with its
prediction, so 👍/👎 and corrections on it become labels. Beyond the per-channel rate limit one
digest message lists the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bot import metrics
from bot import views_alerts as views
from bot.deps import Deps
from bot.errors import SlackError
from bot.poster import Poster
from bot.storage import crud
from bot.storage.db import session_scope
from bot.storage.feeds import feed_channels, list_watches
from bot.storage.tables import Alert, BotPost, Document, Feed, FeedItem, Prediction, utcnow
from jobs.alert_rules import WatchKey, cooling_down, entity_rule, rate_budget, spike_stats
from jobs.feed_state import as_utc

LOOKBACK = timedelta(hours=6)  # items stored (or re-analysed) this recently are evaluated
MAX_ITEM_AGE = timedelta(hours=24)  # older news (by its own date) never alerts
MAX_POST_ATTEMPTS = 3
DISPATCHED_KINDS = ("entity", "spike")


def run_alerts(deps: Deps, poster: Poster, *, now: datetime | None = None) -> dict[str, int]:
    """One evaluation: create alert rows from both rules, then post them. Returns counts."""
    now = now or utcnow()
    created = evaluate_entity_rule(deps, now=now)
    spikes = evaluate_spike_rule(deps, now=now)
    sent = dispatch_alerts(deps, poster, now=now)
    return {"entity_alerts": created, "spike_alerts": spikes, **sent}


# --- entity rule ----------------------------------------------------------------------------
def _latest_predictions(since: datetime) -> Any:
    return (
        select(Prediction.document_id, func.max(Prediction.id).label("pid"))
        .where(Prediction.created_at >= since)
        .group_by(Prediction.document_id)
        .subquery()
    )


def evaluate_entity_rule(deps: Deps, *, now: datetime) -> int:
    """Alert rows for recent negative feed items about watched entities; returns how many are new."""
    since = now - LOOKBACK
    latest = _latest_predictions(since - LOOKBACK)
    stmt = (
        select(FeedItem, Feed, Prediction)
        .join(Feed, Feed.id == FeedItem.feed_id)
        .join(latest, latest.c.document_id == FeedItem.document_id)
        .join(Prediction, Prediction.id == latest.c.pid)
        .where(Feed.active.is_(True), Prediction.sentiment_label == "negative")
        .where(or_(FeedItem.created_at >= since, FeedItem.updated_at >= since))
        .order_by(FeedItem.id)
    )
    created = 0
    threshold = deps.settings.feed_alert_threshold
    with session_scope(deps.sessions) as session:
        watches: dict[int, list[WatchKey]] = {}
        for item, feed, pred in session.execute(stmt).tuples():
            if item.published_at is not None and now - as_utc(item.published_at) > MAX_ITEM_AGE:
                continue
            if feed.id not in watches:
                watches[feed.id] = [WatchKey(w.name, w.normalized) for w in list_watches(session=session,
                                                                                         feed_id=feed.id)]
            hit = entity_rule(
                sentiment_label=pred.sentiment_label, sentiment_score=pred.sentiment_score, entities=pred.entities,
                watches=watches[feed.id], threshold=threshold, probs=pred.sentiment_probs,
            )
            if hit is None:
                continue
            payload = {
                "title": item.title, "link": item.link, "source": feed.title or _host(feed.url),
                "feed_id": feed.id, "matched": hit.watch, "entity_text": hit.entity_text,
                "entity_label": hit.entity_label, "entity_source": hit.entity_source,
                "sentiment": pred.sentiment_label, "confidence": pred.sentiment_score,
                "model_version": pred.model_version,
            }
            alert = Alert(
                kind="entity", channel=feed.channel, dedupe_key=f"item:{item.story_key}", prediction_id=pred.id,
                feed_item_id=item.id, matched=hit.watch[:255], score=pred.sentiment_score, payload=payload,
                status="pending", created_at=now,
            )
            if _insert_once(session, alert):
                created += 1
                deps.log.info("alert.created", kind="entity", channel=feed.channel, feed_id=feed.id,
                              matched=hit.watch, prediction_id=pred.id, score=round(pred.sentiment_score, 3))
    return created


def _host(url: str) -> str:
    return urlsplit(url).hostname or url


def _insert_once(session: Session, alert: Alert) -> bool:
    """Insert unless (channel, dedupe_key) exists: the same item never alerts twice per channel."""
    exists = session.scalars(
        select(Alert.id).where(Alert.channel == alert.channel, Alert.dedupe_key == alert.dedupe_key)
    ).first()
    if exists is not None:
        return False
    return crud.insert_or_skip(session=session, row=alert)


# --- spike rule ------------------------------------------------------------------------------
def spike_scopes(deps: Deps, session: Session) -> list[tuple[str, str, str | None]]:
    """(source, channel, where the alert goes): each feed channel, each monitored Slack channel."""
    scopes: list[tuple[str, str, str | None]] = [("feed", c, c) for c in feed_channels(session=session)]
    scopes += [("slack", c, deps.settings.alert_channel) for c in deps.settings.monitor_channels]
    return scopes


def window_labels(session: Session, *, source: str, channel: str, since: datetime, until: datetime
                  ) -> list[tuple[str, str]]:
    """(label, text) of each item of the scope in the window, by its latest prediction.

    Slack messages count by when they were analysed; feed items by their own date (else when
    first seen), so importing a feed's backlog is not a spike. A story carried by several
    feeds of the channel counts once."""
    if source == "feed":
        return _feed_window(session, channel=channel, since=since, until=until)
    stmt = (
        select(Prediction.document_id, Prediction.sentiment_label, Document.text)
        .join(Document, Document.id == Prediction.document_id)
        .where(Document.channel == channel, Document.source != "feed")
        .where(Prediction.created_at > since, Prediction.created_at <= until)
        .order_by(Prediction.id)
    )
    latest: dict[int, tuple[str, str]] = {}
    for doc_id, label, text in session.execute(stmt).tuples():
        latest[doc_id] = (label, text or "")
    return list(latest.values())


def _feed_window(session: Session, *, channel: str, since: datetime, until: datetime) -> list[tuple[str, str]]:
    latest = _latest_predictions(since - LOOKBACK)
    when = func.coalesce(FeedItem.published_at, FeedItem.created_at)
    stmt = (
        select(FeedItem.story_key, Prediction.sentiment_label, FeedItem.title)
        .join(Feed, Feed.id == FeedItem.feed_id)
        .join(latest, latest.c.document_id == FeedItem.document_id)
        .join(Prediction, Prediction.id == latest.c.pid)
        .where(Feed.channel == channel, Feed.active.is_(True), when > since, when <= until)
        .order_by(FeedItem.id)
    )
    stories: dict[str, tuple[str, str]] = {}
    for story_key, label, title in session.execute(stmt).tuples():
        stories.setdefault(story_key, (label, title))
    return list(stories.values())


def evaluate_spike_rule(deps: Deps, *, now: datetime) -> int:
    s = deps.settings
    window = timedelta(minutes=s.spike_window_minutes)
    cooldown = timedelta(minutes=s.spike_cooldown_minutes)
    created = 0
    with session_scope(deps.sessions) as session:
        for source, channel, target in spike_scopes(deps, session):
            rows = window_labels(session, source=source, channel=channel, since=now - window, until=now)
            stats = spike_stats([label for label, _ in rows], min_items=s.spike_min_items, threshold=s.spike_threshold)
            if not stats.fires:
                continue
            scope = f"{source}:{channel}"
            if target is None:
                deps.log.warning("alert.spike_unrouted", scope=scope, hint="set BEACON_ALERT_CHANNEL")
                continue
            last = session.scalars(
                select(func.max(Alert.created_at)).where(Alert.kind == "spike", Alert.matched == scope)
            ).first()
            if cooling_down(as_utc(last) if last else None, now=now, cooldown=cooldown):
                continue
            examples = [text for label, text in rows if label == "negative"][-5:]
            alert = Alert(
                kind="spike", channel=target, dedupe_key=f"spike:{scope}:{now.isoformat()}", matched=scope,
                score=stats.share, status="pending", created_at=now,
                payload={"scope_channel": channel, "source": source, "negative": stats.negative, "total": stats.total,
                         "window_minutes": s.spike_window_minutes, "threshold": s.spike_threshold,
                         "cooldown_minutes": s.spike_cooldown_minutes, "examples": examples},
            )
            if _insert_once(session, alert):
                created += 1
                deps.log.info("alert.created", kind="spike", channel=target, scope=scope, negative=stats.negative,
                              total=stats.total)
    return created


# --- dispatch -----------------------------------------------------------------------------------
def _recent_posts(session: Session, *, channel: str, kind: str, since: datetime) -> int:
    stmt = select(func.count(BotPost.id)).where(
        BotPost.channel == channel, BotPost.kind == kind, BotPost.created_at > since
    )
    return int(session.scalar(stmt) or 0)


def dispatch_alerts(deps: Deps, poster: Poster, *, now: datetime) -> dict[str, int]:
    """Post pending alerts: up to the rate limit per channel, then one digest for the rest."""
    counts = {"posted": 0, "digested": 0, "digests": 0, "failed": 0, "deferred": 0}
    s = deps.settings
    since = now - timedelta(minutes=s.alert_rate_window_minutes)
    with deps.sessions() as session:
        pending = list(session.scalars(
            select(Alert).where(Alert.status == "pending", Alert.kind.in_(DISPATCHED_KINDS)).order_by(Alert.id)
        ))
        by_channel: dict[str, list[Alert]] = {}
        for alert in pending:
            by_channel.setdefault(alert.channel, []).append(alert)
        budgets = {
            channel: (rate_budget(_recent_posts(session, channel=channel, kind="alert", since=since),
                                  limit=s.alert_rate_limit),
                      _recent_posts(session, channel=channel, kind="digest", since=since) > 0)
            for channel in by_channel
        }
    for channel, alerts in by_channel.items():
        budget, digest_sent = budgets[channel]
        for alert in alerts[:budget]:
            outcome = _post_alert(deps, poster, alert, now=now)
            counts[outcome] += 1
        rest = alerts[budget:]
        if rest and not digest_sent:
            if _post_digest(deps, poster, channel, rest, now=now):
                counts["digests"] += 1
                counts["digested"] += len(rest)
            else:
                counts["failed"] += 1
        elif rest:
            counts["deferred"] += len(rest)
    return counts


def _render(alert: Alert) -> tuple[str, list[Any]]:
    p = alert.payload or {}
    if alert.kind == "spike":
        return views.spike_alert(views.SpikeView(
            scope_channel=str(p.get("scope_channel", "")), negative=int(p.get("negative", 0)),
            total=int(p.get("total", 0)), window_minutes=int(p.get("window_minutes", 0)),
            threshold=float(p.get("threshold", 0.0)), cooldown_minutes=int(p.get("cooldown_minutes", 0)),
            examples=[str(e) for e in p.get("examples", [])],
        ))
    return views.entity_alert(views.EntityAlertView(
        headline=str(p.get("title") or ""), link=p.get("link"), source=str(p.get("source") or ""),
        matched=str(p.get("matched") or alert.matched or ""), entity_text=str(p.get("entity_text") or ""),
        entity_label=str(p.get("entity_label") or ""), sentiment=str(p.get("sentiment") or "negative"),
        confidence=float(p.get("confidence") or alert.score or 0.0), model_version=str(p.get("model_version") or ""),
        prediction_id=alert.prediction_id,
    ))


def _post_alert(deps: Deps, poster: Poster, alert: Alert, *, now: datetime) -> str:
    text, blocks = _render(alert)
    try:
        ts = poster.post(channel=alert.channel, text=text, blocks=blocks)
    except SlackError as exc:
        return _record_failure(deps, alert.id, str(exc))
    with session_scope(deps.sessions) as session:
        row = session.get(Alert, alert.id)
        if row is not None:
            row.status, row.posted_ts = "posted", ts
        post = crud.record_bot_post(session=session, channel=alert.channel, ts=ts, kind="alert",
                                    prediction_id=alert.prediction_id, alert_id=alert.id)
        post.created_at = now
    metrics.ALERTS_POSTED.labels(alert.kind).inc()
    deps.log.info("alert.posted", kind=alert.kind, alert_id=alert.id, channel=alert.channel, ts=ts)
    return "posted"


def _record_failure(deps: Deps, alert_id: int, error: str) -> str:
    with session_scope(deps.sessions) as session:
        row = session.get(Alert, alert_id)
        if row is None:
            return "failed"
        attempts = int((row.payload or {}).get("attempts", 0)) + 1
        row.payload = {**(row.payload or {}), "attempts": attempts, "last_error": error}
        if attempts >= MAX_POST_ATTEMPTS:
            row.status = "failed"
    deps.log.error("alert.post_failed", alert_id=alert_id, error=error, attempts=attempts)
    return "failed" if attempts >= MAX_POST_ATTEMPTS else "deferred"


def _post_digest(deps: Deps, poster: Poster, channel: str, alerts: Sequence[Alert], *, now: datetime) -> bool:
    s = deps.settings
    lines = [
        views.DigestLine(
            headline=str((a.payload or {}).get("title") or _spike_headline(a)), link=(a.payload or {}).get("link"),
            matched=a.matched if a.kind == "entity" else None,
            sentiment=str((a.payload or {}).get("sentiment") or "") or None,
            confidence=a.score if a.kind == "entity" else None,
        )
        for a in alerts
    ]
    text, blocks = views.digest(lines, limit=s.alert_rate_limit, window_minutes=s.alert_rate_window_minutes)
    try:
        ts = poster.post(channel=channel, text=text, blocks=blocks)
    except SlackError as exc:
        deps.log.error("alert.digest_failed", channel=channel, error=str(exc), alerts=len(alerts))
        return False
    with session_scope(deps.sessions) as session:
        digest = Alert(kind="digest", channel=channel, dedupe_key=f"digest:{ts}", status="posted", posted_ts=ts,
                       payload={"alert_ids": [a.id for a in alerts]}, created_at=now)
        session.add(digest)
        session.flush()
        for a in alerts:
            row = session.get(Alert, a.id)
            if row is not None:
                row.status, row.posted_ts = "digested", ts
        post = crud.record_bot_post(session=session, channel=channel, ts=ts, kind="digest", alert_id=digest.id)
        post.created_at = now
    metrics.ALERTS_POSTED.labels("digest").inc()
    deps.log.info("alert.digest_posted", channel=channel, ts=ts, alerts=len(alerts))
    return True


def _spike_headline(alert: Alert) -> str:
    p = alert.payload or {}
    return f"Negative spike: {p.get('negative', '?')}/{p.get('total', '?')} items negative"
