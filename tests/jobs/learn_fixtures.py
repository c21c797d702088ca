"""Helpers for the learning-loop tests: predictions and feedback rows in a real database."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from bot.storage import crud
from bot.storage.tables import Prediction


def ent(text: str, piece: str, label: str, source: str = "model", score: float = 0.9) -> dict[str, Any]:
    """A stored entity dict for the first occurrence of ``piece`` in ``text``."""
    start = text.index(piece)
    return {"text": piece, "label": label, "start": start, "end": start + len(piece), "score": score, "source": source}


def add_prediction(
    session: Session, text: str, *, sentiment: str = "neutral", entities: list[dict[str, Any]] | None = None,
    model_version: str = "v1", external_id: str | None = None,
) -> Prediction:
    doc = crud.add_document(session=session, source="slack", text=text, channel="C1", external_id=external_id)
    return crud.add_prediction(
        session=session, document=doc, model_version=model_version, entities=entities or [],
        sentiment_label=sentiment, sentiment_score=0.8, sentiment_probs={sentiment: 0.8}, latency_ms=1.0,
    )


def vote(
    session: Session, pred: Prediction, user: str, kind: str, payload: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    row = crud.record_feedback(
        session=session, prediction_id=pred.id, user_id=user, kind=kind, payload=payload,
        model_version=pred.model_version,
    )
    if at is not None:
        row.created_at = at
        session.flush()


# --- a tiny trained world: base data, dev data, a tiny base encoder and a trained artifact ---------
@dataclass(frozen=True)
class TinyWorld:
    base_model: Path  # a tiny random BERT folder (for --from-scratch)
    train_spec: str  # jsonl:PATH of the base training data
    dev_spec: str  # jsonl:PATH of the base dev data
    artifact: Path  # a model trained on the base data (the first active model)


TINY_TRAIN = {"precision": "fp32", "max_length": 32, "patience": 0, "eval_batch_size": 64}


def write_jsonl(path: Path, examples: list[Any]) -> str:
    from models.data import example_to_record

    path.write_text("".join(json.dumps(example_to_record(ex)) + "\n" for ex in examples), encoding="utf-8")
    return f"jsonl:{path}"


def build_tiny_world(folder: Path) -> TinyWorld:
    from models.train import TrainConfig, train_to_artifact
    from tests.models.tiny import synthetic_examples, write_tiny_base

    folder.mkdir(parents=True, exist_ok=True)
    base = write_tiny_base(folder / "base")
    train_examples = synthetic_examples(90, seed=1)
    dev_examples = synthetic_examples(30, seed=2)
    train_spec = write_jsonl(folder / "train.jsonl", train_examples)
    dev_spec = write_jsonl(folder / "dev.jsonl", dev_examples)
    config = TrainConfig(base_model=str(base), epochs=12, batch_size=8, lr=3e-3, device="cpu", seed=3, **TINY_TRAIN)
    artifact = train_to_artifact(config, train_examples, {dev_spec: dev_examples}, out_dir=folder / "v0",
                                 log=_Quiet(), progress=False)
    return TinyWorld(base, train_spec, dev_spec, artifact)


class _Quiet:
    def info(self, event: str, **kw: Any) -> None:
        del event, kw


@lru_cache(maxsize=1)
def shared_tiny_world() -> TinyWorld:
    """One tiny world per test session (read-only: tests register its artifact, never modify it)."""
    folder = Path(tempfile.mkdtemp(prefix="beacon-tiny-world-"))
    atexit.register(shutil.rmtree, folder, True)
    return build_tiny_world(folder)


def register_active(session: Session, path: Path, *, actor: str = "test") -> str:
    from bot.storage import registry
    from models.artifact import read_meta

    version = read_meta(path).model_version
    registry.register_version(session=session, version=version, path=str(path), metrics={})
    registry.promote(session=session, version=version, actor=actor, reason="first model")
    return version


def train_side(texts: list[str], fraction: float = 0.2) -> list[str]:
    """The texts that the fixed feedback holdout puts on the TRAINING side."""
    from jobs.labels import HOLDOUT_SALT
    from models.data import example_from_spans, holdout_split

    train, _ = holdout_split([example_from_spans(t, None, "neutral") for t in texts], fraction, salt=HOLDOUT_SALT)
    return [ex.text for ex in train]
