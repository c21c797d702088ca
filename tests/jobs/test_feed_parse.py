"""Parsing feed bytes: the fixture feeds, malformed input, dedupe keys, text and pace."""

from __future__ import annotations

import io

import feedparser
import pytest

from bot.errors import FeedError
from jobs.feed_parse import clean_link, html_to_text, item_keys, pace_minutes, parse_feed
from tests.jobs.feedserver import fixture

WELL_FORMED = ["rss20.xml", "atom10.xml", "rss10_rdf.xml"]
MALFORMED = ["broken_encoding.xml", "truncated.xml", "html_entities.xml"]


@pytest.mark.parametrize("name", WELL_FORMED + MALFORMED)
def test_entry_counts_match_plain_feedparser(name: str) -> None:
    body = fixture(name)
    parsed = parse_feed(body, url="http://feeds.test/x.xml", content_type="application/xml")
    plain = feedparser.parse(io.BytesIO(body))
    assert parsed.entries == len(plain.entries)
    assert len(parsed.items) + parsed.skipped_empty + parsed.duplicates == parsed.entries


@pytest.mark.parametrize(("name", "version"), [("rss20.xml", "rss20"), ("atom10.xml", "atom10"),
                                              ("rss10_rdf.xml", "rss10")])
def test_well_formed_feeds_have_no_warning(name: str, version: str) -> None:
    parsed = parse_feed(fixture(name), content_type="application/xml")
    assert parsed.version == version
    assert parsed.warning is None
    assert len(parsed.items) >= 2


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_feeds_keep_entries_with_a_warning(name: str) -> None:
    parsed = parse_feed(fixture(name), content_type="application/xml")
    assert parsed.warning and parsed.warning.startswith("ill-formed feed, entries kept")
    assert len(parsed.items) == 2


def test_broken_encoding_and_undeclared_entities_are_decoded() -> None:
    broken = parse_feed(fixture("broken_encoding.xml"))
    assert broken.items[0].title == "Société Générale profit falls"
    entities = parse_feed(fixture("html_entities.xml"))
    assert entities.items[0].title == "Société Générale — shares slump\u00a05%".replace("\u00a0", " ")
    assert "“disappointed”" in entities.items[0].text and "<p>" not in entities.items[0].text


def test_truncated_feed_keeps_complete_items() -> None:
    parsed = parse_feed(fixture("truncated.xml"))
    assert [i.title for i in parsed.items] == ["Acme recalls products", "Globex hires bankers"]


@pytest.mark.parametrize("body", [b"", b"<html><body>Hello</body></html>", b'{"items": []}', b"\x00\xff garbage"])
def test_nothing_usable_is_a_clear_error(body: bytes) -> None:
    with pytest.raises(FeedError, match=r"not (a usable|an RSS/Atom) feed"):
        parse_feed(body, content_type="text/html")


def test_analysed_text_is_title_plus_plain_summary() -> None:
    item = parse_feed(fixture("rss20.xml")).items[0]
    assert item.text == (
        "Acme Corp shares plunge after fraud probe\nRegulators opened an investigation into Acme Corp & its auditors."
    )
    atom = parse_feed(fixture("atom10.xml")).items[0]
    assert atom.title == "Acme warns on profits"
    assert atom.summary == "Acme cut its outlook — again."


def test_html_to_text() -> None:
    assert html_to_text("<p>A &amp; B</p><script>alert(1)</script><p>caf&eacute;&nbsp;&#8364;5</p>") == "A & B café €5"
    assert html_to_text("") == ""


def test_keys_guid_then_clean_link_then_hash() -> None:
    items = parse_feed(fixture("rss20.xml")).items
    assert items[0].guid_key == "guid:mw-1001"  # whitespace stripped
    assert items[1].guid_key == "guid:https://news.example.com/globex-profit"  # URL guid without utm_*
    assert items[2].guid_key == "link:https://news.example.com/initech-ceo?id=7"  # no guid: the clean link
    assert items[0].link == "https://news.example.com/acme-fraud"
    no_link, _ = item_keys(guid=None, link=None, title="Title", date="Mon, 06 Sep 2021")
    again, _ = item_keys(guid=None, link=None, title="Title", date="Mon, 06 Sep 2021")
    other, _ = item_keys(guid=None, link=None, title="Title", date="Tue, 07 Sep 2021")
    assert no_link.startswith("hash:") and no_link == again != other


def test_story_key_is_shared_by_the_same_article_in_two_feeds() -> None:
    _, a = item_keys(guid="feed-a-17", link="https://x.com/story?utm_source=a", title="T", date=None)
    _, b = item_keys(guid="feed-b-99", link="https://X.com/story?utm_medium=b#top", title="T (edited)", date=None)
    _, home_a = item_keys(guid="g1", link="https://x.com/", title="T", date=None)
    _, home_b = item_keys(guid="g2", link="https://x.com/", title="T", date=None)
    assert a == b
    assert home_a != home_b  # a bare home page link says nothing about the story


def test_clean_link() -> None:
    assert clean_link("HTTP://Example.COM:80/a?utm_source=x&id=3&UTM_Medium=y&fbclid=z#frag") == "http://example.com/a?id=3"
    assert clean_link("https://example.com:8443") == "https://example.com:8443/"


def test_pace_from_ttl_and_syndication() -> None:
    assert parse_feed(fixture("rss20.xml")).pace_minutes == 30
    assert parse_feed(fixture("rss10_rdf.xml")).pace_minutes == 60
    assert pace_minutes({"sy_updateperiod": "daily", "sy_updatefrequency": "4"}) == 360
    assert pace_minutes({"ttl": "100000"}) == 24 * 60
    assert pace_minutes({"ttl": "soon"}) == 0


def test_duplicate_guids_in_one_document_count_once() -> None:
    body = (b'<rss version="2.0"><channel><title>d</title>'
            b"<item><title>One</title><guid>same</guid></item><item><title>Two</title><guid>same</guid></item>"
            b"</channel></rss>")
    parsed = parse_feed(body)
    assert [i.title for i in parsed.items] == ["One"] and parsed.duplicates == 1


def test_entries_without_text_are_skipped_not_an_error() -> None:
    body = (b'<rss version="2.0"><channel><title>pics</title>'
            b"<item><description>&lt;img alt=&quot;x&quot; src=&quot;a.png&quot;/&gt;</description></item>"
            b"</channel></rss>")
    parsed = parse_feed(body)
    assert (parsed.entries, parsed.items, parsed.skipped_empty, parsed.warning) == (1, [], 1, None)
