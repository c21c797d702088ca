"""Feedback → labels: every aggregation rule, the holdout slice, export and agreement, on SQLite and Postgres."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.storage import crud
from bot.storage.tables import Document, TrainingRun
from jobs import labels
from models.data import read_jsonl
from tests.jobs.learn_fixtures import add_prediction, ent, vote

TEXT = "Acme Corp says Dana Smith will pay in Paris"


def _entities() -> list[dict[str, object]]:
    return [ent(TEXT, "Acme Corp", "ORG"), ent(TEXT, "Dana Smith", "LOC")]


def _decide(session: Session) -> dict[int, labels.Decision]:
    out = {}
    for pred, votes in labels.load_feedback(session=session):
        out[pred.prediction_id] = labels.decide(pred, votes)
    return out


def _tags(ex: labels.Example) -> dict[str, str | None]:
    assert ex.tags is not None
    return dict(zip(ex.words, ex.tags, strict=True))


def test_correction_is_gold_with_full_entity_set(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        pred = add_prediction(s, TEXT, sentiment="positive", entities=_entities())
        payload = {
            "sentiment": "negative",
            "entities": [ent(TEXT, "Acme Corp", "ORG"), ent(TEXT, "Dana Smith", "PER"), ent(TEXT, "Paris", "LOC")],
            "original": {"sentiment": "positive"},
        }
        vote(s, pred, "U1", "reject")
        vote(s, pred, "U1", "correction", payload)
        s.commit()
        decision = _decide(s)[pred.id]
    assert decision.kind == labels.GOLD and decision.example is not None
    ex = decision.example
    assert ex.sentiment == "negative" and ex.not_sentiment is None and ex.not_tags == []
    tags = _tags(ex)
    assert tags["Acme"] == "B-ORG" and tags["Corp"] == "I-ORG"
    assert tags["Dana"] == "B-PER" and tags["Smith"] == "I-PER"
    assert tags["Paris"] == "B-LOC" and tags["says"] == "O" and tags["pay"] == "O"


def test_correction_removing_every_entity_makes_all_words_o(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        pred = add_prediction(s, TEXT, sentiment="neutral", entities=_entities())
        vote(s, pred, "U1", "correction", {"entities": []})  # sentiment key missing: kept as predicted
        s.commit()
        ex = _decide(s)[pred.id].example
    assert ex is not None and ex.sentiment == "neutral"
    assert set(_tags(ex).values()) == {"O"}


def test_thumbs_up_confirms_the_prediction_as_predicted(sessions: sessionmaker[Session]) -> None:
    text = "Acme Corp fell 5% after $ACME news"
    with sessions() as s:
        pred = add_prediction(
            s, text, sentiment="negative",
            entities=[ent(text, "Acme Corp", "ORG"), ent(text, "5%", "PERCENT", "pattern"),
                      ent(text, "$ACME", "TICKER", "pattern")],
        )
        vote(s, pred, "U1", "confirm")
        s.commit()
        decision = _decide(s)[pred.id]
    assert decision.kind == labels.CONFIRMED and decision.example is not None
    ex = decision.example
    assert ex.sentiment == "negative"
    tags = _tags(ex)
    assert tags["Acme"] == "B-ORG" and tags["Corp"] == "I-ORG" and tags["fell"] == "O" and tags["news"] == "O"
    # pattern matches are not the network's job: masked, never O and never a new entity type
    assert tags["5"] is None and tags["%"] is None and tags["ACME"] is None


def test_thumbs_down_is_partial_evidence(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        pred = add_prediction(s, TEXT, sentiment="positive", entities=_entities())
        vote(s, pred, "U1", "reject")
        s.commit()
        decision = _decide(s)[pred.id]
    assert decision.kind == labels.REJECTED and decision.example is not None
    ex = decision.example
    assert ex.sentiment is None and ex.not_sentiment == "positive"
    assert ex.tags is not None and all(t is None for t in ex.tags)  # unknown, never "O"
    nots = dict(zip(ex.words, ex.not_tags, strict=True))
    assert nots["Acme"] == "B-ORG" and nots["Corp"] == "I-ORG"
    assert nots["Dana"] == "B-LOC" and nots["Smith"] == "I-LOC"
    assert nots["says"] is None and nots["Paris"] is None


def test_thumbs_down_without_entities_carries_sentiment_only(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        pred = add_prediction(s, "the refund never arrived", sentiment="positive")
        vote(s, pred, "U1", "reject")
        s.commit()
        ex = _decide(s)[pred.id].example
    assert ex is not None and ex.tags is None and ex.not_sentiment == "positive" and ex.sentiment is None


def test_correction_beats_thumbs(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        pred = add_prediction(s, TEXT, sentiment="positive", entities=_entities())
        for user in ("U1", "U2", "U3"):
            vote(s, pred, user, "confirm")
        vote(s, pred, "U4", "correction", {"sentiment": "negative", "entities": []})
        s.commit()
        decision = _decide(s)[pred.id]
    assert decision.kind == labels.GOLD and decision.example is not None
    assert decision.example.sentiment == "negative"
    assert decision.users == ("U1", "U2", "U3", "U4")


@pytest.mark.parametrize(
    ("ups", "downs", "expected"),
    [(2, 1, labels.CONFIRMED), (1, 2, labels.REJECTED), (1, 1, None), (2, 2, None)],
)
def test_majority_among_thumbs_and_ties_exclude(
    sessions: sessionmaker[Session], ups: int, downs: int, expected: str | None
) -> None:
    with sessions() as s:
        pred = add_prediction(s, TEXT, sentiment="positive", entities=_entities())
        for i in range(ups):
            vote(s, pred, f"UP{i}", "confirm")
        for i in range(downs):
            vote(s, pred, f"DOWN{i}", "reject")
        s.commit()
        decision = _decide(s)[pred.id]
    assert decision.kind == expected
    if expected is None:
        assert decision.reason == "tie" and decision.example is None


def test_retracted_votes_do_not_count(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        pred = add_prediction(s, TEXT, sentiment="positive", entities=_entities())
        vote(s, pred, "U1", "confirm")
        vote(s, pred, "U2", "confirm")
        vote(s, pred, "U3", "reject")
        crud.retract_feedback(session=s, prediction_id=pred.id, user_id="U1", kind="confirm")
        crud.retract_feedback(session=s, prediction_id=pred.id, user_id="U2", kind="confirm")
        only_retracted = add_prediction(s, "all gone", sentiment="neutral")
        vote(s, only_retracted, "U1", "confirm")
        crud.retract_feedback(session=s, prediction_id=only_retracted.id, user_id="U1", kind="confirm")
        s.commit()
        decisions = _decide(s)
    assert decisions[pred.id].kind == labels.REJECTED  # 2 👍 retracted: 0 vs 1
    assert decisions[only_retracted.id].kind is None and decisions[only_retracted.id].reason == "retracted"


def test_latest_vote_of_a_user_wins(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        pred = add_prediction(s, TEXT, sentiment="positive")
        vote(s, pred, "U1", "reject")
        vote(s, pred, "U1", "confirm")  # replaces the 👎 (record_feedback retracts it)
        s.commit()
        assert _decide(s)[pred.id].kind == labels.CONFIRMED


def test_disagreeing_corrections(sessions: sessionmaker[Session]) -> None:
    neg = {"sentiment": "negative", "entities": []}
    pos = {"sentiment": "positive", "entities": []}
    with sessions() as s:
        tied = add_prediction(s, TEXT, sentiment="neutral")
        vote(s, tied, "U1", "correction", neg)
        vote(s, tied, "U2", "correction", pos)
        majority = add_prediction(s, "Dana called twice", sentiment="neutral")
        vote(s, majority, "U1", "correction", pos)
        vote(s, majority, "U2", "correction", neg)
        vote(s, majority, "U3", "correction", dict(neg))
        s.commit()
        decisions = _decide(s)
    assert decisions[tied.id].kind is None and decisions[tied.id].reason == "correction_tie"
    ex = decisions[majority.id].example
    assert ex is not None and ex.sentiment == "negative"


def test_deleted_messages_and_invalid_corrections_are_excluded(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        gone = add_prediction(s, TEXT, sentiment="neutral")
        vote(s, gone, "U1", "confirm")
        document = s.get(Document, gone.document_id)
        assert document is not None
        crud.delete_document_text(session=s, document=document)
        bad = add_prediction(s, "short", sentiment="neutral")
        vote(s, bad, "U1", "correction", {"sentiment": "angry"})
        s.commit()
        decisions = _decide(s)
    assert decisions[gone.id].reason == "deleted"
    assert decisions[bad.id].reason == "invalid"


def test_stale_offsets_are_excluded() -> None:
    """A prediction whose stored entity text no longer matches the message (edited since)."""
    entities = [ent(TEXT, "Acme Corp", "ORG")]
    edited = labels.PredictionView(1, "Acme Inc says hello", "neutral", entities)
    now = datetime.now(UTC)
    for kind in ("confirm", "reject"):
        decision = labels.decide(edited, [labels.Vote("U1", kind, {}, now)])
        assert decision.kind is None and decision.reason == "invalid"
    # a correction's offsets refer to the text the agent corrected (the payload's)
    payload = {"text": TEXT, "sentiment": "neutral", "entities": entities}
    ok = labels.decide(labels.PredictionView(2, TEXT, "neutral", []), [labels.Vote("U1", "correction", payload, now)])
    assert ok.kind == labels.GOLD


def test_holdout_is_fixed_hash_based_and_never_trained_on(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        for i in range(200):
            pred = add_prediction(s, f"ticket {i} about the invoice", sentiment="neutral")
            vote(s, pred, "U1", "confirm")
        s.commit()
        first = labels.collect_labels(session=s, holdout=0.2)
        again = labels.collect_labels(session=s, holdout=0.2)
    assert 20 <= len(first.test) <= 60
    assert len(first.train) + len(first.test) == 200
    assert [d.prediction_id for d in first.test] == [d.prediction_id for d in again.test]
    train_texts = {ex.text for ex in first.train_examples()}
    assert not train_texts & {ex.text for ex in first.test_examples()}
    # the slice depends on the text only: the same texts in another order land on the same side
    shuffled = labels.split_decisions(list(reversed(first.train + first.test)), 0.2)
    assert {d.prediction_id for d in shuffled.test} == {d.prediction_id for d in first.test}


def test_train_examples_are_up_weighted() -> None:
    pred = labels.PredictionView(1, "Dana paid", "positive", [])
    decision = labels.decide(pred, [labels.Vote("U1", "confirm", {}, datetime.now(UTC))])
    label_set = labels.LabelSet(train=[decision])
    assert [ex.weight for ex in label_set.train_examples(3.0)] == [3.0]
    assert decision.example is not None and decision.example.weight == 1.0  # the label itself is unchanged


def test_new_labels_counted_since_the_last_completed_run(sessions: sessionmaker[Session]) -> None:
    now = datetime.now(UTC)
    with sessions() as s:
        for i in range(3):
            vote(s, add_prediction(s, f"old {i}", sentiment="neutral"), "U1", "confirm", at=now - timedelta(days=2))
        for i in range(2):
            vote(s, add_prediction(s, f"new {i}", sentiment="neutral"), "U1", "confirm", at=now)
        s.commit()
        assert labels.new_labels_since_last_run(session=s, holdout=0.2)[0] == 5
        s.add(TrainingRun(status="failed", started_at=now - timedelta(hours=1)))  # failed runs don't count
        s.add(TrainingRun(status="succeeded", started_at=now - timedelta(days=1)))
        s.commit()
        assert labels.new_labels_since_last_run(session=s, holdout=0.2)[0] == 2


def test_export_round_trips_through_the_jsonl_reader(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    with sessions() as s:
        gold = add_prediction(s, TEXT, sentiment="positive", entities=_entities())
        vote(s, gold, "U1", "correction", {"sentiment": "negative", "entities": [ent(TEXT, "Paris", "LOC")]})
        up = add_prediction(s, "Acme fell 5%", sentiment="negative",
                            entities=[ent("Acme fell 5%", "5%", "PERCENT", "pattern")])
        vote(s, up, "U2", "confirm")
        down = add_prediction(s, TEXT + " soon", sentiment="positive", entities=_entities())
        vote(s, down, "U3", "reject")
        s.commit()
        label_set = labels.collect_labels(session=s, holdout=0.0)
    buffer = io.StringIO()
    assert labels.export_jsonl(label_set, buffer) == 3
    path = tmp_path / "labels.jsonl"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    read = read_jsonl(path)
    expected = sorted(label_set.train, key=lambda d: d.prediction_id)
    for ex, decision in zip(read, expected, strict=True):
        assert decision.example is not None
        assert (ex.words, ex.tags, ex.sentiment, ex.not_sentiment, ex.not_tags) == (
            decision.example.words, decision.example.tags, decision.example.sentiment,
            decision.example.not_sentiment, decision.example.not_tags,
        )


def test_kappas_match_hand_computed_values() -> None:
    # two raters, 10 items: 4 both agree, 3 both disagree, 2 A agree/B disagree, 1 A disagree/B agree
    pairs = [("agree", "agree")] * 4 + [("disagree", "disagree")] * 3 + [("agree", "disagree")] * 2 + [
        ("disagree", "agree")
    ]
    # p_o = 0.7, p_e = 0.6*0.5 + 0.4*0.5 = 0.5 → kappa 0.4
    assert labels.cohen_kappa(pairs) == pytest.approx(0.4)
    items = [{"A": a, "B": b} for a, b in pairs]
    # Fleiss (= Scott's pi for 2 raters): p_e = 0.55² + 0.45² = 0.505 → (0.7 - 0.505) / 0.495
    assert labels.fleiss_kappa(items) == pytest.approx((0.7 - 0.505) / 0.495)
    assert labels.fleiss_kappa([{"A": "agree"}]) is None
    assert labels.pairwise_cohen(items) == {"A~B": pytest.approx(0.4)}


def test_label_stats(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        both_up = add_prediction(s, "Dana paid on time", sentiment="positive")
        vote(s, both_up, "U1", "confirm")
        vote(s, both_up, "U2", "confirm")
        split = add_prediction(s, "Acme is late again", sentiment="positive")
        vote(s, split, "U1", "confirm")
        vote(s, split, "U2", "correction", {"sentiment": "negative", "entities": []})
        retracted = add_prediction(s, "fine", sentiment="neutral")
        vote(s, retracted, "U3", "reject")
        crud.retract_feedback(session=s, prediction_id=retracted.id, user_id="U3", kind="reject")
        s.commit()
        stats = labels.label_stats(session=s, holdout=0.0)
    assert stats["feedback"] == {"active": {"confirm": 3, "correction": 1}, "retracted": 1, "users": 3}
    assert stats["labels"]["by_kind"] == {"confirmed": 1, "gold": 1}
    assert stats["labels"]["excluded"] == {"retracted": 1}
    assert stats["pending"] == 2
    agreement = stats["agreement"]
    assert agreement["items_with_several_users"] == 2 and agreement["observed"] == 0.5
    assert agreement["fleiss_kappa"] is not None and agreement["fleiss_kappa"] < 0.5
