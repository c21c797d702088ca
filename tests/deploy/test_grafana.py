"""deploy/grafana/beacon.json: a well-formed dashboard whose every query parses and names only the
metrics bot/metrics.py exports, with their real labels; and every metric has a panel."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.helpers import GRAFANA, load_json
from tests.deploy.promql import HISTOGRAM, METRICS, check_query, facts, metric_of


def _dashboard() -> dict[str, Any]:
    return load_json(GRAFANA)


def _panels() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in _dashboard()["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # panels nested in collapsed rows
    return out


def _queries() -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in _panels() if p["type"] != "row" for t in p.get("targets", [])]


def test_dashboard_is_well_formed() -> None:
    dash = _dashboard()
    assert dash["uid"] and dash["title"] and isinstance(dash["schemaVersion"], int)
    ids = [p["id"] for p in _panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in _panels():
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["w"] > 0 and grid["h"] > 0, panel["title"]
        if panel["type"] != "row":
            assert panel.get("targets"), f"panel {panel['title']!r} has no query"
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs)), panel["title"]


def test_panels_do_not_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in _dashboard()["panels"]:
        g = panel["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


def test_every_query_uses_the_datasource_variable() -> None:
    variables = {v["name"]: v for v in _dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in _panels():
        if panel["type"] == "row":
            continue
        for target in [panel, *panel["targets"]]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


@pytest.mark.parametrize(("title", "expr"), _queries(), ids=[t for t, _ in _queries()])
def test_query_parses_and_names_only_beacon_metrics_and_labels(title: str, expr: str) -> None:
    check_query(expr)


def test_every_metric_has_a_panel() -> None:
    used = set()
    for _title, expr in _queries():
        used |= check_query(expr)
    assert used == set(METRICS), f"metrics without a panel: {sorted(set(METRICS) - used)}"


def test_latency_panels_are_quantiles_over_histogram_buckets() -> None:
    for metric, (kind, _labels) in METRICS.items():
        if kind != HISTOGRAM:
            continue
        exprs = [e for _t, e in _queries() if f"{metric}_bucket" in facts(e).series]
        assert exprs, f"no quantile panel for {metric}"
        assert all("histogram_quantile" in e and "le" in facts(e).grouping_labels for e in exprs), exprs


def test_the_checker_rejects_wrong_names_labels_and_syntax() -> None:
    # The checks above are only as good as check_query: prove it fails where it must.
    bad = [
        "rate(beacon_events_total[5m])",  # unknown metric
        "sum by (channel) (rate(beacon_feedback_total[5m]))",  # label the metric lacks
        'rate(beacon_alerts_posted_total{outcome="x"}[5m])',  # matcher on a missing label
        "histogram_quantile(0.9, rate(beacon_ack_latency_seconds[5m]))",  # bare histogram name
        "rate(beacon_feedback_bucket[5m])",  # _bucket of a counter
        "sum(rate(beacon_feedback_total[5m])",  # syntax
        "rate(beacon_feedback_total[$window])",  # undefined variable
    ]
    for expr in bad:
        with pytest.raises(AssertionError):
            check_query(expr)
    assert metric_of("beacon_ack_latency_seconds_count") == "beacon_ack_latency_seconds"


def test_metric_names_match_the_collectors_in_bot_metrics() -> None:
    from prometheus_client.metrics import MetricWrapperBase

    import bot.metrics as metrics

    exported: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            (family,) = value.describe()
            suffix = {"counter": "_total", "info": "_info"}.get(family.type, "")
            labels = set(value._labelnames) | ({"version"} if family.type == "info" else set())
            exported[family.name + suffix] = labels
    expected = {name: set(labels) for name, (_kind, labels) in METRICS.items()}
    assert exported == expected
