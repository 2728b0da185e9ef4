"""The per-subscription delivery log: a capped zset of compact attempt JSON, scored by seq.

Member JSON keys: `i` id, `e` event id, `n` attempt number, `at`, `c` status code,
`err` error, `b` response body (already cut to 4 KiB by the caller), `ms` duration, `o` outcome.
The subscription id is the key's, so it is not repeated in every member.

The same script counts attempts per epoch minute (`dpm:{minute}` hashes, fields `ok`, `fail`,
`ok:{subscription id}`, `fail:{subscription id}`, kept two hours): the web console's chart and
recent success rates read 60 small hashes instead of every log. `ok` means delivered (2xx).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio import Redis

from relay.core.models import Attempt, Listing, MinuteCounts
from relay.core.retry import Outcome, classify
from relay.store.keys import Keys
from relay.store.pagination import decode_cursor, encode_cursor, page_ids

# KEYS: seq, subscription changes (deletion tombstones), then one counter key per minute.
# ARGV: kept, counter TTL, attempt count n, kept per event, the key prefixes of logs,
# subscriptions, events, event deliveries and event attempts (keys.py), then per attempt:
# subscription id, event id, log JSON, event JSON, last ("attempt|status|at|outcome"); then
# (minute key index, field, increment) triples. The per-attempt keys are built here from the
# prefixes: two ids instead of five key names per attempt keep the call small to pack and
# parse (like the retry scripts, this script is not Redis Cluster safe: see SCALING.md).
# Seqs come from the shared counter inside the script, so the batch costs one round trip.
# An attempt of a deleted subscription (no hash, a tombstone in the changes zset) writes no
# log and no event record: a retry finishing after the delete must not bring them back. One
# of a subscription never stored (the operator's, tests) does. Each event's TTL is read, and
# given to its deliveries hash, once per call however many of its attempts the batch holds.
_RECORD_SCRIPT = """
local count = tonumber(ARGV[3])
local event_kept = tonumber(ARGV[4])
local log_p, sub_p, event_p, deliveries_p, attempts_p = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local first = redis.call('INCRBY', KEYS[1], count) - count
local touched = {}
local is_live = {}  -- per subscription, asked once per call
local ttls = {}  -- per event: its remaining TTL (0: gone or none), read once per call
for i = 1, count do
  local a = 9 + (i - 1) * 5
  local sub_id, event_id = ARGV[a + 1], ARGV[a + 2]
  if is_live[sub_id] == nil then
    is_live[sub_id] = redis.call('EXISTS', sub_p .. sub_id) == 1
      or not redis.call('ZSCORE', KEYS[2], sub_id)
  end
  if is_live[sub_id] then
    local log_key = log_p .. sub_id
    redis.call('ZADD', log_key, first + i, ARGV[a + 3])
    touched[log_key] = true
    local ttl = ttls[event_id]
    local first_of_event = ttl == nil
    if first_of_event then
      ttl = math.max(redis.call('PTTL', event_p .. event_id), 0)
      ttls[event_id] = ttl
    end
    if ttl > 0 then  -- a TTL is set once per key: the event's never changes
      local deliveries, attempts = deliveries_p .. event_id, attempts_p .. event_id
      local old = redis.call('HGET', deliveries, sub_id)
      local made = old and tonumber(string.match(old, '^%d+')) or 0
      redis.call('HSET', deliveries, sub_id, (made + 1) .. '|' .. ARGV[a + 5])
      if first_of_event then redis.call('PEXPIRE', deliveries, ttl) end
      local length = redis.call('LPUSH', attempts, ARGV[a + 4])
      if length == 1 then
        redis.call('PEXPIRE', attempts, ttl)
      elseif length > event_kept then
        redis.call('LTRIM', attempts, 0, event_kept - 1)
      end
    end
  end
end
local kept = tonumber(ARGV[1])
for key in pairs(touched) do
  redis.call('ZREMRANGEBYRANK', key, 0, -kept - 1)
end
for i = 10 + count * 5, #ARGV, 3 do
  redis.call('HINCRBY', KEYS[2 + tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2])
end
for i = 3, #KEYS do
  redis.call('EXPIRE', KEYS[i], ARGV[2])
