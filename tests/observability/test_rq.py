"""rq-dashboard compatibility: the retry queue is an ordinary RQ queue named `<prefix>retry`,
and RQ's public API (what rq-dashboard reads) sees it and the relay's scheduled retries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from rq import Queue
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.scheduler import RQScheduler

from relay.delivery.jobs import retry_queue_for
from relay.settings import Settings
from relay.store.retry_queue import DRAIN_JOB, RetryRequest


@pytest.fixture
def rq_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_rq_public_api_sees_the_retry_queue_and_a_scheduled_retry(
    settings: Settings, rq_redis: redis.Redis
) -> None:
    retries = retry_queue_for(settings, rq_redis)
    retries.schedule([RetryRequest("evt_rqdash", "sub_rqdash", attempt=2, delay_s=600)])

    name = f"{settings.key_prefix}retry"
    (queue,) = [q for q in Queue.all(connection=rq_redis) if q.name == name]
    scheduled = ScheduledJobRegistry(queue.name, connection=rq_redis)  # type: ignore[no-untyped-call]
    (job_id,) = scheduled.get_job_ids(cleanup=False)
    assert job_id.startswith(retries.drain_job_id("sub_rqdash", 0).removesuffix("0"))
    assert scheduled.get_job_count(cleanup=False) == 1
    assert queue.count == 0  # not due yet
    assert StartedJobRegistry(queue.name, connection=rq_redis).get_job_count(cleanup=False) == 0
    assert FailedJobRegistry(queue.name, connection=rq_redis).get_job_count(cleanup=False) == 0

    job = queue.fetch_job(job_id)
    assert job is not None
    assert job.func_name == DRAIN_JOB
    assert job.args == ("sub_rqdash",)  # an id only: nothing secret to display


def test_an_expedited_retry_is_a_queued_drain_rq_counts(
    settings: Settings, rq_redis: redis.Redis
) -> None:
    retries = retry_queue_for(settings, rq_redis)
    retries.schedule([RetryRequest("evt_due", "sub_due", attempt=2, delay_s=600)])
    assert retries.expedite("sub_due") == 1

    queue = Queue(f"{settings.key_prefix}retry", connection=rq_redis)
    scheduler = RQScheduler([queue], connection=rq_redis)  # what a worker's scheduler does
    assert scheduler.acquire_locks()  # type: ignore[no-untyped-call]
    try:
        scheduler.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
    finally:
        scheduler.release_locks()  # type: ignore[no-untyped-call]

    assert queue.count == 1  # the subscription's drain, now; the later one is gone
    (job_id,) = queue.job_ids
    assert job_id.startswith(retries.drain_job_id("sub_due", 0).removesuffix("0"))
    assert ScheduledJobRegistry(queue.name, connection=rq_redis).get_job_count(cleanup=False) == 0  # type: ignore[no-untyped-call]
