"""Reactions, retractions, the correction prompt, modal and submission: the labels come from here."""

from __future__ import annotations

from typing import Any

from bot.storage.tables import Feedback, Prediction
from tests.bot.conftest import AGENT, CUSTOMER, GENERAL, MODEL_VERSION, Bot, wait_until
from tests.fakes import events


def answered(bot: Bot, text: str) -> tuple[dict[str, Any], Any, Prediction]:
    event = bot.mention(text)
    call = bot.wait_post(GENERAL, len(bot.slack.calls_to("chat.postMessage",
                                                         where=lambda c: c.args.get("channel") == GENERAL)) + 1)
    prediction = bot.rows(Prediction)[-1]
    return event, call, prediction


def votes(bot: Bot, **where: Any) -> list[Feedback]:
    rows = bot.rows(Feedback)
    return [r for r in rows if all(getattr(r, k) == v for k, v in where.items())]


def test_thumbs_up_confirms_and_removal_retracts(bot: Bot) -> None:
    _, reply, prediction = answered(bot, "Acme refunded me, thanks!")
    ts = reply.response["ts"]
    bot.react("reaction_added", "+1", channel=GENERAL, ts=ts)
    (vote,) = wait_until(lambda: votes(bot, kind="confirm"), what="a confirm row")
    assert (vote.prediction_id, vote.user_id, vote.retracted_at) == (prediction.id, AGENT, None)
    assert vote.model_version == MODEL_VERSION
    thanks = bot.slack.wait_for("chat.postEphemeral")
    assert thanks[0].args["user"] == AGENT and "recorded" in thanks[0].args["text"].lower()
    bot.react("reaction_removed", "+1", channel=GENERAL, ts=ts)
    wait_until(lambda: votes(bot, kind="confirm")[0].retracted_at is not None, what="the retraction")
    # a second vote the same day gets no second "thanks"
    bot.react("reaction_added", "white_check_mark", channel=GENERAL, ts=ts)
    wait_until(lambda: len(votes(bot, kind="confirm")) == 2, what="the second confirm")
    bot.react("reaction_added", "eyes", channel=GENERAL, ts=ts)  # not a vote
    bot.mention("flush")  # a later event, processed after the ones above
    bot.wait_post(GENERAL, 2)
    assert len(bot.slack.calls_to("chat.postEphemeral")) == 1
    assert [v.kind for v in bot.rows(Feedback)] == ["confirm", "confirm"]


def test_latest_vote_wins(bot: Bot) -> None:
    _, reply, prediction = answered(bot, "Globex shipped it")
    ts = reply.response["ts"]
    bot.react("reaction_added", "thumbsup", channel=GENERAL, ts=ts)
    wait_until(lambda: votes(bot, kind="confirm"), what="confirm")
    bot.react("reaction_added", "x", channel=GENERAL, ts=ts)
    wait_until(lambda: votes(bot, kind="reject"), what="reject")
    active = [v for v in bot.rows(Feedback) if v.retracted_at is None]
    assert [(v.kind, v.prediction_id) for v in active] == [("reject", prediction.id)]


def test_reactions_from_bots_and_non_labelers_are_ignored(make_bot: Any) -> None:
    bot: Bot = make_bot(BEACON_LABELERS="U0LABELER1,S0LABELERS")
    bot.slack.usergroups["S0LABELERS"] = [AGENT]
    bot.slack.add_user("U0LABELER1", name="lee")
    _, reply, _ = answered(bot, "Initech is down")
    ts = reply.response["ts"]
    bot.react("reaction_added", "+1", channel=GENERAL, ts=ts, user="U0OTHERBOT")  # another bot
    bot.react("reaction_added", "+1", channel=GENERAL, ts=ts, user=CUSTOMER)  # not a labeler
    bot.react("reaction_added", "+1", channel=GENERAL, ts=ts, user=bot.slack.bot_user_id)  # ourselves
    bot.react("reaction_added", "-1", channel=GENERAL, ts=ts, user="U0LABELER1")  # listed user
    bot.react("reaction_added", "+1", channel=GENERAL, ts=ts, user=AGENT)  # in the listed user group
    bot.send_event(events.reaction("reaction_added", "+1", user=AGENT, channel=GENERAL, ts=events.next_ts(),
                                   item_user=CUSTOMER))  # someone else's message: no lookup, no vote
    wait_until(lambda: len(bot.rows(Feedback)) == 2, what="two votes")
    bot.mention("flush")
    bot.wait_post(GENERAL, 2)
    assert sorted((v.user_id, v.kind) for v in bot.rows(Feedback)) == [(AGENT, "confirm"), ("U0LABELER1", "reject")]
    looked_up = {c.args["user"] for c in bot.slack.calls_to("users.info")}
    assert looked_up == {"U0OTHERBOT", CUSTOMER, "U0LABELER1", AGENT}


