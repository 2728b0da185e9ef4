"""Which poller polls which source: one lock per source, held by a poller's random token.

SET NX PX to take, compare-and-pexpire to renew, compare-and-delete to release; the pollers'
own heartbeats (`keys.pollers`) say how many pollers share the sources. The ingest script
checks the same lock before it commits a page (fencing, see relay.store.ingest).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from redis.asyncio import Redis

from relay.store.keys import Keys

_BATCH = 1000  # commands per pipeline: bounded replies, no long block of Redis
_RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


async def poller_lateness(
    redis: Redis, keys: Keys, *, now: float, ttl_s: float
) -> dict[str, float]:
    """Each live poller's p99 poll lateness (seconds), as its last heartbeat reported it."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zrangebyscore(keys.pollers, now - ttl_s, "+inf")
        pipe.hgetall(keys.poller_lateness)
        live, lateness = cast("tuple[list[str], dict[str, str]]", tuple(await pipe.execute()))
    return {token: float(lateness.get(token) or 0) for token in live}


class SourceLocks:
    """Which poller polls which source: one lock per source, held by a poller's token."""

    def __init__(self, *, redis: Redis, keys: Keys, ttl_s: float) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl_ms = int(ttl_s * 1000)
        self._renew = redis.register_script(_RENEW_SCRIPT)
        self._release = redis.register_script(_RELEASE_SCRIPT)

    async def heartbeat(self, token: str, *, now: float, lateness_p99_s: float = 0.0) -> int:
        """Record `token` as a live poller (with how late its polls start) and forget those
        silent for a lock TTL; returns how many pollers are alive (at least 1)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self._keys.pollers, {token: now})
            pipe.hset(self._keys.poller_lateness, token, repr(round(lateness_p99_s, 4)))
            pipe.zremrangebyscore(self._keys.pollers, "-inf", now - self._ttl_ms / 1000)
            pipe.zcard(self._keys.pollers)
            *_, live = await pipe.execute()
        return max(int(live), 1)

    async def leave(self, token: str) -> None:
        """Remove `token` from the live pollers (clean stop)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrem(self._keys.pollers, token)
            pipe.hdel(self._keys.poller_lateness, token)
            await pipe.execute()

    async def acquire(self, source_ids: Sequence[str], token: str, *, wanted: int) -> list[str]:
        """Take up to `wanted` of the free locks among `source_ids`, in the order given: one
        MGET and one pipeline of SET NX per batch, looking at only as many as it needs."""
        taken: list[str] = []
        batch_size = max(2 * wanted, 64)
        for start in range(0, len(source_ids), batch_size):
            if len(taken) >= wanted:
                break
            batch = source_ids[start : start + batch_size]
            locks = [self._keys.source_lock(i) for i in batch]
            holders = cast("list[str | None]", await self._redis.mget(locks))
            free = [
                (source_id, lock)
                for source_id, lock, holder in zip(batch, locks, holders, strict=True)
                if holder is None
            ][: wanted - len(taken)]
            if not free:
                continue
            async with self._redis.pipeline(transaction=False) as pipe:
                for _, lock in free:
                    pipe.set(lock, token, nx=True, px=self._ttl_ms)
                results = await pipe.execute()
            taken += [source_id for (source_id, _), ok in zip(free, results, strict=True) if ok]
        return taken

    async def renew(self, source_ids: Sequence[str], token: str) -> list[bool]:
        """Extend each lock still held by `token` by a TTL; False where it was lost. One
        round trip per `_BATCH` locks."""
        results: list[bool] = []
        for start in range(0, len(source_ids), _BATCH):
            async with self._redis.pipeline(transaction=False) as pipe:
                for source_id in source_ids[start : start + _BATCH]:
                    await self._renew(
                        keys=[self._keys.source_lock(source_id)],
                        args=[token, self._ttl_ms],
                        client=pipe,
                    )
                results += [bool(int(r)) for r in await pipe.execute()]
        return results

    async def release(self, source_id: str, token: str) -> None:
        """Free the lock if `token` still holds it."""
        await self.release_many([source_id], token)

    async def release_many(self, source_ids: Sequence[str], token: str) -> None:
        """Free each lock `token` still holds, `_BATCH` per round trip."""
        for start in range(0, len(source_ids), _BATCH):
            async with self._redis.pipeline(transaction=False) as pipe:
                for source_id in source_ids[start : start + _BATCH]:
                    await self._release(
                        keys=[self._keys.source_lock(source_id)], args=[token], client=pipe
                    )
                await pipe.execute()
