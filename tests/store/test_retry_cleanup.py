"""Deleting a subscription takes its waiting retries out of the queue and its drain jobs out
of RQ's registries (real Redis, the real RetryQueue)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
import redis
import redis.asyncio
from rq import Queue
from rq.scheduler import RQScheduler

from relay.delivery.jobs import retry_queue_for
from relay.settings import Settings
from relay.store.keys import Keys
from relay.store.retry_cleanup import drop_subscription_retries
from relay.store.retry_queue import RETRY_JOB, RetryQueue, RetryRequest
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


async def test_dropping_removes_due_scheduled_and_held_back_retries_of_one_subscription(
    settings: Settings, keys: Keys, aredis: redis.asyncio.Redis, sync_redis: redis.Redis
) -> None:
    retries: RetryQueue = retry_queue_for(settings, sync_redis)
    retries.schedule([RetryRequest(f"evt_due{i}", "sub_gone", 2, 0.0) for i in range(3)])
    retries.schedule([RetryRequest("evt_keep1", "sub_kept", 2, 0.0)])
    retries.schedule([RetryRequest("evt_held", "sub_gone", 2, 0.0)])  # RQ holds this drain
    retries.schedule([RetryRequest(f"evt_later{i}", "sub_gone", 3, 3600.0) for i in range(4)])
    retries.schedule([RetryRequest("evt_keep2", "sub_kept", 3, 3600.0)])
    assert await queued_retries_by_subscription(aredis, keys) == {"sub_gone": 8, "sub_kept": 2}

    assert await drop_subscription_retries(aredis, keys, "sub_gone") == 8

    assert await queued_retries_by_subscription(aredis, keys) == {"sub_kept": 2}
    gone_states = [keys.retry_state(f"evt_due{i}", "sub_gone") for i in range(3)]
    assert await aredis.exists(*gone_states) == 0
    jobs = [
        *cast("list[str]", await aredis.zrange(keys.rq_scheduled, 0, -1)),
        *cast("list[str]", await aredis.lrange(keys.rq_queue, 0, -1)),
        *cast(
            "list[str]",
            await aredis.zrange(keys.rq_rate_limited(keys.drain_limit("sub_gone")), 0, -1),
        ),
    ]
    assert jobs and all("-drain-sub_kept-" in job_id for job_id in jobs)
    assert await aredis.exists(*(f"rq:job:{j}" for j in jobs)) == len(jobs)
    assert await aredis.exists(keys.retry_state("evt_keep1", "sub_kept")) == 1
    assert await aredis.zscore(keys.retrying_subscriptions, "sub_gone") is None


async def test_dropping_also_removes_the_per_delivery_jobs_of_relay_0_1(
    settings: Settings, keys: Keys, aredis: redis.asyncio.Redis, sync_redis: redis.Redis
) -> None:
    retries: RetryQueue = retry_queue_for(settings, sync_redis)
    queue = Queue(keys.retry_queue, connection=sync_redis)
    legacy = retries.job_id("evt_old", "sub_gone", 2)
    queue.enqueue_at(
        datetime.now(UTC) + timedelta(hours=1), RETRY_JOB, "evt_old", "sub_gone", 2, job_id=legacy
    )
    kept = retries.job_id("evt_old", "sub_kept", 2)
    queue.enqueue_at(
        datetime.now(UTC) + timedelta(hours=1), RETRY_JOB, "evt_old", "sub_kept", 2, job_id=kept
    )

    await drop_subscription_retries(aredis, keys, "sub_gone")

    assert await aredis.zrange(keys.rq_scheduled, 0, -1) == [kept]
    assert await aredis.exists(f"rq:job:{legacy}") == 0


async def test_dropping_a_subscription_without_retries_changes_nothing(
    settings: Settings, keys: Keys, aredis: redis.asyncio.Redis, sync_redis: redis.Redis
) -> None:
    retries = retry_queue_for(settings, sync_redis)
    retries.schedule([RetryRequest("evt_1", "sub_kept", 2, 60.0)])
    assert await drop_subscription_retries(aredis, keys, "sub_other") == 0
    assert await queued_retries_by_subscription(aredis, keys) == {"sub_kept": 1}
