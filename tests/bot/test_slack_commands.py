"""`/beacon` subcommands, the "Analyze with Beacon" message shortcut and the Home tab."""

from __future__ import annotations

from typing import Any

from bot.storage.tables import Alert, BotPost, Document, Feed, Feedback, Watch
from tests.bot.conftest import AGENT, ALERTS, CUSTOMER, GENERAL, MODEL_VERSION, Bot, wait_until
from tests.fakes import events
from tests.fakes.slack import Call, Error


def command(bot: Bot, text: str, *, user: str = AGENT, channel: str = GENERAL) -> Call:
    name = f"cmd{len(bot.slack.calls_to('respond')) + len(bot.slack.calls_to('chat.postMessage'))}"
    fields = events.slash_command(text, user=user, channel=channel, response_url=bot.slack.response_url(name))
    response = bot.sender.command(fields)
    assert response.status_code == 200 and response.text == ""  # acked at once, answered later
    return bot.slack.wait_for("respond", where=lambda c: c.path.endswith("/" + name))[0]


def said(call: Call) -> str:
    assert call.json is not None and call.json["response_type"] == "ephemeral"
    return str(call.json["text"]) + " ".join(b.get("text", {}).get("text", "") for b in call.json.get("blocks", []))


def test_help_and_unknown_input_show_the_help(bot: Bot) -> None:
    assert "/beacon analyze TEXT" in said(command(bot, "help"))
    assert "/beacon analyze TEXT" in said(command(bot, ""))
    unknown = said(command(bot, "frobnicate <!here>"))
    assert "I don't know `frobnicate`" in unknown and "/beacon watch NAME" in unknown


def test_watch_and_unwatch(bot: Bot) -> None:
    assert "Watching *Acme Corp*" in said(command(bot, "watch Acme Corp"))
    assert [w.name for w in bot.rows(Watch)] == ["Acme Corp"]
    assert "Acme Corp" in said(command(bot, "watch"))
    assert "Stopped watching" in said(command(bot, "unwatch acme corp"))
    assert bot.rows(Watch) == []
    assert "was not watching" in said(command(bot, "unwatch Nobody"))


def test_feeds_are_admin_only(make_bot: Any) -> None:
    bot: Bot = make_bot(BEACON_ADMINS=AGENT)
    refused = said(command(bot, "feeds add https://example.com/rss", user=CUSTOMER))
    assert "admins" in refused and bot.rows(Feed) == []
    added = said(command(bot, "feeds add https://example.com/rss <#C0NEWS0001|news>"))
    (feed,) = bot.rows(Feed)
    assert (feed.url, feed.channel, feed.created_by) == ("https://example.com/rss", "C0NEWS0001", AGENT)
    assert f"Added feed {feed.id}" in added
    assert "https://example.com/rss" in said(command(bot, "feeds list"))
    assert f"Removed feed {feed.id}" in said(command(bot, f"feeds remove {feed.id}"))
    assert bot.rows(Feed)[0].active is False
    assert "does not exist" in said(command(bot, "feeds remove 999"))
    assert "not a channel" in said(command(bot, "feeds add https://example.com/2 #nowhere"))
    assert "http" in said(command(bot, "feeds add ftp://example.com/rss"))


def test_model_shows_the_active_version_and_metrics(bot: Bot) -> None:
    text = said(command(bot, "model"))
    assert MODEL_VERSION in text and "accuracy" in text


def test_analyze_posts_in_the_channel_and_falls_back_to_private(bot: Bot) -> None:
    fields = events.slash_command("analyze Acme Corp owes me $40", user=AGENT, channel=GENERAL,
                                  response_url=bot.slack.response_url("an"))
    assert bot.sender.command(fields).status_code == 200
    call = bot.wait_post(GENERAL)
    assert "thread_ts" not in call.args and "Acme Corp owes me $40" in call.body_text
    assert bot.rows(Document)[0].text == "Acme Corp owes me $40"
    bot.slack.script("chat.postMessage", Error("not_in_channel"))
    private = said(command(bot, "analyze Globex is fine"))
    assert "*Sentiment:*" in private and "privately" in private
    assert len(bot.rows(BotPost)) == 1 and len(bot.rows(Document)) == 2
    assert "Usage" in said(command(bot, "analyze"))


def test_message_shortcut_analyses_any_message(bot: Bot) -> None:
    ts = events.next_ts()
    payload = events.message_shortcut("beacon_analyze_message", user=AGENT, channel=GENERAL, author=CUSTOMER,
                                      text="Initech &amp; Globex are late", message_ts=ts,
                                      response_url=bot.slack.response_url("shortcut"))
    response = bot.sender.interactive(payload)
    assert response.status_code == 200
    call = bot.wait_post(GENERAL)
    assert call.args["thread_ts"] == ts
    (doc,) = bot.rows(Document)
    assert (doc.text, doc.external_id, doc.user_id) == ("Initech & Globex are late", ts, CUSTOMER)


def test_home_tab_is_published_with_model_labels_watches_feeds_and_alerts(make_bot: Any) -> None:
    bot: Bot = make_bot(BEACON_ESCALATION_THRESHOLD="0.0")
    command(bot, "watch Acme")
    command(bot, "feeds add https://example.com/news.xml")
    bot.send_event(events.message("Globex broke everything", user=CUSTOMER, channel="C0SUPPORT1"))
    alert = bot.wait_post(ALERTS)
    bot.react("reaction_added", "+1", channel=ALERTS, ts=alert.response["ts"])
    wait_until(lambda: bot.rows(Feedback), what="a vote")
    bot.send_event(events.app_home_opened(AGENT))
    (publish,) = bot.slack.wait_for("views.publish")
    assert publish.args["user_id"] == AGENT
    view = publish.arg("view")
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    text = " ".join(b.get("text", {}).get("text", "") for b in view["blocks"] if b["type"] == "section")
    assert MODEL_VERSION in text
    assert "1 confirmed" in text and "0 rejected" in text and "1 pending retraining" in text
    assert "Last training run:* none yet" in text
    assert "Acme" in text and "https://example.com/news.xml" in text
    assert "escalation" in text and "Last 10 alerts" in text and len(bot.rows(Alert)) == 1
