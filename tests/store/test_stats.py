"""Retry counts read at scrape time (`relay status`, `/metrics`, the console) against the jobs
RQ really holds, a rate-limited backlog included."""

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
from relay.store.retry_queue import RetryRequest
from relay.store.stats import queue_depths, queued_retries_by_subscription


@pytest.fixture
def rq_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


async def test_counts_match_the_jobs_rq_holds_with_a_rate_limited_backlog(
    settings: Settings, rq_redis: redis.Redis, aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    retries = retry_queue_for(settings, rq_redis)  # two concurrent retries per subscription
    due = [RetryRequest(f"evt_a{i}", "sub_a", 2, 0.0) for i in range(10)]
    due += [RetryRequest(f"evt_b{i}", "sub_b", 2, 0.0) for i in range(3)]
    later = [RetryRequest(f"evt_c{i}", "sub_c", 2, 600.0) for i in range(2)]
    retries.schedule(due + later)
    queue = Queue(keys.retry_queue, connection=rq_redis)
    scheduler = RQScheduler([queue], connection=rq_redis)  # what a worker's scheduler does
    assert scheduler.acquire_locks()  # type: ignore[no-untyped-call]
    try:
        scheduler.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
    finally:
        scheduler.release_locks()  # type: ignore[no-untyped-call]
    held_back = sum(
        int(rq_redis.zcard(keys.rq_rate_limited(keys.rate_limit(sub))))
        for sub in ("sub_a", "sub_b")
    )

    depths = await queue_depths(aredis, keys)
    by_subscription = await queued_retries_by_subscription(aredis, keys)

    assert (queue.count, held_back) == (4, 9)  # RQ let two of each subscription through
    assert (depths.retry_ready, depths.retry_rate_limited, depths.retry_scheduled) == (4, 9, 2)
    assert by_subscription == {"sub_a": 10, "sub_b": 3, "sub_c": 2}
