"""Answers remembered per `Idempotency-Key`: one JSON string per key, with a TTL.

`{"fp": fingerprint, "status": int|null, "body": object|null}`; `status` null while the first
request is still being handled (a concurrent repeat is told so rather than run twice).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from relay.store.keys import Keys


@dataclass(frozen=True, slots=True)
class Remembered:
    """What an earlier request with the same key left: its fingerprint and, once it
    finished, its answer (`status` None while it is still running)."""

    fingerprint: str
    status: int | None
    body: Any


class IdempotencyStore:
    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    def _key(self, operation: str, key: str) -> str:
        return self._keys.idempotency(operation, hashlib.sha256(key.encode()).hexdigest())

    async def claim(
        self, operation: str, key: str, *, fingerprint: str, ttl_s: int
    ) -> Remembered | None:
        """Claim `key` for a new request (None), or what the earlier request left."""
        name = self._key(operation, key)
        pending = json.dumps({"fp": fingerprint, "status": None, "body": None})
        if await self._redis.set(name, pending, nx=True, ex=ttl_s):
            return None
        raw = cast("str | None", await self._redis.get(name))
        if raw is None:  # expired between the two calls: claim it again
            return await self.claim(operation, key, fingerprint=fingerprint, ttl_s=ttl_s)
        stored = json.loads(raw)
        return Remembered(stored["fp"], stored["status"], stored["body"])

    async def remember(
        self, operation: str, key: str, *, fingerprint: str, status: int, body: Any, ttl_s: int
    ) -> None:
        """Store the answer of the request that claimed `key`."""
        value = json.dumps({"fp": fingerprint, "status": status, "body": body})
        await self._redis.set(self._key(operation, key), value, ex=ttl_s)

    async def release(self, operation: str, key: str) -> None:
        """Forget a claim whose request failed before doing anything, so it can be retried."""
        await self._redis.delete(self._key(operation, key))
