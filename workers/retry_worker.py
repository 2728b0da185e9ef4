"""`relay worker`: the RQ retry worker, with RQ's scheduler, until SIGTERM/SIGINT.

RQ's work loop quits on the first unexpected Redis error, e.g. an OOM refusal of its own
heartbeat. Here that is survived: heartbeat and maintenance errors are logged and retried,
a job is not started while Redis refuses writes (it would fail halfway and spend its RQ
retries), and should the loop still end without a stop request, a fresh worker takes over
after a back-off (jobs the old one held come back through RQ's intermediate queue).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

import redis
from rq import Queue

from relay.delivery.jobs import JobContext, JobRunner
from relay.delivery.retry_worker import MAINTENANCE_INTERVAL_S, WORKER_TTL_S, RetryWorker
from relay.processes import die_with_parent
from relay.settings import Settings
from relay.store.connection import sync_redis
from relay.store.keys import Keys
from relay.store.server import refuses_writes

log = logging.getLogger("relay.retry_worker")


def run_retry_worker(
    settings: Settings, *, burst: bool = False, maintenance_interval_s: int = MAINTENANCE_INTERVAL_S
) -> None:
    """Work the retry queue until SIGTERM/SIGINT (or, with `burst`, until it is empty; due
    scheduled retries are moved to the queue first)."""
    client = sync_redis(settings.require_redis_url())
    runner = JobRunner(settings, client)  # one loop, Redis client and HTTP pool for all jobs
    keys = Keys(settings.key_prefix)
    try:
        queue = Queue(keys.retry_queue, connection=client)

        def new_worker() -> SurvivingRetryWorker:
            return SurvivingRetryWorker(
                [queue],
                connection=client,
                context=JobContext(settings=settings, rq_redis=client, runner=runner),
                keys=keys,
                maintenance_interval=maintenance_interval_s,
                worker_ttl=WORKER_TTL_S,
                log_job_description=False,
            )

        if not burst:
            _scheduler_dies_with_worker()
        log.info("retry worker started", extra={"queue": queue.name, "burst": burst})
        if burst:
            new_worker().work(burst=True, with_scheduler=True, logging_level=None)
        else:
            _work_until_stopped(new_worker)
    finally:
        try:
            runner.close()
        finally:
            client.close()


REDIS_BACKOFF_MAX_S = 30.0


class SurvivingRetryWorker(RetryWorker):
    """A RetryWorker whose loop outlives Redis errors (OOM refusals, lost connections) in its
    own bookkeeping: each is logged and retried on the next round instead of ending it."""

    def __init__(self, *args: Any, keys: Keys, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keys = keys
        self.stop_was_requested = False

    def request_stop(self, signum: Any, frame: Any) -> None:
        self.stop_was_requested = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if pipeline is not None:  # part of RQ's own transaction: its caller handles errors
            super().heartbeat(timeout, pipeline)
            return
        try:
            super().heartbeat(timeout, pipeline)
        except redis.RedisError as exc:
            log.warning("worker heartbeat not written; retrying", extra={"error": str(exc)})

    def run_maintenance_tasks(self) -> None:
        try:
            super().run_maintenance_tasks()
        except redis.RedisError as exc:
            log.warning("worker maintenance failed; retrying", extra={"error": str(exc)})

    def execute_job(self, job: Any, queue: Any) -> None:
        self._wait_for_writable_redis()
        super().execute_job(job, queue)

    def _wait_for_writable_redis(self) -> None:
        """Back off while Redis refuses writes (out of memory): a job started now would fail
        halfway. A stop request ends the wait (RQ hands the dequeued job back later)."""
        delay_s = 0.5
        while True:
            try:
                if not refuses_writes(self.connection, self._keys):
                    return
            except redis.RedisError:
                return  # not a memory refusal: the job's own Redis calls report it
            log.warning(
                "Redis is out of memory; waiting before running the next retry",
                extra={"delay_s": delay_s},
            )
            time.sleep(delay_s)
            delay_s = min(delay_s * 2, REDIS_BACKOFF_MAX_S)


def _work_until_stopped(new_worker: Any) -> None:
    """Run workers from `new_worker()` until one is asked to stop; a worker whose loop ended
    otherwise (an error RQ does not survive) is replaced after a growing back-off."""
    delay_s = 1.0
    stop = threading.Event()
    while True:
        worker = new_worker()
        started = time.monotonic()
        try:
            worker.work(burst=False, with_scheduler=True, logging_level=None)
        except redis.RedisError as exc:  # RQ's start-up or teardown writes
            log.warning("retry worker stopped by a Redis error", extra={"error": str(exc)})
        if worker.stop_was_requested:
            return
        if time.monotonic() - started > 60:
            delay_s = 1.0
        log.warning("retry worker loop ended; starting a new one", extra={"delay_s": delay_s})
        handlers = _stop_on_signals(stop)
        stop.wait(delay_s)
        _restore(handlers)
        if stop.is_set():
            return
        delay_s = min(delay_s * 2, REDIS_BACKOFF_MAX_S)


def _stop_on_signals(stop: threading.Event) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}


def _restore(handlers: dict[int, Any]) -> None:
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


_at_fork_hooked = False


def _scheduler_dies_with_worker() -> None:
    """RQ forks its scheduler from this process: make every such child get SIGTERM when the
    worker dies, even by kill -9, so it stops (releasing its lock) instead of living on
    unsupervised. Once per process; the hook lasts as long as the process."""
    global _at_fork_hooked
    if not _at_fork_hooked:
        os.register_at_fork(after_in_child=die_with_parent)
        _at_fork_hooked = True
