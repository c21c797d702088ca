"""The App Home tab: model, labels, last training run, watches, feeds and the last 10 alerts."""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import Block, DividerBlock, HeaderBlock
from slack_sdk.models.views import View

from bot.commands import metrics_line
from bot.home import HomeSummary
from bot.views import context, entities_like, limit_blocks, percent, safe, section

MAX_HOME_BLOCKS = 100


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value is not None else "—"


def _model(summary: HomeSummary) -> str:
    if summary.model is None:
        return "*Active model:* none yet"
    return (f"*Active model:* `{safe(summary.model.version, 64)}` (since {_when(summary.model.since)})\n"
            f"{safe(metrics_line(summary.model.metrics), 1500)}")


def _labels(summary: HomeSummary) -> str:
    counts = summary.labels
    return (f"*Labels:* :+1: {counts['confirmed']} confirmed · :-1: {counts['rejected']} rejected · "
            f":pencil: {counts['corrected']} corrected · {counts['pending']} pending retraining")


def _run(summary: HomeSummary) -> str:
    run = summary.last_run
    if run is None:
        return "*Last training run:* none yet"
    text = f"*Last training run:* {safe(run.status, 20)} — started {_when(run.started_at)}"
    if run.finished_at:
        text += f", finished {_when(run.finished_at)}"
    if run.device:
        text += f" on {safe(run.device, 30)}"
    if run.candidate_version:
        text += f", candidate `{safe(run.candidate_version, 64)}`"
    if run.error:
        text += f"\n> {safe(run.error, 500)}"
    return text


def _alert_lines(summary: HomeSummary) -> list[str]:
    lines = []
    for alert in summary.alerts:
        score = f" {percent(alert.score)}" if alert.score is not None else ""
        what = f" *{safe(alert.matched, 100)}*" if alert.matched else ""
        link = f" <{alert.permalink}|source>" if alert.permalink else ""
        lines.append(f"• {_when(alert.created_at)} {safe(alert.kind, 24)}{what}{score} in <#{alert.channel}> "
                     f"({safe(alert.status, 16)}){link}")
    return lines


def home_view(summary: HomeSummary) -> View:
    watches = [f"• {safe(name, 200)}" for name in summary.watches]
    feeds = [f"• `{fid}` {safe(title, 200)} → <#{channel}> ({safe(status or 'not polled yet', 30)})"
             for fid, title, channel, status in summary.feeds]
    blocks: list[Block] = [
        HeaderBlock(text="Beacon"),
        section(_model(summary)),
        section(_labels(summary)),
        section(_run(summary)),
        DividerBlock(),
        section(entities_like("Watches", watches) if watches else "*Watches*\nNone yet: `/beacon watch NAME`"),
        section(entities_like("Feeds", feeds) if feeds else "*Feeds*\nNone yet: `/beacon feeds add URL`"),
        DividerBlock(),
        section(entities_like("Last 10 alerts", _alert_lines(summary)) if summary.alerts
                else "*Last 10 alerts*\nNo alerts yet."),
        context("Mention me or DM me to analyse a message · `/beacon help`"),
    ]
    return View(type="home", blocks=limit_blocks(blocks, MAX_HOME_BLOCKS))
