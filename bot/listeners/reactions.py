"""Reactions on the bot's posts: votes, retractions, the correction offer and the "thanks".

Ignored (and logged): the bot's own reactions, other bots', and users outside ``BEACON_LABELERS``.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext
from sqlalchemy.exc import IntegrityError

from bot import feedback
from bot.errors import SlackError
from bot.listeners.common import Runtime, ack_now, guarded, load_shown, reply_thread
from bot.log import get_logger
from bot.views import correction_prompt_blocks

log = get_logger("beacon.reactions")
THANKS = "Thanks, recorded :+1: Your feedback becomes a training label."


def may_vote(rt: Runtime, user: str, bot_user_id: str | None) -> str | None:
    """None when ``user`` may vote, else the reason to ignore the reaction."""
    if not user or user == bot_user_id:
        return "own_reaction"
    try:
        if rt.slack.is_bot_user(user):
            return "bot_user"
    except SlackError:
        log.warning("reaction.user_lookup_failed", user=user)  # reactions come from people: accept
    allowlist = rt.deps.settings.labelers
    if not feedback.is_labeler(user, allowlist, rt.slack.usergroup_members):
        return "not_a_labeler"
    return None


def record(rt: Runtime, *, channel: str, ts: str, user: str, reaction: str) -> feedback.Outcome:
    """Store the vote; one retry when the same user's other vote raced it (one active vote each)."""
    for attempt in (1, 2):
        try:
            with rt.session() as session:
                return feedback.record_reaction(session=session, channel=channel, ts=ts, user_id=user,
                                                reaction=reaction)
        except IntegrityError:
            if attempt == 2:
                raise
            log.info("reaction.vote_race", user=user, channel=channel, ts=ts)
    raise AssertionError("unreachable")


def on_reaction_added(rt: Runtime, event: dict[str, Any], bot_user_id: str | None) -> None:
    item = event.get("item") or {}
    reaction, user = str(event.get("reaction", "")), str(event.get("user", ""))
    if item.get("type") != "message" or feedback.vote_kind(reaction) is None:
        return
    if bot_user_id and event.get("item_user") not in (None, bot_user_id):
        return  # a reaction on someone else's message: not feedback, no lookups
    channel, ts = str(item.get("channel", "")), str(item.get("ts", ""))
    reason = may_vote(rt, user, bot_user_id)
    if reason is not None:
        log.info("reaction.ignored", reason=reason, user=user, channel=channel, ts=ts, reaction=reaction)
        return
    outcome = record(rt, channel=channel, ts=ts, user=user, reaction=reaction)
    log.info("reaction.vote", status=outcome.status, reason=outcome.reason, kind=outcome.kind, user=user,
             prediction_id=outcome.prediction_id)
    if outcome.status != "recorded" or outcome.prediction_id is None:
        return
    _, document = load_shown(rt, outcome.prediction_id)
    thread = reply_thread(document, channel)
    if outcome.kind == "reject":
        rt.slack.post_ephemeral(channel=channel, user=user, text="Thanks! Want to correct it?", thread_ts=thread,
                                blocks=correction_prompt_blocks(outcome.prediction_id))
    elif outcome.first_today:
        rt.slack.post_ephemeral(channel=channel, user=user, text=THANKS, thread_ts=thread)


def on_reaction_removed(rt: Runtime, event: dict[str, Any], bot_user_id: str | None) -> None:
    item = event.get("item") or {}
    reaction, user = str(event.get("reaction", "")), str(event.get("user", ""))
    if item.get("type") != "message" or feedback.vote_kind(reaction) is None or user == bot_user_id:
        return
    with rt.session() as session:
        outcome = feedback.retract_reaction(session=session, channel=str(item.get("channel", "")),
                                            ts=str(item.get("ts", "")), user_id=user, reaction=reaction)
    log.info("reaction.retract", status=outcome.status, reason=outcome.reason, user=user,
             prediction_id=outcome.prediction_id)


def register(app: App, rt: Runtime) -> None:
    def added(body: dict[str, Any], context: BoltContext) -> None:
        on_reaction_added(rt, body["event"], context.bot_user_id)

    def removed(body: dict[str, Any], context: BoltContext) -> None:
        on_reaction_removed(rt, body["event"], context.bot_user_id)

    app.event("reaction_added")(ack=ack_now, lazy=[guarded("reaction_added", added)])
    app.event("reaction_removed")(ack=ack_now, lazy=[guarded("reaction_removed", removed)])
