"""`relay worker`: the RQ retry worker, with RQ's scheduler, until SIGTERM/SIGINT.

It runs `RELAY_WORKER_CONCURRENCY` RQ workers in threads of one process (the first, in the
main thread, also runs RQ's scheduler and the retry sweep), all handing their jobs' work to
one event loop with one Redis client and HTTP pool (`JobRunner`). Each job drains one
subscription, and one drain per subscription runs at a time, so a hanging subscriber holds
one thread while the others drain everyone else.

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
from collections.abc import Callable
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
    scheduled retries are moved to the queue first, and one thread works)."""
    client = sync_redis(settings.require_redis_url())
    runner = JobRunner(settings, client)  # one loop, Redis client and HTTP pool for all jobs
    keys = Keys(settings.key_prefix)
    try:
        queue = Queue(keys.retry_queue, connection=client)

        def new_worker(*, sweeps: bool = True) -> SurvivingRetryWorker:
            return SurvivingRetryWorker(
                [queue],
                connection=client,
                context=JobContext(settings=settings, rq_redis=client, runner=runner),
                keys=keys,
                sweeps=sweeps,
                maintenance_interval=maintenance_interval_s,
                worker_ttl=WORKER_TTL_S,
                log_job_description=False,
            )

        threads = 1 if burst else settings.worker_concurrency
        log.info(
            "retry worker started", extra={"queue": queue.name, "burst": burst, "threads": threads}
        )
        if burst:
            new_worker().work(burst=True, with_scheduler=True, logging_level=None)
            return
        _scheduler_dies_with_worker()
        helpers = HelperThreads(lambda: new_worker(sweeps=False), threads - 1)
        helpers.start()
        try:
            _work_until_stopped(new_worker)
        finally:
            helpers.stop(timeout_s=settings.delivery_timeout_s + 10)
    finally:
        try:
            runner.close()
        finally:
            client.close()


class HelperThreads:
    """The retry worker's other job threads: each runs RQ workers from `new_worker` (a fresh
    one after a loop that ended on an error) until `stop`, which lets their jobs finish."""

    def __init__(self, new_worker: Callable[[], SurvivingRetryWorker], count: int) -> None:
        self._new_worker = new_worker
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._workers: list[SurvivingRetryWorker] = []
        self._threads = [
            threading.Thread(target=self._run, name=f"retry-jobs-{n + 2}", daemon=True)
            for n in range(count)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, *, timeout_s: float) -> None:
        self._stopping.set()
        with self._lock:
            for worker in self._workers:
                worker.stop_soon()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        delay_s = 1.0
        while not self._stopping.is_set():
            worker = self._new_worker()
            with self._lock:
                if self._stopping.is_set():
                    return
                self._workers.append(worker)
            try:
                worker.work(burst=False, with_scheduler=False, logging_level=None)
            except redis.RedisError as exc:
                log.warning("retry job thread stopped by a Redis error", extra={"error": str(exc)})
            except Exception:
                log.exception("retry job thread failed; starting a new one")
            with self._lock:
                self._workers.remove(worker)
            if self._stopping.wait(delay_s):
                return
            delay_s = min(delay_s * 2, REDIS_BACKOFF_MAX_S)


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
        if self._context.runner is not None:
            self._context.runner.stopping.set()  # the running drains end early
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def stop_soon(self) -> None:
        """Stop after the running job, or within a dequeue timeout when idle (from any
        thread: RQ's own stop request raises in the calling thread)."""
        self.stop_was_requested = True
        self._stop_requested = True

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> Any:
        if timeout is None:  # burst
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        while not self._stop_requested:  # RQ's idle wait never looks at a stop request
            result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time=timeout)
            if result is not None:
                return result
        return None

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
