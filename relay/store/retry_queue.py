"""The RQ retry queue: deliveries waiting for their next attempt, and the RQ jobs that run them.

A delivery waiting in the retry queue has `retry:{event}:{sub}` with `last` = attempts made so
far, and is in `subretry:{sub}` (event id by due time): that sorted set is the queue. RQ is
its clock: for each subscription with retries RQ holds a *drain job*, scheduled for the
earliest due time, which attempts every delivery of that subscription that is due, many at
once, and settles them in batches (relay/delivery/jobs.py). One RQ job per subscription and
second instead of one per delivery: RQ's own bookkeeping cost about two thirds of a retry
(BENCHMARKS.md, "Recovery storm"). Only one drain of a subscription runs at a time (an RQ
rate limit per subscription), so a hanging subscriber holds one worker slot, never all.

Drain jobs of a later second have deterministic ids (`…-drain-{sub}-{second}`), so the many
retries a dispatcher schedules for the same second share one job; a job of the current second
or earlier is running or about to, so new work never reuses its id (it would be deleted with
the running job). `retrysubs` holds each subscription with retries by when its next drain is
due: status counts retries from it in O(subscriptions), and the worker's sweep re-enqueues a
drain for any subscription overdue by SWEEP_GRACE_S (a drain job that failed for good).

A delivery stays due while a drain attempts it (`retryrun` counts it as running until its
settle or its lease's end): a drain killed mid-batch leaves it due for the job's re-run.

Jobs are enqueued by dotted path (`DRAIN_JOB`); `relay.jobs` and `RETRY_JOB` / `PARK_JOB`
keep the per-delivery jobs of earlier releases runnable, so jobs already queued by an older
relay still run.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import redis
from redis.asyncio import Redis
from rq import Queue, Retry
from rq.rate_limit import RateLimit

from relay.store.keys import Keys

DRAIN_JOB = "relay.delivery.jobs.drain_retries"
RETRY_JOB = "relay.delivery.jobs.retry_delivery"  # one delivery per job (relay 0.1)
PARK_JOB = "relay.delivery.jobs.unpark_deliveries"  # relay 0.1
# RQ re-runs a job whose worker died (after the job's heartbeat expires) this many times.
ABANDONED_JOB_RETRIES = 3
FAILED_JOB_TTL_S = 7 * 86400
SWEEP_GRACE_S = 30.0  # a subscription whose drain is this overdue gets a new drain job
SWEEP_BATCH = 500


@dataclass(frozen=True, slots=True)
class RetryRequest:
    """Run attempt number `attempt` of (event, subscription) in `delay_s` seconds.
    `is_deferral`: the same attempt again after a limit refused it (kept for callers; a
    deferral is scheduled like any other request)."""

    event_id: str
    subscription_id: str
    attempt: int
    delay_s: float
    is_deferral: bool = False


@dataclass(frozen=True, slots=True)
class Claimed:
    """A due delivery a drain now holds: attempt number `attempt` of `event_id`, or, when
    `attempt` is None, one already settled (its entry was stale)."""

    event_id: str
    attempt: int | None


@dataclass(frozen=True, slots=True)
class RetryCounts:
    """Deliveries in the retry queue, by where they wait."""

    scheduled: int  # waiting for their time
    due: int  # their time has come: waiting for a drain (or for their subscription's turn)
    running: int  # being attempted now
    subscriptions: dict[str, int]  # every subscription's deliveries in the queue
    due_by_subscription: dict[str, int]  # due (running included), per subscription


# KEYS: subretry:{sub}, retryrun; ARGV: now, lease end, limit, subscription id, retry-state
# key prefix. Up to `limit` due deliveries, recorded in retryrun (for the counts) until the
# lease ends; returns event id, attempts made so far (false: settled, and removed) pairs.
# Due entries stay due while they are attempted: only one drain of a subscription runs at a
# time, and a drain killed mid-batch leaves them due for the next one (at least once).
_CLAIM_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, event_id in ipairs(due) do
  local last = redis.call('HGET', ARGV[5] .. event_id .. ':' .. ARGV[4], 'last')
  if last then
    redis.call('ZADD', KEYS[2], ARGV[2], event_id .. ':' .. ARGV[4])
  else
    redis.call('ZREM', KEYS[1], event_id)
  end
  out[#out + 1] = event_id
  out[#out + 1] = last
end
return out
"""

