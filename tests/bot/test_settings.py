"""Settings: parsing, validation with one clear message, masking of secrets."""

from __future__ import annotations

from typing import Any

import pytest

from bot.errors import ConfigError
from bot.settings import load_settings


def test_defaults_are_embedded(make_settings: Any) -> None:
    s = make_settings()
    assert s.mode == "console"
    assert s.db_url.startswith("sqlite:///") and s.db_url.endswith("beacon.db")
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.escalation_threshold == 0.85 and s.feed_alert_threshold == 0.80
    assert s.redact_pii is True


def test_lists_and_modes(make_settings: Any) -> None:
    s = make_settings(BEACON_MONITOR_CHANNELS="C1, C2,,", SLACK_SIGNING_SECRET="abc", SLACK_BOT_TOKEN="xoxb-1-2")
    assert s.monitor_channels == ["C1", "C2"]
    assert s.mode == "http"
    s.require_slack()
    assert make_settings(SLACK_APP_TOKEN="xapp-1-2", SLACK_BOT_TOKEN="xoxb-1").mode == "socket"
    assert make_settings(SLACK_API_URL="http://127.0.0.1:9/api").slack_api_url == "http://127.0.0.1:9/api/"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL"),
        ({"BEACON_PORT": "eighty"}, "BEACON_PORT"),
        ({"BEACON_ESCALATION_THRESHOLD": "1.5"}, "BEACON_ESCALATION_THRESHOLD"),
        ({"BEACON_NOT_A_SETTING": "1"}, "BEACON_NOT_A_SETTING"),
        ({"SLACK_API_URL": "ftp://x"}, "SLACK_API_URL"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env, env_file=None)
    message = str(info.value)
    assert message.startswith(variable + ":")
    assert "\n" not in message


def test_missing_secret_for_the_mode(make_settings: Any) -> None:
    s = make_settings(SLACK_SIGNING_SECRET="abc")
    with pytest.raises(ConfigError, match=r"^SLACK_BOT_TOKEN: required"):
        s.require_slack()


def test_public_dict_masks_secrets(make_settings: Any) -> None:
    s = make_settings(
        SLACK_BOT_TOKEN="xoxb-123-secret-value", SLACK_SIGNING_SECRET="sign-me-please",
        DATABASE_URL="postgresql+psycopg://beacon:hunter2@db:5432/beacon",
    )
    shown = repr(s.public_dict())
    for secret in ("xoxb-123-secret-value", "sign-me-please", "hunter2"):
        assert secret not in shown
    assert s.public_dict()["SLACK_BOT_TOKEN"] == "********"


def test_env_file_is_read(tmp_path: Any) -> None:
    env = tmp_path / ".env"
    env.write_text("BEACON_ALERT_CHANNEL=C0ALERTS\nBEACON_ADMINS=U1,U2\n")
    s = load_settings({}, env_file=env)
    assert s.alert_channel == "C0ALERTS" and s.admins == ["U1", "U2"]
