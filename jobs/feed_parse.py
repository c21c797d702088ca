"""Parsing feed bytes with feedparser: usable items, dedupe keys, the text to analyse, the feed's pace.

Pure functions over bytes: no HTTP, no database. feedparser only ever sees a byte stream.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import feedparser

from bot.errors import FeedError

MAX_TITLE_CHARS = 1_000
MAX_SUMMARY_CHARS = 4_000
MAX_KEY_CHARS = 500
MAX_PACE_MINUTES = 24 * 60
TRACKING_PARAMS = {"fbclid", "gclid", "mc_cid", "mc_eid", "ocid", "cmpid"}
SY_PERIOD_MINUTES = {"hourly": 60, "daily": 1440, "weekly": 10080, "monthly": 43200, "yearly": 525600}
_BLOCK_TAGS = {"p", "br", "div", "li", "ul", "ol", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6",
               "blockquote", "pre", "table", "section", "article", "hr", "figure", "figcaption"}
_SKIP_TAGS = {"script", "style", "head", "title", "noscript", "template"}
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class ParsedItem:
    guid_key: str  # dedupe key within a feed: guid, else clean link, else hash(title, date)
    story_key: str  # dedupe key across feeds
    link: str | None
    title: str
    summary: str
    published_at: datetime | None

    @property
    def text(self) -> str:
        """What the model analyses: the title plus the summary, as plain text."""
        if not self.summary or self.summary.casefold() == self.title.casefold():
            return self.title
        if not self.title:
            return self.summary
        return f"{self.title}\n{self.summary}"


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    version: str
    items: list[ParsedItem]  # usable and unique within this document, in feed order
    entries: int  # what feedparser returned
    skipped_empty: int  # entries with neither title nor summary
    duplicates: int  # entries repeating an earlier key of the same document
    warning: str | None  # feedparser's bozo reason when it still returned entries
    pace_minutes: int  # the feed's own minimum interval (<ttl>, sy:updatePeriod/updateFrequency)


# --- text -------------------------------------------------------------------------------------
class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(value: str) -> str:
    """Strip tags, decode entities (named and numeric), collapse whitespace."""
    if not value:
        return ""
    extractor = _TextExtractor()
    extractor.feed(value)
    extractor.close()
    return squash("".join(extractor.parts))


def squash(value: str) -> str:
    return _SPACES.sub(" ", value.replace("\x00", "")).strip()


def truncate(value: str, limit: int) -> str:
    if len(value) <= limit:
        return value
    cut = value[:limit].rsplit(" ", 1)[0] or value[:limit]
    return cut.rstrip() + "…"


def _detail_text(entry: Any, key: str) -> str:
    value = entry.get(key) or ""
    detail = entry.get(f"{key}_detail") or {}
    if str(detail.get("type", "text/html")) == "text/plain":
        return squash(str(value))
    return html_to_text(str(value))


# --- keys ------------------------------------------------------------------------------------
def clean_link(url: str) -> str:
    """The link without tracking parameters (utm_*...), fragment or default port; host lower-cased."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_") and k.lower() not in TRACKING_PARAMS
    ]
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query), ""))


def _is_url(value: str) -> bool:
    return value.lower().startswith(("http://", "https://"))


def _bounded(prefix: str, value: str) -> str:
    if len(value) <= MAX_KEY_CHARS:
        return f"{prefix}:{value}"
    return f"{prefix}#{hashlib.sha256(value.encode()).hexdigest()}"


def _sha(value: str) -> str:
    return hashlib.sha1(value.encode("utf-8"), usedforsecurity=False).hexdigest()


def item_keys(*, guid: str | None, link: str | None, title: str, date: str | None) -> tuple[str, str]:
    """(guid_key, story_key): the normalised guid, else the clean link, else a hash of title and date."""
    clean = clean_link(link) if link and _is_url(link) else None
    guid = squash(guid or "")
    if guid:
        key = _bounded("guid", clean_link(guid) if _is_url(guid) else guid)
    elif clean:
        key = _bounded("link", clean)
    else:
        key = "hash:" + hashlib.sha256(f"{title.casefold()}|{date or ''}".encode()).hexdigest()
    # A story shared by several feeds is recognised by its article URL (not a bare home page).
    story_source = f"link:{clean}" if clean and urlsplit(clean).path not in {"", "/"} else key
    return key, _sha(story_source)


