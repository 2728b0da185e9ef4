"""Observability end to end: traffic through the real dispatcher, RQ retry worker and loopback
receivers, read back from `/metrics`, `/readyz` and `relay status --json` (a subprocess)."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest
import redis
import redis.asyncio

from relay.api import create_app
from relay.observability.telemetry import STALE_AFTER_S
from relay.settings import Settings
from relay.store import Store
from tests.delivery.test_dispatcher import add_events, attempts_of, subscribe
from tests.observability.scrape import (
    ROOT,
    sample_sum,
    scrape,
    status_json,
    subscription_in,
)
from tests.support import Receiver, run_due_retries, wait_until
from workers.dispatcher import run_dispatcher

# Retries far in the future, so the test decides when each one runs (by making it due).
HELD_RETRIES = (60.0, 60.0, 60.0)


@pytest.fixture
def store(aredis: redis.asyncio.Redis, settings: Settings) -> Store:
    return Store.create(aredis, settings)


async def test_500_500_500_then_200_is_three_failed_and_one_delivered_everywhere(
    settings: Settings,
    store: Store,
    aredis: redis.asyncio.Redis,
    redis_url: str,
    serve_app: Callable[..., str],
) -> None:
    held = settings.replace(retry_schedule_s=HELD_RETRIES)
    flaky, healthy = Receiver(statuses=[500, 500, 500], default=200), Receiver()
    flaky_sub = await subscribe(store, serve_app(flaky.app()), flaky)
    healthy_sub = await subscribe(store, serve_app(healthy.app()), healthy)
    api = serve_app(create_app(held))
    before = await scrape(api)
    stop = asyncio.Event()
    dispatching = asyncio.create_task(run_dispatcher(held, stop=stop))
    try:
        (event,) = await add_events(store, 1)
        await wait_until(lambda: len(healthy.received) == 1, what="healthy delivery")
        await wait_until(lambda: _scheduled(aredis, store, 1), what="the first retry scheduled")

        # One failed attempt, its retry waiting: status shows it.
        first = await asyncio.to_thread(status_json, held)
        flaky_state = subscription_in(first, flaky_sub.id)
        assert flaky_state["queued_retries"] == 1
        assert (flaky_state["recent_attempts"], flaky_state["success_rate"]) == (1, 0.0)
        assert subscription_in(first, healthy_sub.id)["success_rate"] == 1.0
        assert first["queues"]["retry_scheduled"] == 1

        for attempt in (2, 3, 4):
            await run_due_retries(held, redis_url, flaky_sub.id)
            await wait_until(
                functools.partial(_recorded, store, flaky_sub.id, attempt),
                what=f"attempt {attempt} recorded",
            )
    finally:
        stop.set()
        await asyncio.wait_for(dispatching, timeout=15)

    assert flaky.ids() == [event.id] * 4
    after = await scrape(api)
    delivered = sample_sum(
        after, "relay_deliveries_total", subscription_id=flaky_sub.id, outcome="delivered"
    )
    failed = sample_sum(
        after, "relay_deliveries_total", subscription_id=flaky_sub.id, outcome="failed"
    )
    assert (failed, delivered) == (3, 1)
    assert sample_sum(after, "relay_deliveries_total", subscription_id=healthy_sub.id) == 1
    # Five POSTs in all; two deliveries measured from the message timestamp.
    assert _delta(before, after, "relay_attempt_duration_seconds_count") == 5
    assert _delta(before, after, "relay_delivery_lag_seconds_count") == 2
    assert sample_sum(after, "relay_retry_queue_scheduled") == 0
    assert sample_sum(after, "relay_dead_letters") == 0

    last = await asyncio.to_thread(status_json, held)
    flaky_state = subscription_in(last, flaky_sub.id)
    assert flaky_state["recent_attempts"] == 4 and flaky_state["recent_delivered"] == 1
    assert flaky_state["success_rate"] == 0.25
    assert (flaky_state["queued_retries"], flaky_state["dead_letters"]) == (0, 0)


async def test_always_500_shows_a_dead_letter_in_metrics_and_status(
    settings: Settings,
    store: Store,
    redis_url: str,
    serve_app: Callable[..., str],
) -> None:
    one_retry = settings.replace(retry_schedule_s=(60.0,))
    receiver = Receiver(default=500)
    subscription = await subscribe(store, serve_app(receiver.app()), receiver)
    api = serve_app(create_app(one_retry))
    stop = asyncio.Event()
    dispatching = asyncio.create_task(run_dispatcher(one_retry, stop=stop))
    try:
        await add_events(store, 1)
        await wait_until(lambda: _recorded(store, subscription.id, 1), what="first attempt")
        await run_due_retries(one_retry, redis_url, subscription.id)
        await wait_until(lambda: _recorded(store, subscription.id, 2), what="the retry")
    finally:
        stop.set()
        await asyncio.wait_for(dispatching, timeout=15)

    text = await scrape(api)
    assert sample_sum(text, "relay_dead_letters_total", subscription_id=subscription.id) == 1
    assert sample_sum(text, "relay_dead_letters") == 1
    state = subscription_in(await asyncio.to_thread(status_json, one_retry), subscription.id)
    assert state["dead_letters"] == 1 and state["success_rate"] == 0.0


async def test_role_processes_publish_metrics_and_readiness_names_a_killed_role(
    settings: Settings,
    store: Store,
    serve_app: Callable[..., str],
) -> None:
    receiver = Receiver()
    subscription = await subscribe(store, serve_app(receiver.app()), receiver)
    api = serve_app(create_app(settings))
    child = _spawn_role(settings, "dispatcher")
    try:
        await wait_until(lambda: _ready_roles(api, "dispatcher"), what="dispatcher heartbeat")
        await add_events(store, 3)
        await wait_until(lambda: len(receiver.received) == 3, what="three deliveries")
        # The child's next heartbeat (every 5 s) carries its counters to the API.
        await wait_until(
            lambda: _dispatcher_delivered(api, subscription.id, 3),
            timeout_s=30,
            what="the child's counters in /metrics",
        )
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)

    # Seen from a clock past the stale threshold, the killed role is down.
    later = create_app(settings, clock=lambda: time.time() + STALE_AFTER_S + 5)
    async with later.router.lifespan_context(later):
        transport = httpx.ASGITransport(app=later)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["roles_down"] == ["dispatcher"]
    assert body["roles"]["dispatcher"]["instances"] == 0


async def test_a_cleanly_stopped_role_leaves_readiness_ok(
    settings: Settings, store: Store, serve_app: Callable[..., str]
) -> None:
    receiver = Receiver()
    await subscribe(store, serve_app(receiver.app()), receiver)
    api = serve_app(create_app(settings))
    child = _spawn_role(settings, "dispatcher")
    try:
        await wait_until(lambda: _ready_roles(api, "dispatcher"), what="dispatcher heartbeat")
        await add_events(store, 1)
        # Delivering means its loop (and SIGTERM handler) is up, not only its heartbeat.
        await wait_until(lambda: len(receiver.received) == 1, what="a delivery")
    finally:
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == 0

    async with httpx.AsyncClient() as http:
        response = await http.get(f"{api}/readyz")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["redis"], body["roles"]) == ("ok", "ok", {})


def _spawn_role(settings: Settings, role: str) -> subprocess.Popen[bytes]:
    """`relay <role>` as a real process (its heartbeat publisher included)."""
    env = {
        **os.environ,
        "REDIS_URL": settings.require_redis_url(),
        "RELAY_KEY_PREFIX": settings.key_prefix,
        "RELAY_ALLOW_PRIVATE_TARGETS": "true",
        "RELAY_DELIVERY_TIMEOUT": "5",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "workers.cli", role], cwd=ROOT, env=env, stderr=subprocess.DEVNULL
    )


async def _ready_roles(api: str, role: str) -> bool:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{api}/readyz")
    roles = response.json().get("roles", {})
    return response.status_code == 200 and roles.get(role, {}).get("instances") == 1


async def _dispatcher_delivered(api: str, subscription_id: str, expected: int) -> bool:
    text = await scrape(api)
    found = sample_sum(
        text,
        "relay_deliveries_total",
        subscription_id=subscription_id,
        outcome="delivered",
        role="dispatcher",
    )
    return found == expected


async def _scheduled(aredis: redis.asyncio.Redis, store: Store, count: int) -> bool:
    return int(await aredis.zcard(store.keys.rq_scheduled)) == count


async def _recorded(store: Store, subscription_id: str, count: int) -> bool:
    return len(await attempts_of(store, subscription_id)) >= count


def _delta(before: str, after: str, name: str) -> float:
    return sample_sum(after, name) - sample_sum(before, name)
