"""The root of Beacon's exception hierarchy.

``bot.errors`` extends it; every layer raises a subclass of :class:`BeaconError`, and
only the boundaries (CLI, Slack ``@app.error``, the job wrapper) translate it.
"""


class BeaconError(Exception):
    """Base class of every error Beacon raises on purpose."""


class DataError(BeaconError):
    """Malformed training or evaluation data. The message names the file and line."""


class ModelError(BeaconError):
    """A model artifact is missing, incomplete or cannot be loaded."""


class TrainingError(BeaconError):
    """A training run failed (diverged, no data, out of time before one epoch...)."""
