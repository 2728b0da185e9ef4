"""The retry queue's Redis records: settling deliveries of several subscriptions at once."""

from __future__ import annotations

import time

import redis
import redis.asyncio

from relay.delivery.jobs import retry_queue_for
from relay.settings import Settings
from relay.store import Store
from relay.store.retry_queue import RetryRequest


async def test_clearing_retries_of_several_subscriptions_removes_only_those(
    settings: Settings, aredis: redis.asyncio.Redis, redis_url: str
) -> None:
    store = Store.create(aredis, settings)
    states, keys = store.retry_states, store.keys
    sync = redis.Redis.from_url(redis_url)
    try:
        retry_queue_for(settings, sync).schedule(
            [
                RetryRequest("evt_a", "sub_1", 2, 0.0),
                RetryRequest("evt_b", "sub_1", 2, 0.0),
                RetryRequest("evt_a", "sub_2", 3, 0.0),
            ]
        )
    finally:
        sync.close()
    claimed = await states.claim_due("sub_1", now=time.time(), lease_s=60, limit=10)
    assert sorted(c.event_id for c in claimed) == ["evt_a", "evt_b"]

    await states.clear_retries([("evt_a", "sub_1"), ("evt_a", "sub_2")])

    assert await states.retry_progress("evt_a", "sub_1") is None
    assert await states.retry_progress("evt_a", "sub_2") is None
    assert await states.retry_progress("evt_b", "sub_1") == 1  # untouched
    assert await aredis.zrange(keys.subscription_retries("sub_1"), 0, -1) == ["evt_b"]
    assert await aredis.zcard(keys.subscription_retries("sub_2")) == 0
    assert await aredis.zrange(keys.retries_running, 0, -1) == ["evt_b:sub_1"]
    await states.clear_retries([])  # nothing to do: no call
