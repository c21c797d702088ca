"""Block Kit messages built with ``slack_sdk.models``: analyses, alerts, explanations, prompts, help.

Every piece of user text goes through :func:`safe` (``&``, ``<``, ``>`` escaped, so ``<!channel>``,
``<!here>`` and ``<@U123>`` never ping) and every text respects Block Kit's limits (3,000
characters per text, 50 blocks per message), cut with a visible "…".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

MAX_BLOCKS = 50
MAX_TEXT = 3000
MAX_CONTEXT_TEXT = 2000  # context block elements
MAX_FALLBACK = 3000
QUOTE_CHARS = 600
ELLIPSIS = "…"
ACTION_WHY = "beacon_why"
ACTION_CORRECT = "beacon_correct"
SENTIMENT_EMOJI = {"negative": ":red_circle:", "neutral": ":white_circle:", "positive": ":large_green_circle:"}
REACT_HINT = "React :+1: if this is right or :-1: if it is wrong"


# --- escaping and cutting ----------------------------------------------------------------------
def escape(text: str) -> str:
    """Slack's three control characters as entities: the text shows as typed and never pings."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, ending in "…" when it was cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + ELLIPSIS


def safe(text: str, limit: int = MAX_TEXT) -> str:
    """Escaped user text whose *escaped* length fits ``limit`` (never cuts an entity in half)."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    out: list[str] = []
    size = 0
    for char in text:
        piece = escape(char)
        if size + len(piece) > limit - 1:
            break
        out.append(piece)
        size += len(piece)
    return "".join(out).rstrip() + ELLIPSIS


def quote(text: str, limit: int = QUOTE_CHARS) -> str:
    """User text as a mrkdwn block quote, escaped and cut."""
    body = safe(" ".join(text.split()), limit)
    return "> " + body if body else "> _(empty)_"


def mrkdwn(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=cut(text, MAX_TEXT))


def section(text: str) -> SectionBlock:
    return SectionBlock(text=mrkdwn(text))


def context(*texts: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=cut(t, MAX_CONTEXT_TEXT)) for t in texts[:10]])


def limit_blocks(blocks: Sequence[Block], limit: int = MAX_BLOCKS) -> list[Block]:
    """At most ``limit`` blocks; the last one says how many were left out."""
    if len(blocks) <= limit:
        return list(blocks)
    kept = list(blocks[: limit - 1])
    kept.append(context(f"{ELLIPSIS} {len(blocks) - len(kept)} more not shown"))
    return kept


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


# --- what a reply shows ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Shown:
    """One stored prediction, as a reply shows it."""

    prediction_id: int
    text: str
    sentiment: str
    sentiment_score: float
    model_version: str
    entities: list[dict[str, Any]] = field(default_factory=list)
    probs: dict[str, float] = field(default_factory=dict)

    @property
    def negative(self) -> float:
        return float(self.probs.get("negative", self.sentiment_score if self.sentiment == "negative" else 0.0))

    @classmethod
    def from_dict(cls, prediction_id: int, data: Mapping[str, Any]) -> Shown:
        """From ``Analysis.to_dict()``: text, entities, sentiment {label, score, probs}, model_version."""
        sentiment = data.get("sentiment") or {}
        return cls(
            prediction_id=prediction_id, text=str(data.get("text", "")), sentiment=str(sentiment.get("label", "")),
            sentiment_score=float(sentiment.get("score", 0.0)), model_version=str(data.get("model_version", "")),
            entities=[dict(e) for e in data.get("entities", [])],
            probs={str(k): float(v) for k, v in (sentiment.get("probs") or {}).items()},
        )


def entity_line(entity: Mapping[str, Any]) -> str:
    score = entity.get("score")
    conf = f" ({percent(float(score))})" if isinstance(score, int | float) else ""
    return f"• *{safe(str(entity.get('text', '')), 200)}* — `{safe(str(entity.get('label', '?')), 40)}`{conf}"


def entities_text(entities: Sequence[Mapping[str, Any]], limit: int = MAX_TEXT) -> str:
    if not entities:
        return "*Entities:* none found"
    lines = ["*Entities:*"]
    size = len(lines[0])
    for n, entity in enumerate(entities):
        line = entity_line(entity)
        more = f"{ELLIPSIS} and {len(entities) - n} more"
        if size + len(line) + len(more) + 2 > limit:
            lines.append(more)
            break
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines)


def sentiment_text(shown: Shown) -> str:
    emoji = SENTIMENT_EMOJI.get(shown.sentiment, ":grey_question:")
    return f"*Sentiment:* {emoji} {safe(shown.sentiment, 40)} ({percent(shown.sentiment_score)})"


def buttons(prediction_id: int) -> ActionsBlock:
    value = str(prediction_id)
    return ActionsBlock(
        block_id=f"beacon_actions_{prediction_id}",
        elements=[
            ButtonElement(text="Why?", action_id=ACTION_WHY, value=value),
            ButtonElement(text="Correct it", action_id=ACTION_CORRECT, value=value),
        ],
    )


def analysis_blocks(shown: Shown, *, show_text: bool = False, heading: str | None = None) -> list[Block]:
    """The analysis reply: (heading, quoted text,) sentiment, entities, model version + hint, buttons."""
    blocks: list[Block] = []
    if heading:
        blocks.append(section(heading))
    if show_text:
        blocks.append(section(quote(shown.text)))
    blocks.append(section(sentiment_text(shown)))
    blocks.append(section(entities_text(shown.entities)))
    blocks.append(context(f"model `{safe(shown.model_version, 64)}`", REACT_HINT))
    blocks.append(buttons(shown.prediction_id))
    return limit_blocks(blocks)


def analysis_fallback(shown: Shown) -> str:
    """The notification text (``text``), escaped too: it is parsed like mrkdwn."""
    names = ", ".join(f"{e.get('text', '')} ({e.get('label', '?')})" for e in shown.entities[:5])
    base = f"Sentiment: {shown.sentiment} ({percent(shown.sentiment_score)})"
    return safe(f"{base}; entities: {names}" if names else base, MAX_FALLBACK)


def escalation_blocks(shown: Shown, *, channel: str, permalink: str | None) -> list[Block]:
    """The escalation alert posted in the alert channel."""
    where = f"<#{channel}> (<{permalink}|open the message>)" if permalink else f"<#{channel}>"
    heading = f":rotating_light: *Escalation:* negative {percent(shown.negative)} in {where}"
    return analysis_blocks(shown, show_text=True, heading=heading)


def escalation_fallback(shown: Shown) -> str:
    return f"Escalation: negative {percent(shown.negative)}"


def explanation_blocks(label: str, weights: Sequence[tuple[str, float]], *, model_version: str) -> list[Block]:
    """The "Why?" answer: the words that pushed the sentiment decision, signed."""
    if not weights:
        return [section(f"I found no single word that decided *{safe(label, 40)}*.")]
    lines = [f"*Why {safe(label, 40)}?* The words that pushed the decision:"]
    for word, weight in weights[:15]:
        arrow = ":arrow_up:" if weight > 0 else ":arrow_down:"
        lines.append(f"{arrow} *{safe(word, 100)}* {weight:+.3f}")
    note = ":arrow_up: pushed towards the answer, :arrow_down: pushed away from it"
    return [section("\n".join(lines)), context(note, f"model `{safe(model_version, 64)}`")]


def correction_prompt_blocks(prediction_id: int) -> list[Block]:
    """The ephemeral offer after a :-1:."""
    return [
        section("Thanks! Can you tell me the right answer? It becomes a training label."),
        ActionsBlock(
            block_id=f"beacon_prompt_{prediction_id}",
            elements=[ButtonElement(text="Correct it", action_id=ACTION_CORRECT, value=str(prediction_id),
                                    style="primary")],
        ),
    ]


HELP = """*Beacon* reads entities and sentiment in messages.
• Mention me with text (or with nothing, in a thread, to analyse its first message)
• `/beacon analyze TEXT` — analyse a text
• `/beacon watch NAME` / `/beacon unwatch NAME` — entities or tickers for alerts
• `/beacon feeds add URL [#channel]`, `/beacon feeds list`, `/beacon feeds remove ID` — news feeds (admins)
• `/beacon model` — the active model and its metrics
• React :+1: or :-1: on my answers, or press *Correct it*: that is how I learn."""


def help_blocks(prefix: str | None = None) -> list[Block]:
    blocks: list[Block] = [section(prefix)] if prefix else []
    blocks.append(section(HELP))
    return blocks


def lines_block(title: str, lines: Sequence[str], empty: str) -> list[Block]:
    """A titled list (already-escaped lines), cut to the text limit."""
    if not lines:
        return [section(f"*{title}*\n{empty}")]
    return [section(entities_like(title, lines))]


def entities_like(title: str, lines: Sequence[str]) -> str:
    text = f"*{title}*"
    for n, line in enumerate(lines):
        more = f"\n{ELLIPSIS} and {len(lines) - n} more"
        if len(text) + len(line) + 1 + len(more) > MAX_TEXT:
            return text + more
        text += "\n" + line
    return text
