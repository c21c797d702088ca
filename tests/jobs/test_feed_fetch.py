"""Fetching over real HTTP: User-Agent, gzip, conditional GET, size cap, timeouts, redirects, Retry-After."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from jobs.feed_fetch import FetchFailed, FetchLimits, fetch, make_client, parse_retry_after
from tests.jobs.feedserver import FeedServer, Route, fixture

LIMITS = FetchLimits(connect_timeout=2.0, read_timeout=0.5, max_bytes=100_000)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with make_client(LIMITS) as c:
        yield c


def test_user_agent_accept_and_gzip(feed_server: FeedServer, client: httpx.Client) -> None:
    body = fixture("rss20.xml")
    url = feed_server.route("/gz.xml", Route(body=body, gzip=True))
    result = fetch(client, url, limits=LIMITS)
    assert result.status == 200 and result.body == body
    seen = feed_server.seen("/gz.xml")[0].headers
    assert seen["user-agent"].startswith("Beacon/") and "httpx" in seen["user-agent"]
    assert "gzip" in seen["accept-encoding"] and "deflate" in seen["accept-encoding"]
    assert "application/rss+xml" in seen["accept"]


def test_conditional_get_sends_validators_and_gets_304(feed_server: FeedServer, client: httpx.Client) -> None:
    url = feed_server.route("/c.xml", Route(body=fixture("rss20.xml"), etag='"v1"',
                                            last_modified="Mon, 06 Sep 2021 16:45:00 GMT"))
    first = fetch(client, url, limits=LIMITS)
    assert first.etag == '"v1"' and first.last_modified == "Mon, 06 Sep 2021 16:45:00 GMT"
    second = fetch(client, url, limits=LIMITS, etag=first.etag, last_modified=first.last_modified)
    assert second.not_modified and second.body == b""
    sent = feed_server.seen("/c.xml")[1].headers
    assert sent["if-none-match"] == '"v1"' and sent["if-modified-since"] == "Mon, 06 Sep 2021 16:45:00 GMT"


def test_size_cap_by_content_length_and_while_streaming(feed_server: FeedServer, client: httpx.Client) -> None:
    declared = feed_server.route("/big.xml", Route(body=b"x" * 150_000))
    with pytest.raises(FetchFailed, match="cap"):
        fetch(client, declared, limits=LIMITS)
    streamed = feed_server.route("/stream.xml", Route(stream_bytes=50_000_000))
    with pytest.raises(FetchFailed, match="cap"):
        fetch(client, streamed, limits=LIMITS)


def test_gzip_bomb_is_capped_after_decompression(feed_server: FeedServer, client: httpx.Client) -> None:
    url = feed_server.route("/bomb.xml", Route(body=b"\x00" * 5_000_000, gzip=True))  # ~5 KB on the wire
    with pytest.raises(FetchFailed, match="cap"):
        fetch(client, url, limits=LIMITS)


def test_slow_answer_times_out(feed_server: FeedServer, client: httpx.Client) -> None:
    url = feed_server.route("/slow.xml", Route(body=fixture("rss20.xml"), delay_s=2.0))
    with pytest.raises(FetchFailed, match="read timeout"):
        fetch(client, url, limits=LIMITS)


def test_redirects_followed_up_to_five_and_loops_fail(feed_server: FeedServer, client: httpx.Client) -> None:
    final = feed_server.route("/final.xml", Route(body=fixture("atom10.xml")))
    for hop in range(5):
        feed_server.route(f"/hop{hop}", Route(redirect_to=feed_server.url(f"/hop{hop + 1}") if hop < 4 else final))
    result = fetch(client, feed_server.url("/hop0"), limits=LIMITS)
    assert result.url == final and result.status == 200
    loop = feed_server.route("/loop", Route(redirect_to="/loop"))
    with pytest.raises(FetchFailed, match="redirects"):
        fetch(client, loop, limits=LIMITS)


def test_http_errors_carry_status_and_retry_after(feed_server: FeedServer, client: httpx.Client) -> None:
    url = feed_server.route("/busy.xml", Route(fail_times=1, fail_status=503, retry_after="120"))
    with pytest.raises(FetchFailed) as info:
        fetch(client, url, limits=LIMITS)
    assert info.value.status == 503 and info.value.retry_after_s == 120.0
    with pytest.raises(FetchFailed, match="404"):
        fetch(client, feed_server.url("/missing.xml"), limits=LIMITS)


def test_connection_refused_is_a_fetch_error(client: httpx.Client) -> None:
    with pytest.raises(FetchFailed):
        fetch(client, "http://127.0.0.1:9/feed.xml", limits=LIMITS)


def test_parse_retry_after() -> None:
    now = datetime(2021, 9, 6, 12, 0, tzinfo=UTC)
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after("Mon, 06 Sep 2021 12:05:00 GMT", now=now) == 300.0
    assert parse_retry_after("Mon, 06 Sep 2021 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("9999999") == 24 * 3600.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
