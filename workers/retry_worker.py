"""`relay worker`: an RQ worker for the retry queue, with RQ's scheduler.

A SimpleWorker runs each job in this process (no fork per job: ~340 jobs/s against ~115 with
forking). Scale out by running more `relay worker` processes; any one of them runs the
scheduler (RQ hands the lock over if it dies). Each subscription's retries share an RQ rate
limit (see RetryQueue), so a hanging subscriber holds at most two workers at a time.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from rq import Queue, SimpleWorker
from rq.timeouts import TimerDeathPenalty

from relay.connection import sync_redis
from relay.jobs import JobContext, job_context
from relay.processes import die_with_parent
from relay.settings import Settings
from relay.store.keys import Keys

log = logging.getLogger("relay.retry_worker")

# Maintenance finds abandoned jobs (a worker killed mid-job) and restarts this worker's RQ
# scheduler process if it died, e.g. of a Redis restart: until then no retry comes due.
MAINTENANCE_INTERVAL_S = 10
# An idle worker blocks on the queue for worker_ttl - 15 s and runs maintenance only between
# blocks; RQ's default TTL (420 s) would leave a dead scheduler down for up to 7 minutes.
WORKER_TTL_S = 20


class RetryWorker(SimpleWorker):
    """Runs retry jobs with the relay's settings and Redis client in their context."""

    # A timer, not SIGALRM, bounds a job: works in any thread (tests, embedding).
    death_penalty_class = TimerDeathPenalty

    def __init__(self, *args: Any, context: JobContext, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._context = context

    def execute_job(self, job: Any, queue: Any) -> None:
        with job_context(self._context):
            super().execute_job(job, queue)

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is threading.main_thread():
            super()._install_signal_handlers()  # type: ignore[no-untyped-call]


def run_retry_worker(
    settings: Settings, *, burst: bool = False, maintenance_interval_s: int = MAINTENANCE_INTERVAL_S
) -> None:
    """Work the retry queue until SIGTERM/SIGINT (or, with `burst`, until it is empty; due
    scheduled retries are moved to the queue first)."""
    client = sync_redis(settings.require_redis_url())
    try:
        queue = Queue(Keys(settings.key_prefix).retry_queue, connection=client)
        worker = RetryWorker(
            [queue],
            connection=client,
            context=JobContext(settings=settings, rq_redis=client),
            maintenance_interval=maintenance_interval_s,
            worker_ttl=WORKER_TTL_S,
            log_job_description=False,
        )
        if not burst:
            _scheduler_dies_with_worker()
        log.info("retry worker started", extra={"queue": queue.name, "burst": burst})
        worker.work(burst=burst, with_scheduler=True, logging_level=None)
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
