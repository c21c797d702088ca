"""Scoring a model on labelled examples (``beacon eval`` and the dev sets during training).

What a report looks like, one per example set (one per ``--data`` spec in the CLI):

* entities only: :func:`models.evaluate.ner_report` (``task="ner"``, ``f1``, ``per_type``...);
* sentiment only: :func:`models.evaluate.sentiment_report` (``task="sentiment"``, ``accuracy``...);
* both tasks: the NER report with the sentiment report under the key ``"sentiment"``;
* neither: ``{"task": "none", "n": N}``.

Entities are scored at the word level on the example's own words (the first sub-token's
prediction per word), strict IOB2. A gold tag ``None`` (unknown) is scored as ``O`` with the
prediction there forced to ``O`` too, so unknown words neither help nor hurt. Sentiment
probabilities are calibrated with the model's temperature (they feed the ECE). Batches are
formed deterministically, so the numbers repeat exactly across runs on the same machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from models.data import Example
from models.evaluate import ner_report, sentiment_report
from models.labels import IGNORE_INDEX
from models.predict import DocOutput, Predictor, apply_temperature


class ScoringTarget(Protocol):
    """What scoring needs: an :class:`~models.analyze.Analyzer` has all of it."""

    @property
    def predictor(self) -> Predictor: ...
    @property
    def labels(self) -> list[str]: ...
    @property
    def sentiment_labels(self) -> list[str]: ...
    @property
    def temperatures(self) -> dict[str, float]: ...


@dataclass
class ModelView:
    """A :class:`ScoringTarget` over an in-memory network (used while training)."""

    predictor: Predictor
    labels: list[str]
    sentiment_labels: list[str]
    temperatures: dict[str, float] = field(default_factory=lambda: {"ner": 1.0, "sentiment": 1.0})


def collect(
    predictor: Predictor, examples: Sequence[Example], batch_size: int = 64, *, keep_logits: bool = False
) -> list[DocOutput]:
    """Predictions for every example, on its own words (word logits kept for calibration)."""
    return predictor.predict([ex.words for ex in examples], batch_size=batch_size, keep_logits=keep_logits)


def _ner_part(examples: Sequence[Example], docs: Sequence[DocOutput], labels: list[str]) -> dict[str, Any]:
    gold_all: list[list[str]] = []
    pred_all: list[list[str]] = []
    for ex, doc in zip(examples, docs, strict=True):
        if ex.tags is None:
            continue
        pred = doc.tags(labels)
        gold = [tag if tag is not None else "O" for tag in ex.tags]
        pred = [p if tag is not None else "O" for p, tag in zip(pred, ex.tags, strict=True)]
        gold_all.append(gold)
        pred_all.append(pred)
    return ner_report(gold_all, pred_all)


def _sentiment_part(
    examples: Sequence[Example], docs: Sequence[DocOutput], labels: list[str], t: float
) -> dict[str, Any]:
    gold: list[str] = []
    pred: list[str] = []
    probs: list[list[float]] = []
    for ex, doc in zip(examples, docs, strict=True):
        if ex.sentiment is None:
            continue
        p = apply_temperature(doc.sentiment_logits, t)
        gold.append(ex.sentiment)
        pred.append(labels[int(p.argmax())])
        probs.append([float(x) for x in p])
    return sentiment_report(gold, pred, probs, labels)


def report_for(
    examples: Sequence[Example],
    docs: Sequence[DocOutput],
    *,
    labels: list[str],
    sentiment_labels: list[str],
    temperatures: dict[str, float],
) -> dict[str, Any]:
    """The report for one example set (see the module docstring for its shape)."""
    has_ner = any(ex.tags is not None for ex in examples)
    has_sentiment = any(ex.sentiment is not None for ex in examples)
    sentiment = (
        _sentiment_part(examples, docs, sentiment_labels, temperatures.get("sentiment", 1.0))
        if has_sentiment
        else None
    )
    if has_ner:
        report = _ner_part(examples, docs, labels)
        if sentiment is not None:
            report["sentiment"] = sentiment
        return report
    return sentiment if sentiment is not None else {"task": "none", "n": len(examples)}


def task_scores(report: dict[str, Any]) -> list[float]:
    """The numbers model selection averages: NER F1 and/or sentiment accuracy."""
    scores: list[float] = []
    if report.get("task") == "ner":
        scores.append(float(report["f1"]))
        if "sentiment" in report:
            scores.append(float(report["sentiment"]["accuracy"]))
    elif report.get("task") == "sentiment":
        scores.append(float(report["accuracy"]))
    return scores


def dev_score(reports: dict[str, dict[str, Any]]) -> float | None:
    """Mean of every dev set's NER F1 and sentiment accuracy; None with nothing to score."""
    scores = [s for report in reports.values() for s in task_scores(report)]
    return sum(scores) / len(scores) if scores else None


def calibration_data(
    examples: Sequence[Example],
    docs: Sequence[DocOutput],
    *,
    labels: list[str],
    sentiment_labels: list[str],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(word logits, word gold ids, sentiment logits, sentiment gold ids) for temperature fitting."""
    label_ids = {label: i for i, label in enumerate(labels)}
    sentiment_ids = {label: i for i, label in enumerate(sentiment_labels)}
    word_logits: list[torch.Tensor] = []
    word_gold: list[int] = []
    sent_logits: list[torch.Tensor] = []
    sent_gold: list[int] = []
    for ex, doc in zip(examples, docs, strict=True):
        for i, tag in enumerate(ex.tags or ()):
            if tag is not None and tag in label_ids and doc.word_logits is not None and doc.tag_ids[i] >= 0:
                word_logits.append(doc.word_logits[i])
                word_gold.append(label_ids[tag])
        if ex.sentiment is not None and ex.sentiment in sentiment_ids:
            sent_logits.append(doc.sentiment_logits)
            sent_gold.append(sentiment_ids[ex.sentiment])
    return (
        torch.stack(word_logits) if word_logits else torch.zeros(0, len(labels)),
        torch.tensor(word_gold, dtype=torch.long) if word_gold else torch.full((0,), IGNORE_INDEX),
        torch.stack(sent_logits) if sent_logits else torch.zeros(0, len(sentiment_labels)),
        torch.tensor(sent_gold, dtype=torch.long) if sent_gold else torch.full((0,), IGNORE_INDEX),
    )


def evaluate_examples(
    target: ScoringTarget | str | Path, examples: Sequence[Example], *, batch_size: int = 64
) -> dict[str, Any]:
    """Score a model (an Analyzer, a :class:`ModelView`, or an artifact folder) on ``examples``."""
    if isinstance(target, str | Path):
        from models.analyze import Analyzer

        model: ScoringTarget = Analyzer.load(target)
    else:
        model = target
    docs = collect(model.predictor, examples, batch_size)
    return report_for(
        examples,
        docs,
        labels=list(model.labels),
        sentiment_labels=list(model.sentiment_labels),
        temperatures=dict(model.temperatures),
    )
