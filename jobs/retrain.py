"""One retraining cycle: labels → child training process → gate → promotion → report.

``run_retrain`` is the one entry point (the CLI's ``beacon retrain``, the scheduler's nightly job
through :func:`run_scheduled`, the k8s CronJob). It

1. takes the ``retrain`` lease in the database, so runs never overlap, even across processes;
2. (scheduled runs) skips when fewer than ``BEACON_RETRAIN_MIN_NEW_LABELS`` new labels exist;
3. writes the feedback labels (train part up-weighted by ``BEACON_FEEDBACK_WEIGHT``, test part
   held out) next to a spec naming the base data (replayed) and the dev sets;
4. runs :mod:`jobs.train_child` in a CHILD process (``torchrun`` on several GPUs), so the serving
   process's memory and latency are untouched and a crash stays contained, renewing the lease
   while it waits;
5. records ``training_runs``, registers the candidate, applies the champion/challenger gate
   (:mod:`jobs.gate`; ``force`` overrides it, logged and audited), promotes or rejects;
6. posts the report to ``BEACON_OPS_CHANNEL`` (a failed run posts its error).
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot import metrics as prom
from bot.errors import BeaconError, TrainingError
from bot.log import get_logger
from bot.settings import Settings
from bot.storage import crud, registry
from bot.storage.db import session_scope
from bot.storage.tables import ModelAudit, TrainingRun, utcnow
from jobs import labels as labels_mod
from jobs.gate import FEEDBACK, GateDecision, gate, mean_score, task_metrics, weekly_drift
from jobs.launch import planned_device, run_child
from jobs.report import RunReport, post_report
from jobs.retrain_data import RetrainOptions, prepare

log = get_logger("beacon.retrain")
LOCK_NAME = "retrain"
LOCK_TTL = timedelta(minutes=10)


class Owner(Protocol):
    """A :class:`bot.context.Context` or :class:`bot.deps.Deps`: settings and a session factory."""

    @property
    def settings(self) -> Settings: ...
    @property
    def sessions(self) -> sessionmaker[Session]: ...


@dataclass
class RunResult:
    run_id: int | None
    status: str  # succeeded | rejected | failed | skipped
    version: str | None = None
    promoted: bool = False
    forced: bool = False
    reasons: list[str] = field(default_factory=list)
    error: str | None = None
    new_labels: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    report_ts: str | None = None


def _renew(owner: Owner, holder: str) -> None:
    with session_scope(owner.sessions) as session:
        if not crud.try_acquire_lock(session=session, name=LOCK_NAME, holder=holder, ttl=LOCK_TTL):
            log.warning("retrain.lock_lost", holder=holder)


# ------------------------------------------------------------------ decision and recording


def _update(owner: Owner, run_id: int, **values: Any) -> None:
    with session_scope(owner.sessions) as session:
        run = session.get(TrainingRun, run_id)
        if run is None:
            raise TrainingError(f"training run #{run_id} disappeared from the database")
        for key, value in values.items():
            setattr(run, key, value)


def _finish(owner: Owner, run_id: int, **values: Any) -> None:
    _update(owner, run_id, finished_at=utcnow(), **values)


def decide_and_record(owner: Owner, run_id: int, result: dict[str, Any], *, out_dir: Path, champion: str | None,
                      force: bool, actor: str, counts: dict[str, Any]) -> RunResult:
    """Register the candidate, gate it, promote or reject it, and complete the run row."""
    settings = owner.settings
    version = str(result["version"])
    target = settings.models_dir.resolve() / version
    os.replace(out_dir, target)
    candidate, active = result["candidate"] or {}, result.get("active")
    decision: GateDecision = gate(candidate, active, tolerance=settings.gate_tolerance)
    with session_scope(owner.sessions) as session:
        current = registry.active_version(session=session)
        if current is not None and current.version != champion:
            decision.promote = False
            decision.reasons.append(f"the active model changed during the run ({champion} → {current.version})")
        dev = {k: v for k, v in candidate.items() if k != FEEDBACK}
        model_metrics = {"dev": dev, "feedback_test": candidate.get(FEEDBACK), "training_run": run_id,
                         "score": mean_score({f"{k}:{m}": v for k, r in dev.items()
                                              for m, v in task_metrics(r).items()})}
        registry.register_version(session=session, version=version, path=str(target), metrics=model_metrics,
                                  manifest={"sources": result.get("manifest", []), "counts": counts},
                                  parent_version=result.get("parent_version"), actor=actor,
                                  notes=f"retraining run #{run_id}")
        forced = force and not decision.promote
        if decision.promote or force:
            if forced:
                why = "; ".join(decision.reasons) or "gate failed"
                session.add(ModelAudit(version=version, action="force", actor=actor, reason=f"gate overridden: {why}"))
                log.warning("retrain.gate_overridden", version=version, reasons=decision.reasons, actor=actor)
            registry.promote(session=session, version=version, actor=actor,
                             reason=f"retraining run #{run_id}" + (" (--force)" if forced else ""))
            status = "succeeded"
        else:
            registry.reject(session=session, version=version, actor=actor, reason="; ".join(decision.reasons))
            status = "rejected"
    _finish(owner, run_id, status=status, candidate_version=version, device=result.get("device"), data_counts=counts,
            metrics={"candidate": candidate, "active": active, "curve": result.get("curve", []),
                     "timings": result.get("timings", {})},
            decision={**decision.to_dict(), "forced": forced, "champion": champion})
    prom.TRAINING_RUNS.labels(outcome=status).inc()
    log.info("retrain.decided", run_id=run_id, version=version, status=status, reasons=decision.reasons)
    return RunResult(run_id, status, version, promoted=status == "succeeded", forced=forced,
                     reasons=decision.reasons, metrics={"candidate": candidate, "active": active})


# ------------------------------------------------------------------ the cycle


def run_retrain(owner: Owner, *, force: bool = False, from_scratch: bool = False, trigger: str = "manual",
                poster: Any = None, min_new_labels: int | None = None, options: RetrainOptions | None = None,
                actor: str | None = None) -> RunResult:
    """One retraining cycle (see the module docstring). Never raises for a failed training run:
    the result says ``failed`` and carries the error; the run row and the ops report say it too."""
    options = options or RetrainOptions()
    actor = actor or f"retrain ({trigger})"
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    with session_scope(owner.sessions) as session:
        got = crud.try_acquire_lock(session=session, name=LOCK_NAME, holder=holder, ttl=LOCK_TTL)
        other = None if got else crud.lock_holder(session=session, name=LOCK_NAME)
    if not got:
        log.info("retrain.skipped", reason="another run holds the lock", holder=other)
        return _skipped(owner, trigger, f"another run is in progress ({other})", 0)
    try:
        _close_interrupted(owner)
        return _cycle(owner, force=force, from_scratch=from_scratch, trigger=trigger, poster=poster,
                      min_new_labels=min_new_labels, options=options, actor=actor, holder=holder)
    finally:
        with session_scope(owner.sessions) as session:
            crud.release_lock(session=session, name=LOCK_NAME, holder=holder)


def _close_interrupted(owner: Owner) -> None:
    """Runs left "running" by a process that died: we hold the lock, so none of them is alive."""
    with session_scope(owner.sessions) as session:
        for run in session.scalars(select(TrainingRun).where(TrainingRun.status == "running")):
            run.status, run.finished_at = "failed", utcnow()
            run.error = "interrupted: the process running it stopped before the run finished"
            log.warning("retrain.interrupted_run_closed", run_id=run.id)


def _skipped(owner: Owner, trigger: str, reason: str, new_labels: int) -> RunResult:
    with session_scope(owner.sessions) as session:
        run = TrainingRun(status="skipped", trigger=trigger, finished_at=utcnow(),
                          data_counts={"new_labels": new_labels}, decision={"reason": reason})
        session.add(run)
        session.flush()
        run_id = run.id
    prom.TRAINING_RUNS.labels(outcome="skipped").inc()
    return RunResult(run_id, "skipped", reasons=[reason], new_labels=new_labels)


@dataclass
class _Begun:
    run_id: int
    labels: labels_mod.LabelSet
    champion: str | None
    active_path: str | None
    new: int


def _begin(owner: Owner, *, trigger: str, min_new_labels: int | None) -> _Begun | tuple[str, int]:
    """Count the labels and open the run row; (skip reason, new labels) when there are too few."""
    settings = owner.settings
    with session_scope(owner.sessions) as session:
        new, label_set = labels_mod.new_labels_since_last_run(session=session, holdout=settings.feedback_holdout)
        if min_new_labels is not None and new < min_new_labels:
            return f"{new} new labels since the last run (< {min_new_labels})", new
        active = registry.active_version(session=session)
        kind, procs = planned_device(settings)
        run = TrainingRun(status="running", trigger=trigger, device=kind if procs == 1 else f"{kind}×{procs}",
                          data_counts={"new_labels": new})
        session.add(run)
        session.flush()
        return _Begun(run.id, label_set, active.version if active else None, active.path if active else None, new)


def _cycle(owner: Owner, *, force: bool, from_scratch: bool, trigger: str, poster: Any,
           min_new_labels: int | None, options: RetrainOptions, actor: str, holder: str) -> RunResult:
    settings = owner.settings
    begun = _begin(owner, trigger=trigger, min_new_labels=min_new_labels)
    if isinstance(begun, tuple):
        log.info("retrain.skipped", reason=begun[0])
        return _skipped(owner, trigger, *begun)
    run_id, label_set, champion, active_path, new = (begun.run_id, begun.labels, begun.champion, begun.active_path,
                                                     begun.new)
    started = time.monotonic()
    counts: dict[str, Any] = {"new_labels": new}
    result: dict[str, Any] | None = None
    out_dir = settings.models_dir.resolve() / f".run-{run_id}"
    try:
        prepared = prepare(settings, label_set, run_id=run_id, init_from=None if from_scratch else active_path,
                           active_path=active_path, from_scratch=from_scratch, options=options)
        counts = {**prepared.counts, "new_labels": new}
        _update(owner, run_id, data_counts=counts)
        log.info("retrain.start", run_id=run_id, trigger=trigger, from_scratch=from_scratch, champion=champion,
                 new_labels=new, feedback_train=counts["feedback_train"], feedback_test=counts["feedback_test"])
        result = run_child(settings, prepared, options=options, renew=lambda: _renew(owner, holder))
        counts = _with_manifest(counts, result)
        outcome = decide_and_record(owner, run_id, result, out_dir=out_dir, champion=champion, force=force,
                                    actor=actor, counts=counts)
    except BeaconError as exc:
        outcome = _failed(owner, run_id, str(exc))
    except Exception as exc:  # a bug in the parent: record it, then let it surface
        _failed(owner, run_id, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}")
        raise
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    outcome.new_labels = new
    report = _report_for(owner, outcome, RunReport(run_id=run_id, status=outcome.status, trigger=trigger,
                                                   active_version=champion),
                         counts=counts, result=result, seconds=time.monotonic() - started)
    outcome.report_ts = _post(owner, poster, report)
    _reload(owner, outcome)
    return outcome


def _with_manifest(counts: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    sources = [{k: m.get(k) for k in ("spec", "sha256", "n", "role")} for m in result.get("manifest", [])]
    base = sum(int(m.get("n") or 0) for m in result.get("manifest", []) if m.get("role") == "base")
    trained = result.get("counts", {})
    return {**counts, "sources": sources, "base": base, "replayed": trained.get("replayed"),
            "train_total": trained.get("train")}


def _failed(owner: Owner, run_id: int, error: str) -> RunResult:
    log.error("retrain.failed", run_id=run_id, error=error)
    _finish(owner, run_id, status="failed", error=error)
    prom.TRAINING_RUNS.labels(outcome="failed").inc()
    return RunResult(run_id, "failed", error=error)


def _report_for(owner: Owner, outcome: RunResult, report: RunReport, *, counts: dict[str, Any],
                result: dict[str, Any] | None, seconds: float) -> RunReport:
    report.status, report.version, report.promoted = outcome.status, outcome.version, outcome.promoted
    report.forced, report.reasons, report.error = outcome.forced, outcome.reasons, outcome.error
    report.counts, report.seconds = counts, seconds
    if result:
        report.device, report.curve = result.get("device"), result.get("curve", [])
        report.candidate, report.active = result.get("candidate") or {}, result.get("active")
    with owner.sessions() as session:
        report.drift = weekly_drift(session=session, threshold=owner.settings.drift_threshold).to_dict()
    return report


def _post(owner: Owner, poster: Any, report: RunReport) -> str | None:
    channel = owner.settings.ops_channel
    if poster is None or not channel:
        return None
    try:
        ts = post_report(poster, channel, report)
    except BeaconError:
        log.error("retrain.report_failed", run_id=report.run_id, exc_info=True)
        return None
    with session_scope(owner.sessions) as session:
        crud.record_bot_post(session=session, channel=channel, ts=ts, kind="report")
    return ts


def _reload(owner: Owner, outcome: RunResult) -> None:
    holder = getattr(owner, "models", None)
    if outcome.promoted and holder is not None and hasattr(holder, "reload_if_changed"):
        holder.reload_if_changed()


def run_scheduled(deps: Any, poster: Any) -> RunResult:
    """The nightly job: skips below ``BEACON_RETRAIN_MIN_NEW_LABELS`` new labels."""
    return run_retrain(deps, trigger="schedule", poster=poster,
                       min_new_labels=deps.settings.retrain_min_new_labels)
