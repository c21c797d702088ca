"""Monitored support channels: quiet analysis, escalation alerts, edits and deletions."""

from __future__ import annotations

from typing import Any

from bot.storage.tables import Alert, BotPost, Document, Feedback, Prediction
from tests.bot.conftest import AGENT, ALERTS, CUSTOMER, GENERAL, SUPPORT, Bot, wait_until
from tests.fakes import events


def post_in_support(bot: Bot, text: str, **kwargs: Any) -> dict[str, Any]:
    event = events.message(text, user=CUSTOMER, channel=SUPPORT, **kwargs)
    bot.send_event(event)
    return event


def test_monitored_messages_are_stored_quietly_and_negative_ones_escalate(make_bot: Any) -> None:
    bot: Bot = make_bot(BEACON_ESCALATION_THRESHOLD="0.0")  # the tiny model's scores are random: always escalate
    event = post_in_support(bot, "Acme Corp charged me twice <!channel>, I want my $200 back")
    alert_call = bot.wait_post(ALERTS)
    (doc,) = bot.rows(Document)
    assert (doc.channel, doc.external_id, doc.user_id) == (SUPPORT, event["ts"], CUSTOMER)
    assert bot.slack.calls_to("chat.postMessage", where=lambda c: c.args["channel"] == SUPPORT) == []
    (permalink,) = bot.slack.calls_to("chat.getPermalink")
    assert (permalink.args["channel"], permalink.args["message_ts"]) == (SUPPORT, event["ts"])
    blocks = alert_call.arg("blocks")
    heading = blocks[0]["text"]["text"]
    assert "Escalation" in heading and permalink.response["permalink"] in heading and "%" in heading
    assert "$200" in alert_call.body_text and "MONEY" in alert_call.body_text  # the entities
    assert "<!channel>" not in alert_call.body_text
    (alert,) = bot.rows(Alert)
    (pred,) = bot.rows(Prediction)
    assert (alert.kind, alert.channel, alert.status, alert.prediction_id) == ("escalation", ALERTS, "posted", pred.id)
    assert alert.score == pred.sentiment_probs["negative"] and alert.posted_ts == alert_call.response["ts"]
    (post,) = bot.rows(BotPost)
    assert (post.kind, post.alert_id, post.channel) == ("alert", alert.id, ALERTS)

    # alerts take reactions like any analysis
    bot.react("reaction_added", "+1", channel=ALERTS, ts=alert_call.response["ts"], user=AGENT)
    (vote,) = wait_until(lambda: bot.rows(Feedback), what="a vote on the alert")
    assert (vote.kind, vote.prediction_id) == ("confirm", pred.id)

    # an edit re-analyses the same document; it never alerts twice
    bot.send_event(events.message_changed(SUPPORT, event["ts"], "Acme Corp fixed it, thanks", event["text"],
                                          user=CUSTOMER))
    wait_until(lambda: len(bot.rows(Prediction)) == 2, what="the re-analysis")
    assert [d.text for d in bot.rows(Document)] == ["Acme Corp fixed it, thanks"]
    # a deletion forgets the text and keeps the record
    bot.send_event(events.message_deleted(SUPPORT, event["ts"], "Acme Corp fixed it, thanks", user=CUSTOMER))
    wait_until(lambda: bot.rows(Document)[0].deleted_at is not None, what="the deletion")
    (doc,) = bot.rows(Document)
    assert doc.text is None
    assert all(e["text"] == "" for p in bot.rows(Prediction) for e in p.entities)
    assert len(bot.rows(Alert)) == 1 and len(bot.slack.calls_to("chat.postMessage")) == 1


def test_below_the_threshold_no_alert_and_bots_and_mentions_are_skipped(make_bot: Any) -> None:
    bot: Bot = make_bot(BEACON_ESCALATION_THRESHOLD="1.0")
    post_in_support(bot, "where is my order?")
    bot_event = events.message("automated notice", user="U0OTHERBOT", channel=SUPPORT)
    bot_event.update(bot_id="B0OTHER001", subtype="bot_message")
    bot.send_event(bot_event)
    bot.send_event(events.message("not monitored here", user=CUSTOMER, channel=GENERAL))
    bot.mention("please look", channel=SUPPORT)  # answered once, as a mention, not monitored twice
    bot.send_event(events.message(f"<@{bot.slack.bot_user_id}> please look", user=AGENT, channel=SUPPORT))
    bot.wait_post(SUPPORT)
    wait_until(lambda: len(bot.rows(Document)) == 2, what="two documents")
    assert sorted(d.text for d in bot.rows(Document)) == ["please look", "where is my order?"]
    assert bot.rows(Alert) == []
    assert bot.slack.calls_to("chat.postMessage", where=lambda c: c.args["channel"] == ALERTS) == []


def test_an_edit_to_an_unmonitored_unknown_message_is_ignored(bot: Bot) -> None:
    bot.send_event(events.message_changed(GENERAL, events.next_ts(), "new", "old", user=CUSTOMER))
    bot.mention("flush")
    bot.wait_post(GENERAL)
    assert [d.text for d in bot.rows(Document)] == ["flush"]
