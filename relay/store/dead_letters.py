"""Dead letters: deliveries that used up the retry schedule.

Each is a JSON string at `dl:{id}` (keys `e` event id, `s` subscription id, `n` attempts,
`err`, `c` last status code, `at` failed at, `b` last response body), indexed by seq in the
`dls` zset. Each expires with its event (the event's remaining TTL, else `retention_s`): past
that there is nothing to deliver again. Index entries of expired ones are trimmed, oldest
first. The event's deliveries record (`evd:{event}`) names it, so an event's page finds its
dead letters in O(1). A dead letter belongs to its subscription's tenant: reads given
`tenant=` look that up and treat another tenant's dead letter as missing. Each
subscription's dead letters are also in `subdl:{sub}`, scored by expiry, so its health
counts the live ones in O(log n).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import cast

from redis.asyncio import Redis

from relay.core.errors import NotFound
from relay.core.ids import new_id
from relay.core.models import DeadLetter, Listing
from relay.store.keys import Keys
from relay.store.pagination import page_ids

# KEYS: dead letter, index, replay lane, per-subscription index prefix; ARGV: id. Reading,
# queueing and removing in one script means two concurrent retries of one dead letter queue
# it once.
_RETRY_SCRIPT = """
local stored = redis.call('GET', KEYS[1])
if not stored then return false end
local row = cjson.decode(stored)
redis.call('XADD', KEYS[3], '*', 'e', row['e'], 's', row['s'], 'x', '1')
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[4] .. row['s'], ARGV[1])
return stored
"""


# KEYS: index; ARGV: dead letter key prefix, batch. Seq order is about expiry order; an
# expired entry behind a live one waits for it (at most one retention; reads skip it).
_TRIM_SCRIPT = """
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
local removed = 0
for _, id in ipairs(ids) do
  if redis.call('EXISTS', ARGV[1] .. id) == 1 then break end
  redis.call('ZREM', KEYS[1], id)
  removed = removed + 1
