"""`relay worker`: the RQ retry worker, with RQ's scheduler, until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import os

from rq import Queue

from relay.delivery.jobs import JobContext, JobRunner
from relay.delivery.retry_worker import MAINTENANCE_INTERVAL_S, WORKER_TTL_S, RetryWorker
from relay.processes import die_with_parent
from relay.settings import Settings
from relay.store.connection import sync_redis
from relay.store.keys import Keys

log = logging.getLogger("relay.retry_worker")


def run_retry_worker(
    settings: Settings, *, burst: bool = False, maintenance_interval_s: int = MAINTENANCE_INTERVAL_S
) -> None:
    """Work the retry queue until SIGTERM/SIGINT (or, with `burst`, until it is empty; due
    scheduled retries are moved to the queue first)."""
    client = sync_redis(settings.require_redis_url())
    runner = JobRunner(settings, client)  # one loop, Redis client and HTTP pool for all jobs
    try:
        queue = Queue(Keys(settings.key_prefix).retry_queue, connection=client)
        worker = RetryWorker(
            [queue],
            connection=client,
            context=JobContext(settings=settings, rq_redis=client, runner=runner),
            maintenance_interval=maintenance_interval_s,
            worker_ttl=WORKER_TTL_S,
            log_job_description=False,
        )
        if not burst:
            _scheduler_dies_with_worker()
        log.info("retry worker started", extra={"queue": queue.name, "burst": burst})
        worker.work(burst=burst, with_scheduler=True, logging_level=None)
    finally:
        try:
            runner.close()
        finally:
            client.close()


_at_fork_hooked = False


def _scheduler_dies_with_worker() -> None:
    """RQ forks its scheduler from this process: make every such child get SIGTERM when the
    worker dies, even by kill -9, so it stops (releasing its lock) instead of living on
    unsupervised. Once per process; the hook lasts as long as the process."""
    global _at_fork_hooked
    if not _at_fork_hooked:
        os.register_at_fork(after_in_child=die_with_parent)
        _at_fork_hooked = True
