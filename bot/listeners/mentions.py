"""Mentions and direct messages: analyse the text and reply in a thread.

A mention with no text inside a thread analyses the thread's parent message.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext

from bot.listeners.common import Runtime, ack_now, analyze_message, guarded, plain_text, post_analysis
from bot.log import get_logger
from bot.views import help_blocks

log = get_logger("beacon.mentions")


def handle_mention(rt: Runtime, event: dict[str, Any], bot_user_id: str | None) -> None:
    """Analyse a mention's (or DM's) text, or its thread parent's, and reply in the thread."""
    channel = str(event["channel"])
    ts = str(event["ts"])
    thread_ts = event.get("thread_ts")
    reply_in = str(thread_ts or ts)
    text = plain_text(str(event.get("text") or ""), bot_user_id)
    target_ts, user = ts, event.get("user")
    if not text and thread_ts and thread_ts != ts:
        parent = rt.slack.thread_parent(channel=channel, thread_ts=str(thread_ts))
        text = plain_text(str((parent or {}).get("text") or ""), bot_user_id)
        target_ts, user = str(thread_ts), (parent or {}).get("user")
    if not text:
        rt.slack.post_message(channel=channel, text="Tell me what to analyse", thread_ts=reply_in,
                              blocks=help_blocks("Mention me with some text, or in a thread to analyse its "
                                                 "first message."))
        return
    shown = analyze_message(rt, text=text, channel=channel, ts=target_ts, user=user,
                            thread_ts=str(thread_ts) if thread_ts else None)
    post_analysis(rt, shown, channel=channel, thread_ts=reply_in)
    log.info("mention.answered", channel=channel, prediction_id=shown.prediction_id,
             model_version=shown.model_version)


def register(app: App, rt: Runtime) -> None:
    def mention(body: dict[str, Any], context: BoltContext) -> None:
        handle_mention(rt, body["event"], context.bot_user_id)

    app.event("app_mention")(ack=ack_now, lazy=[guarded("app_mention", mention)])
