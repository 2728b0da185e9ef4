"""The async Redis pool is bounded and waits: a burst of more concurrent commands than it
holds queues for a connection instead of failing (redis-py's default pool raised "Too many
connections" past 100), and a wait longer than the pool's timeout is a ConnectionError."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError

from relay.store.connection import async_redis


async def _hold(client: redis.asyncio.Redis, key: str, seconds: float) -> None:
    """Keep one pooled connection busy for `seconds` (a blocking pop of an empty list)."""
    await client.blpop([key], timeout=seconds)


async def test_a_burst_beyond_the_pool_waits_for_connections_and_never_exceeds_it(
    redis_url: str, key_prefix: str
) -> None:
    client = async_redis(redis_url, max_connections=4, pool_wait_s=10)
    try:
        key = f"{key_prefix}empty:{uuid.uuid4().hex}"
        await asyncio.gather(*(_hold(client, key, 0.05) for _ in range(40)))
        counts = client.connection_pool.get_connection_count()
        assert sum(count for count, _ in counts) <= 4
    finally:
        await client.aclose()


async def test_a_wait_longer_than_the_pool_timeout_is_a_connection_error(
    redis_url: str, key_prefix: str
) -> None:
    client = async_redis(redis_url, max_connections=1, pool_wait_s=0.05)
    try:
        # Tasks start in order: the first takes the only connection, the ping waits for it.
        held, pinged = await asyncio.gather(
            _hold(client, f"{key_prefix}empty", 1), client.ping(), return_exceptions=True
        )
        assert held is None
        assert isinstance(pinged, RedisConnectionError)
    finally:
        await client.aclose()
