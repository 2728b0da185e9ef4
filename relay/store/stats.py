"""Counts read at scrape time: queue depths, dead letters, role heartbeats."""

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
        length, ready, scheduled, dead = cast("list[int]", await pipe.execute())
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
