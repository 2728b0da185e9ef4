"""What the Redis server says about itself that decides whether the relay is safe on it.

Two facts matter. The eviction policy: anything but `noeviction` lets Redis delete keys when
memory is full — subscriptions, dedupe marks, queued deliveries, retry jobs and locks (the
`volatile-*` policies too, since those carry TTLs) — so messages are lost without an error.
And whether Redis is out of memory under `noeviction`: writes are refused (nothing is lost,
nothing moves) until memory frees. Managed Redis may refuse CONFIG: the policy is then read
from INFO memory, and is None when neither answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import redis
import redis.asyncio
from redis.exceptions import OutOfMemoryError, ResponseError

from relay.store.keys import Keys

SAFE_POLICY = "noeviction"
_PROBE_TTL_MS = 10_000


@dataclass(frozen=True, slots=True)
class RedisMemory:
    """The server's memory limits as the relay sees them."""

    policy: str | None  # maxmemory-policy; None when the server would not say
    used_bytes: int | None
    max_bytes: int | None  # 0: no limit
    is_out_of_memory: bool  # a write was refused with OOM just now

    @property
    def is_evicting(self) -> bool:
        """Whether the policy lets Redis delete keys when memory is full."""
        return is_evicting(self.policy)


def is_evicting(policy: str | None) -> bool:
    """Any policy but noeviction deletes keys under memory pressure; unknown is not assumed."""
    return policy is not None and policy != SAFE_POLICY


def read_policy(client: redis.Redis) -> str | None:
    """maxmemory-policy by CONFIG GET, else from INFO memory, else None; raises RedisError
    only when Redis does not answer at all."""
    try:
        reply = cast("dict[Any, Any]", client.config_get("maxmemory-policy"))
        value = reply.get("maxmemory-policy", reply.get(b"maxmemory-policy"))
        if value is not None:
            return _text(value)
    except ResponseError:  # CONFIG renamed or refused (managed Redis)
        pass
    try:
        info = client.info("memory")
    except ResponseError:
        return None
    value = info.get("maxmemory_policy")
    return None if value is None else _text(value)


async def read_memory(client: redis.asyncio.Redis, keys: Keys) -> RedisMemory:
    """The policy and memory use from INFO memory, and whether a tiny write (a probe key with a
    TTL) is refused for lack of memory; raises RedisError or OSError if Redis does not answer."""
    try:
        info = await client.info("memory")
    except ResponseError:
        info = {}
    policy = info.get("maxmemory_policy")
    if policy is None:
        try:
            reply = cast("dict[Any, Any]", await client.config_get("maxmemory-policy"))
            policy = reply.get("maxmemory-policy")
        except ResponseError:
            policy = None
    try:
        await client.set(keys.memory_probe, "1", px=_PROBE_TTL_MS)
        out_of_memory = False
    except OutOfMemoryError:
        out_of_memory = True
    return RedisMemory(
        policy=None if policy is None else _text(policy),
        used_bytes=_int(info.get("used_memory")),
        max_bytes=_int(info.get("maxmemory")),
        is_out_of_memory=out_of_memory,
    )


def refuses_writes(client: redis.Redis, keys: Keys) -> bool:
    """Whether Redis refuses a tiny write (the probe key) for lack of memory; raises RedisError
    for anything else."""
    try:
        client.set(keys.memory_probe, "1", px=_PROBE_TTL_MS)
    except OutOfMemoryError:
        return True
    return False


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _int(value: object) -> int | None:
    try:
        return int(cast("str", value))
    except (TypeError, ValueError):
        return None
