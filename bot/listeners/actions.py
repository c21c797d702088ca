"""The "Why?" and "Correct it" buttons, and the correction modal's submission.

The submission is validated in the ack itself (a field error needs ``response_action: errors``
in the ack); the correction is stored there too, then the "thanks, recorded" follows.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot import feedback
from bot.errors import BeaconError, SlackError
from bot.listeners.common import Runtime, ack_now, guarded, load_shown, reply_thread
from bot.log import get_logger
from bot.storage import crud
from bot.views import ACTION_CORRECT, ACTION_WHY, explanation_blocks
from bot.views_modal import BLOCK_SENTIMENT, CALLBACK_CORRECT, correction_modal, parse_submission

log = get_logger("beacon.actions")
PATTERN_LABELS = ("TICKER", "MONEY", "PERCENT", "EMAIL", "URL")
DEFAULT_LABELS = ("PER", "ORG", "LOC", "MISC")
THANKS = "Thanks, recorded :pencil: Your correction becomes a training label."


def entity_types(rt: Runtime) -> list[str]:
    """The entity types the active model knows (IOB2 tags without prefixes)."""
    try:
        tags = rt.deps.models.current().labels
    except BeaconError:
        return list(DEFAULT_LABELS)
    types = sorted({tag.split("-", 1)[1] for tag in tags if "-" in tag})
    return types or list(DEFAULT_LABELS)


def _action(body: dict[str, Any]) -> tuple[int, str, str | None]:
    """(prediction id, channel, thread) of a button click."""
    action = (body.get("actions") or [{}])[0]
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
    thread = container.get("thread_ts") or message.get("thread_ts") or message.get("ts") or container.get("message_ts")
    return int(action.get("value") or 0), channel, thread


def on_why(rt: Runtime, body: dict[str, Any]) -> None:
    prediction_id, channel, thread = _action(body)
    shown, _document = load_shown(rt, prediction_id)
    analyzer = rt.deps.models.current()
    explanation = analyzer.explain(shown.text, top_k=10)
    weights = [(w.word, float(w.weight)) for w in explanation.words]
    blocks = explanation_blocks(explanation.label, weights, model_version=analyzer.version)
    ts = rt.slack.post_message(channel=channel, text=f"Why {explanation.label}?", blocks=blocks, thread_ts=thread)
    with rt.session() as session:  # reactions on the explanation count for the prediction it explains
        crud.record_bot_post(session=session, channel=channel, ts=ts, kind="report", prediction_id=prediction_id)
    log.info("why.answered", prediction_id=prediction_id, channel=channel, model_version=analyzer.version)


def on_correct(rt: Runtime, body: dict[str, Any]) -> None:
    prediction_id, channel, thread = _action(body)
    user = str((body.get("user") or {}).get("id", ""))
    if not feedback.is_labeler(user, rt.deps.settings.labelers, rt.slack.usergroup_members):
        log.info("correct.not_a_labeler", user=user, prediction_id=prediction_id)
        if channel:
            rt.slack.post_ephemeral(channel=channel, user=user, thread_ts=thread,
                                    text="Only the team's labelers can correct Beacon (see BEACON_LABELERS).")
        return
    shown, document = load_shown(rt, prediction_id)
    metadata = {"prediction_id": prediction_id, "channel": channel, "thread_ts": thread or reply_thread(document,
                                                                                                      channel)}
    labels = entity_types(rt)
    view = correction_modal(shown, labels=labels, metadata=metadata)
    rt.slack.open_view(trigger_id=str(body.get("trigger_id", "")), view=view)
    log.info("correct.modal_opened", prediction_id=prediction_id, user=user)


def on_submit(rt: Runtime, ack: Ack, body: dict[str, Any]) -> None:
    """Validate and store the correction inside the ack; field errors go back to the modal."""
    answer = parse_submission(body.get("view") or {})
    user = str((body.get("user") or {}).get("id", ""))
    request = feedback.CorrectionRequest(
        sentiment=answer.sentiment, decisions=answer.decisions, additions=[(answer.add_text, answer.add_label)],
        source=str(answer.metadata.get("source", "modal")),
    )
    try:
        with rt.session() as session:
            outcome, errors = feedback.record_correction(
                session=session, prediction_id=int(answer.metadata.get("prediction_id") or 0), user_id=user,
                request=request,
            )
    except BeaconError as exc:
        ack(response_action="errors", errors={BLOCK_SENTIMENT: str(exc)[:150]})
        return
    if errors:
        log.info("correction.rejected", user=user, fields=sorted(errors))
        ack(response_action="errors", errors=errors)
        return
    ack()
    log.info("correction.recorded", user=user, prediction_id=outcome.prediction_id, feedback_id=outcome.feedback_id)
    channel = answer.metadata.get("channel")
    if outcome.first_today and channel:
        try:
            rt.slack.post_ephemeral(channel=str(channel), user=user, text=THANKS,
                                    thread_ts=answer.metadata.get("thread_ts"))
        except SlackError:
            log.warning("correction.thanks_failed", user=user)


def register(app: App, rt: Runtime) -> None:
    def why(body: dict[str, Any], context: BoltContext) -> None:
        on_why(rt, body)

    def correct(body: dict[str, Any], context: BoltContext) -> None:
        on_correct(rt, body)

    def submit(ack: Ack, body: dict[str, Any]) -> None:
        on_submit(rt, ack, body)

    app.action(ACTION_WHY)(ack=ack_now, lazy=[guarded("why", why)])
    app.action(ACTION_CORRECT)(ack=ack_now, lazy=[guarded("correct", correct)])
    app.view_submission(CALLBACK_CORRECT)(submit)
