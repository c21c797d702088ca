"""Prometheus metrics, exposed on ``/metrics``. Cheap module-level collectors; no I/O at import."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, Info, generate_latest

EVENTS_RECEIVED = Counter("beacon_events_received", "Slack events and requests received", ["type"])
EVENTS_ACKED = Counter("beacon_events_acked", "Slack events and requests acknowledged", ["type"])
EVENTS_PROCESSED = Counter("beacon_events_processed", "Slack events processed by lazy listeners", ["type", "outcome"])
ACK_LATENCY = Histogram(
    "beacon_ack_latency_seconds", "Time from request arrival to ack",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 3.0),
)
ANALYSIS_LATENCY = Histogram(
    "beacon_analysis_latency_seconds", "Model analysis time per call",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
FEEDBACK = Counter("beacon_feedback", "Feedback recorded", ["kind"])
ALERTS_POSTED = Counter("beacon_alerts_posted", "Alerts posted to Slack", ["kind"])
FEED_POLLS = Counter("beacon_feed_polls", "Feed polls by outcome", ["outcome"])
MODEL_INFO = Info("beacon_model", "The active model version")
TRAINING_RUNS = Counter("beacon_training_runs", "Training runs by outcome", ["outcome"])
SLACK_API_ERRORS = Counter("beacon_slack_api_errors", "Slack Web API errors", ["method", "error"])
SLACK_RATE_LIMITED = Counter("beacon_slack_rate_limited", "Slack Web API 429 responses", ["method"])


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def set_model_version(version: str) -> None:
    MODEL_INFO.info({"version": version})
