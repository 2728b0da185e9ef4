"""Subscription health records: a small hash per subscription, updated with every attempt.

`subhealth:{id}` fields: `last_success_at`, `failing_since` (first failure after the last
success; absent while healthy), `last_error`, `last_failure_at`, `disabled` (set once by the
attempt that crossed the disable window, so exactly one caller disables and tells the
operator). The hash expires `HEALTH_TTL_S` after its last write, so a deleted subscription's
record goes away by itself. Queued retries and dead letters are counted from the
subscription's own indexes (`subretry:{id}`, `subdl:{id}`, kept by retry_queue.py and
dead_letters.py), and the last hour's success rate from the `dpm:{minute}` counters of
attempts.py; reading a page of subscriptions' health is one pipelined round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

from redis.asyncio import Redis

from relay.core.health import HealthRecord
from relay.store.keys import Keys

HEALTH_TTL_S = 30 * 86400
RATE_WINDOW_MINUTES = 60

Transition = Literal["failing", "recovered", "disable"]

# KEYS: one health key per outcome. ARGV: now, disable after (s), TTL, then per outcome:
# at, "1" (delivered) or "0" (failed), error. Returns {outcome index, transition} pairs.
# Atomic, so each transition is seen by exactly one caller however many settle at once.
_RECORD_SCRIPT = """
local now, after, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local found = {}
for i = 1, #KEYS do
  local key, at, ok, err = KEYS[i], ARGV[3 * i + 1], ARGV[3 * i + 2], ARGV[3 * i + 3]
  local since = redis.call('HGET', key, 'failing_since')
  if ok == '1' then
    local last = redis.call('HGET', key, 'last_success_at')
    if not last or tonumber(last) < tonumber(at) then
      redis.call('HSET', key, 'last_success_at', at)
    end
    if since and tonumber(at) >= tonumber(since) then
      redis.call('HDEL', key, 'failing_since', 'disabled')
      table.insert(found, i)
      table.insert(found, 'recovered')
    end
  else
    redis.call('HSET', key, 'last_error', err, 'last_failure_at', at)
    if not since then
      redis.call('HSET', key, 'failing_since', at)
      table.insert(found, i)
      table.insert(found, 'failing')
    elseif tonumber(since) <= now - after and redis.call('HSETNX', key, 'disabled', now) == 1 then
      table.insert(found, i)
      table.insert(found, 'disable')
    end
  end
  redis.call('EXPIRE', key, ttl)
end
return found
"""


@dataclass(frozen=True, slots=True)
class SentOutcome:
    """One attempt that was sent: delivered or failed (with its readable error)."""

    subscription_id: str
    at: float
    is_delivered: bool
    error: str


class HealthStore:
    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._record = redis.register_script(_RECORD_SCRIPT)

    async def record(
        self, outcomes: Sequence[SentOutcome], *, now: float, disable_after_s: int
    ) -> list[tuple[SentOutcome, Transition]]:
        """Update the records in one round trip; returns the state changes they caused, each
        returned to exactly one caller: a subscription starting to fail, recovering, or
        failing for `disable_after_s` (to be disabled)."""
        if not outcomes:
            return []
        args: list[str | float | int] = [now, disable_after_s, HEALTH_TTL_S]
        for outcome in outcomes:
            args += [repr(outcome.at), "1" if outcome.is_delivered else "0", outcome.error]
        reply = await self._record(
            keys=[self._keys.subscription_health(o.subscription_id) for o in outcomes], args=args
        )
        pairs = cast("list[int | str]", reply)
        return [
            (outcomes[int(pairs[i]) - 1], cast("Transition", pairs[i + 1]))
            for i in range(0, len(pairs), 2)
        ]

    async def reset(self, subscription_id: str) -> None:
        """Forget the failing state (a subscription enabled again starts a fresh window)."""
        key = self._keys.subscription_health(subscription_id)
        await self._redis.hdel(key, "failing_since", "disabled")

    async def forget(self, subscription_id: str) -> None:
        """Drop everything kept for a deleted subscription."""
        keys = self._keys
        await self._redis.delete(
            keys.subscription_health(subscription_id),
            keys.subscription_retries(subscription_id),
            keys.subscription_dead_letters(subscription_id),
        )

    async def read_many(
        self, subscription_ids: Sequence[str], *, now: float
    ) -> tuple[list[HealthRecord], list[tuple[int, int]]]:
        """Each subscription's record and its (delivered, failed) attempts of the last 60
        minutes, in the order asked; one round trip."""
        keys = self._keys
        minute = int(now // 60)
        fields = [f for sub_id in subscription_ids for f in (f"ok:{sub_id}", f"fail:{sub_id}")]
        async with self._redis.pipeline(transaction=False) as pipe:
            for sub_id in subscription_ids:
                pipe.hmget(
                    keys.subscription_health(sub_id),
                    ["last_success_at", "failing_since", "last_error"],
                )
                pipe.zcard(keys.subscription_retries(sub_id))
                pipe.zrange(keys.subscription_retries(sub_id), 0, 0, withscores=True)
                pipe.zcount(keys.subscription_dead_letters(sub_id), now, "+inf")
            if fields:
                for m in range(minute - RATE_WINDOW_MINUTES + 1, minute + 1):
                    pipe.hmget(keys.delivery_minute(m), fields)
            replies = await pipe.execute()
        records = []
        for i in range(len(subscription_ids)):
            (success, since, error), queued, first, dead = replies[4 * i : 4 * i + 4]
            records.append(
                HealthRecord(
                    last_success_at=_float(success),
                    failing_since=_float(since),
                    last_error=error,
                    queued_retries=int(queued),
                    next_retry_at=float(first[0][1]) if first else None,
                    dead_letters=int(dead),
                )
            )
        counts = [[0, 0] for _ in subscription_ids]
        for row in replies[4 * len(subscription_ids) :]:
            for j, value in enumerate(row):
                counts[j // 2][j % 2] += int(value or 0)
        return records, [(ok, failed) for ok, failed in counts]


def _float(value: str | None) -> float | None:
    return None if value is None or value == "" else float(value)
