"""``message`` events: direct messages, monitored support channels, edits and deletions.

- A DM is answered like a mention.
- In a monitored channel every human message is analysed and stored quietly; a negative score
  at or above the escalation threshold posts an alert in the alert channel.
- ``message_changed`` re-analyses a message Beacon stored; ``message_deleted`` forgets its text.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext
from sqlalchemy import select

from bot import escalation
from bot.listeners.common import Runtime, ack_now, analyze_message, guarded, is_human_message, plain_text
from bot.listeners.mentions import handle_mention
from bot.log import get_logger
from bot.services import analyze_texts
from bot.storage import crud
from bot.storage.tables import Document, Feedback, Prediction
from bot.views import Shown, escalation_blocks, escalation_fallback

log = get_logger("beacon.messages")


def mentions_bot(text: str, bot_user_id: str | None) -> bool:
    return bool(bot_user_id) and f"<@{bot_user_id}" in text


def monitor(rt: Runtime, *, channel: str, ts: str, text: str, user: str | None, thread_ts: str | None) -> None:
    shown = analyze_message(rt, text=text, channel=channel, ts=ts, user=user, thread_ts=thread_ts)
    log.info("monitor.analysed", channel=channel, prediction_id=shown.prediction_id, negative=round(shown.negative, 3))
    maybe_escalate(rt, shown, channel=channel, ts=ts)


def maybe_escalate(rt: Runtime, shown: Shown, *, channel: str, ts: str) -> None:
    settings = rt.deps.settings
    if not settings.alert_channel or not escalation.should_escalate(shown.negative, settings.escalation_threshold):
        return
    with rt.session() as session:
        alert = escalation.create_escalation(
            session=session, alert_channel=settings.alert_channel, source_channel=channel, ts=ts,
            prediction_id=shown.prediction_id, score=shown.negative, entities=shown.entities,
        )
        alert_id = alert.id if alert is not None else None
    if alert_id is None:
        log.info("escalation.duplicate", channel=channel, ts=ts)
        return
    permalink = rt.slack.permalink(channel=channel, ts=ts)
    try:
        posted = rt.slack.post_message(channel=settings.alert_channel, text=escalation_fallback(shown),
                                       blocks=escalation_blocks(shown, channel=channel, permalink=permalink))
    except Exception as exc:
        with rt.session() as session:
            escalation.mark_failed(session=session, alert_id=alert_id, error=str(exc))
        raise
    with rt.session() as session:
        escalation.mark_posted(session=session, alert_id=alert_id, ts=posted, permalink=permalink)
    log.info("escalation.posted", channel=channel, alert_channel=settings.alert_channel, score=shown.negative)


def reanalyze(rt: Runtime, *, channel: str, ts: str, text: str) -> Shown | None:
    """A stored message was edited: new text, new prediction. None when Beacon never stored it."""
    analyzer = rt.deps.models.current()
    with rt.session() as session:
        doc = crud.find_document(session=session, source="slack", channel=channel, external_id=ts)
        if doc is None:
            return None
        analyses, latency = analyze_texts(analyzer, [text])
        analysis = analyses[0]
        doc.text = text
        data = analysis.to_dict()
        pred = crud.add_prediction(
            session=session, document=doc, model_version=analysis.model_version, entities=data["entities"],
            sentiment_label=analysis.sentiment.label, sentiment_score=analysis.sentiment.score,
            sentiment_probs=dict(analysis.sentiment.probs), latency_ms=latency,
        )
        return Shown.from_dict(pred.id, data)


def forget(rt: Runtime, *, channel: str, ts: str) -> int:
    """Delete the stored text of a deleted message (documents, entity texts, corrections); keep the rows."""
    with rt.session() as session:
        docs = list(session.scalars(select(Document).where(
            Document.source == "slack", Document.channel == channel, Document.external_id == ts)))
        for doc in docs:
            crud.delete_document_text(session=session, document=doc)
            for pred in session.scalars(select(Prediction).where(Prediction.document_id == doc.id)):
                pred.entities = [{**e, "text": ""} for e in pred.entities]
                for row in session.scalars(select(Feedback).where(Feedback.prediction_id == pred.id)):
                    if "text" in row.payload:
                        row.payload = {**row.payload, "text": None, "deleted": True}
        return len(docs)


def on_message(rt: Runtime, event: dict[str, Any], bot_user_id: str | None) -> None:
    subtype = event.get("subtype")
    channel = str(event.get("channel", ""))
    monitored = channel in rt.deps.settings.monitor_channels
    if subtype == "message_deleted":
        count = forget(rt, channel=channel, ts=str(event.get("deleted_ts", "")))
        log.info("message.deleted", channel=channel, documents=count)
        return
    if subtype == "message_changed":
        message = event.get("message") or {}
        if not is_human_message(message):
            return
        text = plain_text(str(message.get("text") or ""), bot_user_id)
        ts = str(message.get("ts", ""))
        shown = reanalyze(rt, channel=channel, ts=ts, text=text) if text else None
        if shown is None and monitored and text and not mentions_bot(str(message.get("text") or ""), bot_user_id):
            monitor(rt, channel=channel, ts=ts, text=text, user=message.get("user"), thread_ts=message.get("thread_ts"))
        elif shown is not None and monitored:
            maybe_escalate(rt, shown, channel=channel, ts=ts)
        return
    if subtype not in (None, "thread_broadcast", "file_share") or event.get("bot_id") or event.get("bot_profile"):
        return
    raw = str(event.get("text") or "")
    if event.get("channel_type") == "im":
        handle_mention(rt, event, bot_user_id)
    elif monitored and not mentions_bot(raw, bot_user_id):
        text = plain_text(raw, bot_user_id)
        if text:
            monitor(rt, channel=channel, ts=str(event["ts"]), text=text, user=event.get("user"),
                    thread_ts=event.get("thread_ts"))


def register(app: App, rt: Runtime) -> None:
    def message(body: dict[str, Any], context: BoltContext) -> None:
        on_message(rt, body["event"], context.bot_user_id)

    app.event("message")(ack=ack_now, lazy=[guarded("message", message)])
