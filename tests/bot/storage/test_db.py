"""Schema migrations and constraints on SQLite and a real PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import StorageError
from bot.storage import crud
from bot.storage.db import check_connection, current_revision, downgrade, make_engine, upgrade
from bot.storage.tables import Base, BotPost, Feedback, Prediction, SlackEvent

EXPECTED_TABLES = {
    "documents", "predictions", "bot_posts", "feedback", "slack_events", "feeds", "feed_items", "watches",
    "alerts", "model_versions", "model_audit", "training_runs", "locks",
}


def _prediction(session: Session) -> Prediction:
    doc = crud.add_document(session=session, source="slack", text="hello", channel="C1", external_id="1.1")
    return crud.add_prediction(
        session=session, document=doc, model_version="v1", entities=[], sentiment_label="neutral",
        sentiment_score=0.9, sentiment_probs={"neutral": 0.9}, latency_ms=1.0,
    )


def test_schema_round_trips(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= EXPECTED_TABLES
    assert current_revision(engine) is not None
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert not EXPECTED_TABLES & set(inspect(engine).get_table_names())
    upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= EXPECTED_TABLES
    engine.dispose()


def test_migrations_match_the_models(engine: Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_duplicate_event_id_rejected(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        assert crud.claim_event(session=session, event_id="Ev1", event_type="app_mention")
        assert not crud.claim_event(session=session, event_id="Ev1", event_type="app_mention", retry_num=1)
        session.commit()
        assert session.scalar(select(func.count()).select_from(SlackEvent)) == 1
    with sessions() as session:
        session.add(SlackEvent(event_id="Ev1", event_type="x"))
        with pytest.raises(IntegrityError):
            session.flush()


def test_duplicate_bot_post_rejected(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        crud.record_bot_post(session=session, channel="C1", ts="1.000100")
        session.commit()
        with pytest.raises(IntegrityError):
            crud.record_bot_post(session=session, channel="C1", ts="1.000100")
        session.rollback()
        crud.record_bot_post(session=session, channel="C2", ts="1.000100")  # other channel is fine
        session.commit()
        assert session.scalar(select(func.count()).select_from(BotPost)) == 2


def test_second_active_vote_rejected(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        pred = _prediction(session)
        session.add(Feedback(prediction_id=pred.id, user_id="U1", kind="confirm", slot="vote", payload={}))
        session.commit()
        session.add(Feedback(prediction_id=pred.id, user_id="U1", kind="reject", slot="vote", payload={}))
        with pytest.raises(IntegrityError):
            session.flush()
        session.rollback()
        # through the storage function the latest vote wins and the old one is retracted
        crud.record_feedback(session=session, prediction_id=pred.id, user_id="U1", kind="reject")
        session.commit()
        rows = session.scalars(select(Feedback).order_by(Feedback.id)).all()
        assert [r.kind for r in rows] == ["confirm", "reject"]
        assert rows[0].retracted_at is not None and rows[1].retracted_at is None


def test_concurrent_feedback_writers_lose_nothing(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        pred_id = _prediction(session).id
        session.commit()
    errors: list[BaseException] = []
    per_thread = 40

    def writer(user_prefix: str) -> None:
        try:
            for i in range(per_thread):
                with sessions() as session:
                    crud.record_feedback(
                        session=session, prediction_id=pred_id, user_id=f"{user_prefix}{i}", kind="confirm"
                    )
                    session.commit()
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Feedback)) == 2 * per_thread


def test_unreachable_database_is_one_clear_error() -> None:
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    with pytest.raises(StorageError, match="DATABASE_URL: cannot connect"):
        check_connection(engine)
