"""Counts read at scrape time: queue depths, dead letters and source cursors."""

from __future__ import annotations

from collections import Counter
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from relay.core.models import QueueDepths
from relay.store.keys import DISPATCH_GROUP, Keys


async def queue_depths(redis: Redis, keys: Keys) -> QueueDepths:
    """Every queue's depth in one round trip (plus one per lane for the consumer group); the
    first-attempt figures cover both lanes (live and replay)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xlen(keys.stream)
        pipe.xlen(keys.replay_stream)
        pipe.llen(keys.rq_queue)
        pipe.zcard(keys.rq_scheduled)
        pipe.zcard(keys.dead_letters)
        pipe.zcard(keys.rq_started)
        pipe.zcard(keys.rq_failed)
        replies = cast("list[int]", await pipe.execute())
    live_length, replay_length, ready, scheduled, dead, running, failed = replies
    length = int(live_length) + int(replay_length)
    limited = sum(len(ids) for ids in (await _rate_limited(redis, keys)).values())
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
        retry_ready=int(ready),
        retry_scheduled=int(scheduled),
        dead_letters=int(dead),
        retry_running=int(running),
        retry_failed=int(failed),
        retry_rate_limited=limited,
    )


async def _rate_limited(redis: Redis, keys: Keys) -> dict[str, list[str]]:
    """The retries RQ holds back per rate-limit key of this prefix (one per subscription):
    due, but that subscription's slots are taken. Two round trips."""
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
    """Retry jobs per subscription: scheduled, due, held back by its rate limit, and
    running. Job ids end with
    `-{event_id}-{subscription_id}-{attempt}` (RetryQueue.job_id), and the queue is this
    prefix's own, so every job in it is ours."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zrange(keys.rq_scheduled, 0, -1)
        pipe.lrange(keys.rq_queue, 0, -1)
        pipe.zrange(keys.rq_started, 0, -1)
        groups = cast("list[list[str]]", await pipe.execute())
    groups += list((await _rate_limited(redis, keys)).values())
    counts: Counter[str] = Counter()
    for job_id in (job_id for group in groups for job_id in group):
        parts = job_id.rsplit("-", 2)
        if len(parts) == 3:
            counts[parts[1]] += 1
    return dict(counts)
