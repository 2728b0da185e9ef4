"""The RQ worker class of the retry queue (run by `relay worker` with RQ's scheduler).

A SimpleWorker runs each job in this process: forking per job costs about three times as much
(BENCHMARKS.md, "Retry worker"). Scale out by running more `relay worker` processes; any one
of them runs the scheduler (RQ hands the lock over if it dies). One drain job of a
subscription runs at a time (an RQ rate limit, see RetryQueue), so a hanging subscriber holds
one worker thread.

Each worker beats every second (store/heartbeats.py, `SyncLiveness`) from a thread, so the
beat goes on while a job runs. Its maintenance hands the started jobs of a worker silent for
DEAD_AFTER_S back to RQ as abandoned (retried, as RQ does when their timeout expires): a
worker killed mid-job delays its job by seconds, not by the job timeout plus a minute.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, cast

from rq import SimpleWorker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.scheduler import RQScheduler
from rq.timeouts import TimerDeathPenalty

from relay.delivery.jobs import JobContext, job_context, retry_queue_for
from relay.store.heartbeats import SyncLiveness
from relay.store.keys import Keys

log = logging.getLogger("relay.retry_worker")

# Maintenance finds abandoned jobs (a worker killed mid-job) and restarts this worker's RQ
# scheduler process if it died, e.g. of a Redis restart: until then no retry comes due.
MAINTENANCE_INTERVAL_S = 2
# An idle worker blocks on the queue for worker_ttl - 15 s and runs maintenance only between
# blocks; RQ's default TTL (420 s) would leave a dead scheduler down for up to 7 minutes.
WORKER_TTL_S = 18
BEAT_EVERY_S = 1.0
DEAD_AFTER_S = 5.0  # a worker silent this long is dead: its started jobs are re-run
LIVENESS_FORGET_S = 86400.0
# How often the scheduler process moves due jobs to the queue (RQ's own: once a second).
SCHEDULER_POLL_S = 0.1


class PromptScheduler(RQScheduler):
    """RQ's scheduler, queueing due jobs every SCHEDULER_POLL_S instead of every second.

    A drain is scheduled for the whole second its first retry falls in (RetryQueue), and
    RQ's scheduler looked for due jobs once a second at a phase of its own, so that retry
    waited 0-1 s for the tick on top of its delay. The heartbeat and the locks keep RQ's
    one-second cadence (`interval`, whose lock TTLs must stay whole seconds); only the look
    for due jobs, one ZRANGEBYSCORE per queue, runs more often."""

    def work(self) -> None:  # RQScheduler.work, with the due-job look on its own cadence
        self._install_signal_handlers()  # type: ignore[no-untyped-call]
        self.register_birth()
        next_beat = 0.0
        while True:
            if self._stop_requested:
                self.stop()  # type: ignore[no-untyped-call]
                break
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + self.interval
                if self.should_reacquire_locks:
                    self.acquire_locks()  # type: ignore[no-untyped-call]
                self.heartbeat()  # type: ignore[no-untyped-call]
            self.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
            time.sleep(SCHEDULER_POLL_S)


class RetryWorker(SimpleWorker):
    """Runs retry jobs with the relay's settings and Redis client in their context."""

    # A timer, not SIGALRM, bounds a job: works in any thread (tests, embedding).
    death_penalty_class = TimerDeathPenalty

    def __init__(self, *args: Any, context: JobContext, sweeps: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._context = context
        self._sweeps = sweeps  # one thread per process re-enqueues overdue drains
        self._liveness = SyncLiveness(
            client=context.rq_redis, keys=Keys(context.settings.key_prefix), role="worker"
        )
        self._beating = threading.Event()

    def work(self, *args: Any, **kwargs: Any) -> bool:
        self._liveness.beat(self.name, now=time.time())
        self._beating.set()
        beater = threading.Thread(target=self._beat_forever, name="liveness", daemon=True)
        beater.start()
        try:
            return bool(super().work(*args, **kwargs))
        finally:
            self._beating.clear()
            beater.join(timeout=BEAT_EVERY_S + 5)
            try:
                self._liveness.forget([self.name])  # a clean stop: nothing to take over
            except Exception as exc:
                log.warning("worker liveness not removed", extra={"error": str(exc)})

    def execute_job(self, job: Any, queue: Any) -> None:
        with job_context(self._context):
            super().execute_job(job, queue)

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        """RQ's own (rq 3.0 `BaseWorker._start_scheduler`), with the PromptScheduler."""
        self.scheduler = PromptScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.scheduler.acquire_locks()  # type: ignore[no-untyped-call]
        if not self.scheduler.acquired_locks:
            return
        if not burst:
            self.scheduler.start()  # type: ignore[no-untyped-call]
            return
        try:
            self.scheduler.register_birth()
            self.scheduler.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
        finally:
            self.scheduler.release_locks()  # type: ignore[no-untyped-call]
            self.scheduler.register_death()

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()  # type: ignore[no-untyped-call]
        try:
            self._take_over_dead_workers_jobs()
        except Exception:
            log.exception("taking over a dead worker's jobs failed; next maintenance retries")
        if self._sweeps:
            try:
                swept = retry_queue_for(self._context.settings, self._context.rq_redis).sweep(
                    now=time.time()
                )
            except Exception:
                log.exception("retry sweep failed; next maintenance retries")
            else:
                if swept:
                    log.warning("re-enqueued overdue retry drains", extra={"subscriptions": swept})

    def _beat_forever(self) -> None:
        while self._beating.is_set():
            try:
                self._liveness.beat(self.name, now=time.time())
            except Exception as exc:  # Redis down: RQ's own loop reports and retries
                log.warning("worker beat not written", extra={"error": str(exc)})
            time.sleep(BEAT_EVERY_S)

    def _take_over_dead_workers_jobs(self) -> None:
        """Mark the started jobs of silent workers expired, then let RQ's registry cleanup
        treat them as abandoned (retry or fail them, free their rate-limit slots)."""
        client = self._context.rq_redis
        for queue in self.queues:
            registry = StartedJobRegistry(queue=queue)
            members = cast("list[bytes]", client.zrange(registry.key, 0, -1))
            if not members:
                continue
            with client.pipeline(transaction=False) as pipe:
                for member in members:
                    job_id = registry.parse_job_id(member.decode())
                    pipe.hget(Job.key_for(job_id), "worker_name")
                owners = [(name or b"").decode() for name in pipe.execute()]
            holders = sorted({owner for owner in owners if owner and owner != self.name})
            dead = self._liveness.silent(holders, now=time.time(), after_s=DEAD_AFTER_S)
            abandoned = [m for m, owner in zip(members, owners, strict=True) if owner in dead]
            if abandoned:
                client.zadd(registry.key, dict.fromkeys(abandoned, 0), xx=True)
                registry.cleanup(timestamp=1)
                log.info(
                    "re-running the jobs of a dead worker",
                    extra={"dead_workers": sorted(dead), "jobs": len(abandoned)},
                )
        self._liveness.prune(older_than=time.time() - LIVENESS_FORGET_S)

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is threading.main_thread():
            super()._install_signal_handlers()  # type: ignore[no-untyped-call]
