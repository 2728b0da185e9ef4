"""Retry counts read at scrape time (`relay status`, `/metrics`, the console): deliveries where
they really wait, against the drain jobs RQ holds, a held-back drain included."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio
from rq import Queue

from relay.delivery.jobs import retry_queue_for
from relay.settings import Settings
from relay.store.keys import Keys
from relay.store.retry_queue import RetryRequest, RetryStates
from relay.store.stats import queue_depths, queued_retries_by_subscription


@pytest.fixture
def rq_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


async def test_counts_are_deliveries_where_they_wait_with_a_held_back_drain(
    settings: Settings, rq_redis: redis.Redis, aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    retries = retry_queue_for(settings, rq_redis)
    retries.schedule([RetryRequest(f"evt_a{i}", "sub_a", 2, 0.0) for i in range(10)])
    retries.schedule([RetryRequest(f"evt_b{i}", "sub_b", 2, 0.0) for i in range(3)])
    retries.schedule([RetryRequest(f"evt_c{i}", "sub_c", 2, 600.0) for i in range(2)])
    # A second drain of sub_a while its first waits: RQ holds it back (one at a time).
    retries.schedule([RetryRequest("evt_a10", "sub_a", 2, 0.0)])
    claimed = await RetryStates(redis=aredis, keys=keys).claim_due(
        "sub_b", now=time.time(), lease_s=60.0, limit=2
    )
    queue = Queue(keys.retry_queue, connection=rq_redis)
    held_back = int(rq_redis.zcard(keys.rq_rate_limited(keys.drain_limit("sub_a"))))
    scheduled_jobs = int(rq_redis.zcard(keys.rq_scheduled))

    depths = await queue_depths(aredis, keys)
    by_subscription = await queued_retries_by_subscription(aredis, keys)

    assert len(claimed) == 2
    assert (queue.count, held_back, scheduled_jobs) == (2, 1, 1)  # jobs: one per drain
    assert (
        depths.retry_ready,
        depths.retry_rate_limited,
        depths.retry_scheduled,
        depths.retry_running,
    ) == (1, 11, 2, 2)
    assert by_subscription == {"sub_a": 11, "sub_b": 3, "sub_c": 2}