# KEYS: subretry:{sub}, retrysubs; ARGV: subscription id. After a drain: the subscription's
# earliest due time becomes its entry in retrysubs (or it leaves it); returns that time.
_FINISH_SCRIPT = """
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #first == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return false
end
redis.call('ZADD', KEYS[2], first[2], ARGV[1])
return first[2]
"""

# KEYS: retryrun; ARGV: retry-state key prefix, subscription-retries key prefix, then event id,
# subscription id pairs. Each delivery settled: its state, queue entry and running mark go.
_CLEAR_SCRIPT = """
local members = {}
for i = 3, #ARGV, 2 do
  local event_id, subscription_id = ARGV[i], ARGV[i + 1]
  redis.call('DEL', ARGV[1] .. event_id .. ':' .. subscription_id)
  redis.call('ZREM', ARGV[2] .. subscription_id, event_id)
  members[#members + 1] = event_id .. ':' .. subscription_id
end
for i = 1, #members, 1000 do
  redis.call('ZREM', KEYS[1], unpack(members, i, math.min(i + 999, #members)))
end
return #members
"""

# KEYS: retrysubs, retryrun; ARGV: now, subscription-retries key prefix, then subscription
# ids. Per subscription: deliveries due and in the queue; then the running count.
_COUNT_SCRIPT = """
local out = {}
for i = 3, #ARGV do
  local key = ARGV[2] .. ARGV[i]
  out[#out + 1] = redis.call('ZCOUNT', key, '-inf', ARGV[1])
  out[#out + 1] = redis.call('ZCARD', key)
end
out[#out + 1] = redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[1], '+inf')
return out
"""


