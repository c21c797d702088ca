"""The champion/challenger gate, drift, and the ops report (blocks and PNG): pure parts, plus drift on a DB."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.storage.tables import utcnow
from jobs.gate import FEEDBACK, compare_weeks, diff_rows, gate, task_metrics, week_stats, weekly_drift
from jobs.report import ACTION_PROMOTE, ACTION_ROLLBACK, RunReport, build_blocks, render_png
from tests.jobs.learn_fixtures import add_prediction


def ner(f1: float, sentiment: float | None = None) -> dict[str, Any]:
    report: dict[str, Any] = {"task": "ner", "f1": f1, "per_type": {"PER": {"support": 3}}, "n": 5}
    if sentiment is not None:
        report["sentiment"] = sent(sentiment)
    return report


def sent(acc: float, n: int = 10) -> dict[str, Any]:
    return {"task": "sentiment", "accuracy": acc, "n": n,
            "confusion": {"labels": ["negative", "neutral", "positive"], "matrix": [[3, 1, 0], [0, 2, 0], [1, 0, 3]]}}


def test_task_metrics_reads_every_report_shape() -> None:
    assert task_metrics(ner(0.8, 0.9)) == {"ner_f1": 0.8, "sentiment_accuracy": 0.9}
    assert task_metrics(sent(0.7)) == {"sentiment_accuracy": 0.7}
    no_gold_entities = {"task": "ner", "f1": 0.0, "per_type": {}, "n": 4}
    assert task_metrics(no_gold_entities) == {}
    assert task_metrics({**sent(0.5), "rejected": {"n": 4, "avoided": 0.75}}) == {
        "sentiment_accuracy": 0.5, "rejected_avoided": 0.75}
    assert task_metrics(None) == {} and task_metrics({"task": "none", "n": 0}) == {}


def test_gate_promotes_without_a_champion() -> None:
    decision = gate({"dev": ner(0.1)}, None, tolerance=0.5)
    assert decision.promote and decision.reasons == ["no active model to compare with"]


@pytest.mark.parametrize(("candidate_f1", "promote"), [(0.9, True), (0.896, True), (0.8949, False), (0.5, False)])
def test_gate_tolerance_on_every_dev_set(candidate_f1: float, promote: bool) -> None:
    active = {"conll:dev": ner(0.9), "fpb:dev": sent(0.8)}
    candidate = {"conll:dev": ner(candidate_f1), "fpb:dev": sent(0.85)}
    decision = gate(candidate, active, tolerance=0.5)
    assert decision.promote is promote
    if not promote:
        assert len(decision.reasons) == 1 and decision.reasons[0].startswith("conll:dev: ner_f1 fell")
    assert {(c["set"], c["metric"]) for c in decision.checks} == {("conll:dev", "ner_f1"),
                                                                  ("fpb:dev", "sentiment_accuracy")}


def test_gate_needs_the_feedback_test_at_least_as_good() -> None:
    active = {"fpb:dev": sent(0.8), FEEDBACK: sent(0.6)}
    assert gate({"fpb:dev": sent(0.8), FEEDBACK: sent(0.6)}, active, tolerance=0.5).promote
    worse = gate({"fpb:dev": sent(0.81), FEEDBACK: sent(0.59)}, active, tolerance=0.5)
    assert not worse.promote and worse.reasons == [f"{FEEDBACK}: score 59.00 < active 60.00"]
    # a better dev score does not buy a worse feedback score, and vice versa
    worse_dev = gate({"fpb:dev": sent(0.79), FEEDBACK: sent(0.9)}, active, tolerance=0.5)
    assert not worse_dev.promote and "fpb:dev" in worse_dev.reasons[0]


def test_gate_ignores_sets_only_one_model_was_scored_on() -> None:
    decision = gate({"new:dev": sent(0.1), "fpb:dev": sent(0.8)}, {"fpb:dev": sent(0.8)}, tolerance=0.0)
    assert decision.promote
    rows = diff_rows({"new:dev": sent(0.1), "fpb:dev": sent(0.8)}, {"fpb:dev": sent(0.75)})
    assert rows == [("fpb:dev", "sentiment_accuracy", 0.75, 0.8), ("new:dev", "sentiment_accuracy", None, 0.1)]


def test_drift_warns_beyond_the_threshold() -> None:
    last = week_stats(["positive"] * 5 + ["negative"] * 5, [0.9] * 10)
    calm = compare_weeks(week_stats(["positive"] * 6 + ["negative"] * 4, [0.85] * 10), last, 0.15)
    assert calm.warnings == [] and calm.shifts == {"negative": -0.1, "positive": 0.1}
    stormy = compare_weeks(week_stats(["negative"] * 9 + ["neutral"], [0.6] * 10), last, 0.15)
    assert len(stormy.warnings) == 3  # negative up, positive down, confidence down
    assert any("mean confidence" in w for w in stormy.warnings)
    assert compare_weeks(week_stats([], []), last, 0.15).warnings == []


def test_weekly_drift_reads_predictions(sessions: sessionmaker[Session]) -> None:
    now = utcnow()
    with sessions() as s:
        for i, (label, days) in enumerate([("negative", 1), ("negative", 2), ("positive", 3), ("positive", 9),
                                           ("positive", 10), ("negative", 20)]):
            pred = add_prediction(s, f"text {i}", sentiment=label)
            pred.created_at = now - timedelta(days=days)
        s.commit()
        drift = weekly_drift(session=s, threshold=0.15, now=now)
    assert drift.current.n == 3 and drift.previous.n == 2
    assert drift.current.mix == pytest.approx({"negative": 2 / 3, "positive": 1 / 3})
    assert drift.previous.mix == {"positive": 1.0}
    assert any("negative" in w for w in drift.warnings)


def _report(**kw: Any) -> RunReport:
    base: dict[str, Any] = dict(
        run_id=3, status="rejected", trigger="schedule", version="v2", active_version="v1", device="cpu",
        seconds=90.0, reasons=["fpb:dev: sentiment_accuracy fell 2.00 points (tolerance 0.5)"],
        counts={"base": 100, "feedback_train": 8, "feedback_test": 2, "new_labels": 10},
        candidate={"fpb:dev": sent(0.78), FEEDBACK: sent(0.5)}, active={"fpb:dev": sent(0.8), FEEDBACK: sent(0.5)},
        curve=[{"epoch": 1, "train_loss": 0.9, "score": 0.7}, {"epoch": 2, "train_loss": 0.5, "score": 0.78}],
        drift=compare_weeks(week_stats(["negative"] * 9, [0.6] * 9), week_stats(["positive"] * 9, [0.9] * 9),
                            0.15).to_dict(),
    )
    base.update(kw)
    return RunReport(**base)


def test_report_blocks() -> None:
    blocks = build_blocks(_report())
    assert len(blocks) <= 50 and blocks[0]["type"] == "header" and "rejected" in blocks[0]["text"]["text"]
    table = next(b for b in blocks if b["type"] == "table")
    assert [c["text"] for c in table["rows"][0]] == ["set", "metric", "active", "candidate", "Δ points"]
    assert ["fpb:dev", "sentiment_accuracy", "80.00", "78.00", "-2.00"] in [[c["text"] for c in r]
                                                                            for r in table["rows"]]
    text = str(blocks)
    assert "Why it was rejected" in text and ":warning:" in text and "Drift" in text
    actions = next(b for b in blocks if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == [ACTION_PROMOTE, ACTION_ROLLBACK]
    for block in blocks:
        for key in ("text",):
            if isinstance(block.get(key), dict):
                assert len(block[key]["text"]) <= 3000


def test_failed_report_escapes_the_error() -> None:
    blocks = build_blocks(_report(status="failed", version=None, error="boom <!channel> & " + "x" * 5000,
                                  reasons=[], candidate={}, active=None, curve=[]))
    error = next(b for b in blocks if b["type"] == "section" and "Error" in b["text"]["text"])["text"]["text"]
    assert "<!channel>" not in error and "&lt;!channel&gt; &amp;" in error and len(error) <= 3000
    actions = next(b for b in blocks if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == [ACTION_ROLLBACK]
    assert not any(b["type"] == "table" for b in blocks)


def test_png_has_curves_and_confusion() -> None:
    png = render_png(_report())
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    assert render_png(_report(candidate={}, curve=[])).startswith(b"\x89PNG")


def test_replay_is_a_multiple_of_the_feedback_with_a_floor() -> None:
    from jobs.retrain_data import RetrainOptions, replay_limit
    from jobs.train_child import replay_sample
    from models.data import example_from_spans

    assert replay_limit(RetrainOptions(), 10) == 1000
    assert replay_limit(RetrainOptions(), 600) == 2400
    assert replay_limit(RetrainOptions(replay_ratio=None), 600) is None
    assert replay_limit(RetrainOptions(max_base_examples=50), 600) == 50
    base = [example_from_spans(f"text {i}", None, "neutral", source=f"jsonl:b:{i}") for i in range(100)]
    assert replay_sample(base, None, 1) == base and replay_sample(base, 200, 1) == base
    first, again, other = replay_sample(base, 10, 1), replay_sample(base, 10, 1), replay_sample(base, 10, 2)
    assert len(first) == 10 and first == again and first != other  # fixed per run, different across runs


def test_without_base_data_the_seed_split_of_the_default_model_is_used(make_settings: Any, tmp_path: Any) -> None:
    from bot.bootstrap import seed_specs
    from jobs.retrain_data import base_sources
    from models.data import read_source

    settings = make_settings()
    train, dev = base_sources(settings, tmp_path)
    assert len(train) == 1 and len(dev) == 1 and train[0].startswith("jsonl:") and dev[0].startswith("jsonl:")
    seed = [ex.text for spec in seed_specs() for ex in read_source(spec)]
    train_texts = [ex.text for ex in read_source(train[0])]
    dev_texts = [ex.text for ex in read_source(dev[0])]
    assert sorted(train_texts + dev_texts) == sorted(seed) and 0.05 < len(dev_texts) / len(seed) < 0.3
    configured = make_settings(BEACON_BASE_TRAIN=train[0], BEACON_BASE_DEV=dev[0])
    assert base_sources(configured, tmp_path) == ([train[0]], [dev[0]])