def open_modal(bot: Bot, prediction_id: int, message_ts: str, thread_ts: str) -> dict[str, Any]:
    before = len(bot.slack.calls_to("views.open"))
    click = events.block_action("beacon_correct", str(prediction_id), user=AGENT, channel=GENERAL,
                                message_ts=message_ts, thread_ts=thread_ts, ephemeral=True,
                                response_url=bot.slack.response_url("action"))
    assert bot.sender.interactive(click).status_code == 200
    call = bot.slack.wait_for("views.open", before + 1)[-1]
    view = call.response["view"]
    assert call.args["trigger_id"] == click["trigger_id"]
    return dict(view)


def test_thumbs_down_prompt_modal_and_correction(bot: Bot) -> None:
    event, reply, prediction = answered(bot, "Acme Corp charged me twice in Paris")
    ts = reply.response["ts"]
    bot.react("reaction_added", "-1", channel=GENERAL, ts=ts)
    prompt = bot.slack.wait_for("chat.postEphemeral")[0]
    assert prompt.args["user"] == AGENT and prompt.args["thread_ts"] == event["ts"]
    button = prompt.arg("blocks")[-1]["elements"][0]
    assert (button["action_id"], button["value"]) == ("beacon_correct", str(prediction.id))
    assert votes(bot, kind="reject")

    view = open_modal(bot, prediction.id, prompt.response["message_ts"], event["ts"])
    assert view["type"] == "modal" and len(view["title"]["text"]) <= 24
    block_ids = [b.get("block_id") for b in view["blocks"] if b["type"] == "input"]
    assert block_ids[0] == "sentiment" and block_ids[-2:] == ["add_text", "add_label"]
    entity_blocks = [b for b in block_ids if b.startswith("entity_")]
    assert len(entity_blocks) == len(prediction.entities)

    decisions = {b: events.select("remove") for b in entity_blocks}
    values = {"sentiment": events.select("negative"), **decisions, "add_text": events.typed("Acme Corp"),
              "add_label": events.select("ORG")}
    response = bot.sender.interactive(events.view_submission(view, values, user=AGENT))
    assert response.status_code == 200 and response.text == ""
    (correction,) = votes(bot, kind="correction")
    payload = correction.payload
    assert payload["sentiment"] == "negative"
    assert payload["entities"] == [{"start": 0, "end": 9, "label": "ORG", "text": "Acme Corp"}]
    assert payload["text"] == "Acme Corp charged me twice in Paris"
    assert payload["user"] == AGENT and payload["model_version"] == MODEL_VERSION and payload["corrected_at"]
    assert payload["original"]["sentiment"] == prediction.sentiment_label
    assert payload["original"]["entities"] == prediction.entities
    assert correction.prediction_id == prediction.id and correction.model_version == MODEL_VERSION


def test_an_added_entity_that_is_not_in_the_message_is_a_field_error(bot: Bot) -> None:
    event, reply, prediction = answered(bot, "Globex lost my parcel")
    view = open_modal(bot, prediction.id, reply.response["ts"], event["ts"])
    values = {"sentiment": events.select("negative"), "add_text": events.typed("Initech"),
              "add_label": events.select("ORG")}
    response = bot.sender.interactive(events.view_submission(view, values, user=AGENT))
    assert response.status_code == 200
    body = response.json()
    assert body["response_action"] == "errors"
    assert set(body["errors"]) == {"add_text"} and "not in the message" in body["errors"]["add_text"]
    missing_label = {"sentiment": events.select("neutral"), "add_text": events.typed("Globex"),
                     "add_label": {"value": {"type": "static_select", "selected_option": None}}}
    body = bot.sender.interactive(events.view_submission(view, missing_label, user=AGENT)).json()
    assert set(body["errors"]) == {"add_label"}
    assert votes(bot, kind="correction") == []


def test_why_button_posts_the_explanation_in_the_thread(bot: Bot) -> None:
    event, reply, prediction = answered(bot, "the report was terrible today")
    click = events.block_action("beacon_why", str(prediction.id), user=AGENT, channel=GENERAL,
                                message_ts=reply.response["ts"], thread_ts=event["ts"],
                                response_url=bot.slack.response_url("why"))
    assert bot.sender.interactive(click).status_code == 200
    call = bot.wait_post(GENERAL, 2)
    assert call.args["thread_ts"] == event["ts"]
    text = call.arg("blocks")[0]["text"]["text"]
    assert text.startswith("*Why ") and any(word in text for word in ("report", "terrible", "today", "the", "was"))
