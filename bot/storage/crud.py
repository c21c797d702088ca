"""Query functions for documents, predictions, bot posts, feedback, Slack events and locks.

Every function takes the SQLAlchemy session as the keyword argument ``session`` and never
commits: the caller owns the transaction (see ``bot.storage.db.session_scope``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.storage.tables import BotPost, Document, Feedback, Lock, Prediction, SlackEvent, utcnow

VOTE_KINDS = {"confirm", "reject"}
FEEDBACK_KINDS = VOTE_KINDS | {"correction"}


def insert_or_skip(*, session: Session, row: Any) -> bool:
    """Insert ``row``; False (and the caller's transaction still usable) when a unique
    constraint says it already exists. The one savepoint-guarded insert every dedupe uses."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return False
    return True


# --- documents and predictions -----------------------------------------------------------
def add_document(
    *, session: Session, source: str, text: str, channel: str | None = None, external_id: str | None = None,
    user_id: str | None = None, thread_ts: str | None = None,
) -> Document:
    doc = Document(
        source=source, text=text, channel=channel, external_id=external_id, user_id=user_id, thread_ts=thread_ts
    )
    session.add(doc)
    session.flush()
    return doc


def find_document(*, session: Session, source: str, channel: str | None, external_id: str) -> Document | None:
    stmt = select(Document).where(
        Document.source == source, Document.channel == channel, Document.external_id == external_id
    )
    return session.scalars(stmt.order_by(Document.id.desc())).first()


def add_prediction(
    *, session: Session, document: Document, model_version: str, entities: list[dict[str, Any]],
    sentiment_label: str, sentiment_score: float, sentiment_probs: dict[str, float], latency_ms: float,
) -> Prediction:
    pred = Prediction(
        document_id=document.id, model_version=model_version, entities=entities,
        sentiment_label=sentiment_label, sentiment_score=sentiment_score,
        sentiment_probs=sentiment_probs, latency_ms=latency_ms,
    )
    session.add(pred)
    session.flush()
    return pred


def get_prediction(*, session: Session, prediction_id: int) -> Prediction | None:
    return session.get(Prediction, prediction_id)


def latest_prediction(*, session: Session, document_id: int) -> Prediction | None:
    stmt = select(Prediction).where(Prediction.document_id == document_id).order_by(Prediction.id.desc())
    return session.scalars(stmt).first()


def delete_document_text(*, session: Session, document: Document) -> None:
    """Forget a deleted message's text; the row stays as the record of the deletion."""
    document.text = None
    document.deleted_at = utcnow()


# --- bot posts -----------------------------------------------------------------------------
def record_bot_post(
    *, session: Session, channel: str, ts: str, kind: str = "analysis", prediction_id: int | None = None,
    alert_id: int | None = None,
) -> BotPost:
    post = BotPost(channel=channel, ts=ts, kind=kind, prediction_id=prediction_id, alert_id=alert_id)
    session.add(post)
    session.flush()
    return post


def find_bot_post(*, session: Session, channel: str, ts: str) -> BotPost | None:
    return session.scalars(select(BotPost).where(BotPost.channel == channel, BotPost.ts == ts)).first()


# --- feedback ------------------------------------------------------------------------------
def _slot(kind: str) -> str:
    if kind not in FEEDBACK_KINDS:
        raise ValueError(f"unknown feedback kind {kind!r}")
    return "vote" if kind in VOTE_KINDS else "correction"


def active_feedback(*, session: Session, prediction_id: int, user_id: str, slot: str) -> Feedback | None:
    stmt = select(Feedback).where(
        Feedback.prediction_id == prediction_id, Feedback.user_id == user_id, Feedback.slot == slot,
        Feedback.retracted_at.is_(None),
    )
    return session.scalars(stmt).first()


def record_feedback(
    *, session: Session, prediction_id: int, user_id: str, kind: str, payload: dict[str, Any] | None = None,
    model_version: str | None = None,
) -> Feedback:
    """Store a vote or correction. The user's previous active one in the same slot is
    retracted first: one active vote per user per prediction, the latest wins."""
    slot = _slot(kind)
    previous = active_feedback(session=session, prediction_id=prediction_id, user_id=user_id, slot=slot)
    if previous is not None:
        previous.retracted_at = utcnow()
        session.flush()
    row = Feedback(
        prediction_id=prediction_id, user_id=user_id, kind=kind, slot=slot, payload=payload or {},
        model_version=model_version,
    )
    session.add(row)
    session.flush()
    return row


def retract_feedback(*, session: Session, prediction_id: int, user_id: str, kind: str) -> Feedback | None:
    """Retract the user's active vote of ``kind`` (a removed reaction). Returns it, if any."""
    row = active_feedback(session=session, prediction_id=prediction_id, user_id=user_id, slot=_slot(kind))
    if row is None or row.kind != kind:
        return None
    row.retracted_at = utcnow()
    session.flush()
    return row


def feedback_since(*, session: Session, since: datetime | None = None) -> list[Feedback]:
    stmt = select(Feedback).order_by(Feedback.id)
    if since is not None:
        stmt = stmt.where(Feedback.created_at >= since)
    return list(session.scalars(stmt))


def count_user_feedback_since(*, session: Session, user_id: str, since: datetime) -> int:
    stmt = select(Feedback.id).where(Feedback.user_id == user_id, Feedback.created_at >= since)
    return len(session.scalars(stmt).all())


# --- Slack events ----------------------------------------------------------------------------
def claim_event(*, session: Session, event_id: str, event_type: str, retry_num: int = 0) -> bool:
    """Record ``event_id``; False when it was already processed (a Slack retry)."""
    return insert_or_skip(session=session, row=SlackEvent(event_id=event_id, event_type=event_type,
                                                         retry_num=retry_num))


# --- named locks (leases) -----------------------------------------------------------------------
def try_acquire_lock(*, session: Session, name: str, holder: str, ttl: timedelta) -> bool:
    """Take or renew the lease ``name`` for ``holder``. Works on SQLite and Postgres."""
    now = utcnow()
    expires = now + ttl
    renewed = session.execute(
        update(Lock)
        .where(Lock.name == name, (Lock.holder == holder) | (Lock.expires_at < now))
        .values(holder=holder, expires_at=expires, acquired_at=now)
    )
    if getattr(renewed, "rowcount", 0):
        session.flush()
        return True
    return insert_or_skip(session=session, row=Lock(name=name, holder=holder, acquired_at=now, expires_at=expires))


def release_lock(*, session: Session, name: str, holder: str) -> None:
    session.execute(delete(Lock).where(Lock.name == name, Lock.holder == holder))


def lock_holder(*, session: Session, name: str) -> str | None:
    lock = session.get(Lock, name)
    if lock is None or _aware(lock.expires_at) < utcnow():
        return None
    return lock.holder


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)
