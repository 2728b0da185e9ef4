"""Counts read at scrape time: queue depths, dead letters and source cursors."""

from __future__ import annotations

import time
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from relay.core.models import QueueDepths
from relay.store.keys import DISPATCH_GROUP, Keys
from relay.store.retry_queue import RetryStates


async def queue_depths(redis: Redis, keys: Keys) -> QueueDepths:
    """Every queue's depth: the streams and RQ's registries in one round trip (plus one per
    lane for the consumer group); the first-attempt figures cover both lanes (live and
    replay). Retries are counted as deliveries where they wait (store/retry_queue.py), not
    as RQ jobs: one drain job stands for many."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xlen(keys.stream)
        pipe.xlen(keys.replay_stream)
        pipe.zcard(keys.dead_letters)
        pipe.zcard(keys.rq_failed)
        replies = cast("list[int]", await pipe.execute())
    live_length, replay_length, dead, failed = replies
    length = int(live_length) + int(replay_length)
    retries = await RetryStates(redis=redis, keys=keys).counts(now=time.time())
    held_back = await _drains_held_back(redis, keys)
    limited = sum(retries.due_by_subscription.get(sub_id, 0) for sub_id in held_back)
    limited += sum(len(ids) for ids in (await _rate_limited(redis, keys)).values())
    pending = 0
    for lane in (keys.stream, keys.replay_stream):
        try:
            groups = await redis.xinfo_groups(lane)
        except ResponseError:  # no stream yet
            groups = []
        for group in groups:
            if group.get("name") == DISPATCH_GROUP:
                pending += int(group.get("pending", 0))
    return QueueDepths(
        stream_backlog=max(0, int(length) - pending),
        stream_pending=pending,
        retry_ready=max(0, retries.due - limited),
        retry_scheduled=retries.scheduled,
        dead_letters=int(dead),
        retry_running=retries.running,
        retry_failed=int(failed),
        retry_rate_limited=limited,
    )


async def _drains_held_back(redis: Redis, keys: Keys) -> list[str]:
    """Subscriptions whose next drain job RQ holds back while their drain runs."""
    members = cast("set[str]", await redis.smembers(keys.rq_rate_limits))
    prefix = keys.drain_limit("")
    candidates = sorted(m for m in members if m.startswith(prefix))
    if not candidates:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for key in candidates:
            pipe.zcard(keys.rq_rate_limited(key))
        sizes = cast("list[int]", await pipe.execute())
    return [key.removeprefix(prefix) for key, size in zip(candidates, sizes, strict=True) if size]


async def _rate_limited(redis: Redis, keys: Keys) -> dict[str, list[str]]:
    """relay 0.1's per-delivery retry jobs RQ holds back per rate-limit key of this prefix
    (one per subscription): due, but that subscription's slots are taken. Two round trips."""
    members = cast("set[str]", await redis.smembers(keys.rq_rate_limits))
    ours = sorted(m for m in members if m.startswith(keys.rate_limit("")))
    if not ours:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for key in ours:
            pipe.zrange(keys.rq_rate_limited(key), 0, -1)
        rows = cast("list[list[str]]", await pipe.execute())
    return dict(zip(ours, rows, strict=True))


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


async def queued_retries_by_subscription(redis: Redis, keys: Keys) -> dict[str, int]:
    """Deliveries in the retry queue per subscription: scheduled, due and running."""
    counts = await RetryStates(redis=redis, keys=keys).counts(now=time.time())
    return counts.subscriptions
