"""The ``/beacon`` slash command and the "Analyze with Beacon" message shortcut."""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext

from bot import commands
from bot.errors import BeaconError, SlackError
from bot.listeners.common import Runtime, ack_now, analyze_message, guarded, plain_text, post_analysis
from bot.log import get_logger
from bot.views import analysis_blocks, analysis_fallback, help_blocks, safe, section

log = get_logger("beacon.commands")
COMMAND = "/beacon"
SHORTCUT = "beacon_analyze_message"


def on_command(rt: Runtime, body: dict[str, Any], bot_user_id: str | None) -> None:
    inv = commands.Invocation(text=str(body.get("text") or ""), user_id=str(body.get("user_id", "")),
                              channel_id=str(body.get("channel_id", "")))
    response_url = str(body.get("response_url", ""))
    try:
        answer(rt, inv, response_url, bot_user_id)
    except SlackError:
        raise
    except BeaconError as exc:
        log.info("command.refused", user=inv.user_id, error=str(exc), error_type=type(exc).__name__)
        rt.slack.respond(response_url, text=f":warning: {safe(str(exc), 500)}")


def answer(rt: Runtime, inv: commands.Invocation, response_url: str, bot_user_id: str | None) -> None:
    with rt.session() as session:
        result = commands.run(inv, settings=rt.deps.settings, session=session)
    if isinstance(result, commands.Analyze):
        text = plain_text(result.text, bot_user_id)
        shown = analyze_message(rt, text=text, channel=inv.channel_id, ts=None, user=inv.user_id)
        share(rt, shown, channel=inv.channel_id, thread_ts=None, response_url=response_url)
        return
    if result.show_help:
        rt.slack.respond(response_url, text="Beacon help", blocks=help_blocks(result.text or None))
    else:
        rt.slack.respond(response_url, text=result.text, blocks=[section(result.text)])
    log.info("command.done", user=inv.user_id, subcommand=commands.split(inv.text)[0] or "help", ok=result.ok)


def share(rt: Runtime, shown: Any, *, channel: str, thread_ts: str | None, response_url: str) -> None:
    """Post the analysis in the channel (so it can take reactions); privately if the bot can't post there."""
    try:
        post_analysis(rt, shown, channel=channel, thread_ts=thread_ts, show_text=thread_ts is None)
    except SlackError as exc:
        log.info("share.fallback_ephemeral", channel=channel, error=str(exc))
        rt.slack.respond(response_url, text=analysis_fallback(shown),
                         blocks=analysis_blocks(shown, show_text=True, heading="_I can't post in this channel "
                                                "(invite me to it), so here it is privately._"))


def on_shortcut(rt: Runtime, body: dict[str, Any], bot_user_id: str | None) -> None:
    message = body.get("message") or {}
    channel = str((body.get("channel") or {}).get("id", ""))
    ts = str(message.get("ts", ""))
    text = plain_text(str(message.get("text") or ""), bot_user_id)
    response_url = str(body.get("response_url", ""))
    if not text:
        rt.slack.respond(response_url, text="That message has no text I can analyse.")
        return
    shown = analyze_message(rt, text=text, channel=channel, ts=ts, user=message.get("user"),
                            thread_ts=message.get("thread_ts"))
    share(rt, shown, channel=channel, thread_ts=str(message.get("thread_ts") or ts), response_url=response_url)
    log.info("shortcut.answered", channel=channel, prediction_id=shown.prediction_id)


def register(app: App, rt: Runtime) -> None:
    def command(body: dict[str, Any], context: BoltContext) -> None:
        on_command(rt, body, context.bot_user_id)

    def shortcut(body: dict[str, Any], context: BoltContext) -> None:
        on_shortcut(rt, body, context.bot_user_id)

    app.command(COMMAND)(ack=ack_now, lazy=[guarded("command", command)])
    app.shortcut(SHORTCUT)(ack=ack_now, lazy=[guarded("shortcut", shortcut)])
