"""Slack-free services: analyse-and-store. Used by listeners, the CLI and jobs alike."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot import metrics
from bot.errors import InputError
from bot.model_holder import ModelHolder
from bot.storage.tables import Document, Prediction
from models.analyze import Analysis, Analyzer

MAX_TEXT_CHARS = 100_000  # Slack caps messages at 40,000; feeds are summarised before this


@dataclass(frozen=True)
class TextItem:
    text: str
    source: str  # slack | feed | cli | console
    channel: str | None = None
    external_id: str | None = None
    user_id: str | None = None
    thread_ts: str | None = None


@dataclass(frozen=True)
class Stored:
    document_id: int
    prediction_id: int
    analysis: Analysis
    latency_ms: float


def check_text(text: str) -> str:
    """Reject what cannot be analysed, with a specific message."""
    if not isinstance(text, str):
        raise InputError("text must be a string")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"text is {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,}")
    return text.replace("\x00", "")


def analyze_texts(analyzer: Analyzer, texts: Sequence[str]) -> tuple[list[Analysis], float]:
    """Analyse ``texts``; returns the analyses and the per-text latency in ms."""
    clean = [check_text(t) for t in texts]
    start = time.perf_counter()
    with metrics.ANALYSIS_LATENCY.time():
        analyses = analyzer.analyze(clean) if clean else []
    per_text = (time.perf_counter() - start) * 1000 / max(len(clean), 1)
    return analyses, per_text


def analyze_and_store(
    items: Sequence[TextItem], *, models: ModelHolder, session: Session, analyzer: Analyzer | None = None
) -> list[Stored]:
    """Analyse a batch with one model (fixed for the whole batch) and store documents and predictions."""
    model = analyzer or models.current()
    analyses, latency = analyze_texts(model, [item.text for item in items])
    docs = [
        Document(
            source=item.source, text=check_text(item.text), channel=item.channel, external_id=item.external_id,
            user_id=item.user_id, thread_ts=item.thread_ts,
        )
        for item in items
    ]
    session.add_all(docs)
    session.flush()  # one round trip for the batch's documents
    preds = []
    for doc, analysis in zip(docs, analyses, strict=True):
        data = analysis.to_dict()
        preds.append(Prediction(
            document_id=doc.id, model_version=analysis.model_version, entities=data["entities"],
            sentiment_label=analysis.sentiment.label, sentiment_score=analysis.sentiment.score,
            sentiment_probs=dict(analysis.sentiment.probs), latency_ms=latency,
        ))
    session.add_all(preds)
    session.flush()
    return [
        Stored(document_id=doc.id, prediction_id=pred.id, analysis=analysis, latency_ms=latency)
        for doc, pred, analysis in zip(docs, preds, analyses, strict=True)
    ]
