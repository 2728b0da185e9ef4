"""The delivery hand-off stream and its consumer group; the RQ retry queue and retry state.

`publish` is fixed (the admin API uses it); the consumer side belongs to the dispatcher.

An entry is ACKed (and deleted) only once every subscription it goes to is settled: delivered,
handed to the retry queue, or dead. Until then the subscriptions already settled are kept in
`run:{entry}`, so an entry reclaimed from a dead dispatcher skips them.

A delivery waiting in the retry queue has `retry:{event}:{sub}` with `last` = attempts made so
far; the job for attempt n runs only while `last` is n-1, and the key is deleted when the
delivery is settled for good, so stale or repeated jobs do nothing. Retry jobs carry ids only
and have deterministic ids, so scheduling the same attempt twice (after a crash) keeps one job.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import redis
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from rq import Queue, Retry
from rq.rate_limit import RateLimit

from relay.store.keys import DISPATCH_GROUP, Keys

RETRY_JOB = "relay.jobs.retry_delivery"
PARK_JOB = "relay.jobs.unpark_deliveries"
# RQ re-runs a job whose worker died (after the job's heartbeat expires) this many times.
ABANDONED_JOB_RETRIES = 3
FAILED_JOB_TTL_S = 7 * 86400


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One hand-off: an event for every matching subscription, or for one (`subscription_id`)."""

    id: str
    event_id: str
    subscription_id: str | None = None
    is_explicit: bool = False


@dataclass(frozen=True, slots=True)
class RetryRequest:
    """Run attempt number `attempt` of (event, subscription) in `delay_s` seconds."""

    event_id: str
    subscription_id: str
    attempt: int
    delay_s: float


_FORGET_IDLE_SCRIPT = """
local removed = 0
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #consumer, 2 do info[consumer[i]] = consumer[i + 1] end
  if tonumber(info['pending']) == 0 and tonumber(info['idle']) >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    removed = removed + 1
  end
end
return removed
"""


