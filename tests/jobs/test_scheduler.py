"""The leader-locked scheduler: one leader per database, a standby that takes over, jobs that
survive exceptions, and the nightly retrain registered from the settings."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import text, update
from sqlalchemy.orm import Session, sessionmaker

from bot.deps import Deps
from bot.errors import ConfigError
from bot.storage import feeds as store
from bot.storage.db import session_scope
from bot.storage.tables import Feed
from jobs import scheduler as sched
from jobs.scheduler import JOB_ALERTS, JOB_POLL, JOB_RETRAIN, SchedulerConfig, build_scheduler, start_scheduler
from tests.jobs.conftest import RecordingLog
from tests.jobs.feedserver import FeedServer, Route, fixture

MakeDeps = Callable[..., tuple[Deps, Any]]
FAST = SchedulerConfig(poll_seconds=0.3, alerts_seconds=0.3, heartbeat_s=0.2, standby_retry_s=0.2, lease_s=1.5,
                       misfire_grace_s=5)


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def make_due(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        session.execute(update(Feed).values(next_poll_at=None))


@pytest.mark.parametrize("crash", [False, True], ids=["stopped", "crashed"])
def test_two_workers_one_polls_and_the_standby_takes_over(
    make_deps: MakeDeps, feed_server: FeedServer, sessions: sessionmaker[Session], crash: bool
) -> None:
    first_log, second_log = RecordingLog(), RecordingLog()
    first_deps, poster = make_deps(log=first_log)
    second_deps, poster2 = make_deps(log=second_log)
    url = feed_server.route("/w.xml", Route(body=fixture("rss20.xml")))
    with session_scope(sessions) as session:
        store.add_feed(session=session, url=url, channel="C0FEEDS01")
    first = start_scheduler(first_deps, poster, config=FAST)
    second = None
    try:
        assert first.wait_until_leader(15)
        second = start_scheduler(second_deps, poster2, config=FAST)
        wait_for(lambda: first.runs[JOB_POLL] >= 3 and first.runs[JOB_ALERTS] >= 1)
        wait_for(lambda: len(feed_server.seen("/w.xml")) == 1)
        assert not second.is_leader and second.runs[JOB_POLL] == 0
        assert second_log.named("scheduler.standby"), "the standby says so in its logs"
        assert first_log.named("scheduler.leader") and not second_log.named("scheduler.leader")
        finished = first_log.named("job.finished")
        assert any(e["job"] == JOB_POLL and "duration_ms" in e and e.get("feeds") == 1 for e in finished)
        if crash:
            first.abandon()
        else:
            first.shutdown()
        assert not first.is_leader
        stopped_runs = first.runs[JOB_POLL]
        assert second.wait_until_leader(20)
        make_due(sessions)
        wait_for(lambda: len(feed_server.seen("/w.xml")) == 2)
        wait_for(lambda: second.runs[JOB_POLL] >= 1)
        assert first.runs[JOB_POLL] == stopped_runs
    finally:
        first.shutdown()
        if second is not None:
            second.shutdown()


def test_a_failing_job_is_logged_and_the_scheduler_keeps_going(
    make_deps: MakeDeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = RecordingLog()
    deps, poster = make_deps(log=log, model=False)

    def broken(_runtime: Any) -> dict[str, Any]:
        raise RuntimeError("alerts exploded")

    monkeypatch.setitem(sched.JOBS, JOB_ALERTS, broken)
    handle = start_scheduler(deps, poster, config=FAST)
    try:
        wait_for(lambda: handle.runtime.failures[JOB_ALERTS] >= 2 and handle.runs[JOB_POLL] >= 2)
    finally:
        handle.shutdown()
    failed = log.named("job.failed")
    assert failed and failed[0]["job"] == JOB_ALERTS and failed[0]["exc_info"] is True
    assert "duration_ms" in failed[0]


def test_retrain_job_follows_the_settings(make_deps: MakeDeps) -> None:
    deps, _ = make_deps(model=False, BEACON_RETRAIN_CRON="30 3 * * 1-5", BEACON_TIMEZONE="Europe/Paris")
    scheduler = build_scheduler(deps, "k", FAST)
    scheduler.start(paused=True)  # job defaults are applied when jobs reach the store
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)
    assert set(jobs) == {JOB_POLL, JOB_ALERTS, JOB_RETRAIN}
    trigger = jobs[JOB_RETRAIN].trigger
    assert isinstance(trigger, CronTrigger) and str(trigger.timezone) == "Europe/Paris"
    fields = {f.name: str(f) for f in trigger.fields}
    assert (fields["minute"], fields["hour"], fields["day_of_week"]) == ("30", "3", "1-5")
    for job in jobs.values():
        assert job.coalesce is True and job.max_instances == 1 and job.misfire_grace_time
    external, _ = make_deps(model=False, BEACON_RETRAIN_SCHEDULER="external")
    assert {job.id for job in build_scheduler(external, "k", FAST).get_jobs()} == {JOB_POLL, JOB_ALERTS}
    bad, poster = make_deps(model=False, BEACON_RETRAIN_CRON="every night")
    with pytest.raises(ConfigError, match="BEACON_RETRAIN_CRON"):
        start_scheduler(bad, poster, config=FAST)


def test_jobs_live_in_the_same_database(make_deps: MakeDeps, sessions: sessionmaker[Session]) -> None:
    deps, poster = make_deps(model=False)
    handle = start_scheduler(deps, poster, config=FAST)
    try:
        assert handle.wait_until_leader(15)
        with sessions() as session:
            ids = set(session.scalars(text("SELECT id FROM apscheduler_jobs")))
        assert ids == {JOB_POLL, JOB_ALERTS, JOB_RETRAIN}
    finally:
        handle.shutdown()