end
return count
"""
COUNTS_KEPT_S = 2 * 3600
EVENT_ATTEMPTS_KEPT = 100  # per event, all subscriptions (its deliveries keep the counts)
EVENT_BODY_KEPT = 256  # characters of a response body in the event's attempts list
_FILTER_CHUNK = 200
_PLAIN_IDS = re.compile(r"[A-Za-z0-9_]+ [A-Za-z0-9_]+ [A-Za-z0-9_]+")


class AttemptLog:
    def __init__(self, *, redis: Redis, keys: Keys, kept: int) -> None:
        self._redis = redis
        self._keys = keys
        self._kept = kept
        self._record = redis.register_script(_RECORD_SCRIPT)
        self._prefixes = (
            keys.attempts(""),
            keys.subscription(""),
            keys.event(""),
            keys.event_deliveries(""),
            keys.event_attempts(""),
        )

    async def record_many(self, attempts: Sequence[Attempt]) -> None:
        """Append attempts to their subscriptions' logs and to their events' delivery records
        (event_deliveries.py; only while the event is stored, expiring with it) in one round
        trip, trimming each log to `kept`; the caller gives each a fresh id (`new_id("att")`).
        Attempts of a deleted subscription are not recorded (see the script)."""
        if not attempts:
            return
        counts: Counter[tuple[int, str]] = Counter()
        for a in attempts:
            outcome = "ok" if a.is_delivered else "fail"
            minute = int(a.at // 60)
            counts[minute, outcome] += 1
            counts[minute, f"{outcome}:{a.subscription_id}"] += 1
        minutes = sorted({minute for minute, _ in counts})
        index = {minute: i for i, minute in enumerate(minutes, start=1)}
        triples = [
            item for (minute, field), n in counts.items() for item in (index[minute], field, n)
        ]
        keys = self._keys
        await self._record(
            keys=[
                keys.seq,
                keys.subscription_changes,
                *(keys.delivery_minute(minute) for minute in minutes),
            ],
            args=[
                self._kept,
                COUNTS_KEPT_S,
                len(attempts),
                EVENT_ATTEMPTS_KEPT,
                *self._prefixes,
                *(arg for a in attempts for arg in _script_args(a)),
                *triples,
            ],
        )

    async def page(
        self,
        subscription_id: str,
        *,
        limit: int,
        cursor: str | None,
        is_delivered: bool | None = None,
        event_id: str | None = None,
    ) -> Listing[Attempt]:
        """Newest first; at most `kept` are kept per subscription. `is_delivered` keeps only
        2xx attempts (True) or only the others (False); `event_id` only that event's. With a
        filter the log is read in chunks until the page is full (it holds at most `kept`)."""
        key = self._keys.attempts(subscription_id)
        if is_delivered is None and event_id is None:
            members, next_cursor = await page_ids(self._redis, key, limit=limit, cursor=cursor)
            return Listing(
                tuple(attempt_from_json(m, subscription_id=subscription_id) for m in members),
                next_cursor,
            )
        high = f"({decode_cursor(cursor)}" if cursor else "+inf"
        found: list[Attempt] = []
        while True:
            rows = cast(
                "list[tuple[str, float]]",
                await self._redis.zrevrangebyscore(
                    key, high, "-inf", start=0, num=_FILTER_CHUNK, withscores=True
                ),
            )
            for member, score in rows:
                item = attempt_from_json(member, subscription_id=subscription_id)
                if event_id is not None and item.event_id != event_id:
                    continue
                if is_delivered is not None and item.is_delivered != is_delivered:
                    continue
                found.append(item)
                if len(found) == limit:
                    is_last = member == rows[-1][0] and len(rows) < _FILTER_CHUNK
                    return Listing(tuple(found), None if is_last else encode_cursor(int(score)))
            if len(rows) < _FILTER_CHUNK:
                return Listing(tuple(found), None)
            high = f"({int(rows[-1][1])}"

    async def minute_counts(
        self, minutes: Sequence[int], *, subscription_ids: Sequence[str] = ()
    ) -> list[MinuteCounts]:
        """Counts for each epoch minute asked (zero where none were recorded or they expired),
        with per-subscription counts for `subscription_ids`; one round trip."""
        fields = ["ok", "fail"]
        for sub_id in subscription_ids:
            fields += [f"ok:{sub_id}", f"fail:{sub_id}"]
        async with self._redis.pipeline(transaction=False) as pipe:
            for minute in minutes:
                pipe.hmget(self._keys.delivery_minute(minute), fields)
            rows = cast("list[list[str | None]]", await pipe.execute())
        result = []
        for minute, row in zip(minutes, rows, strict=True):
            values = [int(v or 0) for v in row]
            by_sub = {
                sub_id: (values[2 + 2 * i], values[3 + 2 * i])
                for i, sub_id in enumerate(subscription_ids)
            }
            result.append(MinuteCounts(minute, values[0], values[1], by_sub))
        return result


def _script_args(attempt: Attempt) -> tuple[str, str, str, str, str]:
    """The record script's arguments for one attempt (see _RECORD_SCRIPT)."""
    plain = _is_plain(attempt)  # asked once for both members
    return (
        attempt.subscription_id,
        attempt.event_id,
        _to_json(attempt, plain=plain),
        _event_json(attempt, plain=plain),
        last_attempt(attempt),
    )


