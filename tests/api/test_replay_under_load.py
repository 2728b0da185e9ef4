"""A large replay while many other requests run (issue 14, case 5). Before, the Redis pool
failed past 100 connections: a 20,000-event replay answered 503 after queuing 199 (and a
retry doubled those), and 150 concurrent GET /v1/events got 50 x 503. Now the pool waits
for a connection and a replay is one transaction: every request succeeds, and each event is
queued exactly once. `make soak` runs the issue's full size (20,000 events, 200 requests)."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable
from typing import Any, cast

import httpx
import pytest

from relay.store import Store
from tests.api.conftest import message


async def _replay_while_busy(
    client: httpx.AsyncClient,
    add_events: Callable[..., Any],
    store: Store,
    *,
    events: int,
    concurrent: int,
) -> None:
    for start in range(0, events, 1000):
        batch = range(start, min(start + 1000, events))
        await add_events(*(message(f"load-{i}", timestamp=10_000 + i) for i in batch))
    created = await client.post("/v1/subscriptions", json={"url": "https://example.com/hook"})
    subscription_id = created.json()["id"]
    live_before = await store.redis.xlen(store.keys.stream)
    lane_before = await store.redis.xlen(store.keys.replay_stream)

    async def busy(i: int) -> int:
        path = "/v1/events?limit=20" if i % 2 else f"/v1/subscriptions/{subscription_id}"
        return (await client.get(path)).status_code

    replay_task = asyncio.ensure_future(
        client.post(f"/v1/subscriptions/{subscription_id}/replay", json={"since": 0})
    )
    others = await asyncio.gather(*(busy(i) for i in range(concurrent)))
    replay = await replay_task

    assert replay.status_code == 202, replay.text
    assert replay.json() == {"queued": events}
    assert Counter(others) == {200: concurrent}
    queued = await _queued_for(store, subscription_id)
    assert len(queued) == events and set(queued.values()) == {1}
    assert await store.redis.xlen(store.keys.replay_stream) == lane_before + events
    assert await store.redis.xlen(store.keys.stream) == live_before  # live lane untouched


async def _queued_for(store: Store, subscription_id: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    start = "-"
    while True:
        rows = cast(
            "list[tuple[str, dict[str, str]]]",
            await store.redis.xrange(store.keys.replay_stream, min=start, count=5000),
        )
        for entry_id, fields in rows:
            if fields.get("s") == subscription_id and entry_id != start:
                counts[fields["e"]] += 1
        if len(rows) < 5000:
            return counts
        start = rows[-1][0]


async def test_a_5000_event_replay_beside_150_requests_queues_each_once_and_fails_none(
    client: httpx.AsyncClient, add_events: Callable[..., Any], store: Store
) -> None:
    await _replay_while_busy(client, add_events, store, events=5000, concurrent=150)


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_a_20000_event_replay_beside_200_requests_soak(
    client: httpx.AsyncClient, add_events: Callable[..., Any], store: Store
) -> None:
    if not os.environ.get("RELAY_SOAK"):
        pytest.skip("set RELAY_SOAK=1 (make soak)")
    await _replay_while_busy(client, add_events, store, events=20_000, concurrent=200)
