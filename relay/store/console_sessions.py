"""Web console sessions: a random id in the browser's cookie, the fact of login in Redis.

The key is the SHA-256 of the cookie value, so reading Redis does not hand out usable
cookies. The value is JSON (`csrf`: the session's form token, `at`: login time, `key`: the
API key logged in with, or null for an env token). Sessions expire `ttl_s` after the last
use (each read extends them) and end at logout.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import cast

from redis.asyncio import Redis

from relay.core.models import ConsoleSession
from relay.store.keys import Keys

SESSION_ID_BYTES = 32
SESSION_TTL_S = 8 * 3600


class ConsoleSessionStore:
    def __init__(self, *, redis: Redis, keys: Keys, ttl_s: int = SESSION_TTL_S) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl_s = ttl_s

    async def create(self, *, now: float, key_id: str | None = None) -> ConsoleSession:
        """A new session with fresh random id and CSRF token; `key_id` is the API key it
        logged in with (None: an env token)."""
        session = ConsoleSession(
            id=secrets.token_urlsafe(SESSION_ID_BYTES),
            csrf_token=secrets.token_urlsafe(SESSION_ID_BYTES),
            logged_in_at=now,
            key_id=key_id,
        )
        value = json.dumps({"csrf": session.csrf_token, "at": now, "key": key_id})
        await self._redis.set(self._key(session.id), value, ex=self._ttl_s)
        return session

    async def get(self, session_id: str) -> ConsoleSession | None:
        """The live session with this id (extending its life), or None."""
        if not session_id or len(session_id) > 100:
            return None
        key = self._key(session_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.expire(key, self._ttl_s)
            value, _ = await pipe.execute()
        if value is None:
            return None
        row = json.loads(cast("str", value))
        return ConsoleSession(
            id=session_id,
            csrf_token=row["csrf"],
            logged_in_at=float(row["at"]),
            key_id=row.get("key"),
        )

    async def delete(self, session_id: str) -> None:
        """End the session (a no-op when it is already gone)."""
        await self._redis.delete(self._key(session_id))

    def _key(self, session_id: str) -> str:
        digest = hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).hexdigest()
        return self._keys.ui_session(digest)
