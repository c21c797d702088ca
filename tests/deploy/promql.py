"""PromQL checks shared by the dashboard and runbook tests: the queries parse, and they only name
Beacon's metrics and those metrics' labels."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

HISTOGRAM = "histogram"
# The metrics bot/metrics.py exports (exposition names) and their labels.
METRICS: dict[str, tuple[str, frozenset[str]]] = {
    "beacon_events_received_total": ("counter", frozenset({"type"})),
    "beacon_events_acked_total": ("counter", frozenset({"type"})),
    "beacon_events_processed_total": ("counter", frozenset({"type", "outcome"})),
    "beacon_ack_latency_seconds": (HISTOGRAM, frozenset()),
    "beacon_analysis_latency_seconds": (HISTOGRAM, frozenset()),
    "beacon_feedback_total": ("counter", frozenset({"kind"})),
    "beacon_alerts_posted_total": ("counter", frozenset({"kind"})),
    "beacon_feed_polls_total": ("counter", frozenset({"outcome"})),
    "beacon_model_info": ("info", frozenset({"version"})),
    "beacon_training_runs_total": ("counter", frozenset({"outcome"})),
    "beacon_slack_api_errors_total": ("counter", frozenset({"method", "error"})),
    "beacon_slack_rate_limited_total": ("counter", frozenset({"method"})),
}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = frozenset({"instance", "job", "pod", "namespace"})
GRAFANA_VARIABLE = re.compile(r"\$\{__[a-z_]+\}|\$__[a-z_]+")


def parser() -> Any:
    try:
        import promql_parser
    except ImportError as exc:  # CI installs it with the dev extra; a missing parser is a failure
        raise AssertionError("promql-parser is not installed (pip install -e '.[dev]')") from exc
    return promql_parser


def metric_of(series: str) -> str:
    """The metric a series name belongs to (histogram series end in _bucket, _sum or _count)."""
    if series in METRICS:
        return series
    for suffix in ("_bucket", "_sum", "_count"):
        base = series.removesuffix(suffix)
        if base != series and METRICS.get(base, ("", frozenset()))[0] == HISTOGRAM:
            return base
    raise AssertionError(f"{series!r} is not one of Beacon's metrics: {sorted(METRICS)}")


@dataclass
class QueryFacts:
    series: set[str] = field(default_factory=set)
    matcher_labels: set[str] = field(default_factory=set)
    grouping_labels: set[str] = field(default_factory=set)


def facts(expr: str) -> QueryFacts:
    """Parse ``expr`` (Grafana's $__ variables become 5m) and collect what it names."""
    p = parser()
    text = GRAFANA_VARIABLE.sub("5m", expr)
    assert "$" not in text, f"unknown template variable in {expr!r}"
    try:
        tree = p.parse(text)
    except ValueError as exc:
        raise AssertionError(f"PromQL does not parse: {expr!r}: {exc}") from exc
    out = QueryFacts()

    def visit(node: Any) -> None:
        if isinstance(node, p.VectorSelector):
            assert node.name, f"selector without a metric name in {expr!r}"
            out.series.add(node.name)
            out.matcher_labels.update(m.name for m in node.matchers.matchers if m.name != "__name__")
        elif isinstance(node, p.AggregateExpr) and node.modifier is not None:
            out.grouping_labels.update(node.modifier.labels)
        elif isinstance(node, p.BinaryExpr) and node.modifier is not None:
            matching = getattr(node.modifier, "matching", None)
            out.grouping_labels.update(getattr(matching, "labels", None) or [])
            out.grouping_labels.update(getattr(node.modifier, "group_labels", None) or [])

    p.walk(tree, visit)
    return out


def check_query(expr: str) -> set[str]:
    """Assert ``expr`` parses and uses only Beacon's metrics and their labels; return the metrics."""
    found = facts(expr)
    assert found.series, f"query names no metric: {expr!r}"
    metrics = {metric_of(s) for s in found.series}
    allowed = set(TARGET_LABELS)
    for metric in metrics:
        kind, labels = METRICS[metric]
        allowed |= labels | ({"le"} if kind == HISTOGRAM else set())
    bare = [s for s in found.series if METRICS.get(s, ("", frozenset()))[0] == HISTOGRAM]
    assert not bare, f"{bare} are histograms: query their _bucket/_sum/_count series in {expr!r}"
    unknown = (found.matcher_labels | found.grouping_labels) - allowed
    assert not unknown, f"labels {sorted(unknown)} do not exist on {sorted(metrics)} in {expr!r}"
    return metrics
