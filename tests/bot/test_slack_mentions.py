"""Mentions and DMs over real HTTP: threaded replies, bot_posts, escaping, retries, Web API failures."""

from __future__ import annotations

import json

from bot.storage.tables import BotPost, Document, Prediction, SlackEvent
from tests.bot.conftest import AGENT, GENERAL, MODEL_VERSION, Bot, wait_until
from tests.fakes import events
from tests.fakes.slack import Error, RateLimited, ServerError


def block_types(blocks: list[dict]) -> list[str]:
    return [b["type"] for b in blocks]


def test_mention_gets_a_threaded_reply_with_the_analysis_and_a_bot_post(bot: Bot) -> None:
    event = bot.mention("is the refund for order 8812 coming? Acme said $200")
    call = bot.wait_post(GENERAL)
    assert call.args["thread_ts"] == event["ts"]
    blocks = call.arg("blocks")
    assert block_types(blocks) == ["section", "section", "context", "actions"]
    assert blocks[0]["text"]["text"].startswith("*Sentiment:*")
    assert "*Entities:*" in blocks[1]["text"]["text"] and "$200" in blocks[1]["text"]["text"]
    assert "MONEY" in blocks[1]["text"]["text"] and "%" in blocks[1]["text"]["text"]  # type and confidence
    context = " ".join(e["text"] for e in blocks[2]["elements"])
    assert MODEL_VERSION in context and ":+1:" in context and ":-1:" in context
    actions = blocks[3]["elements"]
    assert [a["text"]["text"] for a in actions] == ["Why?", "Correct it"]
    assert {a["action_id"] for a in actions} == {"beacon_why", "beacon_correct"}
    docs = bot.rows(Document)
    assert [d.text for d in docs] == ["is the refund for order 8812 coming? Acme said $200"]
    assert docs[0].external_id == event["ts"] and docs[0].channel == GENERAL
    (pred,) = bot.rows(Prediction)
    assert actions[0]["value"] == str(pred.id)
    (post,) = bot.rows(BotPost)
    assert (post.channel, post.ts, post.prediction_id, post.kind) == (GENERAL, call.response["ts"], pred.id,
                                                                      "analysis")


def test_empty_mention_in_a_thread_analyses_the_parent(bot: Bot) -> None:
    parent_ts = events.next_ts()
    bot.slack.add_message(GENERAL, parent_ts, "Globex overcharged me twice, this is terrible", user="U0CUSTOMER")
    event = bot.mention("", thread_ts=parent_ts)
    call = bot.wait_post(GENERAL)
    assert call.args["thread_ts"] == parent_ts
    replies = bot.slack.calls_to("conversations.replies")
    assert replies and replies[0].args["ts"] == parent_ts
    (doc,) = bot.rows(Document)
    assert doc.text == "Globex overcharged me twice, this is terrible"
    assert doc.external_id == parent_ts and doc.user_id == "U0CUSTOMER"
    assert event["ts"] != parent_ts


def test_user_text_is_escaped_so_nothing_pings(bot: Bot) -> None:
    # Slack delivers what people type with &, < and > escaped; mentions and links come as markup.
    bot.mention("hey <!channel> <!here> <@U123ABC> &lt;script&gt; Acme &amp; Co")
    call = bot.wait_post(GENERAL)
    raw = call.body_text
    for ping in ("<!channel>", "<!here>", "<@U123", "<script>"):
        assert ping not in raw
    text = json.dumps(call.arg("blocks")) + call.args["text"]
    assert "&lt;" not in bot.rows(Document)[0].text  # stored as people read it
    assert "<!" not in text and "<@" not in text
    (doc,) = bot.rows(Document)
    assert doc.text == "hey @channel @here @U123ABC <script> Acme & Co"


def test_long_texts_are_cut_with_an_ellipsis_within_limits(bot: Bot) -> None:
    bot.mention(" ".join(["Acme"] * 2000))
    call = bot.wait_post(GENERAL)
    blocks = call.arg("blocks")
    assert len(blocks) <= 50
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
    assert "…" in blocks[1]["text"]["text"]


def test_a_retried_event_is_acked_and_not_processed_twice(bot: Bot) -> None:
    event = events.app_mention("Acme is late again", user=AGENT, channel=GENERAL, bot_user_id=bot.slack.bot_user_id)
    body = events.envelope(event, bot_user_id=bot.slack.bot_user_id)
    assert bot.sender.event(body).status_code == 200
    bot.wait_post(GENERAL)
    for retry in (1, 2):
        assert bot.sender.event(body, retry_num=retry).status_code == 200
    # a later, different event is processed: so the retries had their chance to be
    bot.mention("second message")
    bot.wait_post(GENERAL, 2)
    assert len(bot.rows(Document)) == 2
    assert len(bot.slack.calls_to("chat.postMessage")) == 2
    assert len(bot.rows(SlackEvent, SlackEvent.event_id == body["event_id"])) == 1


def test_a_429_is_retried_after_retry_after(bot: Bot) -> None:
    bot.slack.script("chat.postMessage", RateLimited(retry_after=0))
    bot.mention("rate limits please")
    call = bot.wait_post(GENERAL)
    attempts = bot.slack.calls_to("chat.postMessage")
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[0].body_text == attempts[1].body_text
    assert bot.rows(BotPost)[0].ts == call.response["ts"]


def test_web_api_failures_are_logged_and_the_app_keeps_serving(bot: Bot) -> None:
    bot.slack.script("chat.postMessage", Error("channel_not_found"), Error("not_in_channel"), Error("invalid_auth"),
                     ServerError(503), ServerError(503), ServerError(503))
    for n in range(4):
        bot.mention(f"failing post {n}")
    wait_until(lambda: len(bot.slack.calls_to("chat.postMessage")) >= 6, what="six failed posts")
    bot.mention("this one works")
    call = bot.wait_post(GENERAL)
    assert call.status == 200 and len(bot.slack.calls_to("chat.postMessage")) == 7
    assert len(bot.rows(BotPost)) == 1
    assert len(bot.rows(Prediction)) == 5  # analysed and stored even when the reply could not be posted


def test_a_direct_message_is_answered_like_a_mention(bot: Bot) -> None:
    dm = "D0DIRECT01"
    event = events.message("Initech keeps crashing", user=AGENT, channel=dm, channel_type="im")
    bot.send_event(event)
    call = bot.wait_post(dm)
    assert call.args["thread_ts"] == event["ts"]
    assert bot.rows(Document)[0].text == "Initech keeps crashing"
