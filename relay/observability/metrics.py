"""Prometheus metrics of every role. Names are part of the public surface (README).

Set in the process that does the work (poller, dispatcher, retry worker, API pings) and merged
by the API's `/metrics` with `role` and `instance` labels (see relay.telemetry), which also adds
gauges read from Redis at scrape time: relay_stream_backlog, relay_stream_pending,
relay_retry_queue_ready, relay_retry_queue_scheduled, relay_retry_queue_rate_limited,
relay_retry_queue_running, relay_retry_jobs_failed, relay_dead_letters, relay_role_instances and
relay_source_cursor_lag_seconds (which replaces the poller's own value below: it keeps growing
while no poller records anything, as a lag alert needs).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

POLLS = Counter(
    "relay_polls_total", "Upstream polls by source and outcome", ["source_id", "outcome"]
)
MESSAGES_INGESTED = Counter(
    "relay_messages_ingested_total", "New messages turned into events", ["source_id"]
)
DUPLICATES_DROPPED = Counter(
    "relay_duplicates_dropped_total", "Messages already seen (boundary re-polls)", ["source_id"]
)
POSSIBLE_GAPS = Counter(
    "relay_possible_gaps_total",
    "Seconds with more messages than one page could return (upstream limit)",
    ["source_id"],
)
POLL_LATENESS = Histogram(
    "relay_poll_lateness_seconds",
    "How late polls start after they are due (a poller that cannot keep up)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
MESSAGES_SKIPPED = Counter(
    "relay_messages_skipped_total",
    "Upstream messages left out because a field could not be read",
    ["source_id"],
)
DELIVERIES = Counter(
    "relay_deliveries_total",
    "Delivery attempts by subscription and outcome",
    ["subscription_id", "outcome"],
)
DELIVERIES_DEFERRED = Counter(
    "relay_deliveries_deferred_total",
    "Deliveries deferred by a subscription's rate or concurrency limit (not attempts)",
    ["subscription_id", "reason"],
)
ATTEMPT_SECONDS = Histogram(
    "relay_attempt_duration_seconds",
    "Duration of one webhook POST",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
END_TO_END_LAG = Histogram(
    "relay_delivery_lag_seconds",
    "Message timestamp to successful delivery",
    buckets=(0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300, 1800, 7200),
)
DEAD_LETTERS = Counter(
    "relay_dead_letters_total", "Deliveries that used up the retry schedule", ["subscription_id"]
)
