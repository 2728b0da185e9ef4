"""Each event's deliveries: per subscription, its last attempt and dead letter; every attempt.

`evd:{event}` is a hash: subscription id -> "count|attempt|status|at|outcome" of its last
attempt, written by the attempt log's script (attempts.py) in the same round trip as the
log; `dl:{subscription id}` -> the id of its dead letter (dead_letters.py). `eva:{event}` is
the event's attempts, all subscriptions, newest first, capped (`EVENT_ATTEMPTS_KEPT`). Both
take the event's remaining TTL at every write, so they expire with it; neither is written
for an event no longer stored. Read together with the retry state (retry_queue.py) and the
dead letter itself, they tell each delivery's state (`delivery_state`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from relay.core.models import Attempt
from relay.core.retry import Outcome
from relay.store.attempts import attempt_from_json
from relay.store.keys import Keys

DELIVERED = "delivered"
PENDING = "pending"
RETRYING = "retrying"
DEAD = "dead"
DROPPED = "dropped"
DELIVERY_STATES = (DELIVERED, PENDING, RETRYING, DEAD, DROPPED)


@dataclass(frozen=True, slots=True)
class LastAttempt:
    count: int  # attempts recorded for this delivery (retries and redeliveries included)
    attempt: int
    status_code: int | None
    at: float
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """What Redis knows of one (event, subscription) delivery."""

    event_id: str
    subscription_id: str
    last: LastAttempt | None  # None: no attempt recorded
    dead_letter_id: str | None  # a dead letter that still exists
    retry_progress: int | None  # attempts made, while the retry queue holds it; None: not
    next_attempt_at: float | None


def delivery_state(record: DeliveryRecord, *, is_enabled: bool) -> str:
    """One of DELIVERY_STATES. A retry waiting in the queue wins (a parked first attempt is
    pending); then a 2xx, a dead letter, a drop or 410; a failed attempt with nothing else
    (its dead letter was retried: queued again) is pending, as is a delivery with no attempt
    yet, unless the subscription is disabled (then it will be dropped)."""
    last = record.last
    if record.retry_progress is not None:
        return RETRYING if last is not None and record.retry_progress > 0 else PENDING
    if last is not None and last.outcome is Outcome.DELIVERED:
        return DELIVERED
    if record.dead_letter_id is not None:
        return DEAD
    if last is not None and last.outcome in (Outcome.DROPPED, Outcome.GONE):
        return DROPPED
    return PENDING if is_enabled else DROPPED


def _last(value: str | None) -> LastAttempt | None:
    if value is None:
        return None
    count, attempt, status, at, outcome = value.split("|", 4)
    return LastAttempt(int(count), int(attempt), int(status) if status else None, float(at),
                       Outcome(outcome))  # fmt: skip


class EventDeliveries:
    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def subscription_ids(self, event_id: str) -> list[str]:
        """Subscriptions with an attempt recorded for the event, in no particular order."""
        fields = cast("list[str]", await self._redis.hkeys(self._keys.event_deliveries(event_id)))
        return [f for f in fields if not f.startswith("dl:")]

    async def records(self, pairs: Sequence[tuple[str, str]]) -> list[DeliveryRecord]:
        """The record of each (event id, subscription id), in the order asked; two round
        trips whatever their number."""
        keys = self._keys
        async with self._redis.pipeline(transaction=False) as pipe:
            for event_id, sub_id in pairs:
                pipe.hmget(keys.event_deliveries(event_id), [sub_id, f"dl:{sub_id}"])
                pipe.hget(keys.retry_state(event_id, sub_id), "last")
                pipe.zscore(keys.subscription_retries(sub_id), event_id)
            rows = await pipe.execute()
        found = []
        for index, (event_id, sub_id) in enumerate(pairs):
            (last, dead_letter_id), progress, due = rows[3 * index : 3 * index + 3]
            found.append((event_id, sub_id, _last(last), dead_letter_id, progress, due))
        dead = [row[3] for row in found if row[3] is not None]
        alive: set[str] = set()
        if dead:
            async with self._redis.pipeline(transaction=False) as pipe:
                for dead_letter_id in dead:
                    pipe.exists(keys.dead_letter(dead_letter_id))
                exists = await pipe.execute()
            alive = {d for d, e in zip(dead, exists, strict=True) if e}
        return [
            DeliveryRecord(
                event_id=event_id,
                subscription_id=sub_id,
                last=last,
                dead_letter_id=dead_letter_id if dead_letter_id in alive else None,
                retry_progress=None if progress is None else int(progress),
                next_attempt_at=None if progress is None or due is None else float(due),
            )
            for event_id, sub_id, last, dead_letter_id, progress, due in found
        ]

    async def attempts(self, event_id: str) -> list[Attempt]:
        """The event's attempts, all subscriptions, newest first (at most EVENT_ATTEMPTS_KEPT;
        response bodies cut to EVENT_BODY_KEPT characters)."""
        members = cast(
            "list[str]", await self._redis.lrange(self._keys.event_attempts(event_id), 0, -1)
        )
        return [attempt_from_json(m, event_id=event_id) for m in members]
