"""structlog, configured once: JSON lines in production, readable lines on a terminal.

A redaction processor always masks Slack tokens and the signing secret, and, while
``BEACON_REDACT_PII`` is on, emails, phone numbers and card numbers in every string value.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import structlog

SLACK_TOKEN = re.compile(r"\bx(?:ox[abpsre]|app)-[A-Za-z0-9-]{6,}")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Card numbers as people write them: 13-19 digits in one run, groups of four, or Amex's 4-6-5.
CARD = re.compile(
    r"(?<![\d.-])(?:\d{13,19}|\d{4}(?:[ -]\d{4}){2}[ -]\d{1,7}|\d{4}[ -]\d{6}[ -]\d{5})(?![\d-]|\.\d)"
)
PHONE = re.compile(
    r"(?<![\w.+-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{2,4}(?:[ .-]\d{2,4}){0,3}(?![\w-]|\.\d)"
)
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
SECRET_KEYS = {"token", "secret", "password", "signing_secret", "authorization", "bot_token", "app_token"}


def _luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


def redact_text(value: str, *, secrets: Iterable[str] = (), pii: bool = True) -> str:
    """Mask tokens and known secret values; with ``pii``, emails, cards and phone numbers."""
    for secret in secrets:
        if secret and len(secret) >= 6:
            value = value.replace(secret, "[REDACTED]")
    value = SLACK_TOKEN.sub("[SLACK-TOKEN]", value)
    if pii:
        value = EMAIL.sub("[EMAIL]", value)
        value = CARD.sub(lambda m: "[CARD]" if _luhn_ok(m.group()) else m.group(), value)
        value = PHONE.sub(_phone, value)
    return value


def _phone(match: re.Match[str]) -> str:
    digits = sum(c.isdigit() for c in match.group())
    if DATE.fullmatch(match.group()) or not 7 <= digits <= 15:
        return match.group()
    return "[PHONE]"


class Redactor:
    """A structlog processor that redacts every string in the event dict, recursively."""

    def __init__(self, *, secrets: Iterable[str] = (), pii: bool = True) -> None:
        self.secrets = [s for s in secrets if s]
        self.pii = pii

    def __call__(self, _logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
        for key in list(event_dict):
            if key.lower() in SECRET_KEYS and event_dict[key] is not None:
                event_dict[key] = "[REDACTED]"
            else:
                event_dict[key] = self._clean(event_dict[key])
        return event_dict

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return redact_text(value, secrets=self.secrets, pii=self.pii)
        if isinstance(value, dict):
            return {k: "[REDACTED]" if str(k).lower() in SECRET_KEYS else self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(v) for v in value]
        return value


def configure_logging(
    *, level: str = "INFO", fmt: str = "auto", secrets: Iterable[str] = (), pii: bool = True,
    stream: Any = None,
) -> None:
    """Configure structlog and the stdlib root logger. Call once, at the entry point."""
    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    redactor = Redactor(secrets=secrets, pii=pii)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info if use_json else structlog.dev.set_exc_info,
            redactor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, redactor, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.WARNING if level == "DEBUG" else level)
    for noisy in ("alembic", "httpx", "apscheduler", "slack_bolt", "slack_sdk", "urllib3", "transformers"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelNamesMapping()[level], logging.WARNING))


def get_logger(name: str | None = None, **context: Any) -> Any:
    return structlog.get_logger(name).bind(**context) if context else structlog.get_logger(name)
