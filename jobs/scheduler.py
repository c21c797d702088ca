"""The scheduler: APScheduler 3.x (the only module that imports it), leader-locked.

``start_scheduler(deps, poster)`` returns at once with a :class:`Handle`; a background thread
takes the leader lock (PostgreSQL advisory lock, or a lease row on SQLite) and only then starts
a ``BackgroundScheduler`` whose job store is the same database. A second worker waits as a
standby, says so in its logs, and takes over when the leader stops or dies.

Jobs: feed polling, alert evaluation and (unless ``BEACON_RETRAIN_SCHEDULER=external``) the
nightly retrain at ``BEACON_RETRAIN_CRON`` in ``BEACON_TIMEZONE``. All have ``coalesce=True``,
``max_instances=1`` and a misfire grace time. Every run is logged with its duration and counts;
an exception is logged with its traceback at the job boundary and the scheduler keeps going.
"""

from __future__ import annotations

import importlib
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.deps import Deps
from bot.errors import ConfigError
from bot.log import get_logger
from bot.poster import Poster
from jobs.leader import LeaderLock, make_leader_lock

JOB_POLL = "feeds.poll"
JOB_ALERTS = "alerts.evaluate"
JOB_RETRAIN = "retrain.nightly"
JOBSTORE_TABLE = "apscheduler_jobs"
log = get_logger("beacon.scheduler")


@dataclass(frozen=True)
class SchedulerConfig:
    poll_seconds: float = 60.0
    alerts_seconds: float = 60.0
    misfire_grace_s: int = 120
    retrain_misfire_grace_s: int = 3600
    lease_s: float = 60.0  # SQLite lease; a dead leader is replaced after this
    heartbeat_s: float = 10.0
    standby_retry_s: float = 5.0
    executor_threads: int = 4


# --- job bodies ------------------------------------------------------------------------------
def _poll(rt: Runtime) -> dict[str, Any]:
    return rt.poller().poll_due().counts()


def _alerts(rt: Runtime) -> dict[str, Any]:
    from jobs.alerts import run_alerts

    return run_alerts(rt.deps, rt.poster)


def _retrain(rt: Runtime) -> dict[str, Any]:
    try:
        retrain = importlib.import_module("jobs.retrain")
        run_scheduled = retrain.run_scheduled
    except (ImportError, AttributeError) as exc:
        rt.log.error("retrain.unavailable", error=f"jobs.retrain.run_scheduled is not available: {exc}")
        return {"ran": 0}
    result = run_scheduled(rt.deps, rt.poster)
    if isinstance(result, dict):
        return result
    scalars = (str, int, float, bool, type(None))
    return {k: v for k, v in vars(result).items() if isinstance(v, scalars)} if hasattr(result, "__dict__") else {
        "result": str(result)}


JOBS: dict[str, Callable[[Runtime], dict[str, Any]]] = {JOB_POLL: _poll, JOB_ALERTS: _alerts, JOB_RETRAIN: _retrain}


@dataclass
class Runtime:
    """What the jobs of one scheduler need; looked up by key, since job stores persist only refs."""

    deps: Deps
    poster: Poster
    log: Any
    runs: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    _poller: Any = None

    def poller(self) -> Any:
        if self._poller is None:
            from jobs.feeds import FeedPoller

            self._poller = FeedPoller(self.deps, self.poster)
        return self._poller

    def run(self, name: str) -> None:
        start = time.perf_counter()
        try:
            counts = JOBS[name](self)
        except Exception:  # the job boundary: log with traceback, keep the scheduler going
            self.failures[name] += 1
            self.log.error("job.failed", job=name, duration_ms=_ms(start), exc_info=True)
        else:
            self.log.info("job.finished", job=name, duration_ms=_ms(start), **counts)
        finally:
            self.runs[name] += 1

    def close(self) -> None:
        if self._poller is not None:
            self._poller.close()


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


_RUNTIMES: dict[str, Runtime] = {}


def run_job(key: str, name: str) -> None:
    """The job stores' target (a picklable module-level reference)."""
    runtime = _RUNTIMES.get(key)
    if runtime is None:
        log.warning("job.orphaned", job=name, hint="a job from a scheduler that is no longer running")
        return
    runtime.run(name)


