"""The alert rules as pure functions over stored predictions: no database, no Slack, no model.

- Entity rule: a negative item (at or above the threshold) that mentions a watched entity or
  ticker, as a model entity or a pattern entity. Matching is case-insensitive and whole-word.
- Spike rule: the share of negative items in a window exceeds a threshold, with enough items.
- Rate limit: how many alerts a channel may still get in the current window.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.storage.feeds import normalize_alias

_EDGE = re.compile(r"^[\W_]+|[\W_]+$")
_POSSESSIVE = re.compile(r"(?:'s|’s|')$")
_TOKEN = re.compile(r"[\w&$.-]+")


@dataclass(frozen=True)
class WatchKey:
    name: str  # as the user typed it
    normalized: str  # bot.storage.feeds.normalize_alias(name)


@dataclass(frozen=True)
class EntityHit:
    watch: str
    entity_text: str
    entity_label: str
    entity_source: str


def entity_key(text: str) -> str:
    """An entity's text as a watch key: 'ACME Corp.'s' → 'acme corp', '$ACME' → 'acme'."""
    value = normalize_alias(text)
    value = _POSSESSIVE.sub("", value)
    return _EDGE.sub("", value)


def _tokens(key: str) -> list[str]:
    return [_EDGE.sub("", t) for t in _TOKEN.findall(key) if _EDGE.sub("", t)]


def matches(entity_text: str, watch: WatchKey) -> bool:
    """True when the entity is the watched name, or contains it as whole words
    ("Acme Corp Inc" matches a watch on "Acme Corp" and one on "ACME")."""
    entity = entity_key(entity_text)
    wanted = _EDGE.sub("", watch.normalized)
    if not entity or not wanted:
        return False
    if entity == wanted:
        return True
    have, need = _tokens(entity), _tokens(wanted)
    if not need or len(need) > len(have):
        return False
    return any(have[i : i + len(need)] == need for i in range(len(have) - len(need) + 1))


def match_watch(entities: Iterable[Mapping[str, Any]], watches: Sequence[WatchKey]) -> EntityHit | None:
    """The first entity (model or pattern: tickers, ...) that matches a watch; when several
    watches match it, the most specific (longest) one is reported."""
    ranked = sorted(watches, key=lambda w: len(w.normalized), reverse=True)
    for entity in entities:
        text = str(entity.get("text") or "")
        for watch in ranked:
            if matches(text, watch):
                return EntityHit(
                    watch=watch.name, entity_text=text, entity_label=str(entity.get("label") or ""),
                    entity_source=str(entity.get("source") or "model"),
                )
    return None


def negative_score(sentiment_label: str, sentiment_score: float, probs: Mapping[str, Any] | None = None) -> float:
    """The item's negative confidence: the probability of "negative" (0 when it is not the label)."""
    if sentiment_label != "negative":
        return 0.0
    if probs and isinstance(probs.get("negative"), int | float):
        return float(probs["negative"])
    return float(sentiment_score)


def entity_rule(
    *, sentiment_label: str, sentiment_score: float, entities: Iterable[Mapping[str, Any]],
    watches: Sequence[WatchKey], threshold: float, probs: Mapping[str, Any] | None = None,
) -> EntityHit | None:
    """Fires on a negative item at or above ``threshold`` that mentions a watched entity."""
    if not watches or negative_score(sentiment_label, sentiment_score, probs) < threshold:
        return None
    return match_watch(entities, watches)


@dataclass(frozen=True)
class SpikeStats:
    total: int
    negative: int
    fires: bool

    @property
    def share(self) -> float:
        return self.negative / self.total if self.total else 0.0


def spike_stats(labels: Iterable[str], *, min_items: int, threshold: float) -> SpikeStats:
    """Fires when at least ``min_items`` were seen and the negative share exceeds ``threshold``."""
    seen = list(labels)
    negative = sum(1 for label in seen if label == "negative")
    total = len(seen)
    return SpikeStats(total=total, negative=negative, fires=total >= min_items and negative / max(total, 1) > threshold)


def cooling_down(last_alert_at: datetime | None, *, now: datetime, cooldown: timedelta) -> bool:
    return last_alert_at is not None and now - last_alert_at < cooldown


def rate_budget(posted_in_window: int, *, limit: int) -> int:
    """How many more alerts a channel may get in the current window."""
    return max(limit - posted_in_window, 0)
