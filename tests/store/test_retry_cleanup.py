"""Deleting a subscription takes its waiting retries out of RQ's registries (real Redis, the
real RetryQueue and RQ scheduler)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
import redis.asyncio
from rq import Queue
from rq.scheduler import RQScheduler

from relay.delivery.jobs import retry_queue_for
from relay.settings import Settings
from relay.store.keys import Keys
from relay.store.retry_cleanup import drop_subscription_retries
from relay.store.retry_queue import RetryQueue, RetryRequest
from relay.store.stats import queued_retries_by_subscription


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def move_due_to_ready(client: redis.Redis, keys: Keys) -> None:
    """What a worker's scheduler does: due scheduled retries join the ready queue."""
    scheduler = RQScheduler([Queue(keys.retry_queue, connection=client)], connection=client)
    assert scheduler.acquire_locks()  # type: ignore[no-untyped-call]
    try:
        scheduler.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
    finally:
        scheduler.release_locks()  # type: ignore[no-untyped-call]


async def test_dropping_removes_scheduled_ready_and_held_back_retries_of_one_subscription(
    settings: Settings, keys: Keys, aredis: redis.asyncio.Redis, sync_redis: redis.Redis
) -> None:
    retries: RetryQueue = retry_queue_for(settings, sync_redis)
    retries.schedule([RetryRequest(f"evt_due{i}", "sub_gone", 2, 0.0) for i in range(3)])
    retries.schedule([RetryRequest("evt_keep1", "sub_kept", 2, 0.0)])
    move_due_to_ready(sync_redis, keys)
    retries.schedule([RetryRequest(f"evt_later{i}", "sub_gone", 3, 3600.0) for i in range(4)])
    retries.schedule([RetryRequest("evt_keep2", "sub_kept", 3, 3600.0)])
    # Held back by the subscription's rate limit, as RQ does when its slots are taken.
    held = retries.job_id("evt_held", "sub_gone", 2)
    await aredis.zadd(keys.rq_rate_limited(keys.rate_limit("sub_gone")), {held: 1})
    assert await queued_retries_by_subscription(aredis, keys) == {"sub_gone": 8, "sub_kept": 2}

    assert await drop_subscription_retries(aredis, keys, "sub_gone") == 8

    assert await queued_retries_by_subscription(aredis, keys) == {"sub_kept": 2}
    gone_states = [keys.retry_state(f"evt_due{i}", "sub_gone") for i in range(3)]
    assert await aredis.exists(*gone_states) == 0
    assert await aredis.exists(f"rq:job:{retries.job_id('evt_later0', 'sub_gone', 3)}") == 0
    assert await aredis.exists(keys.retry_state("evt_keep1", "sub_kept")) == 1
    assert await aredis.exists(f"rq:job:{retries.job_id('evt_keep2', 'sub_kept', 3)}") == 1


async def test_dropping_a_subscription_without_retries_changes_nothing(
    settings: Settings, keys: Keys, aredis: redis.asyncio.Redis, sync_redis: redis.Redis
) -> None:
    retries = retry_queue_for(settings, sync_redis)
    retries.schedule([RetryRequest("evt_1", "sub_kept", 2, 60.0)])
    assert await drop_subscription_retries(aredis, keys, "sub_other") == 0
    assert await queued_retries_by_subscription(aredis, keys) == {"sub_kept": 1}
