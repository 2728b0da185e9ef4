"""Dropping a deleted subscription's retries at once.

A deleted subscription's retries would do nothing when their drain ran (it finds no
subscription and clears them), but until then they wait for hours, where `relay status` and
`/metrics` count them. So deleting a subscription removes them: its deliveries' retry states
and `subretry:{sub}`, its entry in `retrysubs`, and its drain jobs (found by id,
`RetryQueue.drain_job_id`) in RQ's scheduled, ready and held-back sets. relay 0.1's
per-delivery jobs go too: their ids end with `-{event_id}-{subscription_id}-{attempt}`, and
each batch goes in one script that takes the id out of every waiting registry and deletes the
job and the delivery's retry state. A drain running at that moment finishes and records
nothing (the attempt log refuses a deleted subscription).
"""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis

from relay.store.keys import Keys

_BATCH = 500

# KEYS: scheduled zset, ready list, rate-limited zset; ARGV: RQ job key prefix, then
# (job id, retry-state key) pairs.
_DROP_SCRIPT = """
local dropped = 0
for i = 2, #ARGV, 2 do
  local job_id = ARGV[i]
  local removed = redis.call('ZREM', KEYS[1], job_id)
    + redis.call('LREM', KEYS[2], 0, job_id)
    + redis.call('ZREM', KEYS[3], job_id)
  if removed > 0 then
    redis.call('DEL', ARGV[1] .. job_id)
    dropped = dropped + 1
  end
  redis.call('DEL', ARGV[i + 1])
end
return dropped
"""


async def drop_subscription_retries(redis: Redis, keys: Keys, subscription_id: str) -> int:
    """Remove every waiting retry of the subscription; returns how many deliveries."""
    dropped = await _drop_queued(redis, keys, subscription_id)
    await _drop_legacy_jobs(redis, keys, subscription_id)  # counted in `subretry` already
    return dropped


async def _drop_queued(redis: Redis, keys: Keys, subscription_id: str) -> int:
    retrying = keys.subscription_retries(subscription_id)
    event_ids = cast("list[str]", await redis.zrange(retrying, 0, -1))
    drains = f"{keys.rq_job_id_prefix}-drain-{subscription_id}-"
    job_ids = [
        cast(str, member)
        async for member, _score in redis.zscan_iter(keys.rq_scheduled, match=f"{drains}*")
    ]
    held = keys.rq_rate_limited(keys.drain_limit(subscription_id))
    job_ids += cast("list[str]", await redis.zrange(held, 0, -1))
    job_ids += [
        job_id
        for job_id in cast("list[str]", await redis.lrange(keys.rq_queue, 0, -1))
        if job_id.startswith(drains)
    ]
    async with redis.pipeline(transaction=True) as pipe:
        for start in range(0, len(event_ids), _BATCH):
            chunk = event_ids[start : start + _BATCH]
            pipe.delete(*(keys.retry_state(e, subscription_id) for e in chunk))
            pipe.zrem(keys.retries_running, *(f"{e}:{subscription_id}" for e in chunk))
        pipe.delete(retrying)
        pipe.zrem(keys.retrying_subscriptions, subscription_id)
        for job_id in dict.fromkeys(job_ids):
            pipe.zrem(keys.rq_scheduled, job_id)
            pipe.lrem(keys.rq_queue, 0, job_id)
            pipe.zrem(held, job_id)
            pipe.delete(f"rq:job:{job_id}")
        await pipe.execute()
    return len(event_ids)


async def _drop_legacy_jobs(redis: Redis, keys: Keys, subscription_id: str) -> int:
    """Remove relay 0.1's per-delivery jobs of the subscription; returns how many."""
    suffix_match = f"{keys.rq_job_id_prefix}-*-{subscription_id}-*"
    limited = keys.rq_rate_limited(keys.rate_limit(subscription_id))
    job_ids: list[str] = [
        cast(str, member)
        async for member, _score in redis.zscan_iter(keys.rq_scheduled, match=suffix_match)
        if "-drain-" not in cast(str, member)
    ]
    job_ids += cast("list[str]", await redis.zrange(limited, 0, -1))
    ours = f"-{subscription_id}-"
    job_ids += [
        job_id
        for job_id in cast("list[str]", await redis.lrange(keys.rq_queue, 0, -1))
        if ours in job_id and "-drain-" not in job_id
    ]
    drop = redis.register_script(_DROP_SCRIPT)
    dropped = 0
    unique = list(dict.fromkeys(job_ids))
    for start in range(0, len(unique), _BATCH):
        pairs = [
            item
            for job_id in unique[start : start + _BATCH]
            for item in (job_id, keys.retry_state(_event_of(keys, job_id), subscription_id))
        ]
        dropped += int(
            await drop(keys=[keys.rq_scheduled, keys.rq_queue, limited], args=["rq:job:", *pairs])
        )
    return dropped


def _event_of(keys: Keys, job_id: str) -> str:
    """The event id in a retry job id (`RetryQueue.job_id`)."""
    return job_id.removeprefix(f"{keys.rq_job_id_prefix}-").rsplit("-", 2)[0]
