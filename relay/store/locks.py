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

_RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SourceLocks:
    """Which poller polls which source: one lock per source, held by a poller's token."""

    def __init__(self, *, redis: Redis, keys: Keys, ttl_s: float) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl_ms = int(ttl_s * 1000)
        self._renew = redis.register_script(_RENEW_SCRIPT)
        self._release = redis.register_script(_RELEASE_SCRIPT)

    async def heartbeat(self, token: str, *, now: float) -> int:
        """Record `token` as a live poller and forget those silent for a lock TTL; returns
        how many pollers are alive (at least 1)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self._keys.pollers, {token: now})
            pipe.zremrangebyscore(self._keys.pollers, "-inf", now - self._ttl_ms / 1000)
            pipe.zcard(self._keys.pollers)
            *_, live = await pipe.execute()
        return max(int(live), 1)

    async def leave(self, token: str) -> None:
        """Remove `token` from the live pollers (clean stop)."""
        await self._redis.zrem(self._keys.pollers, token)

    async def acquire(self, source_ids: Sequence[str], token: str, *, wanted: int) -> list[str]:
        """Take up to `wanted` of the free locks among `source_ids`, in the order given."""
        if not source_ids or wanted <= 0:
            return []
        locks = [self._keys.source_lock(i) for i in source_ids]
        holders = cast("list[str | None]", await self._redis.mget(locks))
        taken: list[str] = []
        for source_id, lock, holder in zip(source_ids, locks, holders, strict=True):
            if len(taken) == wanted:
                break
            if holder is None and await self._redis.set(lock, token, nx=True, px=self._ttl_ms):
                taken.append(source_id)
        return taken

    async def renew(self, source_ids: Sequence[str], token: str) -> list[bool]:
        """Extend each lock still held by `token` by a TTL; False where it was lost."""
        if not source_ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for source_id in source_ids:
                await self._renew(
                    keys=[self._keys.source_lock(source_id)],
                    args=[token, self._ttl_ms],
                    client=pipe,
                )
            results = await pipe.execute()
        return [bool(int(r)) for r in results]

    async def release(self, source_id: str, token: str) -> None:
        """Free the lock if `token` still holds it."""
        await self._release(keys=[self._keys.source_lock(source_id)], args=[token])
