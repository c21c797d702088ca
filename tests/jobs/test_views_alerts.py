"""Alert Block Kit: escaping, links, limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.views_alerts import (
    MAX_SECTION_CHARS,
    DigestLine,
    EntityAlertView,
    digest,
    entity_alert,
    feed_failure,
    link,
    safe_url,
)


def dump(blocks: list) -> list[dict]:
    return [b.to_dict() for b in blocks]


def test_entity_alert_has_every_part_and_pings_nobody() -> None:
    view = EntityAlertView(
        headline="<@U123> & <!here> Acme fraud", link="https://n.example/a?x=1&y=2", source="Wire <b>",
        matched="Acme", entity_text="Acme Corp", entity_label="ORG", sentiment="negative", confidence=0.914,
        model_version="v-7", prediction_id=42,
    )
    text, blocks = entity_alert(view)
    raw = json.dumps(dump(blocks))
    assert "<@U123>" not in raw + text and "<!here>" not in raw + text
    assert "<https://n.example/a?x=1&amp;y=2|&lt;@U123&gt; &amp; &lt;!here&gt; Acme fraud>" in raw
    assert "Wire &lt;b&gt;" in raw and "Acme Corp (ORG)" in raw and "91%" in raw and "`v-7`" in raw
    assert any(b["type"] == "actions" for b in dump(blocks))  # Why? / Correct it on prediction 42


def test_links_only_for_http_urls_and_texts_are_cut() -> None:
    assert safe_url("javascript:alert(1)") is None and safe_url("https://a.example/x|y") == "https://a.example/x%7Cy"
    assert link(None, "plain & simple") == "plain &amp; simple"
    long = link("https://a.example/", "word " * 200)
    assert long.endswith("…>") and len(long) < 400


def test_digest_stays_within_block_kit_limits() -> None:
    lines = [DigestLine(f"Headline {n} " + "x" * 250, f"https://a.example/{n}", "Acme", "negative", 0.9)
             for n in range(100)]
    text, blocks = digest(lines, limit=5, window_minutes=10)
    data = dump(blocks)
    assert "100 more alerts" in text and len(data) <= 50
    assert all(len(b["text"]["text"]) <= MAX_SECTION_CHARS for b in data if "text" in b)
    assert "…and 80 more" in json.dumps(data, ensure_ascii=False)


def test_feed_failure_notice() -> None:
    text, blocks = feed_failure(url="https://feeds.example/rss", title="Wire", error="HTTP 502 <Bad Gateway>",
                                since=datetime(2024, 5, 1, 8, 30, tzinfo=UTC))
    raw = json.dumps(dump(blocks))
    assert "2024-05-01 08:30" in text and "<https://feeds.example/rss|Wire>" in raw
    assert "HTTP 502 &lt;Bad Gateway&gt;" in raw
