"""Failed authentications per client address, counted in one-minute windows in Redis.

Counting in Redis (not in process) makes the limit hold across every API replica. The
window is the epoch minute: a client blocked at 12:00:40 may try again at 12:01:00.
"""

from __future__ import annotations

import hashlib
from typing import cast

from redis.asyncio import Redis

from relay.store.keys import Keys

WINDOW_S = 60


class AuthFailures:
    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def count(self, address: str, *, now: float) -> int:
        """Failures of `address` in the current window."""
        value = cast("str | None", await self._redis.get(self._key(address, now)))
        return int(value or 0)

    async def add(self, address: str, *, now: float) -> int:
        """Count one failure; the window's count after it."""
        key = self._key(address, now)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 2 * WINDOW_S)
            count, _ = await pipe.execute()
        return int(count)

    def _key(self, address: str, now: float) -> str:
        # Hashed: an address comes from the client (X-Forwarded-For) and must not shape keys.
        digest = hashlib.sha256(address.encode("utf-8", "surrogateescape")).hexdigest()[:32]
        return self._keys.auth_failures(digest, int(now // WINDOW_S))


def retry_after_s(now: float) -> int:
    """Seconds until the current window ends (at least 1)."""
    return max(1, WINDOW_S - int(now % WINDOW_S))
