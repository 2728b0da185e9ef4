"""Sources (MC5 accounts) in Redis: one hash each, ids in a zset ordered by creation.

Hash fields: the Source fields (`last_polled_at`/`last_error` "" when unset; `next_poll_at`
"inf" for a source that waits until it is changed), plus `v`, a version bumped by every
admin change. The poller records outcomes only for the version it polled (and ingest advances
the cursor only then), so a poll that was in flight while someone fixed the password or
moved the cursor cannot undo that change. The password is stored (the poller needs it) and
never returned by the API nor logged. `tenant_id` ("" for the operator's own) is set at
creation and never changes; a tenant's sources are also indexed in `ten:{id}:srcs`, by the
same scripts.

One source per account: `keys.source_accounts` maps "{base_url} {username}" to the source
id, kept by create, update, delete and ensure in the same script as the hash, so checking
uniqueness is one HGET, not a scan. A store written before the index existed gets it built
once, by the first script that finds it missing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import cast

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.typing import EncodableT, FieldT

from relay.core.errors import Conflict, InvalidInput, NotFound
from relay.core.ids import new_id
from relay.core.models import Listing, Source, SourceStatus
from relay.store.keys import Keys
from relay.store.pagination import page_ids

_CLEAR_FAILING = ("failures", 0, "next_poll_at", 0, "last_error", "")

# Builds the account index of a store written before it existed (KEYS[3], ARGV[1] the
# source key prefix, KEYS[1] the sources zset); then `holder(account)` is the id of the live
# source polling that account, or nil.
_INDEX_LUA = """
local function backfill()
  if redis.call('EXISTS', KEYS[3]) == 1 or redis.call('ZCARD', KEYS[1]) == 0 then return end
  for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local found = redis.call('HMGET', ARGV[1] .. id, 'base_url', 'username')
    if found[1] then redis.call('HSET', KEYS[3], found[1] .. ' ' .. found[2], id) end
  end
end
local function holder(account)
  local id = redis.call('HGET', KEYS[3], account)
  if id and redis.call('EXISTS', ARGV[1] .. id) == 1 then return id end
  return nil
end
backfill()
"""

# KEYS: sources zset, seq, account index, the tenant's sources zset (for a tenant's source
# only). ARGV: source key prefix, account, password, new id, then the field/value pairs of a
# new source. Returns {created 1/0, id}.
_CREATE_LUA = """
local existing = holder(ARGV[2])
if existing then return {0, existing} end
redis.call('HSET', ARGV[1] .. ARGV[4], unpack(ARGV, 5))
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], seq, ARGV[4])
if KEYS[4] then redis.call('ZADD', KEYS[4], seq, ARGV[4]) end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
return {1, ARGV[4]}
"""
_CREATE_SCRIPT = _INDEX_LUA + _CREATE_LUA

# Same KEYS and ARGV as create: an existing source gets the password (and leaves failing).
_ENSURE_SCRIPT = (
    _INDEX_LUA
    + """
local id = holder(ARGV[2])
if id then
  local key = ARGV[1] .. id
  local found = redis.call('HMGET', key, 'password', 'status')
  if found[1] ~= ARGV[3] then
    redis.call('HSET', key, 'password', ARGV[3])
    redis.call('HINCRBY', key, 'v', 1)
    if found[2] == 'failing' then
      redis.call('HSET', key, 'status', 'ok', 'failures', 0, 'next_poll_at', 0, 'last_error', '')
    end
  end
  return {0, id}
end
"""
    + _CREATE_LUA
)

# KEYS: sources zset, source, account index, the owner tenant's sources zset (if any).
# ARGV: source key prefix, source id.
_DELETE_SCRIPT = (
    _INDEX_LUA
    + """
local found = redis.call('HMGET', KEYS[2], 'base_url', 'username')
if found[1] and redis.call('HGET', KEYS[3], found[1] .. ' ' .. found[2]) == ARGV[2] then
  redis.call('HDEL', KEYS[3], found[1] .. ' ' .. found[2])
end
local deleted = redis.call('DEL', KEYS[2])
if KEYS[4] then redis.call('ZREM', KEYS[4], ARGV[2]) end
return deleted + redis.call('ZREM', KEYS[1], ARGV[2])
"""
)

# KEYS: sources zset, source, account index. ARGV: source key prefix, source id, "1" to
# clear a failing state, then field/value pairs to set. Returns 0 (no such source), 1, or
# the id of another source that already polls the new account.
_UPDATE_SCRIPT = (
    _INDEX_LUA
    + """
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local old = redis.call('HMGET', KEYS[2], 'base_url', 'username')
local new = {old[1], old[2]}
for i = 4, #ARGV, 2 do
  if ARGV[i] == 'base_url' then new[1] = ARGV[i + 1] end
  if ARGV[i] == 'username' then new[2] = ARGV[i + 1] end
end
local old_account, new_account = old[1] .. ' ' .. old[2], new[1] .. ' ' .. new[2]
if new_account ~= old_account then
  local other = holder(new_account)
  if other and other ~= ARGV[2] then return other end
  if redis.call('HGET', KEYS[3], old_account) == ARGV[2] then
    redis.call('HDEL', KEYS[3], old_account)
  end
  redis.call('HSET', KEYS[3], new_account, ARGV[2])
