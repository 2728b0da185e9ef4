"""The Grafana dashboard in deploy/ queries only metrics the relay exposes, so it cannot drift."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from relay.api import create_app
from relay.settings import Settings
from tests.observability.scrape import exposed_names

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "relay-dashboard.json"
METRIC = re.compile(r"\brelay_[a-z0-9_]+\b")
# What the issue asks the dashboard (and /metrics) to show.
REQUIRED = {
    "relay_messages_ingested_total",
    "relay_deliveries_total",
    "relay_attempt_duration_seconds_bucket",
    "relay_delivery_lag_seconds_bucket",
    "relay_retry_queue_scheduled",
    "relay_retry_queue_ready",
    "relay_dead_letters",
    "relay_source_cursor_lag_seconds",
    "relay_polls_total",
}


def dashboard_metrics() -> set[str]:
    document = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in document["panels"] for t in panel["targets"]]
    assert exprs, "the dashboard has no queries"
    return {name for expr in exprs for name in METRIC.findall(expr)}


def test_dashboard_covers_the_required_metrics() -> None:
    assert dashboard_metrics() >= REQUIRED


async def test_every_metric_the_dashboard_queries_is_in_metrics_output(settings: Settings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/metrics")
    assert response.status_code == 200

    missing = dashboard_metrics() - exposed_names(response.text)

    assert missing == set()
