"""Feedback → training labels, deterministically.

One label per prediction that received feedback, decided from its users' ACTIVE rows
(retracted votes never count):

- a **correction** is gold: its sentiment and its full entity set (a correction beats thumbs;
  several users' corrections must agree, the most common one wins, a tie excludes);
- a **👍 majority** confirms the prediction as predicted (sentiment and model entities);
- a **👎 majority** without a correction is partial evidence: the predicted sentiment becomes
  ``not_sentiment`` (a complementary label), the rejected spans' words get ``not_tags`` and every
  word's tag is unknown (masked), never ``O``;
- a tie between 👍 and 👎 excludes the prediction.

Entities found by the pattern recognisers (tickers, money...) are not the network's job: their
words are masked. A fixed hash of the text (``models.data.holdout_split``) puts a share of the
labels in the feedback TEST set, never trained on; identical texts land on the same side.

Correction payloads (``feedback.payload``)::

    {"sentiment": "negative", "entities": [{"start": 0, "end": 4, "label": "ORG"}, ...], ...}

``entities`` is the full corrected set (``[]``: no entities); a missing key keeps the prediction's
value. Other keys (``original``, provenance...) are ignored here.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.storage.tables import Document, Feedback, Prediction, TrainingRun
from models.data import SENTIMENTS, Example, example_from_record, example_to_record, holdout_split
from models.errors import DataError
from models.words import split_words

PATTERN_LABELS = frozenset({"TICKER", "MONEY", "PERCENT", "EMAIL", "URL"})
HOLDOUT_SALT = "beacon-feedback"
GOLD, CONFIRMED, REJECTED = "gold", "confirmed", "rejected"
COMPLETED_RUN_STATUSES = ("succeeded", "rejected")  # runs that trained on the labels of their time


@dataclass(frozen=True)
class Vote:
    """One feedback row, as the aggregation sees it."""

    user_id: str
    kind: str  # confirm | reject | correction
    payload: dict[str, Any]
    created_at: datetime
    retracted_at: datetime | None = None


@dataclass(frozen=True)
class PredictionView:
    """What was predicted for one text (entities as stored: dicts with start/end/label/source)."""

    prediction_id: int
    text: str | None  # None when the message was deleted
    sentiment: str
    entities: list[dict[str, Any]]
    model_version: str = ""


@dataclass(frozen=True)
class Decision:
    """The outcome for one prediction: a label, or the reason it is excluded."""

    prediction_id: int
    kind: str | None  # gold | confirmed | rejected; None when excluded
    example: Example | None
    reason: str = ""  # why excluded
    users: tuple[str, ...] = ()
    updated_at: datetime | None = None


@dataclass
class LabelSet:
    """Aggregated labels split into the trainable part and the feedback test set."""

    train: list[Decision] = field(default_factory=list)
    test: list[Decision] = field(default_factory=list)
    excluded: list[Decision] = field(default_factory=list)

    def train_examples(self, weight: float = 1.0) -> list[Example]:
        return [_weighted(d.example, weight) for d in self.train if d.example is not None]

    def test_examples(self) -> list[Example]:
        return [d.example for d in self.test if d.example is not None]

    def counts(self) -> dict[str, Any]:
        labelled = [*self.train, *self.test]
        return {
            "train": len(self.train),
            "test": len(self.test),
            "by_kind": dict(sorted(Counter(d.kind for d in labelled if d.kind).items())),
            "excluded": dict(sorted(Counter(d.reason for d in self.excluded).items())),
        }


def _weighted(ex: Example, weight: float) -> Example:
    from dataclasses import replace

    return replace(ex, weight=ex.weight * weight)


def aware(value: datetime) -> datetime:
    """Timezone-aware (SQLite hands back naive UTC datetimes)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# ------------------------------------------------------------------ examples from predictions


