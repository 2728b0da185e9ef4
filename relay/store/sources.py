"""Sources (MC5 accounts) in Redis: one hash each, ids in a zset ordered by creation.

Hash fields: the Source fields (`last_polled_at`/`last_error` "" when unset; `next_poll_at`
"inf" for a source that waits until it is changed), plus `v`, a version bumped by every
admin change. The poller records outcomes only for the version it polled (and ingest advances
the cursor only then), so a poll that was in flight while someone fixed the password or
moved the cursor cannot undo that change. The password is stored (the poller needs it) and
never returned by the API nor logged. `tenant_id` ("" for the operator's own) is set at
creation and never changes; a tenant's sources are also indexed in `ten:{id}:srcs`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import cast

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from relay.core.errors import InvalidInput, NotFound
from relay.core.ids import new_id
from relay.core.models import Listing, Source, SourceStatus
from relay.store.keys import Keys
from relay.store.pagination import page_ids

_CLEAR_FAILING = ("failures", 0, "next_poll_at", 0, "last_error", "")

# KEYS: sources zset, seq. ARGV: source key prefix, username, base_url, password, new id,
# then the field/value pairs of a new source.
_ENSURE_SCRIPT = """
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. id
  local found = redis.call('HMGET', key, 'username', 'base_url', 'password', 'status')
  if found[1] == ARGV[2] and found[2] == ARGV[3] then
    if found[3] ~= ARGV[4] then
      redis.call('HSET', key, 'password', ARGV[4])
      redis.call('HINCRBY', key, 'v', 1)
      if found[4] == 'failing' then
        redis.call('HSET', key, 'status', 'ok', 'failures', 0, 'next_poll_at', 0, 'last_error', '')
      end
    end
    return id
  end
end
redis.call('HSET', ARGV[1] .. ARGV[5], unpack(ARGV, 6))
redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), ARGV[5])
return ARGV[5]
"""

# KEYS: source. ARGV: "1" to clear a failing state, then field/value pairs to set.
_UPDATE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if #ARGV > 1 then redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end
if ARGV[1] == '1' then
  redis.call('HSET', KEYS[1], 'failures', 0, 'next_poll_at', 0, 'last_error', '')
  if redis.call('HGET', KEYS[1], 'status') == 'failing' then
    redis.call('HSET', KEYS[1], 'status', 'ok')
  end
end
redis.call('HINCRBY', KEYS[1], 'v', 1)
return 1
"""

# KEYS: source. ARGV: version polled, then field/value pairs of the failed poll.
_RECORD_FAILURE_SCRIPT = """
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
"""