def _to_json(attempt: Attempt, *, plain: bool | None = None) -> str:
    """The log member; `plain` is `_is_plain(attempt)` when the caller has it already."""
    if _is_plain(attempt) if plain is None else plain:  # most: 2xx, no body; as json.dumps
        return (
            f'{{"i":"{attempt.id}","e":"{attempt.event_id}","n":{attempt.attempt},'
            f'"at":{attempt.at!r},"c":{_status_json(attempt)},"err":null,"b":null,'
            f'"ms":{attempt.duration_ms},"o":"{attempt.outcome}"}}'
        )
    return json.dumps(
        {
            "i": attempt.id,
            "e": attempt.event_id,
            "n": attempt.attempt,
            "at": attempt.at,
            "c": attempt.status_code,
            "err": attempt.error,
            "b": attempt.response_body,
            "ms": attempt.duration_ms,
            "o": attempt.outcome,
        },
        separators=(",", ":"),
    )


def _is_plain(attempt: Attempt) -> bool:
    """No error, no body, ids of letters, digits and `_` (every id relay makes), a finite
    time: JSON text that needs no escaping, so the hot path can write it directly."""
    return (
        attempt.error is None
        and attempt.response_body is None
        and _PLAIN_IDS.fullmatch(f"{attempt.id} {attempt.event_id} {attempt.subscription_id}")
        is not None
        and type(attempt.at) is float
        and math.isfinite(attempt.at)
        and type(attempt.attempt) is int
        and type(attempt.duration_ms) is int
        and (attempt.status_code is None or type(attempt.status_code) is int)
    )


def _status_json(attempt: Attempt) -> str:
    return "null" if attempt.status_code is None else str(attempt.status_code)


def last_attempt(attempt: Attempt) -> str:
    """A delivery record's summary of its last attempt: "attempt|status|at|outcome"."""
    status = "" if attempt.status_code is None else str(attempt.status_code)
    return f"{attempt.attempt}|{status}|{attempt.at!r}|{attempt.outcome}"


def _event_json(attempt: Attempt, *, plain: bool | None = None) -> str:
    """The member of the event's attempts list, kept per event so as small as it can be: the
    log's keys without the event id (the key's) and without empty values, plus the
    subscription (`s`), the body cut to EVENT_BODY_KEPT (a failing subscriber's 4 KiB error
    pages would otherwise be kept per event), the outcome only when not delivered. `plain`
    as for _to_json."""
    if _is_plain(attempt) if plain is None else plain:
        status = "" if attempt.status_code is None else f',"c":{attempt.status_code}'
        outcome = "" if attempt.outcome is Outcome.DELIVERED else f',"o":"{attempt.outcome}"'
        return (
            f'{{"i":"{attempt.id}","s":"{attempt.subscription_id}","n":{attempt.attempt},'
            f'"at":{attempt.at!r}{status},"ms":{attempt.duration_ms}{outcome}}}'
        )
    row: dict[str, Any] = {"i": attempt.id, "s": attempt.subscription_id, "n": attempt.attempt}
    row["at"] = attempt.at
    if attempt.status_code is not None:
        row["c"] = attempt.status_code
    if attempt.error:
        row["err"] = attempt.error
    if attempt.response_body:
        row["b"] = attempt.response_body[:EVENT_BODY_KEPT]
    row["ms"] = attempt.duration_ms
    if attempt.outcome is not Outcome.DELIVERED:
        row["o"] = attempt.outcome
    return json.dumps(row, separators=(",", ":"))


def attempt_from_json(
    member: str, *, subscription_id: str | None = None, event_id: str | None = None
) -> Attempt:
    """An attempt from a log member (`subscription_id` given) or an event's list member
    (`event_id` given)."""
    row = json.loads(member)
    if event_id is not None and "o" not in row:
        row["o"] = Outcome.DELIVERED
    return Attempt(
        id=row["i"],
        event_id=event_id if event_id is not None else row["e"],
        subscription_id=subscription_id if subscription_id is not None else row["s"],
        attempt=row["n"],
        at=row["at"],
        status_code=row.get("c"),
        error=row.get("err"),
        response_body=row.get("b"),
        duration_ms=row["ms"],
        outcome=_outcome(row),
    )


def _outcome(row: dict[str, Any]) -> Outcome:
    """The stored outcome; members written before it was stored say it in their error."""
    if "o" in row:
        return Outcome(row["o"])
    if (row.get("err") or "").startswith("dropped"):
        return Outcome.DROPPED
    return classify(row.get("c"))
