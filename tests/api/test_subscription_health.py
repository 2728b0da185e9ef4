"""`health` on subscription reads, from what the stores recorded (attempts, retries, dead
letters), with a real Redis behind the API."""

from __future__ import annotations

import time
from typing import Any

import httpx
import redis

from relay.core.ids import new_id
from relay.core.models import Attempt
from relay.delivery.jobs import retry_queue_for
from relay.settings import Settings
from relay.store import Store
from relay.store.health import SentOutcome
from relay.store.retry_queue import RetryRequest


async def subscribe(client: httpx.AsyncClient) -> dict[str, Any]:
    created = await client.post("/v1/subscriptions", json={"url": "https://example.com/hook"})
    assert created.status_code == 201
    return dict(created.json())


async def attempt(store: Store, sub_id: str, *, at: float, status: int) -> None:
    """One attempt recorded as the outcome handler records it (log, counters, health)."""
    made = Attempt(new_id("att"), "evt_1", sub_id, 1, at, status, None, None, 3)
    await store.attempts.record_many([made])
    outcome = SentOutcome(sub_id, at, made.is_delivered, f"HTTP {status}")
    await store.health.record([outcome], now=at, disable_after_s=3600)


async def test_a_new_subscription_is_healthy_with_nothing_counted(
    client: httpx.AsyncClient,
) -> None:
    created = await subscribe(client)
    expected = {
        "state": "healthy",
        "success_rate_1h": None,
        "last_success_at": None,
        "failing_since": None,
        "last_error": None,
        "queued_retries": 0,
        "dead_letters": 0,
    }
    assert created["health"] == expected
    assert (await client.get(f"/v1/subscriptions/{created['id']}")).json()["health"] == expected


async def test_health_shows_state_rate_error_retries_and_dead_letters(
    client: httpx.AsyncClient, store: Store, api_settings: Settings
) -> None:
    sub = (await subscribe(client))["id"]
    other = (await subscribe(client))["id"]
    now = time.time()
    await attempt(store, sub, at=now - 30, status=204)
    await attempt(store, sub, at=now - 20, status=500)
    await attempt(store, sub, at=now - 10, status=503)
    await attempt(store, sub, at=now - 5, status=502)
    rq = redis.Redis.from_url(api_settings.require_redis_url())
    try:
        retry_queue_for(api_settings, rq).schedule(
            [RetryRequest("evt_1", sub, 2, 600.0), RetryRequest("evt_2", sub, 2, 600.0)]
        )
    finally:
        rq.close()
    await store.dead_letters.add(
        event_id="evt_3",
        subscription_id=sub,
        attempts=4,
        last_error=None,
        last_status_code=500,
        failed_at=now,
    )

    health = (await client.get(f"/v1/subscriptions/{sub}")).json()["health"]
    assert health["state"] == "failing"
    assert health["success_rate_1h"] == 0.25
    assert health["last_error"] == "HTTP 502"
    assert health["last_success_at"] is not None and health["failing_since"] is not None
    assert health["last_success_at"] < health["failing_since"]
    assert (health["queued_retries"], health["dead_letters"]) == (2, 1)

    listed = (await client.get("/v1/subscriptions")).json()["data"]
    by_id = {row["id"]: row["health"] for row in listed}
    assert by_id[sub] == health
    assert by_id[other]["state"] == "healthy" and by_id[other]["dead_letters"] == 0

    await store.retry_states.clear_retries([("evt_1", sub)])
    (dead,) = (await store.dead_letters.page(limit=5, cursor=None)).items
    await store.dead_letters.retry(dead.id)
    health = (await client.get(f"/v1/subscriptions/{sub}")).json()["health"]
    assert (health["queued_retries"], health["dead_letters"]) == (1, 0)


async def test_disabled_shows_disabled_and_enabling_starts_a_fresh_window(
    client: httpx.AsyncClient, store: Store
) -> None:
    sub = (await subscribe(client))["id"]
    await attempt(store, sub, at=time.time(), status=500)
    patched = await client.patch(f"/v1/subscriptions/{sub}", json={"enabled": False})
    assert patched.json()["health"]["state"] == "disabled"
    enabled = (await client.patch(f"/v1/subscriptions/{sub}", json={"enabled": True})).json()
    assert enabled["health"]["state"] == "healthy"
    assert enabled["health"]["failing_since"] is None
    assert enabled["health"]["last_error"] == "HTTP 500"  # kept: the last thing that happened
