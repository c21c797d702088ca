"""Beacon's exception hierarchy (rooted in :mod:`models.errors`).

Raised anywhere; translated only at the boundaries: the CLI (one line, exit code), the Slack
``@app.error`` handler and the scheduler's job wrapper (logged with the traceback).
"""

from models.errors import BeaconError, DataError, ModelError, TrainingError


class ConfigError(BeaconError):
    """Bad or missing configuration. The message names the variable and what is wrong."""


class StorageError(BeaconError):
    """The database cannot be reached, migrated or written."""


class SlackError(BeaconError):
    """A Slack Web API call failed after retries."""


class FeedError(BeaconError):
    """A feed could not be fetched or parsed. Affects that feed only."""


class PermissionDenied(BeaconError):
    """A user asked for an admin action without being an admin."""


class NotFound(BeaconError):
    """A named object (feed, model version, watch...) does not exist."""


__all__ = [
    "BeaconError",
    "ConfigError",
    "DataError",
    "FeedError",
    "ModelError",
    "NotFound",
    "PermissionDenied",
    "SlackError",
    "StorageError",
    "TrainingError",
]


class InputError(BeaconError):
    """User input that cannot be processed (too long, empty, malformed URL...)."""


__all__ += ["InputError"]
