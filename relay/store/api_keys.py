"""API keys in Redis: one hash per key, found by the SHA-256 of the presented key.

`key:{id}` holds `name`, `scopes` (JSON list), `tenant_id`, `created_at`, `expires_at`,
`last_used_at` ("" when unset) and `digest`; `keydig:{digest}` points at the id. The key
itself is never stored: it is 256 random bits, so a plain SHA-256 is as good as a slow or
peppered hash (nothing to brute-force) and costs one hash per request. Revoking deletes
both keys, so the very next lookup on any API replica fails: nothing is cached.
"""

from __future__ import annotations

import json
from typing import cast

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from relay.core.errors import NotFound
from relay.core.ids import new_id
from relay.core.models import ApiKey, Listing
from relay.store.keys import Keys
from relay.store.pagination import page_ids

LAST_USED_EVERY_S = 60.0  # `last_used_at` is written at most this often per key

# KEYS: digest index. ARGV: key hash prefix. The key's fields, or nil.
_LOOKUP_SCRIPT = """
local id = redis.call('GET', KEYS[1])
if not id then return false end
return redis.call('HGETALL', ARGV[1] .. id)
"""

# KEYS: key, keys. ARGV: id, the digest index prefix. The revoked key's fields, or nil.
_REVOKE_SCRIPT = """
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return false end
redis.call('DEL', KEYS[1], ARGV[2] .. redis.call('HGET', KEYS[1], 'digest'))
redis.call('ZREM', KEYS[2], ARGV[1])
return fields
"""


# KEYS: key. ARGV: now. HSET only while the key exists: a use racing a revoke leaves no stub.
_TOUCH_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'last_used_at', ARGV[1]) end
return 1
"""


class ApiKeyStore:
    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._lookup = redis.register_script(_LOOKUP_SCRIPT)
        self._revoke = redis.register_script(_REVOKE_SCRIPT)
        self._touch = redis.register_script(_TOUCH_SCRIPT)

    async def create(
        self,
        *,
        name: str,
        scopes: tuple[str, ...],
        tenant_id: str | None,
        expires_at: float | None,
        digest: str,
        now: float,
    ) -> ApiKey:
        """Store a key by the digest of its secret (the caller made both)."""
        key = ApiKey(
            id=new_id("key"),
            name=name,
            scopes=scopes,
            tenant_id=tenant_id,
            created_at=now,
            expires_at=expires_at,
            digest=digest,
        )
        seq = await self._redis.incr(self._keys.seq)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.api_key(key.id), mapping=_to_fields(key))
            pipe.set(self._keys.api_key_digest(digest), key.id)
            pipe.zadd(self._keys.api_keys, {key.id: seq})
            await pipe.execute()
        return key

    async def find(self, digest: str) -> ApiKey | None:
        """The key with this digest, or None (unknown or revoked); one round trip."""
        flat = await self._lookup(
            keys=[self._keys.api_key_digest(digest)], args=[self._keys.api_key("")]
        )
        if not flat:
            return None
        return _from_flat(cast("list[str]", flat))

    async def get(self, key_id: str, *, tenant: str | None = None) -> ApiKey:
        """The key; raises NotFound (also when `tenant` is given and the key is not its)."""
        fields = cast("dict[str, str]", await self._redis.hgetall(self._keys.api_key(key_id)))
        if not fields or (tenant is not None and fields["tenant_id"] != tenant):
            raise NotFound(f"key {key_id} not found")
        return _from_fields(fields)

    async def page(
        self, *, limit: int, cursor: str | None, tenant: str | None = None
    ) -> Listing[ApiKey]:
        """Newest first; only `tenant`'s keys when given."""
        found: list[ApiKey] = []
        while True:
            ids, next_cursor = await page_ids(
                self._redis, self._keys.api_keys, limit=limit, cursor=cursor
            )
            async with self._redis.pipeline(transaction=False) as pipe:
                for key_id in ids:
                    pipe.hgetall(self._keys.api_key(key_id))
                rows = cast("list[dict[str, str]]", await pipe.execute())
            found += [
                _from_fields(row)
                for row in rows
                if row and (tenant is None or row["tenant_id"] == tenant)
            ]
            if tenant is None or next_cursor is None or found:
                return Listing(tuple(found), next_cursor)
            cursor = next_cursor

    async def revoke(self, key_id: str, *, tenant: str | None = None) -> ApiKey:
        """Delete the key so the next request with it fails everywhere; raises NotFound."""
        await self.get(key_id, tenant=tenant)
        flat = await self._revoke(
            keys=[self._keys.api_key(key_id), self._keys.api_keys],
            args=[key_id, self._keys.api_key_digest("")],
        )
        if not flat:
            raise NotFound(f"key {key_id} not found")
        return _from_flat(cast("list[str]", flat))

    async def touch(self, key: ApiKey, *, now: float) -> None:
        """Record a use, at most once per LAST_USED_EVERY_S (so a busy key costs no write per
        request)."""
        if key.last_used_at is not None and now - key.last_used_at < LAST_USED_EVERY_S:
            return
        await self._touch(keys=[self._keys.api_key(key.id)], args=[repr(now)])


def _to_fields(key: ApiKey) -> dict[FieldT, EncodableT]:
    return {
        "id": key.id,
        "name": key.name,
        "scopes": json.dumps(list(key.scopes)),
        "tenant_id": key.tenant_id or "",
        "created_at": repr(key.created_at),
        "expires_at": "" if key.expires_at is None else repr(key.expires_at),
        "last_used_at": "" if key.last_used_at is None else repr(key.last_used_at),
        "digest": key.digest,
    }


def _from_flat(flat: list[str]) -> ApiKey:
    return _from_fields(dict(zip(flat[::2], flat[1::2], strict=True)))


def _from_fields(fields: dict[str, str]) -> ApiKey:
    return ApiKey(
        id=fields["id"],
        name=fields["name"],
        scopes=tuple(json.loads(fields["scopes"])),
        tenant_id=fields["tenant_id"] or None,
        created_at=float(fields["created_at"]),
        expires_at=float(fields["expires_at"]) if fields.get("expires_at") else None,
        last_used_at=float(fields["last_used_at"]) if fields.get("last_used_at") else None,
        digest=fields["digest"],
    )
