"""The RQ worker class of the retry queue (run by `relay worker` with RQ's scheduler).

A SimpleWorker runs each job in this process: forking per job costs about three times as much
(BENCHMARKS.md, "Retry worker"). Scale out by running more `relay worker` processes; any one
of them runs the scheduler (RQ hands the lock over if it dies). Each subscription's retries
share an RQ rate limit (see RetryQueue), so a hanging subscriber holds at most two workers.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from rq import SimpleWorker
from rq.timeouts import TimerDeathPenalty

from relay.delivery.jobs import JobContext, job_context

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
