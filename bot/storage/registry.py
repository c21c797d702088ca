"""The model registry: ``model_versions`` rows and their audit trail.

Statuses: candidate → active (exactly one) → retired; or candidate → rejected.
Every change writes a ``model_audit`` row (who, when, why).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.errors import NotFound
from bot.storage.tables import ModelAudit, ModelVersion, utcnow


def register_version(
    *, session: Session, version: str, path: str, metrics: dict[str, Any], manifest: dict[str, Any] | None = None,
    parent_version: str | None = None, actor: str = "system", notes: str | None = None,
) -> ModelVersion:
    row = ModelVersion(
        version=version, path=path, status="candidate", metrics=metrics, manifest=manifest or {},
        parent_version=parent_version, notes=notes,
    )
    session.add(row)
    session.add(ModelAudit(version=version, action="register", actor=actor, reason=notes))
    session.flush()
    return row


def get_version(*, session: Session, version: str) -> ModelVersion:
    row = session.scalars(select(ModelVersion).where(ModelVersion.version == version)).first()
    if row is None:
        raise NotFound(f"model version {version!r} is not registered (see `beacon models list`)")
    return row


def active_version(*, session: Session) -> ModelVersion | None:
    stmt = select(ModelVersion).where(ModelVersion.status == "active").order_by(ModelVersion.promoted_at.desc())
    return session.scalars(stmt).first()


def list_versions(*, session: Session, limit: int = 50) -> list[ModelVersion]:
    stmt = select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc()).limit(limit)
    return list(session.scalars(stmt))


def promote(*, session: Session, version: str, actor: str, reason: str | None = None) -> ModelVersion:
    """Make ``version`` the active model; the previous active one is retired."""
    row = get_version(session=session, version=version)
    current = active_version(session=session)
    if current is not None and current.version != version:
        current.status = "retired"
    row.status = "active"
    row.promoted_at = utcnow()
    session.add(ModelAudit(version=version, action="promote", actor=actor, reason=reason))
    session.flush()
    return row


def reject(*, session: Session, version: str, actor: str, reason: str) -> ModelVersion:
    row = get_version(session=session, version=version)
    row.status = "rejected"
    row.notes = reason
    session.add(ModelAudit(version=version, action="reject", actor=actor, reason=reason))
    session.flush()
    return row


def rollback(*, session: Session, actor: str, reason: str | None = None) -> ModelVersion:
    """Re-activate the model that was active before the current one."""
    current = active_version(session=session)
    if current is None:
        raise NotFound("no active model to roll back from")
    stmt = (
        select(ModelAudit)
        .where(ModelAudit.action.in_(["promote", "rollback"]), ModelAudit.version != current.version)
        .order_by(ModelAudit.id.desc())
    )
    for audit in session.scalars(stmt):
        previous = get_version(session=session, version=audit.version)
        if previous.status in {"retired", "active", "candidate"}:
            current.status = "retired"
            previous.status = "active"
            previous.promoted_at = utcnow()
            session.add(ModelAudit(version=previous.version, action="rollback", actor=actor, reason=reason))
            session.flush()
            return previous
    raise NotFound(f"no earlier model to roll back to from {current.version}")


def audit_log(*, session: Session, version: str | None = None, limit: int = 50) -> list[ModelAudit]:
    stmt = select(ModelAudit).order_by(ModelAudit.id.desc()).limit(limit)
    if version is not None:
        stmt = stmt.where(ModelAudit.version == version)
    return list(session.scalars(stmt))
