"""Subscription health records: a small hash per subscription, updated with every attempt.

`subhealth:{id}` fields: `last_success_at`, `failing_since` (first failure after the last
success; absent while healthy), `last_error`, `last_failure_at`, `disabled` (set once by the
attempt that crossed the disable window, so exactly one caller disables and tells the
operator), `renewed_at` (when its TTL was last set). The hash expires `HEALTH_TTL_S` after
its last write, give or take the day between renewals, so a deleted subscription's record
goes away by itself. Queued retries and dead letters are counted from the
subscription's own indexes (`subretry:{id}`, `subdl:{id}`, kept by retry_queue.py and
dead_letters.py), and the last hour's success rate from the `dpm:{minute}` counters of
attempts.py; reading a page of subscriptions' health is one script call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from redis.asyncio import Redis

from relay.core.health import HealthRecord
from relay.store.keys import Keys

HEALTH_TTL_S = 30 * 86400
RENEW_EVERY_S = 86400  # so a record expires 29 to 30 days after its last write
RATE_WINDOW_MINUTES = 60

Transition = Literal["failing", "recovered", "disable"]

# KEYS: one health key per outcome. ARGV: now, disable after (s), TTL, renew every (s), then
# per outcome: at, "1" (delivered) or "0" (failed), error. Returns {outcome index, transition}
# pairs. Atomic, so each transition is seen by exactly one caller however many settle at
# once. The TTL is renewed (EXPIRE, and `renewed_at` in the same HSET as the outcome) only
# when the last renewal is `renew every` old: a healthy subscription's delivery costs an
# HMGET and an HSET.
_RECORD_SCRIPT = """
local now, after, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local renew_every = tonumber(ARGV[4])
local found = {}
for i = 1, #KEYS do
  local key, at, ok, err = KEYS[i], ARGV[3 * i + 2], ARGV[3 * i + 3], ARGV[3 * i + 4]
  local known = redis.call('HMGET', key, 'failing_since', 'last_success_at', 'renewed_at')
  local since = known[1]
  local renew = not known[3] or now - tonumber(known[3]) >= renew_every
  local fields = {}
  if ok == '1' then
    local last = known[2]
    if not last or tonumber(last) < tonumber(at) then
      fields = {'last_success_at', at}
    end
    if since and tonumber(at) >= tonumber(since) then
      redis.call('HDEL', key, 'failing_since', 'disabled')
      table.insert(found, i)
      table.insert(found, 'recovered')
    end
  else
    fields = {'last_error', err, 'last_failure_at', at}
    if not since then
      table.insert(fields, 'failing_since')
      table.insert(fields, at)
      table.insert(found, i)
      table.insert(found, 'failing')
    elseif tonumber(since) <= now - after and redis.call('HSETNX', key, 'disabled', now) == 1 then
      table.insert(found, i)
      table.insert(found, 'disable')
    end
  end
  if renew then
    table.insert(fields, 'renewed_at')
    table.insert(fields, ARGV[1])
  end
  if #fields > 0 then
    redis.call('HSET', key, unpack(fields))
  end
  if renew then
    redis.call('EXPIRE', key, ttl)
  end
end
return found
"""


# ARGV: current minute, window (minutes), now, then the key prefixes of health records,
# retry indexes, dead-letter indexes and minute counters, then the subscription ids.
# Returns 8 values per id: last success, failing since, last error ("" when unset), queued
# retries, next retry due ("" when none), live dead letters, delivered and failed attempts in
# the window. The window's counters are summed here, so a page of 100 returns 800 values
# instead of 12,000 (60 minutes x 2 fields x 100) for the client to parse.
_READ_SCRIPT = """
local minute, window, now = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local hp, rp, dp, mp = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local n = #ARGV - 7
local fields, sums = {}, {}
for i = 1, n do
  fields[2 * i - 1] = 'ok:' .. ARGV[7 + i]
  fields[2 * i] = 'fail:' .. ARGV[7 + i]
  sums[2 * i - 1], sums[2 * i] = 0, 0
end
for m = minute - window + 1, minute do
  local row = redis.call('HMGET', mp .. m, unpack(fields))
  for i = 1, 2 * n do
    if row[i] then sums[i] = sums[i] + tonumber(row[i]) end
  end
end
local out = {}
for i = 1, n do
  local id = ARGV[7 + i]
  local h = redis.call('HMGET', hp .. id, 'last_success_at', 'failing_since', 'last_error')
  local first = redis.call('ZRANGE', rp .. id, 0, 0, 'WITHSCORES')
  table.insert(out, h[1] or '')
  table.insert(out, h[2] or '')
  table.insert(out, h[3] or '')
  table.insert(out, redis.call('ZCARD', rp .. id))
  table.insert(out, first[2] or '')
  table.insert(out, redis.call('ZCOUNT', dp .. id, now, '+inf'))
  table.insert(out, sums[2 * i - 1])
  table.insert(out, sums[2 * i])
end
return out
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
        self._read = redis.register_script(_READ_SCRIPT)

    async def record(
        self, outcomes: Sequence[SentOutcome], *, now: float, disable_after_s: int
    ) -> list[tuple[SentOutcome, Transition]]:
        """Update the records in one round trip; returns the state changes they caused, each
        returned to exactly one caller: a subscription starting to fail, recovering, or
        failing for `disable_after_s` (to be disabled)."""
        outcomes = _collapsed(outcomes)
        if not outcomes:
            return []
        args: list[str | float | int] = [repr(now), disable_after_s, HEALTH_TTL_S, RENEW_EVERY_S]
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
        minutes, in the order asked; one script call, summing server side."""
        if not subscription_ids:
            return [], []
        keys = self._keys
        reply = await self._read(
            keys=[],
            args=[
                int(now // 60),
                RATE_WINDOW_MINUTES,
                repr(now),
                keys.subscription_health(""),
                keys.subscription_retries(""),
                keys.subscription_dead_letters(""),
                keys.delivery_minute_prefix,
                *subscription_ids,
            ],
        )
        rows = cast("list[Any]", reply)
        records, counts = [], []
        for i in range(len(subscription_ids)):
            success, since, error, queued, first, dead, ok, failed = rows[8 * i : 8 * i + 8]
            records.append(
                HealthRecord(
                    last_success_at=_float(success),
                    failing_since=_float(since),
                    last_error=error or None,
                    queued_retries=int(queued),
                    next_retry_at=_float(first),
                    dead_letters=int(dead),
                )
            )
            counts.append((int(ok), int(failed)))
        return records, counts


def _collapsed(outcomes: Sequence[SentOutcome]) -> Sequence[SentOutcome]:
    """The outcomes to record: a subscription's that are all deliveries count as its latest
    one, which leaves its record and transitions exactly as recording each would (the latest
    success wins, and it recovers if any of them does); a subscription with a failure among
    them keeps every outcome, in order. A batch of a healthy subscription's deliveries costs
    one record update instead of one per delivery."""
    by_subscription: dict[str, list[SentOutcome]] = {}
    for outcome in outcomes:
        by_subscription.setdefault(outcome.subscription_id, []).append(outcome)
    if len(by_subscription) == len(outcomes):
        return outcomes
    kept: list[SentOutcome] = []
    for own in by_subscription.values():
        if len(own) > 1 and all(outcome.is_delivered for outcome in own):
            kept.append(max(own, key=_at))
        else:
            kept += own
    return kept


def _at(outcome: SentOutcome) -> float:
    return outcome.at


def _float(value: str | None) -> float | None:
    return None if value is None or value == "" else float(value)
