"""Escalation alerts for monitored support channels, Slack-free: the ``alerts`` rows and their posts.

One alert per message (``dedupe_key`` = ``escalation:<channel>:<ts>``), so an edited message or a
redelivered event never alerts twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import metrics
from bot.storage import crud
from bot.storage.tables import Alert


def should_escalate(negative: float, threshold: float) -> bool:
    return negative >= threshold


def dedupe_key(channel: str, ts: str) -> str:
    return f"escalation:{channel}:{ts}"


def create_escalation(
    *, session: Session, alert_channel: str, source_channel: str, ts: str, prediction_id: int, score: float,
    entities: list[dict[str, Any]],
) -> Alert | None:
    """A pending alert row; None when this message already has one."""
    alert = Alert(
        kind="escalation", channel=alert_channel, dedupe_key=dedupe_key(source_channel, ts),
        prediction_id=prediction_id, score=score, status="pending",
        payload={"source_channel": source_channel, "ts": ts, "entities": entities},
    )
    return alert if crud.insert_or_skip(session=session, row=alert) else None


def mark_posted(*, session: Session, alert_id: int, ts: str, permalink: str | None) -> None:
    alert = session.get(Alert, alert_id)
    if alert is None:
        return
    alert.status = "posted"
    alert.posted_ts = ts
    alert.payload = {**alert.payload, "permalink": permalink}
    crud.record_bot_post(session=session, channel=alert.channel, ts=ts, kind="alert", alert_id=alert.id,
                         prediction_id=alert.prediction_id)
    metrics.ALERTS_POSTED.labels(kind="escalation").inc()


def mark_failed(*, session: Session, alert_id: int, error: str) -> None:
    alert = session.get(Alert, alert_id)
    if alert is not None:
        alert.status = "failed"
        alert.payload = {**alert.payload, "error": error}


def recent_alerts(*, session: Session, limit: int = 10) -> list[Alert]:
    return list(session.scalars(select(Alert).order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit)))
