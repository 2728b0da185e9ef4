"""Tenants in Redis: one hash each (`name`, `created_at`), ids in a zset by seq.

Each tenant's sources and subscriptions are also indexed in `ten:{id}:srcs` / `:subs`
(written by SourceStore and SubscriptionStore), so a tenant's list is a page of its own
index and "does it still own anything" is two ZCARDs.
"""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis

from relay.core.errors import Conflict, NotFound
from relay.core.ids import new_id
from relay.core.models import Listing, Tenant
from relay.store.keys import Keys
from relay.store.pagination import page_ids

# KEYS: tenant, tenants, its sources, its subscriptions. ARGV: id.
# 0: not found, -1: still owns rows, 1: deleted. One script, so nothing is added between
# the check and the delete by another API replica's request already past its own check.
_DELETE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('ZCARD', KEYS[3]) > 0 or redis.call('ZCARD', KEYS[4]) > 0 then return -1 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""


_RENAME_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'name', ARGV[1])
return 1
"""


class TenantStore:
    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._delete = redis.register_script(_DELETE_SCRIPT)
        self._rename = redis.register_script(_RENAME_SCRIPT)

    async def create(self, *, name: str, now: float) -> Tenant:
        tenant = Tenant(id=new_id("ten"), name=name, created_at=now)
        seq = await self._redis.incr(self._keys.seq)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.tenant(tenant.id), mapping={"name": name, "created_at": repr(now)})
            pipe.zadd(self._keys.tenants, {tenant.id: seq})
            await pipe.execute()
        return tenant

    async def get(self, tenant_id: str) -> Tenant:
        """The tenant; raises NotFound."""
        fields = cast("dict[str, str]", await self._redis.hgetall(self._keys.tenant(tenant_id)))
        if not fields:
            raise NotFound(f"tenant {tenant_id} not found")
        return _from_fields(tenant_id, fields)

    async def page(self, *, limit: int, cursor: str | None) -> Listing[Tenant]:
        """Newest first."""
        ids, next_cursor = await page_ids(
            self._redis, self._keys.tenants, limit=limit, cursor=cursor
        )
        async with self._redis.pipeline(transaction=False) as pipe:
            for tenant_id in ids:
                pipe.hgetall(self._keys.tenant(tenant_id))
            rows = cast("list[dict[str, str]]", await pipe.execute())
        tenants = (_from_fields(i, row) for i, row in zip(ids, rows, strict=True) if row)
        return Listing(tuple(tenants), next_cursor)

    async def rename(self, tenant_id: str, *, name: str) -> Tenant:
        """Change the name; raises NotFound."""
        if not int(await self._rename(keys=[self._keys.tenant(tenant_id)], args=[name])):
            raise NotFound(f"tenant {tenant_id} not found")
        return await self.get(tenant_id)

    async def delete(self, tenant_id: str) -> None:
        """Remove the tenant; raises NotFound, Conflict while it owns sources or
        subscriptions."""
        keys = self._keys
        result = int(
            await self._delete(
                keys=[
                    keys.tenant(tenant_id),
                    keys.tenants,
                    keys.tenant_sources(tenant_id),
                    keys.tenant_subscriptions(tenant_id),
                ],
                args=[tenant_id],
            )
        )
        if result == 0:
            raise NotFound(f"tenant {tenant_id} not found")
        if result < 0:
            raise Conflict(
                f"tenant {tenant_id} still owns sources or subscriptions; delete them first"
            )


def _from_fields(tenant_id: str, fields: dict[str, str]) -> Tenant:
    return Tenant(id=tenant_id, name=fields["name"], created_at=float(fields["created_at"]))