def _published(entry: Any) -> tuple[datetime | None, str | None]:
    for key in ("published", "updated", "created"):
        parsed = entry.get(f"{key}_parsed")
        if parsed:
            try:
                return datetime.fromtimestamp(calendar.timegm(parsed), UTC), entry.get(key)
            except (OverflowError, ValueError, OSError):
                return None, entry.get(key)
        if entry.get(key):
            return None, str(entry.get(key))
    return None, None


def parse_entry(entry: Any, base_url: str | None = None) -> ParsedItem | None:
    """One feedparser entry as a ParsedItem; None when it has neither title nor summary.
    A relative link is resolved against ``base_url`` (the feed's URL)."""
    title = truncate(_detail_text(entry, "title"), MAX_TITLE_CHARS)
    summary = truncate(_detail_text(entry, "summary"), MAX_SUMMARY_CHARS)
    if not title and not summary:
        return None
    link = str(entry.get("link") or "").strip() or None
    if link and not _is_url(link):
        # feedparser copies a permalink guid into ``link``; a non-URL guid is no link at all
        link = None if entry.get("guidislink") or not base_url else urljoin(base_url, link)
    published_at, raw_date = _published(entry)
    guid_key, story_key = item_keys(guid=entry.get("id"), link=link, title=title, date=raw_date)
    return ParsedItem(
        guid_key=guid_key, story_key=story_key, link=clean_link(link)[:2048] if link else None, title=title,
        summary=summary, published_at=published_at,
    )


# --- the feed ----------------------------------------------------------------------------------
def pace_minutes(feed: Any) -> int:
    """The minimum interval the feed asks for (``<ttl>``, ``sy:updatePeriod``/``updateFrequency``)."""
    minutes = 0
    ttl = str(feed.get("ttl") or "").strip()
    if ttl.isdigit():
        minutes = int(ttl)
    period = str(feed.get("sy_updateperiod") or "").strip().lower()
    if period in SY_PERIOD_MINUTES:
        freq_text = str(feed.get("sy_updatefrequency") or "1").strip()
        freq = int(freq_text) if freq_text.isdigit() and int(freq_text) > 0 else 1
        minutes = max(minutes, SY_PERIOD_MINUTES[period] // freq)
    return min(minutes, MAX_PACE_MINUTES)


def feedparser_parse(body: bytes, *, content_type: str | None = None) -> Any:
    """feedparser over a byte stream (never a URL string, so it can never fetch anything).

    Only the HTTP Content-Type is passed on (it may declare the charset). No base URI: guids
    stay as published, whatever URL the feed was fetched from; links are resolved by us."""
    headers = {"content-type": content_type} if content_type else None
    # Beacon never renders feed HTML (it is reduced to plain text), so feedparser's sanitizer and
    # URI rewriting are skipped; entry counts and fields are unaffected.
    return feedparser.parse(io.BytesIO(body), response_headers=headers, sanitize_html=False,
                            resolve_relative_uris=False)


def parse_feed(body: bytes, *, url: str | None = None, content_type: str | None = None) -> ParsedFeed:
    """Parse feed bytes. Ill-formed but usable → items plus a warning; nothing usable → FeedError."""
    result = feedparser_parse(body, content_type=content_type)
    entries = list(result.get("entries") or [])
    bozo_reason = _bozo_reason(result)
    version = str(result.get("version") or "")
    if not entries and bozo_reason:
        raise FeedError(f"not a usable feed: {bozo_reason}")
    if not entries and not version:
        raise FeedError("not an RSS/Atom feed (no feed elements found)")
    items, skipped, dups = _unique_items(entries, url)
    feed = result.get("feed") or {}
    title = truncate(_detail_text(feed, "title"), 500) or None
    return ParsedFeed(
        title=title, version=version, items=items, entries=len(entries), skipped_empty=skipped, duplicates=dups,
        warning=f"ill-formed feed, entries kept: {bozo_reason}" if bozo_reason else None,
        pace_minutes=pace_minutes(feed),
    )


def _bozo_reason(result: Any) -> str | None:
    if not result.get("bozo"):
        return None
    exc = result.get("bozo_exception")
    text = str(exc) if exc is not None else "ill-formed"
    return f"{type(exc).__name__}: {text}" if exc is not None else text


def _unique_items(entries: list[Any], base_url: str | None) -> tuple[list[ParsedItem], int, int]:
    items: list[ParsedItem] = []
    seen: set[str] = set()
    skipped = dups = 0
    for entry in entries:
        item = parse_entry(entry, base_url)
        if item is None:
            skipped += 1
        elif item.guid_key in seen:
            dups += 1
        else:
            seen.add(item.guid_key)
            items.append(item)
    return items, skipped, dups
