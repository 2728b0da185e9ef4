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
from collections import Counter
from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio import Redis

from relay.core.models import Attempt, Listing, MinuteCounts
from relay.core.retry import Outcome, classify
from relay.store.keys import Keys
from relay.store.pagination import page_ids

# KEYS: seq, one log key per attempt, then one counter key per minute touched.
# ARGV: kept, counter TTL, attempt count n, one JSON per attempt, then (minute key index,
# field, increment) triples. Seqs come from the shared counter inside the script, so the
# batch costs one round trip.
_RECORD_SCRIPT = """
local count = tonumber(ARGV[3])
local first = redis.call('INCRBY', KEYS[1], count) - count
local touched = {}
for i = 1, count do
  redis.call('ZADD', KEYS[i + 1], first + i, ARGV[i + 3])
  touched[KEYS[i + 1]] = true
end
local kept = tonumber(ARGV[1])
for key in pairs(touched) do
  redis.call('ZREMRANGEBYRANK', key, 0, -kept - 1)
end
for i = count + 4, #ARGV, 3 do
  redis.call('HINCRBY', KEYS[count + 1 + tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2])
end
for i = count + 2, #KEYS do
  redis.call('EXPIRE', KEYS[i], ARGV[2])
end
return count
"""
COUNTS_KEPT_S = 2 * 3600


class AttemptLog:
    def __init__(self, *, redis: Redis, keys: Keys, kept: int) -> None:
        self._redis = redis
        self._keys = keys
        self._kept = kept
        self._record = redis.register_script(_RECORD_SCRIPT)

    async def record_many(self, attempts: Sequence[Attempt]) -> None:
        """Append attempts to their subscriptions' logs in one round trip, trimming each log
        to `kept`; the caller gives each a fresh id (`new_id("att")`)."""
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
        await self._record(
            keys=[
                self._keys.seq,
                *(self._keys.attempts(a.subscription_id) for a in attempts),
                *(self._keys.delivery_minute(minute) for minute in minutes),
            ],
            args=[
                self._kept,
                COUNTS_KEPT_S,
                len(attempts),
                *(_to_json(a) for a in attempts),
                *triples,
            ],
        )

    async def page(
        self, subscription_id: str, *, limit: int, cursor: str | None
    ) -> Listing[Attempt]:
        """Newest first; at most `kept` are kept per subscription."""
        members, next_cursor = await page_ids(
            self._redis, self._keys.attempts(subscription_id), limit=limit, cursor=cursor
        )
        return Listing(tuple(_from_json(subscription_id, m) for m in members), next_cursor)

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


def _to_json(attempt: Attempt) -> str:
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


def _from_json(subscription_id: str, member: str) -> Attempt:
    row = json.loads(member)
    return Attempt(
        id=row["i"],
        event_id=row["e"],
        subscription_id=subscription_id,
        attempt=row["n"],
        at=row["at"],
        status_code=row["c"],
        error=row["err"],
        response_body=row["b"],
        duration_ms=row["ms"],
        outcome=_outcome(row),
    )


def _outcome(row: dict[str, Any]) -> Outcome:
    """The stored outcome; members written before it was stored say it in their error."""
    if "o" in row:
        return Outcome(row["o"])
    if (row["err"] or "").startswith("dropped"):
        return Outcome.DROPPED
    return classify(row["c"])
