"""Feedback, Slack-free: votes from reactions, retractions, corrections with provenance, labelers.

Reactions carry no text: a reaction on one of the bot's posts finds its prediction through
``bot_posts`` (directly, or through the alert the post shows). One active vote per user per
prediction (the latest wins) is enforced by :func:`bot.storage.crud.record_feedback`.

A correction's payload is a training record plus its provenance::

    {"text", "sentiment", "entities": [{"start", "end", "label", "text"}],   # the corrected answer
     "original": {"sentiment", "probs", "entities"}, "model_version", "user", "corrected_at", "source"}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from sqlalchemy.orm import Session

from bot import metrics
from bot.errors import InputError, NotFound
from bot.storage import crud
from bot.storage.tables import Alert, Document, Feedback, Prediction, utcnow

REACTIONS: dict[str, str] = {
    "+1": "confirm", "thumbsup": "confirm", "white_check_mark": "confirm",
    "-1": "reject", "thumbsdown": "reject", "x": "reject",
}
SENTIMENTS = ("negative", "neutral", "positive")


def vote_kind(reaction: str) -> str | None:
    """``confirm``/``reject`` for a voting emoji (skin tones ignored), else None."""
    return REACTIONS.get(reaction.split("::", 1)[0])


def is_labeler(user_id: str, allowlist: Sequence[str], members_of: Callable[[str], frozenset[str]]) -> bool:
    """Empty allowlist: everyone. Otherwise the user is listed, or is in a listed user group (S…)."""
    if not allowlist or user_id in allowlist:
        return True
    return any(entry.startswith("S") and user_id in members_of(entry) for entry in allowlist)


@dataclass(frozen=True)
class Outcome:
    """What happened to one feedback event."""

    status: str  # recorded | retracted | ignored
    kind: str | None = None
    prediction_id: int | None = None
    reason: str | None = None  # why it was ignored
    first_today: bool = False  # the user's first feedback today: say "thanks, recorded"
    feedback_id: int | None = None


def prediction_for_post(*, session: Session, channel: str, ts: str) -> Prediction | None:
    post = crud.find_bot_post(session=session, channel=channel, ts=ts)
    if post is None:
        return None
    prediction_id = post.prediction_id
    if prediction_id is None and post.alert_id is not None:
        alert = session.get(Alert, post.alert_id)
        prediction_id = alert.prediction_id if alert is not None else None
    return crud.get_prediction(session=session, prediction_id=prediction_id) if prediction_id else None


def first_feedback_today(*, session: Session, user_id: str, now: datetime | None = None) -> bool:
    now = now or utcnow()
    midnight = datetime.combine(now.date(), time.min, tzinfo=now.tzinfo)
    return crud.count_user_feedback_since(session=session, user_id=user_id, since=midnight) == 1


def record_vote(
    *, session: Session, prediction: Prediction, user_id: str, kind: str, payload: dict[str, Any] | None = None
) -> Outcome:
    row = crud.record_feedback(
        session=session, prediction_id=prediction.id, user_id=user_id, kind=kind, payload=payload or {},
        model_version=prediction.model_version,
    )
    metrics.FEEDBACK.labels(kind=kind).inc()
    return Outcome("recorded", kind, prediction.id, first_today=first_feedback_today(session=session, user_id=user_id),
                   feedback_id=row.id)


def record_reaction(*, session: Session, channel: str, ts: str, user_id: str, reaction: str) -> Outcome:
    """A ``reaction_added`` on (channel, ts): a vote when it is a voting emoji on one of our posts."""
    kind = vote_kind(reaction)
    if kind is None:
        return Outcome("ignored", reason="not_a_vote")
    prediction = prediction_for_post(session=session, channel=channel, ts=ts)
    if prediction is None:
        return Outcome("ignored", kind, reason="not_our_post")
    return record_vote(session=session, prediction=prediction, user_id=user_id, kind=kind,
                       payload={"reaction": reaction, "channel": channel, "ts": ts})


def retract_reaction(*, session: Session, channel: str, ts: str, user_id: str, reaction: str) -> Outcome:
    """A ``reaction_removed``: retract that vote if it is the user's active one."""
    kind = vote_kind(reaction)
    if kind is None:
        return Outcome("ignored", reason="not_a_vote")
    prediction = prediction_for_post(session=session, channel=channel, ts=ts)
    if prediction is None:
        return Outcome("ignored", kind, reason="not_our_post")
    row = crud.retract_feedback(session=session, prediction_id=prediction.id, user_id=user_id, kind=kind)
    if row is None:
        return Outcome("ignored", kind, prediction.id, reason="no_active_vote")
    metrics.FEEDBACK.labels(kind="retracted").inc()
    return Outcome("retracted", kind, prediction.id, feedback_id=row.id)


