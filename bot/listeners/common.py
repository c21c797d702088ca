"""What every listener shares: the lazy-listener boundary, Slack text cleanup, analyse-and-reply."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, BoltContext
from sqlalchemy.orm import Session

from bot import metrics
from bot.deps import Deps
from bot.errors import BeaconError, SlackError
from bot.log import get_logger
from bot.services import Stored, TextItem, analyze_and_store
from bot.slack_client import SlackGateway
from bot.storage import crud
from bot.storage.db import session_scope
from bot.storage.tables import Document
from bot.views import Shown, analysis_blocks, analysis_fallback

log = get_logger("beacon.listeners")
LazyBody = Callable[[dict[str, Any], BoltContext], None]
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]*))?>")
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|([^>]*))?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!([a-z]+)(?:\^[^|>]*)?(?:\|([^>]*))?>")


@dataclass
class Runtime:
    """What the listeners get: the composition root's Deps and the Slack gateway."""

    deps: Deps
    slack: SlackGateway

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.deps.sessions) as session:
            yield session


def ack_now(ack: Ack) -> None:
    """The ack half of a lazy listener: acknowledge within milliseconds."""
    ack()


def guarded(kind: str, func: LazyBody) -> Callable[[dict[str, Any], BoltContext], None]:
    """A lazy listener that never lets an error escape silently: logged with context, counted."""

    def run(body: dict[str, Any], context: BoltContext) -> None:
        event = body.get("event") or {}
        bound = log.bind(kind=kind, event_id=body.get("event_id"), channel=event.get("channel"))
        try:
            func(body, context)
        except SlackError as exc:  # already logged by the gateway with the call's context
            bound.warning("listener.slack_failed", error=str(exc))
            metrics.EVENTS_PROCESSED.labels(type=kind, outcome="slack_error").inc()
        except BeaconError as exc:
            bound.warning("listener.failed", error=str(exc), error_type=type(exc).__name__)
            metrics.EVENTS_PROCESSED.labels(type=kind, outcome="error").inc()
        except Exception:  # the boundary: log with traceback, keep serving
            bound.error("listener.crashed", exc_info=True)
            metrics.EVENTS_PROCESSED.labels(type=kind, outcome="crash").inc()
        else:
            metrics.EVENTS_PROCESSED.labels(type=kind, outcome="ok").inc()

    run.__name__ = run.__qualname__ = f"beacon_lazy_{kind}"
    return run


def plain_text(text: str, bot_user_id: str | None = None) -> str:
    """Slack message markup → the text people read: mentions, links and entities unwrapped.

    The bot's own mention is removed; other mentions keep their label or become ``@U123``.
    """

    def mention(match: re.Match[str]) -> str:
        if bot_user_id and match.group(1) == bot_user_id:
            return ""
        return "@" + (match.group(2) or match.group(1))

    text = _MENTION.sub(mention, text)
    text = _CHANNEL.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1).removeprefix("mailto:"), text)
    text = _SPECIAL.sub(lambda m: "@" + (m.group(2) or m.group(1)), text)
    return html.unescape(text).strip()


def shown_from(stored: Stored) -> Shown:
    return Shown.from_dict(stored.prediction_id, stored.analysis.to_dict())


def analyze_message(rt: Runtime, *, text: str, channel: str | None, ts: str | None, user: str | None,
                    thread_ts: str | None = None, source: str = "slack") -> Shown:
    """Analyse one message and store its document and prediction."""
    item = TextItem(text=text, source=source, channel=channel, external_id=ts, user_id=user, thread_ts=thread_ts)
    with rt.session() as session:
        stored = analyze_and_store([item], models=rt.deps.models, session=session)[0]
    return shown_from(stored)


def post_analysis(rt: Runtime, shown: Shown, *, channel: str, thread_ts: str | None, show_text: bool = False) -> str:
    """Post the analysis reply and store ``(channel, ts) → prediction`` at post time."""
    ts = rt.slack.post_message(channel=channel, text=analysis_fallback(shown),
                               blocks=analysis_blocks(shown, show_text=show_text), thread_ts=thread_ts)
    with rt.session() as session:
        crud.record_bot_post(session=session, channel=channel, ts=ts, kind="analysis",
                             prediction_id=shown.prediction_id)
    return ts


def load_shown(rt: Runtime, prediction_id: int) -> tuple[Shown, Document]:
    """A stored prediction and its document, as a reply shows them."""
    from bot.feedback import load_for_correction

    with rt.session() as session:
        prediction, document = load_for_correction(session=session, prediction_id=prediction_id)
        shown = Shown(
            prediction_id=prediction.id, text=document.text or "", sentiment=prediction.sentiment_label,
            sentiment_score=prediction.sentiment_score, model_version=prediction.model_version,
            entities=[dict(e) for e in prediction.entities], probs=dict(prediction.sentiment_probs),
        )
        session.expunge(document)
    return shown, document


def reply_thread(document: Document, channel: str) -> str | None:
    """The thread the bot's analysis of ``document`` lives in (None outside its channel)."""
    if document.channel != channel:
        return None
    return document.thread_ts or document.external_id


def is_human_message(event: dict[str, Any]) -> bool:
    return not (event.get("bot_id") or event.get("subtype") or event.get("bot_profile"))