end
if #ARGV > 3 then redis.call('HSET', KEYS[2], unpack(ARGV, 4)) end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[2], 'failures', 0, 'next_poll_at', 0, 'last_error', '')
  if redis.call('HGET', KEYS[2], 'status') == 'failing' then
    redis.call('HSET', KEYS[2], 'status', 'ok')
  end
end
redis.call('HINCRBY', KEYS[2], 'v', 1)
return 1
"""
)

# KEYS: source. ARGV: version polled, then field/value pairs of the failed poll, the last
# pair `last_polled_at`, now: the start of a failing streak is kept as `failing_since`.
_RECORD_FAILURE_SCRIPT = """
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'status') ~= 'failing' then
  redis.call('HSET', KEYS[1], 'failing_since', ARGV[#ARGV])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
"""

# KEYS: source. ARGV: when. Only on an existing source, only forward.
_RECORD_POLLED_SCRIPT = """
local at = redis.call('HGET', KEYS[1], 'last_polled_at')
if at == false then return 0 end
if at == '' or tonumber(at) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'last_polled_at', ARGV[1])
end
return 1
"""


class SourceStore:
    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._ensure = redis.register_script(_ENSURE_SCRIPT)
        self._update = redis.register_script(_UPDATE_SCRIPT)
        self._create = redis.register_script(_CREATE_SCRIPT)
        self._delete = redis.register_script(_DELETE_SCRIPT)
        self._record_failure = redis.register_script(_RECORD_FAILURE_SCRIPT)
        self._record_polled = redis.register_script(_RECORD_POLLED_SCRIPT)

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
        """Add a source; `start_from` None means the cursor starts at `now`. Raises Conflict
        when another source already polls this username at this base_url."""
        source = _new_source(username, password, base_url, poll_interval_s, start_from, now)
        source = replace(source, tenant_id=tenant_id)
        is_created, source_id = await self._write_new(self._create, source)
        if not is_created:
            raise _conflict(source_id, source)
        await self._redis.publish(self._keys.sources_created, source.id)  # wakes the pollers
        return source

    async def _write_new(self, script: AsyncScript, source: Source) -> tuple[bool, str]:
        pairs = [item for field, value in _fields(source).items() for item in (field, value)]
        keys = [self._keys.sources, self._keys.seq, self._keys.source_accounts]
        if source.tenant_id is not None:
            keys.append(self._keys.tenant_sources(source.tenant_id))
        is_created, source_id = cast(
            "list[int | str]",
            await script(
                keys=keys,
                args=[
                    self._keys.source(""),
                    _account(source.base_url, source.username),
                    source.password,
                    source.id,
                    *pairs,
                ],
            ),
        )
        return bool(int(is_created)), str(source_id)

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
        _, source_id = await self._write_new(self._ensure, fresh)
        return await self.get(source_id)

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

    async def get_many_versioned(
        self, source_ids: Sequence[str]
    ) -> list[tuple[Source, int] | None]:
        """Each source and its version (None where it is gone), in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for source_id in source_ids:
                pipe.hgetall(self._keys.source(source_id))
            rows = cast("list[dict[str, str]]", await pipe.execute())
        return [(_source_from_fields(r), int(r.get("v", "0"))) if r else None for r in rows]

    async def record_polled(self, polled_at: Mapping[str, float]) -> None:
        """Set `last_polled_at` of sources whose polls changed nothing else (empty pages),
        in one round trip; a source deleted meanwhile is not re-created."""
        if not polled_at:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for source_id, at in polled_at.items():
                await self._record_polled(
                    keys=[self._keys.source(source_id)], args=[repr(at)], client=pipe
                )
            await pipe.execute()

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
        its), or Conflict when the new username and base_url are another source's account.
        Changing credentials, base_url or status clears a failing state so the poller tries
        again at once. `status` may be "ok" or "paused" (pause/resume); "failing" is set only
        by the poller."""
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
            keys=[self._keys.sources, self._keys.source(source_id), self._keys.source_accounts],
            args=[self._keys.source(""), source_id, "1" if clears else "0", *pairs],
        )
        if str(updated) == "0":
            raise NotFound(f"source {source_id} not found")
        if str(updated) != "1":
            raise Conflict(f"source {updated} already polls that username at that base_url")
        return await self.get(source_id)

    async def delete(self, source_id: str, *, tenant: str | None = None) -> None:
        """Remove the source (its events stay until they expire); raises NotFound (also when
        `tenant` is given and it is not its)."""
        owner = (await self.get(source_id, tenant=tenant)).tenant_id
        keys = [self._keys.sources, self._keys.source(source_id), self._keys.source_accounts]
        if owner is not None:
            keys.append(self._keys.tenant_sources(owner))
        removed = await self._delete(keys=keys, args=[self._keys.source(""), source_id])
        await self._redis.delete(self._keys.source_lock(source_id))
        if not int(removed):
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


def _account(base_url: str, username: str) -> str:
    return f"{base_url} {username}"


def _conflict(source_id: str, source: Source) -> Conflict:
    return Conflict(f"source {source_id} already polls {source.username} at {source.base_url}")


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
        failing_since=_failing_since(fields),
    )


def _failing_since(fields: dict[str, str]) -> float | None:
    """When the current failing streak began; None unless the source is failing now."""
    if fields.get("status") != "failing" or not fields.get("failing_since"):
        return None
    return float(fields["failing_since"])


def _float_text(value: float) -> str:
    return "inf" if math.isinf(value) else repr(value)
