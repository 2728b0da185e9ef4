"""Counts read at scrape time: queue depths, dead letters, role heartbeats and instances,
source cursors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from relay.store.keys import DISPATCH_GROUP, Keys


@dataclass(frozen=True, slots=True)
class QueueDepths:
    stream_backlog: int  # entries not yet read by any dispatcher
    stream_pending: int  # entries read but not yet settled
    retry_ready: int  # retries due now, waiting for a worker
    retry_scheduled: int  # retries waiting for their time
    dead_letters: int
    retry_running: int = 0  # retries a worker is running now
    retry_failed: int = 0  # retry jobs that crashed (RQ's failed registry; not dead letters)


@dataclass(frozen=True, slots=True)
class RolePresence:
    """One role's instances: how many are live and how long ago the newest one beat."""

    instances: int  # live: heartbeat within the stale threshold
    stale_instances: int  # seen lately but silent since (crashed, or hung)
    last_seen_s: float  # seconds since the newest heartbeat of any instance

    @property
    def is_down(self) -> bool:
        """Every instance went silent without a clean stop."""
        return self.instances == 0


@dataclass(frozen=True, slots=True)
class Heartbeat:
    role: str
    instance: str
    at: float
    metrics: list[dict[str, Any]]


async def queue_depths(redis: Redis, keys: Keys) -> QueueDepths:
    """Every queue's depth in one round trip (plus one for the consumer group)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xlen(keys.stream)
        pipe.llen(keys.rq_queue)
        pipe.zcard(keys.rq_scheduled)
        pipe.zcard(keys.dead_letters)
        pipe.zcard(keys.rq_started)
        pipe.zcard(keys.rq_failed)
        replies = cast("list[int]", await pipe.execute())
    length, ready, scheduled, dead, running, failed = replies
    pending = 0
    try:
        groups = await redis.xinfo_groups(keys.stream)
    except ResponseError:  # no stream yet
        groups = []
    for group in groups:
        if group.get("name") == DISPATCH_GROUP:
            pending = int(group.get("pending", 0))
    return QueueDepths(
        stream_backlog=max(0, int(length) - pending),
        stream_pending=pending,
        retry_ready=int(ready),
        retry_scheduled=int(scheduled),
        dead_letters=int(dead),
        retry_running=int(running),
        retry_failed=int(failed),
    )


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


async def source_cursors(redis: Redis, keys: Keys) -> dict[str, int]:
    """Every source's cursor (epoch s of the newest message recorded), in one round trip."""
    ids = cast("list[str]", await redis.zrange(keys.sources, 0, -1))
    if not ids:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for source_id in ids:
            pipe.hget(keys.source(source_id), "cursor")
        cursors = cast("list[str | None]", await pipe.execute())
    return {
        source_id: int(cursor)
        for source_id, cursor in zip(ids, cursors, strict=True)
        if cursor is not None
    }