class RetryStates:
    """The async side of the retry queue: how far a delivery got, claiming due deliveries
    for a drain, marking them settled, and counting them."""

    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._claim = redis.register_script(_CLAIM_SCRIPT)
        self._finish = redis.register_script(_FINISH_SCRIPT)
        self._count = redis.register_script(_COUNT_SCRIPT)
        self._clear = redis.register_script(_CLEAR_SCRIPT)

    async def retry_progress(self, event_id: str, subscription_id: str) -> int | None:
        """Attempts made so far by a delivery in the retry queue; None when it is settled."""
        value = await self._redis.hget(self._keys.retry_state(event_id, subscription_id), "last")
        return None if value is None else int(cast(str, value))

    async def claim_due(
        self, subscription_id: str, *, now: float, lease_s: float, limit: int
    ) -> list[Claimed]:
        """Up to `limit` of the subscription's due deliveries, counted as running for up to
        `lease_s` (one script call); stale entries (settled meanwhile) come back with
        `attempt` None, removed."""
        keys = self._keys
        reply = cast(
            "list[str | None]",
            await self._claim(
                keys=[keys.subscription_retries(subscription_id), keys.retries_running],
                args=[
                    repr(now),
                    repr(now + lease_s),
                    limit,
                    subscription_id,
                    keys.retry_state("", "").removesuffix(":"),
                ],
            ),
        )
        claimed = []
        for i in range(0, len(reply), 2):
            last = reply[i + 1]
            claimed.append(Claimed(cast(str, reply[i]), None if last is None else int(last) + 1))
        return claimed

    async def unclaim(self, subscription_id: str, event_ids: Sequence[str]) -> None:
        """Claimed deliveries a drain did not attempt: no longer running (still due)."""
        if event_ids:
            members = [f"{event_id}:{subscription_id}" for event_id in event_ids]
            await self._redis.zrem(self._keys.retries_running, *members)

    async def next_due(self, subscription_id: str) -> float | None:
        """When the subscription's earliest queued retry is due; None when it has none."""
        key = self._keys.subscription_retries(subscription_id)
        first = cast(
            "list[tuple[str, float]]", await self._redis.zrange(key, 0, 0, withscores=True)
        )
        return float(first[0][1]) if first else None

    async def finish_drain(self, subscription_id: str) -> float | None:
        """After a drain: the subscription's earliest due time (None: nothing left), recorded
        in `retrysubs` for the counts and the sweep."""
        keys = self._keys
        reply = await self._finish(
            keys=[keys.subscription_retries(subscription_id), keys.retrying_subscriptions],
            args=[subscription_id],
        )
        return None if reply is None else float(reply)

    async def counts(self, *, now: float) -> RetryCounts:
        """Every queued delivery by where it waits; one script call over the subscriptions
        with retries."""
        keys = self._keys
        subscription_ids = cast(
            "list[str]", await self._redis.zrange(keys.retrying_subscriptions, 0, -1)
        )
        reply = cast(
            "list[int]",
            await self._count(
                keys=[keys.retrying_subscriptions, keys.retries_running],
                args=[repr(now), keys.subscription_retries(""), *subscription_ids],
            ),
        )
        running = int(reply[-1])
        due = sum(int(reply[i]) for i in range(0, len(reply) - 1, 2))
        total = sum(int(reply[i]) for i in range(1, len(reply) - 1, 2))
        per_subscription = {
            sub_id: int(reply[2 * i + 1])
            for i, sub_id in enumerate(subscription_ids)
            if int(reply[2 * i + 1])
        }
        due_by_subscription = {
            sub_id: int(reply[2 * i])
            for i, sub_id in enumerate(subscription_ids)
            if int(reply[2 * i])
        }
        return RetryCounts(
            scheduled=total - due,
            due=max(0, due - running),
            running=running,
            subscriptions=per_subscription,
            due_by_subscription=due_by_subscription,
        )

    async def clear_retries(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Mark deliveries (event id, subscription id) settled: out of the queue for good (one
        script call, however many subscriptions the pairs name)."""
        args = [part for pair in pairs for part in pair]
        if not args:
            return
        keys = self._keys
        await self._clear(
            keys=[keys.retries_running],
            args=[
                keys.retry_state("", "").removesuffix(":"),
                keys.subscription_retries(""),
                *args,
            ],
        )


class RetryQueue:
    """Schedules retries on the RQ queue `keys.retry_queue` (a blocking, bytes client)."""

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
        self._concurrency = concurrency_per_subscription  # of relay 0.1's per-delivery jobs

    def job_id(
        self, event_id: str, subscription_id: str, attempt: int, *, is_deferral: bool = False
    ) -> str:
        """The id of relay 0.1's job for one attempt (still parsed by retry_cleanup.py)."""
        tag = f"w{uuid.uuid4().hex[:12]}" if is_deferral else ""
        return f"{self.job_id_prefix}-{event_id}-{subscription_id}-{attempt}{tag}"

    @property
    def job_id_prefix(self) -> str:
        return self._keys.rq_job_id_prefix

    def drain_job_id(self, subscription_id: str, second: int | None) -> str:
        """A drain job's id: one per subscription and later second, or unique (None)."""
        tail = str(second) if second is not None else f"n{uuid.uuid4().hex[:16]}"
        return f"{self.job_id_prefix}-drain-{subscription_id}-{tail}"

    def schedule(self, requests: Sequence[RetryRequest]) -> None:
        """Record each delivery's progress and due time and make sure a drain job of its
        subscription runs by then, in one transaction."""
        if not requests:
            return
        now = time.time()
        earliest: dict[str, float] = {}
        keys = self._keys
        with self._redis.pipeline(transaction=True) as pipe:
            for request in requests:
                sub_id = request.subscription_id
                state = keys.retry_state(request.event_id, sub_id)
                pipe.hset(state, "last", request.attempt - 1)
                pipe.expire(state, self._state_ttl_s)
                due_s = now + max(0.0, request.delay_s)
                retrying = keys.subscription_retries(sub_id)
                pipe.zadd(retrying, {request.event_id: due_s})
                pipe.expire(retrying, self._state_ttl_s)
                earliest[sub_id] = min(due_s, earliest.get(sub_id, due_s))
            pipe.zrem(
                keys.retries_running, *(f"{r.event_id}:{r.subscription_id}" for r in requests)
            )
            for sub_id, due_s in earliest.items():
                pipe.zadd(keys.retrying_subscriptions, {sub_id: due_s}, lt=True)
                if due_s > now:
                    self._enqueue_drain_at(pipe, sub_id, due_s, now=now)
            pipe.execute()
        for sub_id, due_s in earliest.items():
            if due_s <= now:  # RQ enqueues a rate-limited job at once only outside a pipeline
                self.schedule_drain(sub_id, due_s, now=now)

    def schedule_drain(self, subscription_id: str, due_s: float, *, now: float) -> None:
        """A drain job of the subscription at `due_s`; when that is now, at once, behind the
        jobs already queued. Should this process die between writing a delivery and its drain
        job, the sweep enqueues the drain (at least once)."""
        if due_s > now:
            with self._redis.pipeline(transaction=True) as pipe:
                self._enqueue_drain_at(pipe, subscription_id, due_s, now=now)
                pipe.execute()
            return
        self._queue.enqueue(
            DRAIN_JOB,
            subscription_id,
            job_id=self.drain_job_id(subscription_id, None),
            **self._drain_options(subscription_id),
        )

    def _enqueue_drain_at(
        self, pipe: redis.client.Pipeline, subscription_id: str, due_s: float, *, now: float
    ) -> None:
        # RQ keeps the due time in whole seconds: take the second the retry falls in (the drain
        # waits out the rest, so a retry runs neither before its delay nor a second late),
        # but never the current one: a second not yet begun is never a running job's, so
        # sharing its id is safe.
        second = max(math.floor(due_s), math.floor(now) + 1)
        self._queue.enqueue_at(
            datetime.fromtimestamp(second, UTC),
            DRAIN_JOB,
            subscription_id,
            job_id=self.drain_job_id(subscription_id, second),
            pipeline=pipe,
            **self._drain_options(subscription_id),
        )

    def _drain_options(self, subscription_id: str) -> dict[str, Any]:
        return {
            "job_timeout": self._job_timeout_s,
            "result_ttl": 0,
            "failure_ttl": FAILED_JOB_TTL_S,
            "retry": Retry(max=ABANDONED_JOB_RETRIES, interval=[1, 10, 60]),
            "rate_limit": RateLimit(key=self._keys.drain_limit(subscription_id), concurrency=1),
        }

    def park(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Hand deliveries (event id, subscription id) to the retry queue for their first
        attempt, due now (a dispatcher parks a slow subscriber's deliveries)."""
        self.schedule([RetryRequest(event_id, sub_id, 1, 0.0) for event_id, sub_id in pairs])

    def sweep(self, *, now: float) -> int:
        """Enqueue a drain for every subscription whose drain is SWEEP_GRACE_S overdue (its
        job failed for good, or was lost); returns how many."""
        keys = self._keys
        overdue = cast(
            "list[bytes]",
            self._redis.zrangebyscore(
                keys.retrying_subscriptions, "-inf", now - SWEEP_GRACE_S, start=0, num=SWEEP_BATCH
            ),
        )
        if not overdue:
            return 0
        for member in overdue:
            sub_id = member.decode()
            self._redis.zadd(keys.retrying_subscriptions, {sub_id: now}, xx=True)
            self.schedule_drain(sub_id, now, now=now)
        return len(overdue)

    def expedite(self, subscription_id: str) -> int:
        """Make every queued retry of this subscription due now (after it was disabled, so
        they record their drop promptly), replacing its later drain jobs by one now; returns
        how many retries."""
        now = time.time()
        retrying = self._keys.subscription_retries(subscription_id)
        members = cast("list[bytes]", self._redis.zrange(retrying, 0, -1))
        later_drains: list[bytes] = []
        legacy: list[bytes] = []
        for member, _score in self._redis.zscan_iter(
            self._keys.rq_scheduled, match=f"{self.job_id_prefix}-*-{subscription_id}-*"
        ):
            is_drain = member.startswith(f"{self.job_id_prefix}-drain-".encode())
            (later_drains if is_drain else legacy).append(member)
        if legacy:
            self._redis.zadd(self._keys.rq_scheduled, dict.fromkeys(legacy, int(now)), xx=True)
        if members:
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(retrying, dict.fromkeys(members, now), xx=True)
                pipe.zadd(self._keys.retrying_subscriptions, {subscription_id: now})
                if later_drains:
                    pipe.zrem(self._keys.rq_scheduled, *later_drains)
                    pipe.delete(*(b"rq:job:" + job_id for job_id in later_drains))
                pipe.execute()
            self.schedule_drain(subscription_id, now, now=now)
        return len(members) + len(legacy)
