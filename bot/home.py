"""What the App Home tab shows, read from storage (Slack-free; the view is built in ``views_home``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.escalation import recent_alerts
from bot.storage import feeds, registry
from bot.storage.tables import Feedback, TrainingRun


@dataclass(frozen=True)
class ModelInfo:
    version: str
    metrics: dict[str, Any]
    since: datetime | None


@dataclass(frozen=True)
class RunInfo:
    status: str
    started_at: datetime
    finished_at: datetime | None
    device: str | None
    candidate_version: str | None
    error: str | None


@dataclass(frozen=True)
class AlertInfo:
    kind: str
    channel: str
    score: float | None
    matched: str | None
    status: str
    created_at: datetime
    permalink: str | None


@dataclass(frozen=True)
class HomeSummary:
    model: ModelInfo | None
    labels: dict[str, int]  # confirmed, rejected, corrected, pending
    last_run: RunInfo | None
    watches: list[str] = field(default_factory=list)
    feeds: list[tuple[int, str, str, str | None]] = field(default_factory=list)  # id, title/url, channel, status
    alerts: list[AlertInfo] = field(default_factory=list)


def label_counts(*, session: Session, since: datetime | None) -> dict[str, int]:
    """Active (not retracted) feedback by kind, and how much arrived after the last good training run."""
    rows = session.execute(
        select(Feedback.kind, func.count()).where(Feedback.retracted_at.is_(None)).group_by(Feedback.kind)
    ).all()
    by_kind = {str(kind): int(count) for kind, count in rows}
    pending_stmt = select(func.count()).select_from(Feedback).where(Feedback.retracted_at.is_(None))
    if since is not None:
        pending_stmt = pending_stmt.where(Feedback.created_at > since)
    return {
        "confirmed": by_kind.get("confirm", 0), "rejected": by_kind.get("reject", 0),
        "corrected": by_kind.get("correction", 0), "pending": int(session.scalar(pending_stmt) or 0),
    }


def last_runs(*, session: Session) -> tuple[TrainingRun | None, TrainingRun | None]:
    """(the latest run, the latest successful run)."""
    latest = session.scalars(select(TrainingRun).order_by(TrainingRun.started_at.desc(), TrainingRun.id.desc())).first()
    good = session.scalars(
        select(TrainingRun).where(TrainingRun.status == "succeeded").order_by(TrainingRun.started_at.desc())
    ).first()
    return latest, good


def summary(*, session: Session) -> HomeSummary:
    active = registry.active_version(session=session)
    model = ModelInfo(active.version, dict(active.metrics), active.promoted_at) if active else None
    latest, good = last_runs(session=session)
    since = (good.finished_at or good.started_at) if good is not None else None
    run = RunInfo(latest.status, latest.started_at, latest.finished_at, latest.device, latest.candidate_version,
                  latest.error) if latest is not None else None
    alerts = [
        AlertInfo(a.kind, a.channel, a.score, a.matched, a.status, a.created_at, (a.payload or {}).get("permalink"))
        for a in recent_alerts(session=session, limit=10)
    ]
    return HomeSummary(
        model=model, labels=label_counts(session=session, since=since), last_run=run,
        watches=[w.name for w in feeds.list_watches(session=session, include_global=True)],
        feeds=[(f.id, f.title or f.url, f.channel, f.last_status) for f in feeds.list_feeds(session=session)],
        alerts=alerts,
    )
