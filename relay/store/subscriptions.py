"""Subscriptions in Redis: one hash each, ids in a zset by seq, a version counter for caches.

Hash fields: `url`, `created_at`, `enabled` ("1"/"0") as plain strings; `secrets`
(`[{"v": value, "x": expires_at|null}]`, newest first), `event_types`, `source_ids`,
`description`, `headers`, `disabled_reason` as JSON; `payload_format` plain (absent on rows
written before it existed: "standard"); `tenant_id` ("" for the operator's), set at creation
and never changed, with the tenant's ids also in `ten:{id}:subs`; `match` as JSON (absent on
rows written before it existed: no filter); `rate_limit_per_s`, `timeout_s`, `concurrency`
as JSON numbers or null (absent on older rows: null). Every change bumps
`subs:version` in the same transaction and scores the subscription's id in `subs:changes` by
that version (deleted ones stay there as tombstones), so a reader that saw the new version
reads the new data, and a cache reads only what changed since its version (`changes_since`).
Reads and writes given `tenant=` treat another tenant's row as missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError
from redis.typing import EncodableT, FieldT

from relay.core.errors import NotFound
from relay.core.ids import new_id
from relay.core.models import PAYLOAD_STANDARD, Listing, Secret, Subscription
from relay.core.signing import new_secret
from relay.core.sms_match import SmsMatch, sms_match_from_dict
from relay.store.keys import Keys
from relay.store.pagination import page_ids


class Unset:
    """Marks an update argument that was not given (None is a real value for filters)."""


UNSET = Unset()

# KEYS: subscription, subscriptions, attempts, version, changes, tenant index prefix.
# ARGV: id, tenant asked for ("" = any).
_DELETE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local owner = redis.call('HGET', KEYS[1], 'tenant_id') or ''
if ARGV[2] ~= '' and owner ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if owner ~= '' then redis.call('ZREM', KEYS[6] .. owner .. ':subs', ARGV[1]) end
redis.call('DEL', KEYS[3])
redis.call('ZADD', KEYS[5], redis.call('INCR', KEYS[4]), ARGV[1])
return 1
"""

# KEYS: version, changes; ARGV: subscription id. Run inside the change's MULTI.
_BUMP_SCRIPT = "redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[1]), ARGV[1])"


