"""Retraining end to end on a tiny model, on SQLite and Postgres: feedback rows → a child training
process → a new version → the gate → promotion → a running ModelHolder swaps it in; rejection,
--force, rollback, a crashing child, overlapping runs and the nightly skip."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.deps import Deps
from bot.feedback import CorrectionRequest, record_correction, record_vote
from bot.log import get_logger
from bot.model_holder import ModelHolder
from bot.services import TextItem, analyze_and_store
from bot.slack_client import SlackGateway, SlackPoster, make_web_client
from bot.storage import crud, registry
from bot.storage.tables import BotPost, ModelAudit, ModelVersion, Prediction, TrainingRun
from jobs.retrain import LOCK_NAME, RetrainOptions, run_retrain, run_scheduled
from tests.fakes.slack import FakeSlack
from tests.jobs.learn_fixtures import TINY_TRAIN, TinyWorld, register_active, shared_tiny_world, train_side

OPTIONS = RetrainOptions(epochs=6, lr=3e-3, batch_size=8, train_config=dict(TINY_TRAIN), heartbeat_s=0.5)
OPS = "C0OPS0001"


@pytest.fixture
def world() -> TinyWorld:
    return shared_tiny_world()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def deps(make_settings: Any, db_url: str, sessions: sessionmaker[Session], world: TinyWorld,
         slack: FakeSlack) -> Deps:
    settings = make_settings(
        DATABASE_URL=db_url, BEACON_BASE_TRAIN=world.train_spec, BEACON_BASE_DEV=world.dev_spec,
        BEACON_BASE_MODEL=str(world.base_model), BEACON_DEVICE="cpu", BEACON_OPS_CHANNEL=OPS,
        BEACON_FEEDBACK_WEIGHT="5", SLACK_BOT_TOKEN="xoxb-test-token", SLACK_API_URL=slack.api_url,
    )
    with sessions() as session:
        register_active(session, world.artifact)
        session.commit()
    return Deps(settings=settings, sessions=sessions, models=ModelHolder(sessions, device="cpu"),
                log=get_logger("test"))


def poster(deps: Deps) -> SlackPoster:
    return SlackPoster(SlackGateway(make_web_client(deps.settings)))


def analyse(deps: Deps, text: str) -> Prediction:
    with deps.sessions() as session:
        stored = analyze_and_store([TextItem(text, "slack", channel="C1", external_id=text)], models=deps.models,
                                   session=session)
        prediction = session.get(Prediction, stored[0].prediction_id)
        session.commit()
    assert prediction is not None
    return prediction


def correct(deps: Deps, prediction: Prediction, sentiment: str, user: str = "U1") -> None:
    with deps.sessions() as session:
        outcome, errors = record_correction(session=session, prediction_id=prediction.id, user_id=user,
                                            request=CorrectionRequest(sentiment=sentiment))
        assert not errors and outcome.status == "recorded"
        session.commit()


def other_sentiment(label: str) -> str:
    return "negative" if label == "positive" else "positive"


def active(deps: Deps) -> str | None:
    with deps.sessions() as session:
        row = registry.active_version(session=session)
        return row.version if row else None


def run_row(deps: Deps, run_id: int | None) -> TrainingRun:
    with deps.sessions() as session:
        row = session.get(TrainingRun, run_id)
        assert row is not None
        return row


def test_feedback_becomes_a_promoted_model_that_serving_picks_up(deps: Deps, slack: FakeSlack) -> None:
    first = deps.models.current()
    other_server = ModelHolder(deps.sessions, device="cpu")  # another serving process
    assert other_server.current().version == first.version
    texts = train_side(["carol sold shares in berlin", "bob bought acme shares", "alice joined globex today",
                        "the acme report was okay", "bob met carol at initech"])
    corrected: dict[str, str] = {}
    for text in texts[:2]:
        prediction = analyse(deps, text)
        corrected[text] = other_sentiment(prediction.sentiment_label)
        correct(deps, prediction, corrected[text])
    with deps.sessions() as session:
        confirmed = analyse(deps, texts[2])
        record_vote(session=session, prediction=session.get(Prediction, confirmed.id), user_id="U2", kind="confirm")
        session.commit()

    result = run_retrain(deps, trigger="manual", poster=poster(deps), options=OPTIONS)

    assert result.status == "succeeded", (result.error, result.reasons)
    assert result.promoted and not result.forced and result.version != first.version
    assert active(deps) == result.version
    # the serving holder of this process swapped already; another process's holder on its next poll
    assert deps.models.version == result.version
    assert other_server.reload_if_changed() and other_server.version == result.version
    for text, label in corrected.items():
        assert first.analyze([text])[0].sentiment.label != label  # in-flight requests keep the old model
        assert other_server.current().analyze([text])[0].sentiment.label == label
    row = run_row(deps, result.run_id)
    assert row.status == "succeeded" and row.candidate_version == result.version and row.finished_at is not None
    assert row.device == "cpu" and row.error is None and row.decision["promote"] is True
    assert row.data_counts["feedback_train"] == 3 and row.data_counts["new_labels"] == 3
    assert {s["role"] for s in row.data_counts["sources"]} >= {"base", "dev", "feedback"}
    assert all(len(s["sha256"]) == 64 for s in row.data_counts["sources"])
    assert row.metrics["curve"] and row.metrics["candidate"] and row.metrics["active"]
    with deps.sessions() as session:
        version = registry.get_version(session=session, version=result.version or "")
        assert version.status == "active" and version.parent_version == first.version
        actions = [a.action for a in registry.audit_log(session=session, version=result.version)]
        assert sorted(actions) == ["promote", "register"]
        assert session.scalars(select(BotPost).where(BotPost.kind == "report")).one().ts == result.report_ts
    # the ops report: a metric table, the buttons, and the PNG through files_upload_v2
    message = slack.wait_for("chat.postMessage", where=lambda c: c.arg("channel") == OPS)[0]
    blocks = message.arg("blocks")
    assert any(b["type"] == "table" for b in blocks)
    actions_block = next(b for b in blocks if b["type"] == "actions")
    assert [e["text"]["text"] for e in actions_block["elements"]] == ["Rollback"]  # already promoted
    slack.wait_for("files.completeUploadExternal")
    assert any(body.startswith(b"\x89PNG") for body in slack.uploads.values())
    assert slack.spec_violations == []


def test_rejected_candidate_then_force_then_rollback(deps: Deps, slack: FakeSlack) -> None:
    first = deps.models.current()
    champion = first.version
    prediction = analyse(deps, "bob bought acme shares")
    correct(deps, prediction, other_sentiment(prediction.sentiment_label))
    # a candidate from scratch with a single optimiser step is far worse on the base dev set
    worse = RetrainOptions(from_scratch_epochs=1, batch_size=8, heartbeat_s=0.5,
                           train_config={**TINY_TRAIN, "max_steps": 1})

    rejected = run_retrain(deps, trigger="manual", from_scratch=True, poster=poster(deps), options=worse)

    assert rejected.status == "rejected", rejected.error
    assert any("fell" in reason and "tolerance 0.5" in reason for reason in rejected.reasons), rejected.reasons
    assert active(deps) == champion and not deps.models.reload_if_changed()
    assert deps.models.current() is first
    with deps.sessions() as session:
        candidate = registry.get_version(session=session, version=rejected.version or "")
        assert candidate.status == "rejected" and "fell" in (candidate.notes or "")
        assert candidate.parent_version is None  # from scratch
    row = run_row(deps, rejected.run_id)
    assert row.status == "rejected" and row.decision["promote"] is False and row.decision["reasons"]
    report = slack.wait_for("chat.postMessage", where=lambda c: c.arg("channel") == OPS)[0]
    buttons = next(b for b in report.arg("blocks") if b["type"] == "actions")["elements"]
    assert [(e["text"]["text"], e["value"]) for e in buttons] == [("Promote", rejected.version),
                                                                   ("Rollback", rejected.version)]

    forced = run_retrain(deps, trigger="manual", force=True, from_scratch=True, options=worse,
                         actor="cli:ops-person")

    assert forced.status == "succeeded" and forced.forced and active(deps) == forced.version
    with deps.sessions() as session:
        audit = session.scalars(select(ModelAudit).where(ModelAudit.version == forced.version)).all()
        force_row = next(a for a in audit if a.action == "force")
        assert force_row.actor == "cli:ops-person" and "gate overridden" in (force_row.reason or "")
    assert run_row(deps, forced.run_id).decision["forced"] is True
    assert deps.models.version == forced.version

    with deps.sessions() as session:
        back = registry.rollback(session=session, actor="test", reason="forced model misbehaves")
        session.commit()
    assert back.version == champion and active(deps) == champion
    assert deps.models.reload_if_changed() and deps.models.version == champion


def test_a_crashing_child_is_recorded_reported_and_the_bot_keeps_serving(deps: Deps, slack: FakeSlack) -> None:
    serving = deps.models.current()
    prediction = analyse(deps, "bob bought acme shares")
    correct(deps, prediction, other_sentiment(prediction.sentiment_label))
    crash = RetrainOptions(launcher=[sys.executable, "-c", "import os; print('about to crash', flush=True); "
                                                           "os.abort()"], heartbeat_s=0.5)

    result = run_retrain(deps, trigger="manual", poster=poster(deps), options=crash)

    assert result.status == "failed" and result.version is None
    assert "SIGABRT" in (result.error or "") and "about to crash" in (result.error or "")
    row = run_row(deps, result.run_id)
    assert row.status == "failed" and "SIGABRT" in (row.error or "") and row.finished_at is not None
    report = slack.wait_for("chat.postMessage", where=lambda c: c.arg("channel") == OPS)[0]
    assert "failed" in report.arg("text") and "SIGABRT" in str(report.arg("blocks"))
    # the bot keeps serving with the same model, and the lock is free again
    assert deps.models.current() is serving and active(deps) == serving.version
    assert serving.analyze(["alice visited paris"])[0].model_version == serving.version
    with deps.sessions() as session:
        assert crud.lock_holder(session=session, name=LOCK_NAME) is None


def test_a_failing_real_child_records_the_data_error(deps: Deps, tmp_path: Any) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine", "sentiment": "positive"}\n{"text": "broken", "sentiment": "angry"}\n')
    deps.settings.base_train = [f"jsonl:{bad}"]
    prediction = analyse(deps, "bob bought acme shares")
    correct(deps, prediction, other_sentiment(prediction.sentiment_label))

    result = run_retrain(deps, trigger="manual", options=OPTIONS)

    assert result.status == "failed"
    assert "DataError" in (result.error or "") and f"{bad}:2" in (result.error or "")
    with deps.sessions() as session:
        assert session.scalars(select(ModelVersion)).all()[0].status == "active"  # nothing new registered
        assert len(session.scalars(select(ModelVersion)).all()) == 1


def test_runs_never_overlap(deps: Deps) -> None:
    with deps.sessions() as session:
        assert crud.try_acquire_lock(session=session, name=LOCK_NAME, holder="other-host:1",
                                     ttl=__import__("datetime").timedelta(minutes=5))
        session.commit()
    held = run_retrain(deps, trigger="manual", options=OPTIONS)
    assert held.status == "skipped" and "other-host:1" in held.reasons[0]
    with deps.sessions() as session:
        crud.release_lock(session=session, name=LOCK_NAME, holder="other-host:1")
        session.commit()

    slow = RetrainOptions(launcher=[sys.executable, "-c", "import time; time.sleep(4)"], heartbeat_s=0.3)
    results: list[Any] = []
    first = threading.Thread(target=lambda: results.append(run_retrain(deps, trigger="manual", options=slow)))
    first.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with deps.sessions() as session:
            if session.scalars(select(TrainingRun).where(TrainingRun.status == "running")).first():
                break
        time.sleep(0.05)
    second = run_retrain(deps, trigger="schedule", options=slow)
    first.join(timeout=60)
    assert second.status == "skipped" and "in progress" in second.reasons[0]
    assert results and results[0].status == "failed"  # the sleeping child wrote no result
    with deps.sessions() as session:
        statuses = sorted(r.status for r in session.scalars(select(TrainingRun)))
        assert statuses == ["failed", "skipped", "skipped"]
        assert crud.lock_holder(session=session, name=LOCK_NAME) is None


def test_scheduled_run_skips_with_too_few_new_labels(deps: Deps, slack: FakeSlack) -> None:
    with deps.sessions() as session:  # a run whose process died mid-way
        session.add(TrainingRun(status="running", trigger="schedule"))
        session.commit()
    prediction = analyse(deps, "bob bought acme shares")
    correct(deps, prediction, other_sentiment(prediction.sentiment_label))
    result = run_scheduled(deps, poster(deps))
    assert result.status == "skipped" and result.new_labels == 1
    assert "1 new labels" in result.reasons[0] and "< 20" in result.reasons[0]
    assert run_row(deps, result.run_id).status == "skipped"
    assert not slack.calls_to("chat.postMessage")
    interrupted = run_row(deps, (result.run_id or 0) - 1)
    assert interrupted.status == "failed" and "interrupted" in (interrupted.error or "")
