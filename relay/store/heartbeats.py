"""Role heartbeats: each process writes one (with its metrics snapshot) every few seconds,
and readiness, `/metrics` and `relay status` read them back.

`hb:{role}:{instance}` expires when the process stops beating; `instances` scores
`role|instance` by its last beat and keeps it after a crash (readiness names the role), until
a clean stop removes it or `forget_after_s` passes.

Liveness is the fast beat of the roles that hold work (a dispatcher's stream entries, a retry
worker's started jobs): `live:{role}` scores each holder by its last beat, about every second,
so a live peer can tell in a few seconds that a holder died and take its work over, instead
of waiting for that work's idle time or job timeout. A holder that never beat (an older
release) is never judged dead here; the slow idle-time paths still cover it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import cast

import redis
from redis.asyncio import Redis

from relay.core.models import Heartbeat, RolePresence
from relay.store.keys import Keys


class HeartbeatWriter:
    """The writing side, on a blocking client (the heartbeat runs in its own thread)."""

    def __init__(self, *, client: redis.Redis, keys: Keys, role: str, instance: str) -> None:
        self._client = client
        self._key = keys.heartbeat(role, instance)
        self._instances_key = keys.role_instances
        self._member = f"{role}|{instance}"

    def publish(self, value: str, *, now: float, ttl_s: int, forget_after_s: float) -> None:
        """Write the heartbeat `value` (JSON) and mark the instance seen, in one transaction."""
        with self._client.pipeline(transaction=True) as pipe:
            pipe.set(self._key, value, ex=ttl_s)
            pipe.zadd(self._instances_key, {self._member: now})
            pipe.zremrangebyscore(self._instances_key, "-inf", now - forget_after_s)
            pipe.execute()

    def withdraw(self) -> None:
        """Remove the heartbeat and the instance (a clean stop); raises RedisError."""
        with self._client.pipeline() as pipe:
            pipe.delete(self._key)
            pipe.zrem(self._instances_key, self._member)
            pipe.execute()


async def heartbeats(redis: Redis, keys: Keys) -> list[Heartbeat]:
    """The live role instances (their heartbeat keys expire when they stop)."""
    names = [cast(str, name) async for name in redis.scan_iter(match=keys.heartbeats_pattern)]
    if not names:
        return []
    values = cast("list[str | None]", await redis.mget(names))
    beats = []
    for value in values:
        if value is None:
            continue
        try:
            data = json.loads(value)
            beats.append(Heartbeat(data["role"], data["instance"], data["at"], data["metrics"]))
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(beats, key=lambda b: (b.role, b.instance))


async def role_presence(
    redis: Redis, keys: Keys, *, now: float, stale_after_s: float
) -> dict[str, RolePresence]:
    """Each role seen lately (one ZRANGE), by name; an instance is live when its last
    heartbeat is at most `stale_after_s` old."""
    rows = cast(
        "list[tuple[str, float]]",
        await redis.zrange(keys.role_instances, 0, -1, withscores=True),
    )
    newest: dict[str, float] = {}
    live: dict[str, int] = {}
    stale: dict[str, int] = {}
    for member, at in rows:
        role = member.partition("|")[0]
        newest[role] = max(newest.get(role, at), at)
        counts = live if now - at <= stale_after_s else stale
        counts[role] = counts.get(role, 0) + 1
    return {
        role: RolePresence(
            instances=live.get(role, 0),
            stale_instances=stale.get(role, 0),
            last_seen_s=round(max(0.0, now - newest[role]), 1),
        )
        for role in sorted(newest)
    }


def _silent(
    names: Sequence[str], scores: Sequence[float | None], *, now: float, after_s: float
) -> set[str]:
    return {
        name
        for name, score in zip(names, scores, strict=True)
        if score is not None and now - float(score) > after_s
    }


class Liveness:
    """Fast beats of one role's work holders (async side: the dispatcher)."""

    def __init__(self, *, redis: Redis, keys: Keys, role: str) -> None:
        self._redis = redis
        self._key = keys.liveness(role)

    async def beat(self, holder: str, *, now: float) -> None:
        await self._redis.zadd(self._key, {holder: now})

    async def silent(self, holders: Sequence[str], *, now: float, after_s: float) -> set[str]:
        """The holders whose last beat is older than `after_s` (never-beaten ones are not)."""
        if not holders:
            return set()
        scores = await self._redis.zmscore(self._key, list(holders))
        return _silent(holders, scores, now=now, after_s=after_s)

    async def forget(self, holders: Iterable[str]) -> None:
        names = list(holders)
        if names:
            await self._redis.zrem(self._key, *names)

    async def prune(self, *, older_than: float) -> None:
        """Drop holders whose last beat is older than `older_than` (long gone)."""
        await self._redis.zremrangebyscore(self._key, "-inf", older_than)


class SyncLiveness:
    """Fast beats of one role's work holders (blocking side: the RQ retry worker)."""

    def __init__(self, *, client: redis.Redis, keys: Keys, role: str) -> None:
        self._client = client
        self._key = keys.liveness(role)

    def beat(self, holder: str, *, now: float) -> None:
        self._client.zadd(self._key, {holder: now})

    def silent(self, holders: Sequence[str], *, now: float, after_s: float) -> set[str]:
        """The holders whose last beat is older than `after_s` (never-beaten ones are not)."""
        if not holders:
            return set()
        scores = self._client.zmscore(self._key, list(holders))
        return _silent(holders, scores, now=now, after_s=after_s)

    def forget(self, holders: Iterable[str]) -> None:
        names = list(holders)
        if names:
            self._client.zrem(self._key, *names)

    def prune(self, *, older_than: float) -> None:
        """Drop holders whose last beat is older than `older_than` (long gone)."""
        self._client.zremrangebyscore(self._key, "-inf", older_than)