# --- configuration -------------------------------------------------------------------------------
def retrain_trigger(cron: str, timezone: str) -> CronTrigger:
    """The nightly retrain trigger; a ConfigError naming the variable when it is invalid."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"BEACON_TIMEZONE: unknown time zone {timezone!r}") from None
    try:
        return CronTrigger.from_crontab(cron, timezone=zone)
    except ValueError as exc:
        raise ConfigError(f"BEACON_RETRAIN_CRON: {cron!r} is not a crontab expression ({exc})") from None


def _engine_of(deps: Deps) -> Engine:
    bind = deps.sessions.kw.get("bind")
    if not isinstance(bind, Engine):
        raise ConfigError("the scheduler needs a session factory bound to an engine")
    return bind


def build_scheduler(deps: Deps, key: str, config: SchedulerConfig) -> BackgroundScheduler:
    settings = deps.settings
    zone = ZoneInfo(settings.timezone)
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=_engine_of(deps), tablename=JOBSTORE_TABLE)},
        executors={"default": ThreadPoolExecutor(config.executor_threads)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": config.misfire_grace_s},
        timezone=zone,
    )
    now = datetime.now(zone)
    for job_id, seconds in ((JOB_POLL, config.poll_seconds), (JOB_ALERTS, config.alerts_seconds)):
        scheduler.add_job(run_job, IntervalTrigger(seconds=seconds, timezone=zone), args=[key, job_id], id=job_id,
                          name=job_id, replace_existing=True, next_run_time=now)
    if settings.retrain_scheduler == "internal":
        scheduler.add_job(run_job, retrain_trigger(settings.retrain_cron, settings.timezone), args=[key, JOB_RETRAIN],
                          id=JOB_RETRAIN, name=JOB_RETRAIN, replace_existing=True,
                          misfire_grace_time=config.retrain_misfire_grace_s)
    return scheduler


# --- leadership ------------------------------------------------------------------------------------
class Handle:
    """A running (leader or standby) scheduler process part."""

    def __init__(self, deps: Deps, poster: Poster, lock: LeaderLock, config: SchedulerConfig) -> None:
        self.key = uuid.uuid4().hex
        self.deps = deps
        self.config = config
        self.lock = lock
        self.log = deps.log.bind(holder=lock.holder) if hasattr(deps.log, "bind") else deps.log
        self.runtime = Runtime(deps=deps, poster=poster, log=self.log)
        self._scheduler: BackgroundScheduler | None = None
        self._stop = threading.Event()
        self._leader = threading.Event()
        self._abandon = False
        self._thread = threading.Thread(target=self._loop, name="scheduler-leader", daemon=True)

    @property
    def is_leader(self) -> bool:
        return self._leader.is_set()

    @property
    def runs(self) -> Counter[str]:
        return self.runtime.runs

    def start(self) -> Handle:
        _RUNTIMES[self.key] = self.runtime
        self._thread.start()
        return self

    def wait_until_leader(self, timeout: float) -> bool:
        return self._leader.wait(timeout)

    def shutdown(self, wait: bool = True) -> None:
        """Stop the scheduler (waiting for running jobs), release the lock, end the thread."""
        self._stop.set()
        if wait and self._thread.is_alive():
            self._thread.join(timeout=max(60.0, self.config.heartbeat_s * 3))
        self.runtime.close()

    def abandon(self) -> None:
        """Stop without releasing the lock: what a crashed worker looks like (for tests)."""
        self._abandon = True
        self.shutdown()

    # --- the leader thread -----------------------------------------------------------------------
    def _loop(self) -> None:
        announced = False
        while not self._stop.is_set():
            if self.is_leader:
                self._stop.wait(self.config.heartbeat_s)
                if not self._stop.is_set() and not self._safe(self.lock.renew):
                    self.log.error("scheduler.leadership_lost")
                    self._stop_scheduler(wait=False)
                continue
            if self._safe(self.lock.try_acquire):
                self._become_leader()
                continue
            if not announced:
                holder = self._safe_holder()
                self.log.info("scheduler.standby", leader=holder, retry_s=self.config.standby_retry_s)
                announced = True
            self._stop.wait(self.config.standby_retry_s)
        self._stop_scheduler(wait=True)
        if self._abandon:
            self.lock.abandon()
        else:
            self._safe(self._release)
        _RUNTIMES.pop(self.key, None)
        self.log.info("scheduler.stopped")

    def _safe(self, action: Callable[[], bool]) -> bool:
        try:
            return action()
        except SQLAlchemyError as exc:
            self.log.error("scheduler.lock_error", error=str(exc).splitlines()[0])
            return False

    def _release(self) -> bool:
        self.lock.release()
        return True

    def _safe_holder(self) -> str | None:
        try:
            return self.lock.current_holder()
        except SQLAlchemyError:
            return None

    def _become_leader(self) -> None:
        try:
            scheduler = build_scheduler(self.deps, self.key, self.config)
            scheduler.start()
            if self.deps.settings.retrain_scheduler == "external":
                remove_job(scheduler, JOB_RETRAIN)  # a job persisted while it was internal
        except Exception:  # cannot schedule: give the lock back so another worker may try
            self.log.error("scheduler.start_failed", exc_info=True)
            self._safe(self._release)
            self._stop.wait(self.config.standby_retry_s)
            return
        self._scheduler = scheduler
        self._leader.set()
        jobs = sorted(job.id for job in scheduler.get_jobs())
        self.log.info("scheduler.leader", jobs=jobs)

    def _stop_scheduler(self, *, wait: bool) -> None:
        scheduler, self._scheduler = self._scheduler, None
        self._leader.clear()
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=wait)


def start_scheduler(deps: Deps, poster: Poster, *, config: SchedulerConfig | None = None) -> Handle:
    """Start the leader-locked scheduler in the background; returns its :class:`Handle`."""
    config = config or SchedulerConfig()
    settings = deps.settings
    if settings.retrain_scheduler == "internal":
        retrain_trigger(settings.retrain_cron, settings.timezone)  # fail fast on bad settings
    else:
        retrain_trigger("0 2 * * *", settings.timezone)
    lock = make_leader_lock(_engine_of(deps), deps.sessions, ttl=timedelta(seconds=config.lease_s))
    handle = Handle(deps, poster, lock, config).start()
    deps.log.info("scheduler.starting", holder=lock.holder, retrain=settings.retrain_scheduler,
                  retrain_cron=settings.retrain_cron if settings.retrain_scheduler == "internal" else None)
    return handle


def remove_job(scheduler: BackgroundScheduler, job_id: str) -> None:
    try:
        scheduler.remove_job(job_id)
    except JobLookupError:
        return


def run_worker(deps: Deps, poster: Poster, *, config: SchedulerConfig | None = None) -> None:
    """Run the scheduler alone until SIGTERM or SIGINT (``beacon worker``)."""
    handle = start_scheduler(deps, poster, config=config)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        deps.log.info("worker.signal", signal=signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stop.wait(1.0):
            pass
    finally:
        handle.shutdown()
        for sig, old in previous.items():
            signal.signal(sig, old)