class SubscriptionStore:
    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._delete = redis.register_script(_DELETE_SCRIPT)

    async def create(
        self,
        *,
        url: str,
        event_types: tuple[str, ...] | None,
        source_ids: tuple[str, ...] | None,
        description: str | None,
        headers: Mapping[str, str],
        enabled: bool,
        now: float,
        payload_format: str = PAYLOAD_STANDARD,
        tenant_id: str | None = None,
        match: SmsMatch | None = None,
        rate_limit_per_s: float | None = None,
        timeout_s: float | None = None,
        concurrency: int | None = None,
    ) -> Subscription:
        """Add a subscription with a fresh `whsec_` secret."""
        subscription = Subscription(
            id=new_id("sub"),
            url=url,
            secrets=(Secret(new_secret()),),
            created_at=now,
            event_types=event_types,
            source_ids=source_ids,
            description=description,
            headers=dict(headers),
            enabled=enabled,
            payload_format=payload_format,
            tenant_id=tenant_id,
            match=match,
            rate_limit_per_s=rate_limit_per_s,
            timeout_s=timeout_s,
            concurrency=concurrency,
        )
        keys = self._keys
        seq = await self._redis.incr(keys.seq)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.subscription(subscription.id), mapping=_to_fields(subscription))
            pipe.zadd(keys.subscriptions, {subscription.id: seq})
            if tenant_id is not None:
                pipe.zadd(keys.tenant_subscriptions(tenant_id), {subscription.id: seq})
            self._bump(pipe, subscription.id)
            await pipe.execute()
        return subscription

    async def get(self, subscription_id: str, *, tenant: str | None = None) -> Subscription:
        """The subscription; raises NotFound."""
        key = self._keys.subscription(subscription_id)
        fields = cast("dict[str, str]", await self._redis.hgetall(key))
        if not fields or not _is_visible(fields, tenant):
            raise NotFound(f"subscription {subscription_id} not found")
        return _from_fields(subscription_id, fields)

    async def page(
        self, *, limit: int, cursor: str | None, tenant: str | None = None
    ) -> Listing[Subscription]:
        """Newest first; only `tenant`'s (a page of its own index) when given."""
        keys = self._keys
        index = keys.subscriptions if tenant is None else keys.tenant_subscriptions(tenant)
        ids, next_cursor = await page_ids(self._redis, index, limit=limit, cursor=cursor)
        return Listing(tuple(await self._get_many(ids)), next_cursor)

    async def all(self) -> list[Subscription]:
        """Every subscription (the dispatcher's routing table), oldest first."""
        ids = cast("list[str]", await self._redis.zrange(self._keys.subscriptions, 0, -1))
        return await self._get_many(ids)

    async def version(self) -> int:
        """A counter bumped by every change, so readers can cache `all()`."""
        value = cast("str | None", await self._redis.get(self._keys.subscriptions_version))
        return int(value or 0)

    async def changes_since(self, version: int) -> tuple[int, list[str]]:
        """The current version and the ids of subscriptions created, changed or deleted
        after `version`; one round trip, O(log N + changes)."""
        keys = self._keys
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(keys.subscriptions_version)
            pipe.zrangebyscore(keys.subscription_changes, f"({version}", "+inf")
            current, ids = await pipe.execute()
        return int(current or 0), list(ids)

    async def get_many(self, ids: Sequence[str]) -> list[Subscription]:
        """Subscriptions in the order asked, skipping any that do not exist; one round trip."""
        return await self._get_many(ids)

    async def update(
        self,
        subscription_id: str,
        *,
        url: str | Unset = UNSET,
        event_types: tuple[str, ...] | Unset | None = UNSET,
        source_ids: tuple[str, ...] | Unset | None = UNSET,
        description: str | Unset | None = UNSET,
        headers: Mapping[str, str] | Unset = UNSET,
        enabled: bool | Unset = UNSET,
        payload_format: str | Unset = UNSET,
        match: SmsMatch | Unset | None = UNSET,
        rate_limit_per_s: float | Unset | None = UNSET,
        timeout_s: float | Unset | None = UNSET,
        concurrency: int | Unset | None = UNSET,
        tenant: str | None = None,
    ) -> Subscription:
        """Change the given fields; raises NotFound. Enabling clears `disabled_reason`."""
        changes: dict[str, Any] = {}
        if not isinstance(url, Unset):
            changes["url"] = url
        if not isinstance(event_types, Unset):
            changes["event_types"] = event_types
        if not isinstance(source_ids, Unset):
            changes["source_ids"] = source_ids
        if not isinstance(description, Unset):
            changes["description"] = description
        if not isinstance(headers, Unset):
            changes["headers"] = dict(headers)
        if not isinstance(enabled, Unset):
            changes["enabled"] = enabled
            if enabled:
                changes["disabled_reason"] = None
        if not isinstance(payload_format, Unset):
            changes["payload_format"] = payload_format
        if not isinstance(match, Unset):
            changes["match"] = match
        for name, value in (
            ("rate_limit_per_s", rate_limit_per_s),
            ("timeout_s", timeout_s),
            ("concurrency", concurrency),
        ):
            if not isinstance(value, Unset):
                changes[name] = value
        return await self._modify(
            subscription_id, lambda sub: replace(sub, **changes), tenant=tenant
        )

    async def disable(self, subscription_id: str, *, reason: str) -> None:
        """Disable (e.g. after 410 Gone) and record why; raises NotFound."""
        await self._modify(
            subscription_id, lambda sub: replace(sub, enabled=False, disabled_reason=reason)
        )

    async def delete(self, subscription_id: str, *, tenant: str | None = None) -> None:
        """Remove it and its attempt log; raises NotFound."""
        keys = self._keys
        deleted = await self._delete(
            keys=[
                keys.subscription(subscription_id),
                keys.subscriptions,
                keys.attempts(subscription_id),
                keys.subscriptions_version,
                keys.subscription_changes,
                keys.tenant(""),
            ],
            args=[subscription_id, tenant or ""],
        )
        if not int(deleted):
            raise NotFound(f"subscription {subscription_id} not found")

    async def rotate_secret(
        self, subscription_id: str, *, overlap_s: float, now: float, tenant: str | None = None
    ) -> Subscription:
        """A new current secret; every earlier one keeps signing until now + overlap_s at
        the latest (an older secret already ending sooner keeps its own end). So an overlap
        of 0 ends every earlier secret at once: the emergency rotation after a leak. Secrets
        whose overlap has ended are dropped."""
        ends = now + overlap_s

        def rotate(sub: Subscription) -> Subscription:
            previous = (
                replace(s, expires_at=ends if s.expires_at is None else min(s.expires_at, ends))
                for s in sub.secrets
            )
            still_signing = tuple(
                s for s in previous if s.expires_at is not None and s.expires_at > now
            )
            return replace(sub, secrets=(Secret(new_secret()), *still_signing))

        return await self._modify(subscription_id, rotate, tenant=tenant)

    async def _modify(
        self,
        subscription_id: str,
        change: Callable[[Subscription], Subscription],
        *,
        tenant: str | None = None,
    ) -> Subscription:
        """Read, change and write one subscription under WATCH, so concurrent changes (or a
        delete) are never lost or resurrected; raises NotFound."""
        key = self._keys.subscription(subscription_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    fields = cast("dict[str, str]", await pipe.hgetall(key))
                    if not fields or not _is_visible(fields, tenant):
                        raise NotFound(f"subscription {subscription_id} not found")
                    changed = change(_from_fields(subscription_id, fields))
                    pipe.multi()  # type: ignore[no-untyped-call]  # untyped in redis-py
                    pipe.hset(key, mapping=_to_fields(changed))
                    self._bump(pipe, subscription_id)
                    await pipe.execute()
                    return changed
                except WatchError:
                    continue

    def _bump(self, pipe: Pipeline, subscription_id: str) -> None:
        """Queue the version bump and change record of one subscription on `pipe`."""
        keys = self._keys
        pipe.eval(
            _BUMP_SCRIPT, 2, keys.subscriptions_version, keys.subscription_changes, subscription_id
        )

    async def _get_many(self, ids: Sequence[str]) -> list[Subscription]:
        """Subscriptions in the order asked, skipping any deleted meanwhile; one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for subscription_id in ids:
                pipe.hgetall(self._keys.subscription(subscription_id))
            rows = cast("list[dict[str, str]]", await pipe.execute())
        return [
            _from_fields(subscription_id, row)
            for subscription_id, row in zip(ids, rows, strict=True)
            if row
        ]


def _to_fields(sub: Subscription) -> dict[FieldT, EncodableT]:
    return {
        "url": sub.url,
        "created_at": repr(sub.created_at),
        "enabled": "1" if sub.enabled else "0",
        "secrets": _json([{"v": s.value, "x": s.expires_at} for s in sub.secrets]),
        "event_types": _json(sub.event_types),
        "source_ids": _json(sub.source_ids),
        "description": _json(sub.description),
        "headers": _json(dict(sub.headers)),
        "disabled_reason": _json(sub.disabled_reason),
        "payload_format": sub.payload_format,
        "tenant_id": sub.tenant_id or "",
        "match": _json(None if sub.match is None else sub.match.as_dict()),
        "rate_limit_per_s": _json(sub.rate_limit_per_s),
        "timeout_s": _json(sub.timeout_s),
        "concurrency": _json(sub.concurrency),
    }


def _from_fields(subscription_id: str, fields: Mapping[str, str]) -> Subscription:
    secrets = json.loads(fields["secrets"])
    event_types = json.loads(fields["event_types"])
    source_ids = json.loads(fields["source_ids"])
    match = json.loads(fields.get("match", "null"))
    return Subscription(
        id=subscription_id,
        url=fields["url"],
        secrets=tuple(Secret(value=s["v"], expires_at=s["x"]) for s in secrets),
        created_at=float(fields["created_at"]),
        event_types=None if event_types is None else tuple(event_types),
        source_ids=None if source_ids is None else tuple(source_ids),
        description=json.loads(fields["description"]),
        headers=json.loads(fields["headers"]),
        enabled=fields["enabled"] == "1",
        disabled_reason=json.loads(fields["disabled_reason"]),
        payload_format=fields.get("payload_format", PAYLOAD_STANDARD),
        tenant_id=fields.get("tenant_id") or None,
        match=None if match is None else sms_match_from_dict(match),
        rate_limit_per_s=json.loads(fields.get("rate_limit_per_s", "null")),
        timeout_s=json.loads(fields.get("timeout_s", "null")),
        concurrency=json.loads(fields.get("concurrency", "null")),
    )


def _is_visible(fields: Mapping[str, str], tenant: str | None) -> bool:
    return tenant is None or fields.get("tenant_id") == tenant


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))
