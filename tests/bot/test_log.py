"""The redaction processor on real-looking tokens and PII, end to end through structlog."""

from __future__ import annotations

import io
import json

import pytest

from bot.log import configure_logging, get_logger, redact_text

BOT_TOKEN = "xoxb-2401234567890-2409876543210-AbCdEfGhIjKlMnOpQrStUvWx"
APP_TOKEN = "xapp-1-A01ABCDEF12-2401234567890-0123456789abcdef0123456789abcdef0123456789abcdef01234567"
USER_TOKEN = "xoxp-2401234567890-2401234567891-2409876543210-0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("token", [BOT_TOKEN, APP_TOKEN, USER_TOKEN])
def test_slack_tokens_are_always_redacted(token: str) -> None:
    assert token not in redact_text(f"auth with {token} failed", pii=False)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("mail jane.doe+billing@acme-corp.co.uk now", "jane.doe+billing@acme-corp.co.uk"),
        ("call me on +1 (415) 555-0199", "555-0199"),
        ("call 020 7946 0958 please", "7946 0958"),
        ("card 4111 1111 1111 1111 was charged twice", "4111 1111 1111 1111"),
        ("card 5555555555554444", "5555555555554444"),
        ("amex 3782 822463 10005 on file", "3782 822463 10005"),
    ],
)
def test_pii_is_redacted(text: str, secret: str) -> None:
    assert secret not in redact_text(text)
    assert secret in redact_text(text, pii=False)


@pytest.mark.parametrize("text", [
    "order 8812 shipped", "ts 1712345678.123456", "on 2024-05-01", "costs $1,234.50",
    "model_version 20261128-183633-d5bd7c",  # 14 digits that happen to pass Luhn: not a card
])
def test_harmless_numbers_survive(text: str) -> None:
    assert redact_text(text) == text


def test_processor_redacts_nested_values_and_secret_keys() -> None:
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="json", secrets=["s1gning-s3cret-value"], pii=True, stream=stream)
    get_logger("t").info(
        "slack.call", token=BOT_TOKEN, text="reach me at bob@example.com",
        nested={"note": f"used {APP_TOKEN}", "list": ["s1gning-s3cret-value"]}, channel="C123",
    )
    line = stream.getvalue().strip().splitlines()[-1]
    record = json.loads(line)
    assert record["event"] == "slack.call" and record["channel"] == "C123"
    for secret in (BOT_TOKEN, APP_TOKEN, "bob@example.com", "s1gning-s3cret-value"):
        assert secret not in line
    assert record["token"] == "[REDACTED]"


def test_pii_redaction_can_be_turned_off() -> None:
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="json", pii=False, stream=stream)
    get_logger("t").info("msg", text=f"bob@example.com {BOT_TOKEN}")
    line = stream.getvalue()
    assert "bob@example.com" in line and BOT_TOKEN not in line
