"""Polling feeds: fetch (httpx) → parse (feedparser) → dedupe → analyse in batches → store.

One poll round fetches its feeds in parallel, parses and dedupes each, then analyses the new
items of all its feeds together, in length-sorted batches (many small feeds cost a few model
calls, not one each), and finally records each feed's state. One feed's failure (network,
size cap, timeout, garbage bytes, even a bug) is recorded on that feed only; the others keep
going. Each feed keeps its own pace (interval, ``<ttl>``/``sy:*``, ``Retry-After``, backoff on
errors that resets on success), and a feed failing for 24 hours gets one notice in its channel.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from bot import metrics
from bot.deps import Deps
from bot.errors import FeedError
from bot.poster import Poster
from bot.services import TextItem, analyze_and_store
from bot.storage import feeds as store
from bot.storage.db import session_scope
from bot.storage.tables import FeedItem, utcnow
from jobs.feed_fetch import FetchFailed, FetchLimits, FetchResult, fetch, make_client
from jobs.feed_parse import ParsedFeed, ParsedItem, parse_feed
from jobs.feed_state import FeedSnapshot, next_delay, notify_failure, record_failure, record_success

__all__ = ["FeedPoller", "PollOutcome", "PollReport", "next_delay"]
Progress = Callable[[int, int], None]


@dataclass
class PollOutcome:
    feed_id: int
    url: str
    status: str = "ok"  # ok | warning | not_modified | error
    entries: int = 0  # what feedparser returned
    skipped: int = 0  # entries without title or summary, or repeating a key of the same document
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    shared: int = 0  # new here, but another feed already analysed the same story
    analysed: int = 0
    error: str | None = None
    next_poll_at: datetime | None = None


@dataclass
class PollReport:
    outcomes: list[PollOutcome] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {"feeds": len(self.outcomes), "new": 0, "updated": 0, "analysed": 0, "shared": 0}
        for o in self.outcomes:
            out[o.status] = out.get(o.status, 0) + 1
            out["new"] += o.new
            out["updated"] += o.updated
            out["analysed"] += o.analysed
            out["shared"] += o.shared
        return out


@dataclass
class _Work:
    """One feed of a poll round, between its fetch and its final state."""

    snap: FeedSnapshot
    result: FetchResult
    parsed: ParsedFeed
    outcome: PollOutcome
    error: str | None = None


@dataclass(frozen=True)
class _Job:
    """One item to analyse (new, or re-published with an edited title or summary)."""

    work: _Work
    item: ParsedItem
    is_update: bool


class FeedPoller:
    """Polls feeds for one process. Fetching runs in threads; parsing, analysis and storage in
    the caller's thread."""

    def __init__(
        self, deps: Deps, poster: Poster | None, *, client: httpx.Client | None = None, batch_size: int = 256,
        fetch_workers: int = 4,
    ) -> None:
        s = deps.settings
        self.deps = deps
        self.poster = poster
        self.log = deps.log
        self.limits = FetchLimits(
            connect_timeout=s.feed_connect_timeout, read_timeout=s.feed_read_timeout, max_bytes=s.feed_max_bytes
        )
        self._own_client = client is None
        self.client = client or make_client(self.limits)
        self.batch_size = max(1, batch_size)  # texts per analyse-and-store call (the Analyzer batches inside)
        self.fetch_workers = max(1, fetch_workers)

    def close(self) -> None:
        if self._own_client:
            self.client.close()

    # --- entry points ------------------------------------------------------------------------
    def poll_due(self, *, now: datetime | None = None, feed_id: int | None = None, force: bool = False) -> PollReport:
        """Poll every due feed (or all / one feed with ``force`` / ``feed_id``)."""
        now = now or utcnow()
        with self.deps.sessions() as session:
            if force:
                feeds = [store.get_feed(session=session, feed_id=feed_id)] if feed_id else store.list_feeds(
                    session=session)
            else:
                feeds = store.due_feeds(session=session, now=now, feed_id=feed_id)
            snapshots = [FeedSnapshot.of(f) for f in feeds]
        return PollReport(self._round(snapshots, now=now))

    def poll_feed(self, feed_id: int, *, now: datetime | None = None, full: bool = False,
                  progress: Progress | None = None, reanalyse: bool = False) -> PollOutcome:
        """Poll one feed now. ``full`` skips the conditional GET (backfill); ``reanalyse`` analyses
        every listed item again with the current model."""
        with self.deps.sessions() as session:
            snap = FeedSnapshot.of(store.get_feed(session=session, feed_id=feed_id))
        return self._round([snap], now=now or utcnow(), full=full, progress=progress, reanalyse=reanalyse)[0]

    def backfill(self, feed_id: int, *, progress: Progress | None = None, reanalyse: bool = False) -> PollOutcome:
        """Analyse everything the feed currently lists (not yet analysed, or all with ``reanalyse``)."""
        return self.poll_feed(feed_id, full=True, progress=progress, reanalyse=reanalyse)

    # --- a round -----------------------------------------------------------------------------------
    def _round(self, snaps: list[FeedSnapshot], *, now: datetime, full: bool = False,
               progress: Progress | None = None, reanalyse: bool = False) -> list[PollOutcome]:
        outcomes: list[PollOutcome] = []
        waiting: list[_Work] = []
        queue: list[_Job] = []
        if snaps:
            workers = min(self.fetch_workers, len(snaps))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="feed-fetch") as pool:
                futures = {pool.submit(self._fetch, snap, full): snap for snap in snaps}
                for future in as_completed(futures):
                    outcome = PollOutcome(feed_id=futures[future].id, url=futures[future].url)
                    outcomes.append(outcome)
                    work = self._prepare(futures[future], future.result(), outcome, queue, now=now,
                                         reanalyse=reanalyse)
                    if work is not None:
                        waiting.append(work)
                    if len(queue) >= self.batch_size:
                        self._flush(queue, waiting, now=now, progress=progress)
        self._flush(queue, waiting, now=now, progress=progress)
        for outcome in outcomes:
            metrics.FEED_POLLS.labels(outcome.status).inc()
        return outcomes

    def _fetch(self, snap: FeedSnapshot, full: bool) -> FetchResult | FetchFailed:
        try:
            return fetch(self.client, snap.url, limits=self.limits, etag=None if full else snap.etag,
                         last_modified=None if full else snap.last_modified)
        except FetchFailed as exc:
            return exc

    def _prepare(self, snap: FeedSnapshot, result: FetchResult | FetchFailed, outcome: PollOutcome,
                 queue: list[_Job], *, now: datetime, reanalyse: bool) -> _Work | None:
        """Parse and dedupe one fetched feed; its items to analyse join ``queue``. None when the
        feed is already done (304 or an error)."""
        try:
            if isinstance(result, FetchFailed):
                raise result
            if result.not_modified:
                outcome.status = "not_modified"
                self._succeed(snap, result, outcome, None, now=now)
                return None
            parsed = parse_feed(result.body, url=result.url, content_type=result.headers.get("content-type"))
            outcome.entries, outcome.skipped = parsed.entries, parsed.skipped_empty + parsed.duplicates
            outcome.status, outcome.error = ("warning", parsed.warning) if parsed.warning else ("ok", None)
            work = _Work(snap, result, parsed, outcome)
            queue.extend(self._plan(work, reanalyse))
            return work
        except FeedError as exc:
            retry_after = exc.retry_after_s if isinstance(exc, FetchFailed) else None
            self._fail(snap, outcome, str(exc), retry_after, now=now)
        except Exception as exc:  # one feed's bug must not stop the others: logged with traceback
            self.log.error("feed.poll_crashed", feed_id=snap.id, url=snap.url, exc_info=True)
            self._fail(snap, outcome, f"internal error: {type(exc).__name__}: {exc}", None, now=now)
        return None

    def _plan(self, work: _Work, reanalyse: bool) -> list[_Job]:
        """Known unchanged items are skipped; a story another feed already analysed is linked to
        that analysis; the rest is queued for analysis."""
        jobs: list[_Job] = []
        snap, outcome, items = work.snap, work.outcome, work.parsed.items
        with session_scope(self.deps.sessions) as session:
            known = store.find_items(session=session, feed_id=snap.id, guid_keys=[i.guid_key for i in items])
            fresh = [item for item in items if item.guid_key not in known]
            shared = {} if reanalyse else store.analysed_stories(
                session=session, story_keys=[i.story_key for i in fresh], exclude_feed_id=snap.id)
            linked = []
            for item in items:
                row = known.get(item.guid_key)
                if row is None and item.story_key in shared:
                    linked.append(_row(snap, item, shared[item.story_key]))
                elif row is None or reanalyse or row.document_id is None or (
                        (row.title, row.summary) != (item.title, item.summary)):
                    jobs.append(_Job(work, item, row is not None))
                else:
                    outcome.unchanged += 1
            added = store.add_items(session=session, items=linked)
            outcome.new += added
            outcome.shared += added
        return jobs

    # --- analysis ------------------------------------------------------------------------------------
    def _flush(self, queue: list[_Job], waiting: list[_Work], *, now: datetime, progress: Progress | None) -> None:
        """Analyse the queued items (each distinct story once, similar lengths together), then
        record the state of every waiting feed."""
        groups: dict[tuple[str, str], list[_Job]] = {}
        for job in queue:
            groups.setdefault((job.item.story_key, job.item.text), []).append(job)
        keys = sorted(groups, key=lambda key: len(key[1]))
        if progress and keys:
            progress(0, len(keys))
        for start in range(0, len(keys), self.batch_size):
            chunk = keys[start : start + self.batch_size]
            try:
                self._analyse(chunk, groups, now=now)
            except Exception as exc:  # the model or the database failed: these feeds fail, the rest go on
                feeds = sorted({job.work.snap.id for key in chunk for job in groups[key]})
                self.log.error("feed.analysis_failed", feeds=feeds, items=len(chunk), exc_info=True)
                for key in chunk:
                    for job in groups[key]:
                        job.work.error = job.work.error or f"analysis failed: {type(exc).__name__}: {exc}"
            if progress:
                progress(min(start + len(chunk), len(keys)), len(keys))
        queue.clear()
        for work in waiting:
            try:
                if work.error:
                    self._fail(work.snap, work.outcome, work.error, None, now=now)
                else:
                    self._succeed(work.snap, work.result, work.outcome, work.parsed, now=now)
            except Exception:  # recording one feed's state failed: the others are still recorded
                self.log.error("feed.state_failed", feed_id=work.snap.id, url=work.snap.url, exc_info=True)
        waiting.clear()

    def _analyse(self, chunk: list[tuple[str, str]], groups: dict[tuple[str, str], list[_Job]],
                 *, now: datetime) -> None:
        texts = [
            TextItem(text=text, source="feed", channel=groups[(key, text)][0].work.snap.channel,
                     external_id=f"feed:{key}")
            for key, text in chunk
        ]
        with session_scope(self.deps.sessions) as session:
            stored = analyze_and_store(texts, models=self.deps.models, session=session)
            rows: list[FeedItem] = []
            for key, result in zip(chunk, stored, strict=True):
                for n, job in enumerate(groups[key]):
                    outcome = job.work.outcome
                    if n == 0:
                        outcome.analysed += 1
                    row = store.find_item(session=session, feed_id=job.work.snap.id,
                                          guid_key=job.item.guid_key) if job.is_update else None
                    if row is not None:
                        _apply_update(row, job.item, result.document_id, now)
                        outcome.updated += 1
                    else:
                        rows.append(_row(job.work.snap, job.item, result.document_id))
                        outcome.new += 1
                        if n > 0:
                            outcome.shared += 1
            store.add_items(session=session, items=rows)

    # --- poll state ------------------------------------------------------------------------------------
    def _succeed(self, snap: FeedSnapshot, result: FetchResult, outcome: PollOutcome, parsed: ParsedFeed | None,
                 *, now: datetime) -> None:
        outcome.next_poll_at = record_success(
            self.deps, snap, result, status=outcome.status, warning=outcome.error,
            title=parsed.title if parsed else None, pace_minutes=parsed.pace_minutes if parsed else None, now=now,
        )
        self.log.info("feed.polled", feed_id=snap.id, url=snap.url, status=outcome.status, entries=outcome.entries,
                      new=outcome.new, updated=outcome.updated, shared=outcome.shared, analysed=outcome.analysed,
                      warning=outcome.error, next_poll_at=_iso(outcome.next_poll_at))

    def _fail(self, snap: FeedSnapshot, outcome: PollOutcome, message: str, retry_after_s: float | None,
              *, now: datetime) -> None:
        outcome.status, outcome.error = "error", message
        failure = record_failure(self.deps, snap, message, retry_after_s=retry_after_s, now=now)
        if failure is None:
            return
        outcome.next_poll_at = failure.next_poll_at
        self.log.warning("feed.poll_failed", feed_id=snap.id, url=snap.url, error=message, failures=failure.failures,
                         next_poll_at=_iso(failure.next_poll_at))
        if failure.notify and self.poster is not None:
            notify_failure(self.deps, self.poster, snap, failure, message, now=now)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _row(snap: FeedSnapshot, item: ParsedItem, document_id: int | None) -> FeedItem:
    return FeedItem(
        feed_id=snap.id, guid_key=item.guid_key, story_key=item.story_key, link=item.link, title=item.title,
        summary=item.summary, published_at=item.published_at, document_id=document_id,
    )


def _apply_update(row: FeedItem, item: ParsedItem, document_id: int, now: datetime) -> None:
    """A re-published item (edited title or summary): the same row, the new text and analysis."""
    row.title, row.summary, row.link = item.title, item.summary, item.link
    row.published_at = item.published_at or row.published_at
    row.document_id = document_id
    row.updated_at = now
