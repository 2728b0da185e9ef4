"""The RQ retry queue: scheduling retry jobs, and the retry state that makes them idempotent.

A delivery waiting in the retry queue has `retry:{event}:{sub}` with `last` = attempts made so
far; the job for attempt n runs only while `last` is n-1, and the key is deleted when the
delivery is settled for good, so stale or repeated jobs do nothing. Retry jobs carry ids only
and have deterministic ids, so scheduling the same attempt twice (after a crash) keeps one job.
Each subscription's deliveries in the queue are also in `subretry:{sub}` (event id by due
time, removed when settled), so its queued retries and next retry are read in O(1).

Jobs are enqueued by dotted path (`RETRY_JOB`, `PARK_JOB`); `relay.jobs` keeps the paths of
earlier releases importable, so jobs already queued by an older relay still run.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import redis
from redis.asyncio import Redis
from rq import Queue, Retry
from rq.rate_limit import RateLimit

from relay.store.keys import Keys

RETRY_JOB = "relay.delivery.jobs.retry_delivery"
PARK_JOB = "relay.delivery.jobs.unpark_deliveries"
# RQ re-runs a job whose worker died (after the job's heartbeat expires) this many times.
ABANDONED_JOB_RETRIES = 3
FAILED_JOB_TTL_S = 7 * 86400


@dataclass(frozen=True, slots=True)
class RetryRequest:
    """Run attempt number `attempt` of (event, subscription) in `delay_s` seconds.
    `is_deferral`: the same attempt again after a limit refused it, from inside that
    attempt's own job, so it gets a job id of its own (the running one is deleted when it
    ends)."""

    event_id: str
    subscription_id: str
    attempt: int
    delay_s: float
    is_deferral: bool = False


class RetryStates:
    """The async side of the retry state: how far a delivery got, and marking it settled."""

    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def retry_progress(self, event_id: str, subscription_id: str) -> int | None:
        """Attempts made so far by a delivery in the retry queue; None when it is settled."""
        value = await self._redis.hget(self._keys.retry_state(event_id, subscription_id), "last")
        return None if value is None else int(cast(str, value))

    async def clear_retries(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Mark deliveries (event id, subscription id) settled: their pending jobs do nothing."""
        pairs = list(pairs)
        if not pairs:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(*(self._keys.retry_state(e, s) for e, s in pairs))
            for event_id, subscription_id in pairs:
                pipe.zrem(self._keys.subscription_retries(subscription_id), event_id)
            await pipe.execute()


class RetryQueue:
    """Schedules retry jobs on the RQ queue `keys.retry_queue` (a blocking, bytes client)."""

    def __init__(
        self,
        *,
        redis: redis.Redis,
        keys: Keys,
        job_timeout_s: float,
        state_ttl_s: int,
        concurrency_per_subscription: int = 2,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._queue = Queue(keys.retry_queue, connection=redis)
        self._job_timeout_s = max(1, int(job_timeout_s))
        self._state_ttl_s = state_ttl_s
        self._concurrency = concurrency_per_subscription

    def job_id(
        self, event_id: str, subscription_id: str, attempt: int, *, is_deferral: bool = False
    ) -> str:
        """Deterministic, so scheduling one attempt twice keeps one job; a deferral's ends in
        a random tag joined without `-`, so the id still parses (retry_cleanup.py)."""
        tag = f"w{uuid.uuid4().hex[:12]}" if is_deferral else ""
        return f"{self.job_id_prefix}-{event_id}-{subscription_id}-{attempt}{tag}"

    @property
    def job_id_prefix(self) -> str:
        return self._keys.rq_job_id_prefix

    def schedule(self, requests: Sequence[RetryRequest]) -> None:
        """Record each delivery's progress and schedule its next attempt, in one transaction.

        Each subscription's retries share an RQ rate limit, so one hanging subscriber holds
        at most `concurrency_per_subscription` workers."""
        if not requests:
            return
        now = time.time()
        with self._redis.pipeline(transaction=True) as pipe:
            for request in requests:
                state = self._keys.retry_state(request.event_id, request.subscription_id)
                pipe.hset(state, "last", request.attempt - 1)
                pipe.expire(state, self._state_ttl_s)
                retrying = self._keys.subscription_retries(request.subscription_id)
                pipe.zadd(retrying, {request.event_id: now + request.delay_s})
                pipe.expire(retrying, self._state_ttl_s)
                # RQ keeps the due time in whole seconds, rounded down: round up instead, so
                # a retry never runs before its delay (or the subscriber's Retry-After).
                due_s = now + request.delay_s
                due = datetime.fromtimestamp(math.ceil(due_s) if request.delay_s else due_s, UTC)
                self._queue.enqueue_at(
                    due,
                    RETRY_JOB,
                    request.event_id,
                    request.subscription_id,
                    request.attempt,
                    job_id=self.job_id(
                        request.event_id,
                        request.subscription_id,
                        request.attempt,
                        is_deferral=request.is_deferral,
                    ),
                    job_timeout=self._job_timeout_s,
                    result_ttl=0,
                    failure_ttl=FAILED_JOB_TTL_S,
                    retry=Retry(max=ABANDONED_JOB_RETRIES, interval=[1, 10, 60]),
                    rate_limit=RateLimit(
                        key=self._keys.rate_limit(request.subscription_id),
                        concurrency=self._concurrency,
                    ),
                    pipeline=pipe,
                )
            pipe.execute()

    def park(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Hand deliveries (event id, subscription id) to the retry queue for their first
        attempt as ONE job, which a worker turns into their own attempt jobs (`schedule`).
        A dispatcher parks a slow subscriber's deliveries many per second: one RQ job per
        flush instead of one per delivery keeps that cost off its event loop."""
        if not pairs:
            return
        self._queue.enqueue(
            PARK_JOB,
            [list(pair) for pair in pairs],
            job_id=f"{self.job_id_prefix}-park-{uuid.uuid4().hex}",
            job_timeout=max(60, self._job_timeout_s),
            result_ttl=0,
            failure_ttl=FAILED_JOB_TTL_S,
            retry=Retry(max=ABANDONED_JOB_RETRIES, interval=[1, 10, 60]),
        )

    def expedite(self, subscription_id: str) -> int:
        """Make every scheduled retry of this subscription due now (after it was disabled, so
        they record their drop promptly); returns how many."""
        due = int(time.time())
        found = [
            member
            for member, _score in self._redis.zscan_iter(
                self._keys.rq_scheduled, match=f"{self.job_id_prefix}-*-{subscription_id}-*"
            )
        ]
        if found:
            self._redis.zadd(self._keys.rq_scheduled, dict.fromkeys(found, due), xx=True)
        return len(found)
