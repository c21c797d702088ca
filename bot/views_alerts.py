"""Block Kit for alerts (built with ``slack_sdk.models``): entity alerts, spikes, digests, feed notices.

Every piece of outside text (headlines, feed titles, entity names, errors) is escaped (``&``,
``<``, ``>``) so it can never ping anyone or forge a link, and cut to Block Kit's limits with "…".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from slack_sdk.models.blocks import Block, ContextBlock, DividerBlock, SectionBlock
from slack_sdk.models.blocks.basic_components import MarkdownTextObject

from bot.views import buttons, cut, escape, percent

MAX_SECTION_CHARS = 3000
MAX_FIELD_CHARS = 2000
MAX_DIGEST_LINES = 20
HEADLINE_CHARS = 300
LABEL_HINT = "React :+1: if this alert is right, :-1: if it is wrong (or use Correct it)"


def safe_url(url: str | None) -> str | None:
    """An http(s) URL usable inside ``<url|label>``, or None."""
    if not url or not url.lower().startswith(("http://", "https://")) or len(url) > 2000:
        return None
    return escape(url.replace("|", "%7C").replace(" ", "%20"))


def link(url: str | None, label: str, limit: int = HEADLINE_CHARS) -> str:
    text = escape(cut(" ".join(label.split()) or url or "(untitled)", limit))
    target = safe_url(url)
    return f"<{target}|{text}>" if target else text


def _md(text: str, limit: int = MAX_SECTION_CHARS) -> MarkdownTextObject:
    return MarkdownTextObject(text=cut(text, limit))


@dataclass(frozen=True)
class EntityAlertView:
    headline: str
    link: str | None
    source: str
    matched: str  # the watch that matched
    entity_text: str  # the entity as the model (or a pattern) found it
    entity_label: str
    sentiment: str
    confidence: float
    model_version: str
    prediction_id: int | None = None


def entity_alert(view: EntityAlertView) -> tuple[str, list[Block]]:
    """(fallback text, blocks) for a negative item about a watched entity."""
    headline = link(view.link, view.headline)
    entity = escape(cut(view.entity_text, 200))
    if view.entity_label:
        entity += f" ({escape(cut(view.entity_label, 30))})"
    fields = [
        _md(f"*Source*\n{escape(cut(view.source, 300))}", MAX_FIELD_CHARS),
        _md(f"*Matched*\n{escape(cut(view.matched, 200))} → {entity}", MAX_FIELD_CHARS),
        _md(f"*Sentiment*\n{escape(view.sentiment)} · {percent(view.confidence)} confidence", MAX_FIELD_CHARS),
    ]
    blocks: list[Block] = [
        SectionBlock(text=_md(f":rotating_light: *Negative news about {escape(cut(view.matched, 200))}*\n{headline}")),
        SectionBlock(fields=fields),
        ContextBlock(elements=[_md(f"Model `{escape(view.model_version)}` · {LABEL_HINT}")]),
    ]
    if view.prediction_id is not None:
        blocks.append(buttons(view.prediction_id))
    text = f"Negative news about {escape(cut(view.matched, 200))}: {escape(cut(view.headline, HEADLINE_CHARS))}"
    return text, blocks


@dataclass(frozen=True)
class SpikeView:
    scope_channel: str
    negative: int
    total: int
    window_minutes: int
    threshold: float
    cooldown_minutes: int
    examples: Sequence[str] = ()


def spike_alert(view: SpikeView) -> tuple[str, list[Block]]:
    share = view.negative / max(view.total, 1)
    where = f"<#{view.scope_channel}>" if view.scope_channel[:1] in {"C", "G"} else escape(view.scope_channel)
    summary = (
        f":chart_with_downwards_trend: *Negative spike in {where}*: {view.negative} of {view.total} items "
        f"({percent(share)}) were negative in the last {view.window_minutes} min (threshold {percent(view.threshold)})."
    )
    blocks: list[Block] = [SectionBlock(text=_md(summary))]
    examples = [f"• {escape(cut(' '.join(e.split()), 200))}" for e in view.examples[:5]]
    if examples:
        blocks.append(SectionBlock(text=_md("*Examples*\n" + "\n".join(examples))))
    blocks.append(ContextBlock(elements=[_md(f"Next spike alert for this channel after {view.cooldown_minutes} min")]))
    text = f"Negative spike: {view.negative}/{view.total} items negative in the last {view.window_minutes} min"
    return text, blocks


@dataclass(frozen=True)
class DigestLine:
    headline: str
    link: str | None
    matched: str | None
    sentiment: str | None
    confidence: float | None


def digest(lines: Sequence[DigestLine], *, limit: int, window_minutes: int) -> tuple[str, list[Block]]:
    """One message listing the alerts beyond the per-channel rate limit."""
    head = (
        f":bell: *{len(lines)} more alert{'s' if len(lines) != 1 else ''}* "
        f"(at most {limit} alerts per {window_minutes} min in this channel)"
    )
    rows = [_digest_row(line) for line in lines[:MAX_DIGEST_LINES]]
    if len(lines) > MAX_DIGEST_LINES:
        rows.append(f"…and {len(lines) - MAX_DIGEST_LINES} more")
    blocks: list[Block] = [SectionBlock(text=_md(head)), DividerBlock()]
    blocks.extend(_chunked_sections(rows))
    return f"{len(lines)} more alerts (rate limit reached)", blocks


def _digest_row(line: DigestLine) -> str:
    row = "• " + link(line.link, line.headline, 150)
    details = []
    if line.matched:
        details.append(escape(cut(line.matched, 80)))
    if line.sentiment:
        conf = f" {percent(line.confidence)}" if line.confidence is not None else ""
        details.append(f"{escape(line.sentiment)}{conf}")
    return row + (f" — {', '.join(details)}" if details else "")


def _chunked_sections(rows: Sequence[str]) -> list[Block]:
    """Rows grouped into sections of at most MAX_SECTION_CHARS each."""
    sections: list[Block] = []
    current: list[str] = []
    size = 0
    for row in rows:
        row = cut(row, MAX_SECTION_CHARS)
        if current and size + len(row) + 1 > MAX_SECTION_CHARS:
            sections.append(SectionBlock(text=_md("\n".join(current))))
            current, size = [], 0
        current.append(row)
        size += len(row) + 1
    if current:
        sections.append(SectionBlock(text=_md("\n".join(current))))
    return sections


def feed_failure(*, url: str, title: str | None, error: str, since: datetime) -> tuple[str, list[Block]]:
    """The single notice posted when a feed has been failing for 24 hours."""
    name = link(url, title or url, 200)
    body = (
        f":warning: *Feed failing since {since:%Y-%m-%d %H:%M} UTC*: {name}\n"
        f"Last error: `{escape(cut(error, 500))}`"
    )
    hint = "Beacon keeps retrying with backoff and will not repeat this notice; `beacon feeds list` shows its status."
    blocks: list[Block] = [SectionBlock(text=_md(body)), ContextBlock(elements=[_md(hint)])]
    return f"Feed failing since {since:%Y-%m-%d %H:%M} UTC: {escape(cut(title or url, 200))}", blocks
