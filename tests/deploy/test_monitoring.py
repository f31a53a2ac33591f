"""Prometheus rules and the Grafana dashboard: PromQL that parses, and only metric names the app exposes.

PromQL is parsed with `promql-parser` (Python bindings of the Rust promql-parser crate, which follows
Prometheus's grammar); the rule file's structure is checked against what Prometheus's rule loader requires.
"""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser
import pytest
import yaml

from bot_gateway import metrics as gateway_metrics
from marketbot.metrics_store import METRICS
from tests.deploy.conftest import ROOT

RULES = ROOT / "infra" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "infra" / "grafana" / "dashboards" / "marketbot.json"
# Series from elsewhere: Prometheus's own `up`, node-exporter's filesystem gauges.
EXTERNAL = {"up", "node_filesystem_avail_bytes", "node_filesystem_size_bytes"}
DURATION = re.compile(r"^\d+[smhdwy]$")


def app_metric_names() -> set[str]:
    names: set[str] = set()
    for name, (kind, _help) in METRICS.items():
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    for metric in (gateway_metrics.UPDATES, gateway_metrics.WEBHOOK_REQUESTS, gateway_metrics.STRIPE_EVENTS):
        names.add(metric._name + "_total")
    hist = gateway_metrics.ENQUEUE_SECONDS._name
    names |= {f"{hist}_bucket", f"{hist}_sum", f"{hist}_count"}
    return names


def selected_metrics(expr: str) -> set[str]:
    """Every metric a PromQL expression selects, walking the parsed tree."""
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            found.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def test_rule_file_has_the_structure_prometheus_loads() -> None:
    document = yaml.safe_load(RULES.read_text())
    assert set(document) == {"groups"}
    group_names = [g["name"] for g in document["groups"]]
    assert len(group_names) == len(set(group_names))
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "rules", "limit"}
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}, rule
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
            assert DURATION.match(rule["for"]), rule["alert"]
            assert rule["labels"]["severity"] in {"warning", "critical"}
            assert {"summary", "description"} <= set(rule["annotations"])


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["alert"])
def test_alert_expression_parses_and_uses_known_metrics(rule: dict[str, Any]) -> None:
    used = selected_metrics(rule["expr"])
    assert used, "an alert must select something"
    assert used <= app_metric_names() | EXTERNAL, used - app_metric_names() - EXTERNAL


def test_the_alerts_the_issue_asks_for_exist() -> None:
    names = {r["alert"] for r in rules()}
    assert {"QueueBacklog", "TaskFailureRate", "OldestUnpaidHoldTooOld", "Webhook5xx"} <= names
    assert {"WorkersNotConsuming", "HealthGaugesStale", "DiskAlmostFull"} <= names


def test_every_dashboard_query_parses_and_uses_known_metrics() -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 15
    used: set[str] = set()
    for expr in exprs:
        used |= selected_metrics(expr)
    assert used <= app_metric_names() | EXTERNAL, used - app_metric_names() - EXTERNAL
    # every app metric is on the dashboard somewhere
    assert {n for n in app_metric_names() if not n.endswith(("_sum", "_count"))} - used <= {
        "marketbot_task_seconds",
        "marketbot_gateway_enqueue_seconds",
    }


def test_prometheus_scrapes_the_gateway_and_loads_the_rules() -> None:
    config = yaml.safe_load((ROOT / "infra" / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["marketbot-gateway"]["static_configs"][0]["targets"] == ["gateway:8080"]
    rule_jobs = set(re.findall(r'job="([^"]+)"', RULES.read_text()))
    assert rule_jobs <= set(jobs)
