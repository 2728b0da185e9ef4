"""RQ jobs by dotted path: the paths of jobs queued by relay 0.1 still resolve and run."""

from __future__ import annotations

import redis
from rq import Queue
from rq.job import JobStatus

from relay.settings import Settings
from relay.store.retry_queue import PARK_JOB, RETRY_JOB
from workers.retry_worker import run_retry_worker


def test_jobs_are_queued_under_the_delivery_package() -> None:
    assert RETRY_JOB == "relay.delivery.jobs.retry_delivery"
    assert PARK_JOB == "relay.delivery.jobs.unpark_deliveries"


def test_a_retry_job_queued_under_the_old_path_still_runs(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.require_redis_url())
    try:
        queue = Queue(f"{settings.key_prefix}retry", connection=client)
        # An attempt of a delivery that is not waiting in the retry queue: the job runs,
        # finds nothing to do and says so.
        job = queue.enqueue("relay.jobs.retry_delivery", "evt_old", "sub_old", 2)
        run_retry_worker(settings, burst=True)
        job.refresh()  # type: ignore[no-untyped-call]
        assert job.get_status() == JobStatus.FINISHED
        assert job.return_value() == "skipped: already settled"
    finally:
        client.close()