# --- corrections ---------------------------------------------------------------------------------
@dataclass
class CorrectionRequest:
    """The agent's answer: the sentiment, a decision per predicted entity, and added entities."""

    sentiment: str | None
    decisions: dict[int, str] = field(default_factory=dict)  # index -> keep | remove | label:X
    additions: list[tuple[str | None, str | None]] = field(default_factory=list)  # (text, label)
    source: str = "modal"


def _kept_entities(entities: Sequence[Mapping[str, Any]], decisions: Mapping[int, str]) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    for index, entity in enumerate(entities):
        decision = decisions.get(index, "keep")
        if decision == "remove":
            continue
        label = decision.split(":", 1)[1] if decision.startswith("label:") else str(entity.get("label"))
        kept.append({"start": int(entity["start"]), "end": int(entity["end"]), "label": label,
                     "text": str(entity.get("text", ""))})
    return kept


def _find_span(text: str, needle: str, taken: Sequence[Mapping[str, Any]]) -> tuple[int, int] | None:
    """The first occurrence of ``needle`` that overlaps no entity in ``taken``."""
    start = text.find(needle)
    while start >= 0:
        end = start + len(needle)
        if all(end <= e["start"] or start >= e["end"] for e in taken):
            return start, end
        start = text.find(needle, start + 1)
    return None


def resolve_correction(
    text: str, entities: Sequence[Mapping[str, Any]], request: CorrectionRequest
) -> tuple[dict[str, Any], dict[str, str]]:
    """The corrected ``{"sentiment", "entities"}`` and field errors (empty when valid).

    Error keys: ``sentiment``, ``add_text``/``add_label`` (the first addition),
    ``add_text_N``/``add_label_N`` (later ones).
    """
    errors: dict[str, str] = {}
    if request.sentiment not in SENTIMENTS:
        errors["sentiment"] = f"Pick one of: {', '.join(SENTIMENTS)}"
    final = _kept_entities(entities, request.decisions)
    for n, (added, label) in enumerate(request.additions):
        suffix = "" if n == 0 else f"_{n}"
        added = (added or "").strip()
        if not added and not label:
            continue
        if not added:
            errors["add_text" + suffix] = "Type the entity's text, or clear its label"
            continue
        if not label:
            errors["add_label" + suffix] = "Pick a label for the entity you are adding"
            continue
        if added not in text:
            errors["add_text" + suffix] = f"“{added[:60]}” is not in the message; type it exactly as written"
            continue
        span = _find_span(text, added, final)
        if span is None:
            errors["add_text" + suffix] = f"“{added[:60]}” overlaps an entity you kept; remove or change that one"
            continue
        final.append({"start": span[0], "end": span[1], "label": label, "text": added})
    final.sort(key=lambda e: (e["start"], e["end"]))
    return {"sentiment": request.sentiment, "entities": final}, errors


def load_for_correction(*, session: Session, prediction_id: int) -> tuple[Prediction, Document]:
    prediction = crud.get_prediction(session=session, prediction_id=prediction_id)
    if prediction is None:
        raise NotFound(f"prediction {prediction_id} does not exist")
    document = session.get(Document, prediction.document_id)
    if document is None or document.text is None:
        raise InputError("that message was deleted, so it cannot be corrected")
    return prediction, document


def record_correction(
    *, session: Session, prediction_id: int, user_id: str, request: CorrectionRequest
) -> tuple[Outcome, dict[str, str]]:
    """Validate and store a correction. Returns the outcome, or ("ignored", errors) when invalid."""
    prediction, document = load_for_correction(session=session, prediction_id=prediction_id)
    text = document.text or ""
    corrected, errors = resolve_correction(text, prediction.entities, request)
    if errors:
        return Outcome("ignored", "correction", prediction.id, reason="invalid"), errors
    payload = {
        "text": text, **corrected,
        "original": {"sentiment": prediction.sentiment_label, "probs": prediction.sentiment_probs,
                     "entities": prediction.entities},
        "model_version": prediction.model_version, "user": user_id,
        "corrected_at": utcnow().isoformat(timespec="seconds"), "source": request.source,
    }
    row: Feedback = crud.record_feedback(
        session=session, prediction_id=prediction.id, user_id=user_id, kind="correction", payload=payload,
        model_version=prediction.model_version,
    )
    metrics.FEEDBACK.labels(kind="correction").inc()
    first = first_feedback_today(session=session, user_id=user_id)
    return Outcome("recorded", "correction", prediction.id, first_today=first, feedback_id=row.id), {}