class SourceStore:
    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._ensure = redis.register_script(_ENSURE_SCRIPT)
        self._update = redis.register_script(_UPDATE_SCRIPT)
        self._record_failure = redis.register_script(_RECORD_FAILURE_SCRIPT)

    async def create(
        self,
        *,
        username: str,
        password: str,
        base_url: str,
        poll_interval_s: float,
        start_from: int | None,
        now: float,
        tenant_id: str | None = None,
    ) -> Source:
        """Add a source; `start_from` None means the cursor starts at `now`."""
        source = _new_source(username, password, base_url, poll_interval_s, start_from, now)
        source = replace(source, tenant_id=tenant_id)
        seq = await self._redis.incr(self._keys.seq)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.source(source.id), mapping=_fields(source))
            pipe.zadd(self._keys.sources, {source.id: seq})
            if tenant_id is not None:
                pipe.zadd(self._keys.tenant_sources(tenant_id), {source.id: seq})
            await pipe.execute()
        return source

    async def ensure(
        self,
        *,
        username: str,
        password: str,
        base_url: str,
        poll_interval_s: float,
        start_from: int | None,
        now: float,
    ) -> Source:
        """The source with this username and base_url, created if missing (idempotent);
        an existing one gets the given password (the environment is the truth)."""
        fresh = _new_source(username, password, base_url, poll_interval_s, start_from, now)
        pairs = [item for field, value in _fields(fresh).items() for item in (field, value)]
        source_id = await self._ensure(
            keys=[self._keys.sources, self._keys.seq],
            args=[self._keys.source(""), username, base_url, password, fresh.id, *pairs],
        )
        return await self.get(cast("str", source_id))

    async def get(self, source_id: str, *, tenant: str | None = None) -> Source:
        """The source; raises NotFound (also when `tenant` is given and it is not its)."""
        source, _ = await self.get_versioned(source_id)
        if tenant is not None and source.tenant_id != tenant:
            raise NotFound(f"source {source_id} not found")
        return source

    async def get_versioned(self, source_id: str) -> tuple[Source, int]:
        """The source and its version (for `record_failure` and ingest); raises NotFound."""
        fields = cast("dict[str, str]", await self._redis.hgetall(self._keys.source(source_id)))
        if not fields:
            raise NotFound(f"source {source_id} not found")
        return _source_from_fields(fields), int(fields.get("v", "0"))

    async def page(
        self, *, limit: int, cursor: str | None, tenant: str | None = None
    ) -> Listing[Source]:
        """Newest first; only `tenant`'s (a page of its own index) when given."""
        index = self._keys.sources if tenant is None else self._keys.tenant_sources(tenant)
        ids, next_cursor = await page_ids(self._redis, index, limit=limit, cursor=cursor)
        async with self._redis.pipeline(transaction=False) as pipe:
            for source_id in ids:
                pipe.hgetall(self._keys.source(source_id))
            rows = cast("list[dict[str, str]]", await pipe.execute())
        return Listing(tuple(_source_from_fields(row) for row in rows if row), next_cursor)

    async def ids(self) -> list[str]:
        """Every source id (the poller's work list)."""
        return cast("list[str]", await self._redis.zrange(self._keys.sources, 0, -1))

    async def update(
        self,
        source_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        base_url: str | None = None,
        poll_interval_s: float | None = None,
        cursor: int | None = None,
        status: SourceStatus | None = None,
        tenant: str | None = None,
    ) -> Source:
        """Change the given fields; raises NotFound (also when `tenant` is given and it is not
        its). Changing credentials, base_url or status clears a failing state so the poller
        tries again at once. `status` may be "ok" or "paused" (pause/resume); "failing" is
        set only by the poller."""
        if status not in (None, "ok", "paused"):
            raise InvalidInput("status must be 'ok' or 'paused'", field="status")
        if tenant is not None:
            await self.get(source_id, tenant=tenant)  # a tenant never changes: no race
        changes: dict[str, EncodableT | None] = {
            "username": username,
            "password": password,
            "base_url": base_url,
            "poll_interval_s": poll_interval_s,
            "cursor": cursor,
            "status": status,
        }
        pairs = [
            item for name, value in changes.items() if value is not None for item in (name, value)
        ]
        clears = any(v is not None for v in (username, password, base_url, status))
        updated = await self._update(
            keys=[self._keys.source(source_id)], args=["1" if clears else "0", *pairs]
        )
        if not int(updated):
            raise NotFound(f"source {source_id} not found")
        return await self.get(source_id)

    async def delete(self, source_id: str, *, tenant: str | None = None) -> None:
        """Remove the source (its events stay until they expire); raises NotFound (also when
        `tenant` is given and it is not its)."""
        owner = (await self.get(source_id, tenant=tenant)).tenant_id
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._keys.source(source_id), self._keys.source_lock(source_id))
            pipe.zrem(self._keys.sources, source_id)
            if owner is not None:
                pipe.zrem(self._keys.tenant_sources(owner), source_id)
            deleted, removed, *_ = await pipe.execute()
        if not deleted and not removed:
            raise NotFound(f"source {source_id} not found")

    async def record_failure(
        self,
        source_id: str,
        *,
        version: int,
        error: str,
        failures: int,
        next_poll_at: float,
        now: float,
    ) -> bool:
        """Mark the source failing with a readable `error` (never a password), unless it was
        changed since `version` was read; returns whether it was recorded."""
        recorded = await self._record_failure(
            keys=[self._keys.source(source_id)],
            args=[
                version,
                "status",
                "failing",
                "last_error",
                error,
                "failures",
                failures,
                "next_poll_at",
                _float_text(next_poll_at),
                "last_polled_at",
                repr(now),
            ],
        )
        return bool(int(recorded))


def _new_source(
    username: str,
    password: str,
    base_url: str,
    poll_interval_s: float,
    start_from: int | None,
    now: float,
) -> Source:
    return Source(
        id=new_id("src"),
        username=username,
        password=password,
        base_url=base_url.rstrip("/"),
        poll_interval_s=poll_interval_s,
        cursor=int(now) if start_from is None else start_from,
        status="ok",
        created_at=now,
    )


def _fields(source: Source) -> dict[FieldT, EncodableT]:
    return {
        "id": source.id,
        "username": source.username,
        "password": source.password,
        "base_url": source.base_url,
        "poll_interval_s": repr(source.poll_interval_s),
        "cursor": source.cursor,
        "status": source.status,
        "created_at": repr(source.created_at),
        "last_polled_at": "" if source.last_polled_at is None else repr(source.last_polled_at),
        "last_error": source.last_error or "",
        "next_poll_at": _float_text(source.next_poll_at),
        "failures": source.failures,
        "tenant_id": source.tenant_id or "",
        "v": 0,
    }


def _source_from_fields(fields: dict[str, str]) -> Source:
    status = fields.get("status", "ok")
    return Source(
        id=fields["id"],
        username=fields["username"],
        password=fields["password"],
        base_url=fields["base_url"],
        poll_interval_s=float(fields["poll_interval_s"]),
        cursor=int(fields["cursor"]),
        status=cast("SourceStatus", status if status in ("ok", "failing", "paused") else "ok"),
        created_at=float(fields["created_at"]),
        last_polled_at=float(fields["last_polled_at"]) if fields.get("last_polled_at") else None,
        last_error=fields.get("last_error") or None,
        next_poll_at=float(fields.get("next_poll_at") or 0),
        failures=int(fields.get("failures") or 0),
        tenant_id=fields.get("tenant_id") or None,
    )


def _float_text(value: float) -> str:
    return "inf" if math.isinf(value) else repr(value)
