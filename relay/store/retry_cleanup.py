"""Dropping a deleted subscription's retries from RQ's registries at once.

A deleted subscription's retry jobs would do nothing when they ran (the job finds no
subscription and clears its state), but until then they wait for hours in RQ's scheduled,
ready and rate-limited sets, where `relay status` and `/metrics` count them. So deleting a
subscription removes them: its job ids are found by their suffix (`RetryQueue.job_id` ends
with `-{event_id}-{subscription_id}-{attempt}`), then each batch goes in one script that takes
the id out of every waiting registry and deletes the job and the delivery's retry state.
A job running at that moment finishes and records nothing (the attempt log refuses a deleted
subscription); a park job queued just before holds pairs that become jobs which drop
themselves on their first run.
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
    """Remove every waiting retry job of the subscription; returns how many were removed."""
    suffix_match = f"{keys.rq_job_id_prefix}-*-{subscription_id}-*"
    limited = keys.rq_rate_limited(keys.rate_limit(subscription_id))
    job_ids: list[str] = [
        cast(str, member)
        async for member, _score in redis.zscan_iter(keys.rq_scheduled, match=suffix_match)
    ]
    job_ids += cast("list[str]", await redis.zrange(limited, 0, -1))
    ours = f"-{subscription_id}-"
    job_ids += [
        job_id
        for job_id in cast("list[str]", await redis.lrange(keys.rq_queue, 0, -1))
        if ours in job_id
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
