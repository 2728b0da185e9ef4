"""The shared delivery limiter: per-subscription rate and concurrency, held in Redis so they
bind every dispatcher and retry worker together.

One Lua script admits a delivery or says how long to wait, in one round trip:
- Rate: GCRA with no burst (relay/core/limits.py). `lim:{sub}:tat` is the theoretical
  arrival time (microseconds, Redis clock): a delivery may start at max(tat, now), which
  becomes tat + 1/rate. A start within `max_wait_s` is *reserved* (the caller sleeps until it),
  so waiting deliveries get consecutive slots instead of polling; a later one is refused and
  nothing is taken.
- Concurrency: `lim:{sub}:leases` is a sorted set of lease tokens by expiry. Admission purges
  expired leases, refuses when `concurrency` remain, else adds one that expires `lease_s`
  after the delivery's start. A process killed mid-delivery never releases its lease: it
  expires, so a subscription is never locked out; the lease outlives the POST's timeout, so a
  live one never expires early.
The Redis clock (TIME) is the only clock used: hosts' clocks may disagree, Redis's is shared.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis

from relay.store.keys import Keys

# KEYS: tat, leases, the subscription's retry index (for the backlog hint).
# ARGV: interval_us (0: no rate), concurrency (0: none), lease_us, max_wait_us, token.
# Returns {admitted (0/1), reason, wait_us, queued retries}.
_ACQUIRE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local concurrency = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
if concurrency > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now))
  if redis.call('ZCARD', KEYS[2]) >= concurrency then
    local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {0, 'concurrency', string.format('%.0f', tonumber(first[2]) - now),
            redis.call('ZCARD', KEYS[3])}
  end
end
local wait = 0
if interval > 0 then
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tat < now then tat = now end
  wait = tat - now
  if wait > max_wait then
    return {0, 'rate', string.format('%.0f', wait), redis.call('ZCARD', KEYS[3])}
  end
  local next_tat = tat + interval
  redis.call('SET', KEYS[1], string.format('%.0f', next_tat),
             'PX', math.ceil((next_tat - now) / 1000) + 1000)
end
if concurrency > 0 then
  redis.call('ZADD', KEYS[2], string.format('%.0f', now + wait + lease), ARGV[5])
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')  -- the longest lease
  local until_ms = math.ceil(tonumber(last[2]) / 1000) + 1000
  redis.call('PEXPIREAT', KEYS[2], string.format('%.0f', until_ms))
end
return {1, '', string.format('%.0f', wait), 0}
"""

Reason = Literal["", "rate", "concurrency"]


@dataclass(frozen=True, slots=True)
class Admission:
    """The limiter's answer. Admitted: start after `wait_s` and release `lease` (if any)
    when done. Refused: nothing was taken; `reason` says which limit, `wait_s` how long
    until it may free up (for concurrency, when the oldest lease expires: an upper bound),
    `queued_retries` how many of the subscription's deliveries wait in the retry queue."""

    admitted: bool
    wait_s: float
    reason: Reason = ""
    lease: str | None = None
    queued_retries: int = 0


class DeliveryLimiter:
    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._acquire = redis.register_script(_ACQUIRE_SCRIPT)

    async def acquire(
        self,
        subscription_id: str,
        *,
        rate_limit_per_s: float | None,
        concurrency: int | None,
        lease_s: float,
        max_wait_s: float,
    ) -> Admission:
        """Admit one delivery to the subscription now or within `max_wait_s`, or refuse it;
        one round trip. `lease_s` must exceed the delivery's longest duration."""
        keys = self._keys
        token = uuid.uuid4().hex if concurrency is not None else ""
        interval_us = 0 if rate_limit_per_s is None else math.ceil(1e6 / rate_limit_per_s)
        reply = await self._acquire(
            keys=[
                keys.limit_tat(subscription_id),
                keys.limit_leases(subscription_id),
                keys.subscription_retries(subscription_id),
            ],
            args=[
                interval_us,
                concurrency or 0,
                math.ceil(lease_s * 1e6),
                math.floor(max_wait_s * 1e6),
                token,
            ],
        )
        admitted, reason, wait_us, queued = reply
        wait_s = max(0.0, int(wait_us) / 1e6)
        if int(admitted):
            return Admission(True, wait_s, lease=token or None)
        return Admission(False, wait_s, reason=_reason(str(reason)), queued_retries=int(queued))

    async def release(self, subscription_id: str, lease: str | None) -> None:
        """End a lease (a no-op for None or an expired one)."""
        if lease is not None:
            await self._redis.zrem(self._keys.limit_leases(subscription_id), lease)

    async def forget(self, subscription_id: str) -> None:
        """Drop a deleted subscription's limiter state."""
        keys = self._keys
        await self._redis.delete(
            keys.limit_tat(subscription_id), keys.limit_leases(subscription_id)
        )


def _reason(value: str) -> Reason:
    return "rate" if value == "rate" else "concurrency"
