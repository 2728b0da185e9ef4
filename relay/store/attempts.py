"""The per-subscription delivery log: a capped zset of compact attempt JSON, scored by seq.

Member JSON keys: `i` id, `e` event id, `n` attempt number, `at`, `c` status code,
`err` error, `b` response body (already cut to 4 KiB by the caller), `ms` duration.
The subscription id is the key's, so it is not repeated in every member.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from redis.asyncio import Redis

from relay.core.models import Attempt
from relay.store.keys import Keys
from relay.store.pagination import Listing, page_ids

# KEYS: seq, then one log key per attempt; ARGV: kept, then one JSON per attempt.
# Seqs come from the shared counter inside the script, so the batch costs one round trip.
_RECORD_SCRIPT = """
local count = #KEYS - 1
local first = redis.call('INCRBY', KEYS[1], count) - count
local touched = {}
for i = 1, count do
  redis.call('ZADD', KEYS[i + 1], first + i, ARGV[i + 1])
  touched[KEYS[i + 1]] = true
end
local kept = tonumber(ARGV[1])
for key in pairs(touched) do
  redis.call('ZREMRANGEBYRANK', key, 0, -kept - 1)
end
return count
"""


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
        await self._record(
            keys=[self._keys.seq, *(self._keys.attempts(a.subscription_id) for a in attempts)],
            args=[self._kept, *(_to_json(a) for a in attempts)],
        )

    async def page(
        self, subscription_id: str, *, limit: int, cursor: str | None
    ) -> Listing[Attempt]:
        """Newest first; at most `kept` are kept per subscription."""
        members, next_cursor = await page_ids(
            self._redis, self._keys.attempts(subscription_id), limit=limit, cursor=cursor
        )
        return Listing(tuple(_from_json(subscription_id, m) for m in members), next_cursor)


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
    )
