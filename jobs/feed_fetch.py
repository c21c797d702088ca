"""Fetching feeds over HTTP with httpx: timeouts, a streamed size cap, redirects, conditional GET.

feedparser never fetches anything itself: this module hands it the bytes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version

import httpx

from bot.errors import FeedError

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)
MAX_RETRY_AFTER_S = 24 * 3600.0


def user_agent() -> str:
    try:
        ver = version("beacon")
    except PackageNotFoundError:
        ver = "dev"
    return f"Beacon/{ver} (RSS/Atom news monitor; +https://github.com/beacon-bot/beacon) httpx/{httpx.__version__}"


@dataclass(frozen=True)
class FetchLimits:
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    user_agent: str = field(default_factory=user_agent)

    @property
    def deadline_s(self) -> float:
        """Whole-response budget: stops a server that trickles bytes just under the read timeout."""
        return self.connect_timeout + 4 * self.read_timeout


@dataclass(frozen=True)
class FetchResult:
    status: int  # 200 or 304
    url: str  # the final URL after redirects
    body: bytes
    headers: dict[str, str]  # lower-case names
    etag: str | None
    last_modified: str | None
    retry_after_s: float | None
    elapsed_ms: float

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class FetchFailed(FeedError):
    """The feed could not be fetched. Carries the HTTP status and Retry-After when known."""

    def __init__(self, message: str, *, status: int | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


def make_client(limits: FetchLimits) -> httpx.Client:
    timeout = httpx.Timeout(connect=limits.connect_timeout, read=limits.read_timeout, write=10.0, pool=10.0)
    headers = {"User-Agent": limits.user_agent, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"}
    return httpx.Client(
        timeout=timeout, follow_redirects=True, max_redirects=limits.max_redirects, headers=headers, http2=False
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), capped at a day."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(delta, 0.0), MAX_RETRY_AFTER_S)


def conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def fetch(
    client: httpx.Client, url: str, *, limits: FetchLimits, etag: str | None = None, last_modified: str | None = None
) -> FetchResult:
    """GET ``url``; a 304 comes back as a result, every failure as :class:`FetchFailed`."""
    start = time.perf_counter()
    try:
        with client.stream("GET", url, headers=conditional_headers(etag, last_modified)) as response:
            return _read(response, limits=limits, start=start)
    except httpx.TooManyRedirects:
        raise FetchFailed(f"more than {limits.max_redirects} redirects (redirect loop?)") from None
    except httpx.ConnectTimeout:
        raise FetchFailed(f"connect timeout after {limits.connect_timeout:g} s") from None
    except httpx.ReadTimeout:
        raise FetchFailed(f"read timeout after {limits.read_timeout:g} s") from None
    except httpx.TimeoutException as exc:
        raise FetchFailed(f"timeout: {type(exc).__name__}") from None
    except httpx.DecodingError as exc:
        raise FetchFailed(f"bad content encoding: {exc}") from None
    except httpx.InvalidURL as exc:
        raise FetchFailed(f"invalid URL: {exc}") from None
    except httpx.HTTPError as exc:
        raise FetchFailed(f"{type(exc).__name__}: {exc or 'connection failed'}") from None


def _read(response: httpx.Response, *, limits: FetchLimits, start: float) -> FetchResult:
    headers = {k.lower(): v for k, v in response.headers.items()}
    retry_after = parse_retry_after(headers.get("retry-after"))
    status = response.status_code
    if status == 304:
        body = b""
    elif not 200 <= status < 300:
        raise FetchFailed(_status_message(response), status=status, retry_after_s=retry_after)
    else:
        body = _read_capped(response, limits=limits, start=start)
    return FetchResult(
        status=status, url=str(response.url), body=body, headers=headers, etag=headers.get("etag"),
        last_modified=headers.get("last-modified"), retry_after_s=retry_after,
        elapsed_ms=(time.perf_counter() - start) * 1000,
    )


def _status_message(response: httpx.Response) -> str:
    reason = response.reason_phrase or ""
    return f"HTTP {response.status_code} {reason}".strip()


def _read_capped(response: httpx.Response, *, limits: FetchLimits, start: float) -> bytes:
    cap = limits.max_bytes
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise FetchFailed(f"feed is {int(declared):,} bytes; the cap is {cap:,} bytes")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > cap:
            raise FetchFailed(f"feed is larger than the {cap:,}-byte cap (stopped reading)")
        if time.perf_counter() - start > limits.deadline_s:
            raise FetchFailed(f"download took longer than {limits.deadline_s:g} s")
        chunks.append(chunk)
    return b"".join(chunks)