class DeliveryQueue:
    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._forget = redis.register_script(_FORGET_IDLE_SCRIPT)

    async def publish(
        self, event_id: str, *, subscription_id: str | None = None, explicit: bool = False
    ) -> None:
        """Queue an event for first-attempt delivery by the dispatcher.

        `subscription_id` limits it to that subscription; `explicit` marks a replay,
        redelivery or dead-letter retry, which ignores the created-after rule."""
        fields = {"e": event_id}
        if subscription_id is not None:
            fields["s"] = subscription_id
        if explicit:
            fields["x"] = "1"
        await self._redis.xadd(self._keys.stream, fields)  # type: ignore[arg-type]

    async def ensure_group(self) -> None:
        """Create the stream and the dispatch group (from the start) unless they exist."""
        try:
            await self._redis.xgroup_create(
                self._keys.stream, DISPATCH_GROUP, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, *, consumer: str, count: int, block_ms: int) -> list[StreamEntry]:
        """New entries for this consumer, waiting up to `block_ms` for the first."""
        reply = await self._redis.xreadgroup(
            DISPATCH_GROUP, consumer, {self._keys.stream: ">"}, count=count, block=block_ms
        )
        rows: list[tuple[str, dict[str, str] | None]] = []
        for _stream, entries in cast("list[tuple[str, list[Any]]]", reply or []):
            rows.extend(entries)
        return _entries(rows)

    async def claim_stale(
        self, *, consumer: str, min_idle_ms: int, count: int
    ) -> list[StreamEntry]:
        """Take over up to `count` entries another consumer read but left unsettled for
        `min_idle_ms` (it died or hangs)."""
        claimed: list[StreamEntry] = []
        cursor = "0-0"
        while len(claimed) < count:
            reply = await self._redis.xautoclaim(
                self._keys.stream,
                DISPATCH_GROUP,
                consumer,
                min_idle_ms,
                start_id=cursor,
                count=count - len(claimed),
            )
            cursor = str(reply[0])
            claimed.extend(_entries(cast("list[tuple[str, dict[str, str] | None]]", reply[1])))
            if cursor == "0-0":
                break
        return claimed

    async def forget_idle_consumers(self, *, min_idle_ms: int) -> int:
        """Remove consumers (dead dispatchers) that hold no entries and have been idle for
        `min_idle_ms`, so the group's consumer list does not grow with every restart. One
        script: a consumer cannot read an entry between the check and its removal."""
        if not await self._redis.exists(self._keys.stream):
            return 0
        try:
            removed = await self._forget(
                keys=[self._keys.stream], args=[DISPATCH_GROUP, min_idle_ms]
            )
        except ResponseError:  # no group yet
            return 0
        return int(removed)

    async def settled_subscriptions(self, entry_ids: Sequence[str]) -> dict[str, set[str]]:
        """For each entry, the subscriptions already settled by an earlier reader."""
        if not entry_ids:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id in entry_ids:
                pipe.smembers(self._keys.run(entry_id))
            rows = cast("list[set[str]]", await pipe.execute())
        return {entry_id: set(row) for entry_id, row in zip(entry_ids, rows, strict=True)}

    async def settle(
        self,
        *,
        done: Iterable[str],
        partial: Mapping[str, Iterable[str]],
        keep_s: int,
        clear_retries: Iterable[tuple[str, str]] = (),
    ) -> None:
        """In one round trip: ACK and delete finished entries, remember the settled
        subscriptions of unfinished ones, and clear the retry state of settled deliveries."""
        keys = self._keys
        async with self._redis.pipeline(transaction=False) as pipe:
            finished = list(done)
            if finished:
                pipe.xack(keys.stream, DISPATCH_GROUP, *finished)
                pipe.xdel(keys.stream, *finished)
                pipe.delete(*(keys.run(entry_id) for entry_id in finished))
            for entry_id, subscription_ids in partial.items():
                members = list(subscription_ids)
                if members:
                    pipe.sadd(keys.run(entry_id), *members)
                    pipe.expire(keys.run(entry_id), keep_s)
            retry_keys = [keys.retry_state(e, s) for e, s in clear_retries]
            if retry_keys:
                pipe.delete(*retry_keys)
            if len(pipe):
                await pipe.execute()

    async def retry_progress(self, event_id: str, subscription_id: str) -> int | None:
        """Attempts made so far by a delivery in the retry queue; None when it is settled."""
        value = await self._redis.hget(self._keys.retry_state(event_id, subscription_id), "last")
        return None if value is None else int(cast(str, value))

    async def clear_retries(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Mark deliveries (event id, subscription id) settled: their pending jobs do nothing."""
        names = [self._keys.retry_state(e, s) for e, s in pairs]
        if names:
            await self._redis.delete(*names)


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

    def job_id(self, event_id: str, subscription_id: str, attempt: int) -> str:
        """Deterministic, so scheduling one attempt twice keeps one job."""
        return f"{self.job_id_prefix}-{event_id}-{subscription_id}-{attempt}"

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
                    job_id=self.job_id(request.event_id, request.subscription_id, request.attempt),
                    job_timeout=self._job_timeout_s,
                    result_ttl=0,
                    failure_ttl=FAILED_JOB_TTL_S,
                    retry=Retry(max=ABANDONED_JOB_RETRIES, interval=[1, 10, 60]),
                    rate_limit=RateLimit(
                        key=f"{self._keys.prefix}sub:{request.subscription_id}",
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


def _entries(rows: Sequence[tuple[str, dict[str, str] | None]]) -> list[StreamEntry]:
    """Parsed entries; one deleted meanwhile or malformed gets an empty event id (nothing to
    deliver, only to ACK)."""
    entries = []
    for entry_id, fields in rows:
        values = fields or {}
        entries.append(
            StreamEntry(
                id=entry_id,
                event_id=values.get("e", ""),
                subscription_id=values.get("s") or None,
                is_explicit=values.get("x") == "1",
            )
        )
    return entries