def _span(entity: dict[str, Any]) -> tuple[int, int, str]:
    try:
        return int(entity["start"]), int(entity["end"]), str(entity["label"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"entity {entity!r} lacks start/end/label") from exc


def _check_offsets(text: str, entities: Iterable[dict[str, Any]]) -> None:
    """Stored entities carry their text: a mismatch means the message changed since (stale offsets)."""
    for entity in entities:
        start, end, _ = _span(entity)
        expected = entity.get("text")
        if expected is not None and text[start:end] != expected:
            raise DataError(f"entity {entity!r} does not match the text at {start}:{end}")


def _gold_record(
    text: str, sentiment: str | None, gold: Iterable[dict[str, Any]], masked: Iterable[dict[str, Any]] = ()
) -> dict[str, Any]:
    """A jsonl record with gold entities; ``masked`` and pattern-type spans become unknown words."""
    spans = [_span(e) for e in gold]
    hidden = [_span(e) for e in masked] + [sp for sp in spans if sp[2] in PATTERN_LABELS]
    record: dict[str, Any] = {
        "text": text,
        "entities": [{"start": s, "end": e, "label": k} for s, e, k in spans if k not in PATTERN_LABELS],
    }
    if hidden:
        record["unknown"] = [{"start": s, "end": e} for s, e, _ in hidden]
    if sentiment is not None:
        record["sentiment"] = sentiment
    return record


def _from_model(entity: dict[str, Any]) -> bool:
    return entity.get("source", "model") != "pattern" and entity.get("label") not in PATTERN_LABELS


def model_entities(entities: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The predicted entities that came from the network (pattern matches are masked instead)."""
    return [e for e in entities if _from_model(e)]


def confirmed_example(pred: PredictionView) -> Example:
    """👍: the prediction as predicted (pattern matches masked)."""
    assert pred.text is not None
    _check_offsets(pred.text, pred.entities)
    pattern = [e for e in pred.entities if not _from_model(e)]
    record = _gold_record(pred.text, pred.sentiment, model_entities(pred.entities), pattern)
    return example_from_record(record, source=f"feedback:{pred.prediction_id}")


def corrected_example(pred: PredictionView, payload: dict[str, Any]) -> Example:
    """A correction: its sentiment and its full entity set (missing keys keep the prediction's).

    Offsets refer to the payload's ``text`` when it has one (the text the agent corrected)."""
    assert pred.text is not None
    raw = payload.get("text")
    text = raw if isinstance(raw, str) and raw.strip() else pred.text
    sentiment = payload.get("sentiment", payload.get("sentiment_label", pred.sentiment))
    if sentiment not in SENTIMENTS:
        raise DataError(f"correction sentiment {sentiment!r} is not one of {SENTIMENTS}")
    entities = payload.get("entities")
    if entities is None:
        entities = pred.entities
    if not isinstance(entities, list):
        raise DataError(f"correction entities must be a list, got {type(entities).__name__}")
    _check_offsets(text, entities)
    record = _gold_record(text, sentiment, entities)
    return example_from_record(record, source=f"feedback:{pred.prediction_id}")


def rejected_example(pred: PredictionView) -> Example:
    """👎 without correction: "not this sentiment", "not this tag" on the rejected spans' words,
    and every word's tag unknown."""
    text = pred.text
    assert text is not None
    _check_offsets(text, pred.entities)
    spans = [_span(e) for e in model_entities(pred.entities)]
    edges = {pos for s, e, _ in spans for pos in (s, e)}
    words = split_words(text, edges)
    not_tags: list[dict[str, Any]] = []
    for s, e, label in spans:
        inside = [(ws, we) for ws, we in words if ws >= s and we <= e]
        for n, (ws, we) in enumerate(inside):
            not_tags.append({"start": ws, "end": we, "tag": ("B-" if n == 0 else "I-") + label})
    record: dict[str, Any] = {"text": text, "not_sentiment": pred.sentiment}
    if not_tags:
        record["entities"] = []
        record["unknown"] = [{"start": 0, "end": len(text)}]
        record["not_tags"] = not_tags
    return example_from_record(record, source=f"feedback:{pred.prediction_id}")


# ------------------------------------------------------------------ the rules


def _correction_key(payload: dict[str, Any]) -> str:
    import json

    keep = {k: payload[k] for k in ("sentiment", "sentiment_label", "entities") if k in payload}
    if isinstance(keep.get("entities"), list):
        keep["entities"] = sorted(
            ({k: e.get(k) for k in ("start", "end", "label")} for e in keep["entities"] if isinstance(e, dict)),
            key=lambda e: (str(e["start"]), str(e["end"]), str(e["label"])),
        )
    return json.dumps(keep, sort_keys=True, default=str)


def decide(pred: PredictionView, votes: Sequence[Vote]) -> Decision:
    """Apply the aggregation rules to one prediction's feedback rows (retracted ones are ignored)."""
    active = [v for v in votes if v.retracted_at is None]
    stamps = [aware(t) for v in votes for t in (v.created_at, v.retracted_at) if t is not None]
    updated = max(stamps) if stamps else None
    users = tuple(sorted({v.user_id for v in active}))

    def excluded(reason: str) -> Decision:
        return Decision(pred.prediction_id, None, None, reason=reason, users=users, updated_at=updated)

    if not active:
        return excluded("retracted")
    if pred.text is None or not pred.text.strip():
        return excluded("deleted")
    corrections = [v for v in active if v.kind == "correction"]
    try:
        if corrections:
            groups = Counter(_correction_key(v.payload) for v in corrections).most_common()
            if len(groups) > 1 and groups[0][1] == groups[1][1]:
                return excluded("correction_tie")
            winner = next(v for v in corrections if _correction_key(v.payload) == groups[0][0])
            kind, example = GOLD, corrected_example(pred, winner.payload)
        else:
            ups = sum(v.kind == "confirm" for v in active)
            downs = sum(v.kind == "reject" for v in active)
            if ups == downs:
                return excluded("tie")
            kind = CONFIRMED if ups > downs else REJECTED
            example = confirmed_example(pred) if ups > downs else rejected_example(pred)
    except DataError:
        return excluded("invalid")
    return Decision(pred.prediction_id, kind, example, users=users, updated_at=updated)


def split_decisions(decisions: Sequence[Decision], holdout: float) -> LabelSet:
    """Labels into train and the fixed, hash-based feedback test slice; exclusions kept aside."""
    labelled = [d for d in decisions if d.example is not None]
    by_id = {id(d.example): d for d in labelled}
    train, test = holdout_split([d.example for d in labelled if d.example], holdout, salt=HOLDOUT_SALT)
    return LabelSet(
        train=[by_id[id(ex)] for ex in train],
        test=[by_id[id(ex)] for ex in test],
        excluded=[d for d in decisions if d.example is None],
    )


# ------------------------------------------------------------------ from the database


def load_feedback(*, session: Session) -> list[tuple[PredictionView, list[Vote]]]:
    """Every prediction with feedback, with all its feedback rows (retracted ones included)."""
    stmt = (
        select(Feedback, Prediction, Document.text)
        .join(Prediction, Feedback.prediction_id == Prediction.id)
        .join(Document, Prediction.document_id == Document.id)
        .order_by(Feedback.prediction_id, Feedback.id)
    )
    grouped: dict[int, tuple[PredictionView, list[Vote]]] = {}
    for fb, pred, text in session.execute(stmt):
        if pred.id not in grouped:
            view = PredictionView(
                prediction_id=pred.id, text=text, sentiment=pred.sentiment_label,
                entities=list(pred.entities or []), model_version=pred.model_version,
            )
            grouped[pred.id] = (view, [])
        grouped[pred.id][1].append(
            Vote(fb.user_id, fb.kind, dict(fb.payload or {}), aware(fb.created_at),
                 aware(fb.retracted_at) if fb.retracted_at else None)
        )
    return list(grouped.values())


def collect_labels(*, session: Session, holdout: float) -> LabelSet:
    """All feedback aggregated into labels, split train / feedback test."""
    decisions = [decide(pred, votes) for pred, votes in load_feedback(session=session)]
    return split_decisions(decisions, holdout)


def last_completed_run(*, session: Session) -> TrainingRun | None:
    """The latest run that trained to the end (promoted or rejected by the gate)."""
    stmt = (
        select(TrainingRun)
        .where(TrainingRun.status.in_(COMPLETED_RUN_STATUSES))
        .order_by(TrainingRun.started_at.desc(), TrainingRun.id.desc())
    )
    return session.scalars(stmt).first()


def count_new_labels(labels: LabelSet, since: datetime | None) -> int:
    """Labels (train and test) whose feedback changed after ``since`` (all when None)."""
    return sum(
        1 for d in (*labels.train, *labels.test)
        if since is None or (d.updated_at is not None and d.updated_at > aware(since))
    )


def new_labels_since_last_run(*, session: Session, holdout: float) -> tuple[int, LabelSet]:
    labels = collect_labels(session=session, holdout=holdout)
    last = last_completed_run(session=session)
    return count_new_labels(labels, last.started_at if last else None), labels


# ------------------------------------------------------------------ export


def export_jsonl(labels: LabelSet, out: TextIO, *, split: str = "all") -> int:
    """Write labels as ``jsonl:`` records (``split``: train | test | all); returns the count."""
    import json

    chosen = {"train": labels.train, "test": labels.test, "all": [*labels.train, *labels.test]}[split]
    written = 0
    for d in sorted(chosen, key=lambda d: d.prediction_id):
        assert d.example is not None
        record = example_to_record(d.example)
        record["meta"] = {"prediction_id": d.prediction_id, "kind": d.kind, "users": list(d.users)}
        out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
        written += 1
    return written


# ------------------------------------------------------------------ agreement


def stance(pred: PredictionView, vote: Vote) -> str:
    """A user's verdict on a prediction: agree (👍 or a correction equal to it) or disagree."""
    if vote.kind == "confirm":
        return "agree"
    if vote.kind == "correction":
        same = _correction_key(vote.payload) == _correction_key(
            {"sentiment": pred.sentiment, "entities": model_entities(pred.entities)}
        )
        return "agree" if same else "disagree"
    return "disagree"


def ratings(groups: Sequence[tuple[PredictionView, list[Vote]]]) -> list[dict[str, str]]:
    """Per prediction, each user's stance (a correction outranks the same user's vote)."""
    out: list[dict[str, str]] = []
    for pred, votes in groups:
        by_user: dict[str, str] = {}
        for vote in sorted((v for v in votes if v.retracted_at is None), key=lambda v: v.kind != "correction"):
            by_user.setdefault(vote.user_id, stance(pred, vote))
        out.append(by_user)
    return out


def fleiss_kappa(items: Sequence[dict[str, str]]) -> float | None:
    """Fleiss' kappa over items with at least two raters (raters per item may vary)."""
    rated = [Counter(item.values()) for item in items if len(item) >= 2]
    if not rated:
        return None
    totals: Counter[str] = Counter()
    agreement = 0.0
    for counts in rated:
        n = sum(counts.values())
        agreement += (sum(c * c for c in counts.values()) - n) / (n * (n - 1))
        totals.update(counts)
    p_bar = agreement / len(rated)
    grand = sum(totals.values())
    p_e = sum((c / grand) ** 2 for c in totals.values())
    return None if p_e >= 1.0 else (p_bar - p_e) / (1 - p_e)


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Cohen's kappa for two raters' paired labels."""
    if not pairs:
        return None
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    left, right = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(left[c] * right[c] for c in set(left) | set(right)) / (n * n)
    return None if expected >= 1.0 else (observed - expected) / (1 - expected)


def pairwise_cohen(items: Sequence[dict[str, str]], min_shared: int = 2) -> dict[str, float | None]:
    """Cohen's kappa for each pair of users who rated at least ``min_shared`` items together."""
    shared: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for item in items:
        users = sorted(item)
        for i, a in enumerate(users):
            for b in users[i + 1:]:
                shared[(a, b)].append((item[a], item[b]))
    return {f"{a}~{b}": cohen_kappa(p) for (a, b), p in sorted(shared.items()) if len(p) >= min_shared}


def label_stats(*, session: Session, holdout: float) -> dict[str, Any]:
    """Counts by kind, labels, exclusions, pending labels and agreement between users."""
    groups = load_feedback(session=session)
    rows = [v for _, votes in groups for v in votes]
    labels = split_decisions([decide(p, v) for p, v in groups], holdout)
    last = last_completed_run(session=session)
    items = ratings(groups)
    multi = [item for item in items if len(item) >= 2]
    return {
        "feedback": {
            "active": dict(sorted(Counter(v.kind for v in rows if v.retracted_at is None).items())),
            "retracted": sum(v.retracted_at is not None for v in rows),
            "users": len({v.user_id for v in rows}),
        },
        "labels": labels.counts(),
        "pending": count_new_labels(labels, last.started_at if last else None),
        "agreement": {
            "items_with_several_users": len(multi),
            "observed": (sum(len(set(i.values())) == 1 for i in multi) / len(multi)) if multi else None,
            "fleiss_kappa": fleiss_kappa(items),
            "cohen_kappa": pairwise_cohen(items),
        },
    }
