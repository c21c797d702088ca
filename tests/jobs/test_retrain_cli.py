"""`beacon retrain`, `beacon labels export|stats`, `beacon models show|rollback` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.storage import registry
from bot.storage.db import make_engine, make_session_factory, upgrade
from bot.storage.tables import ModelAudit
from models.data import read_jsonl
from tests.jobs.learn_fixtures import add_prediction, ent, register_active, shared_tiny_world, vote


def beacon(*args: str, env: dict[str, str], cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("BEACON_", "SLACK_", "DATABASE_URL"))}
    full.update(env)
    return subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", *args],
                          env=full, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _feedback(sessions: sessionmaker[Session]) -> None:
    text = "Dana Smith at Acme Corp is furious"
    with sessions() as s:
        gold = add_prediction(s, text, sentiment="neutral", entities=[ent(text, "Acme Corp", "ORG")])
        vote(s, gold, "U1", "confirm")
        vote(s, gold, "U2", "correction", {"sentiment": "negative", "entities": [
            ent(text, "Dana Smith", "PER"), ent(text, "Acme Corp", "ORG")]})
        both = add_prediction(s, "refund arrived, thanks", sentiment="positive")
        vote(s, both, "U1", "confirm")
        vote(s, both, "U2", "confirm")
        tie = add_prediction(s, "meh", sentiment="neutral")
        vote(s, tie, "U1", "confirm")
        vote(s, tie, "U2", "reject")
        s.commit()


def test_labels_export_and_stats(db_url: str, sessions: sessionmaker[Session], tmp_path: Path) -> None:
    _feedback(sessions)
    env = {"DATABASE_URL": db_url, "BEACON_HOME": str(tmp_path), "BEACON_FEEDBACK_HOLDOUT": "0"}
    out = tmp_path / "labels.jsonl"
    res = beacon("labels", "export", "--format", "jsonl", "--out", str(out), env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "2 labels written" in res.stderr
    examples = read_jsonl(out)
    assert [(ex.text, ex.sentiment) for ex in examples] == [
        ("Dana Smith at Acme Corp is furious", "negative"), ("refund arrived, thanks", "positive")]
    assert examples[0].tags is not None and examples[0].tags[:2] == ["B-PER", "I-PER"]
    to_stdout = beacon("labels", "export", env=env, cwd=tmp_path)
    assert to_stdout.returncode == 0 and to_stdout.stdout == out.read_text()
    bad = beacon("labels", "export", "--format", "csv", env=env, cwd=tmp_path)
    assert bad.returncode == 1 and "not supported" in bad.stderr

    stats = beacon("labels", "stats", "--json", env=env, cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    data = json.loads(stats.stdout)
    assert data["feedback"]["active"] == {"confirm": 4, "correction": 1, "reject": 1}
    assert data["labels"]["by_kind"] == {"confirmed": 1, "gold": 1} and data["labels"]["excluded"] == {"tie": 1}
    assert data["agreement"]["items_with_several_users"] == 3
    assert data["agreement"]["fleiss_kappa"] is not None and "U1~U2" in data["agreement"]["cohen_kappa"]
    table = beacon("labels", "stats", env=env, cwd=tmp_path)
    assert table.returncode == 0 and "Fleiss" in table.stdout and "excluded: tie" in table.stdout


def test_models_show_and_rollback(db_url: str, sessions: sessionmaker[Session], tmp_path: Path) -> None:
    dev = {"conll:dev": {"task": "ner", "f1": 0.8, "per_type": {"PER": {"support": 2}}, "n": 3}}
    better = {"conll:dev": {**dev["conll:dev"], "f1": 0.85}}
    with sessions() as s:
        registry.register_version(session=s, version="v1", path="/m/v1", metrics={"dev": dev},
                                  manifest={"sources": [{"spec": "conll:train", "sha256": "ab" * 32, "n": 10,
                                                         "role": "base"}]})
        registry.promote(session=s, version="v1", actor="test")
        registry.register_version(session=s, version="v2", path="/m/v2", metrics={"dev": better}, parent_version="v1")
        registry.promote(session=s, version="v2", actor="test")
        s.commit()
    env = {"DATABASE_URL": db_url, "BEACON_HOME": str(tmp_path)}
    shown = beacon("models", "show", "v1", "--json", env=env, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["status"] == "retired" and data["active"] == "v2"
    assert data["diff"] == [{"set": "conll:dev", "metric": "ner_f1", "active": 0.85, "this": 0.8}]
    assert [a["action"] for a in data["audit"]] == ["promote", "register"]
    text = beacon("models", "show", "v1", env=env, cwd=tmp_path)
    assert text.returncode == 0 and "-5.00" in text.stdout and "conll:train" in text.stdout
    missing = beacon("models", "show", "nope", env=env, cwd=tmp_path)
    assert missing.returncode == 1 and "not registered" in missing.stderr

    back = beacon("models", "rollback", "--reason", "v2 misbehaves", env=env, cwd=tmp_path)
    assert back.returncode == 0, back.stderr
    assert "active model: v1 (was v2)" in back.stdout
    with sessions() as s:
        active = registry.active_version(session=s)
        assert active is not None and active.version == "v1"
        audit = s.scalars(select(ModelAudit).where(ModelAudit.action == "rollback")).one()
        assert audit.actor.startswith("cli") and audit.reason == "v2 misbehaves"


def test_retrain_command(tmp_path: Path) -> None:
    world = shared_tiny_world()
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions() as s:
        register_active(s, world.artifact)
        s.commit()
    env = {"DATABASE_URL": url, "BEACON_HOME": str(tmp_path / "home"), "BEACON_BASE_TRAIN": world.train_spec,
           "BEACON_BASE_DEV": world.dev_spec, "BEACON_BASE_MODEL": str(world.base_model), "BEACON_DEVICE": "cpu",
           "BEACON_RETRAIN_MAX_MINUTES": "2", "HF_HUB_OFFLINE": "1"}
    res = beacon("retrain", "--from-scratch", "--force", "--json", env=env, cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads(res.stdout)
    assert data["status"] == "succeeded" and data["version"]
    with sessions() as s:
        active = registry.active_version(session=s)
        assert active is not None and active.version == data["version"] and active.parent_version is None
    engine.dispose()