end
return removed
"""
DEFAULT_RETENTION_S = 7 * 86400


class DeadLetterStore:
    def __init__(self, *, redis: Redis, keys: Keys, retention_s: int = DEFAULT_RETENTION_S) -> None:
        self._redis = redis
        self._keys = keys
        self._retention_ms = retention_s * 1000
        self._retry = redis.register_script(_RETRY_SCRIPT)
        self._trim = redis.register_script(_TRIM_SCRIPT)

    async def add(
        self,
        *,
        event_id: str,
        subscription_id: str,
        attempts: int,
        last_error: str | None,
        last_status_code: int | None,
        failed_at: float,
        last_response: str | None = None,
    ) -> DeadLetter:
        """Record a delivery that used up the retry schedule."""
        dead_letter = DeadLetter(
            id=new_id("dl"),
            event_id=event_id,
            subscription_id=subscription_id,
            attempts=attempts,
            last_error=last_error,
            last_status_code=last_status_code,
            failed_at=failed_at,
            last_response=last_response,
        )
        seq = await self._redis.incr(self._keys.seq)
        event_ttl_ms = int(await self._redis.pttl(self._keys.event(event_id)))
        ttl_ms = min(event_ttl_ms, self._retention_ms) if event_ttl_ms > 0 else self._retention_ms
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._keys.dead_letter(dead_letter.id), _to_json(dead_letter), px=ttl_ms)
            pipe.zadd(self._keys.dead_letters, {dead_letter.id: seq})
            by_subscription = self._keys.subscription_dead_letters(subscription_id)
            pipe.zadd(by_subscription, {dead_letter.id: failed_at + ttl_ms / 1000})
            pipe.expire(by_subscription, ttl_ms // 1000 + 1)
            if event_ttl_ms > 0:  # the event's deliveries record (event_deliveries.py)
                deliveries = self._keys.event_deliveries(event_id)
                pipe.hset(deliveries, f"dl:{subscription_id}", dead_letter.id)
                pipe.pexpire(deliveries, event_ttl_ms)
            await pipe.execute()
        await self.trim_expired()
        return dead_letter

    async def trim_expired(self, *, batch: int = 200) -> int:
        """Remove index entries of expired dead letters (oldest first); returns how many."""
        removed = await self._trim(
            keys=[self._keys.dead_letters], args=[self._keys.dead_letter(""), batch]
        )
        return int(removed)

    async def get(self, dead_letter_id: str, *, tenant: str | None = None) -> DeadLetter:
        """The dead letter; raises NotFound."""
        stored = cast("str | None", await self._redis.get(self._keys.dead_letter(dead_letter_id)))
        if stored is None:
            raise NotFound(f"dead letter {dead_letter_id} not found")
        dead_letter = _from_json(dead_letter_id, stored)
        if tenant is not None and await self._owners([dead_letter]) != [tenant]:
            raise NotFound(f"dead letter {dead_letter_id} not found")
        return dead_letter

    async def page(
        self, *, limit: int, cursor: str | None, tenant: str | None = None
    ) -> Listing[DeadLetter]:
        """Newest first; only `tenant`'s when given (pages of the index are read until one
        has a row of the tenant's, or the index ends); expired ones are trimmed from the index
        first."""
        await self.trim_expired()
        while True:
            ids, next_cursor = await page_ids(
                self._redis, self._keys.dead_letters, limit=limit, cursor=cursor
            )
            if not ids:
                return Listing((), next_cursor)
            rows = cast(
                "list[str | None]",
                await self._redis.mget([self._keys.dead_letter(i) for i in ids]),
            )
            items = [
                _from_json(i, row) for i, row in zip(ids, rows, strict=True) if row is not None
            ]
            if tenant is not None:
                owners = await self._owners(items)
                items = [d for d, owner in zip(items, owners, strict=True) if owner == tenant]
            if items or tenant is None or next_cursor is None:
                return Listing(tuple(items), next_cursor)
            cursor = next_cursor

    async def retry(self, dead_letter_id: str, *, tenant: str | None = None) -> DeadLetter:
        """Queue the delivery again (explicit, to its one subscription) and remove the dead
        letter, atomically; raises NotFound (also for the loser of two concurrent retries)."""
        if tenant is not None:
            await self.get(dead_letter_id, tenant=tenant)  # ownership never changes
        keys = self._keys
        stored = await self._retry(
            keys=[
                keys.dead_letter(dead_letter_id),
                keys.dead_letters,
                keys.replay_stream,
                keys.subscription_dead_letters(""),
            ],
            args=[dead_letter_id],
        )
        if stored is None:
            raise NotFound(f"dead letter {dead_letter_id} not found")
        return _from_json(dead_letter_id, cast("str", stored))

    async def requeue_with(
        self,
        pairs: Sequence[tuple[str, str]],
        *,
        subscription_id: str,
        dead_letter_ids: Sequence[str],
    ) -> None:
        """Queue explicit deliveries (event id, subscription id) on the replay lane and remove
        the subscription's dead letters `dead_letter_ids` (of those deliveries), in one
        transaction: all or nothing, so a failed recover can be asked again (`recover`)."""
        keys = self._keys
        async with self._redis.pipeline(transaction=True) as pipe:
            for event_id, sub_id in pairs:
                fields = {"e": event_id, "s": sub_id, "x": "1"}
                pipe.xadd(keys.replay_stream, fields)  # type: ignore[arg-type]
            if dead_letter_ids:
                pipe.delete(*(keys.dead_letter(i) for i in dead_letter_ids))
                pipe.zrem(keys.dead_letters, *dead_letter_ids)
                pipe.zrem(keys.subscription_dead_letters(subscription_id), *dead_letter_ids)
            await pipe.execute()

    async def _owners(self, dead_letters: list[DeadLetter]) -> list[str | None]:
        """The tenant of each one's subscription ("" for the operator's, None if deleted)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for dead_letter in dead_letters:
                pipe.hmget(
                    self._keys.subscription(dead_letter.subscription_id), ["url", "tenant_id"]
                )
            rows = cast("list[list[str | None]]", await pipe.execute())
        return [None if url is None else (tenant or "") for url, tenant in rows]


def _to_json(dead_letter: DeadLetter) -> str:
    return json.dumps(
        {
            "e": dead_letter.event_id,
            "s": dead_letter.subscription_id,
            "n": dead_letter.attempts,
            "err": dead_letter.last_error,
            "c": dead_letter.last_status_code,
            "at": dead_letter.failed_at,
            "b": dead_letter.last_response,
        },
        separators=(",", ":"),
    )


def _from_json(dead_letter_id: str, stored: str) -> DeadLetter:
    row = json.loads(stored)
    return DeadLetter(
        id=dead_letter_id,
        event_id=row["e"],
        subscription_id=row["s"],
        attempts=row["n"],
        last_error=row["err"],
        last_status_code=row["c"],
        failed_at=row["at"],
        last_response=row.get("b"),
    )
