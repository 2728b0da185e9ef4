"""The async Redis pool is bounded and waits: a burst of more concurrent commands than it
holds queues for a connection instead of failing (redis-py's default pool raised "Too many
connections" past 100), and a wait longer than the pool's timeout is a ConnectionError."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
import redis
import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError

from relay.store.connection import (
    async_redis,
    check_redis,
    require_safe_eviction_policy,
    sync_redis,
)
from tests.support import wait_until, wait_until_sync
from tests.workers.sentinel_cluster import SentinelCluster


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


async def test_sentinel_clients_follow_a_failover_and_the_start_checks_read_the_master(
    tmp_path: Path,
) -> None:
    """Both kinds of client on a `redis+sentinel://` URL write to the new master after the old
    one is killed; the checks every role runs at start go through the sentinels too."""
    cluster = SentinelCluster(workdir=tmp_path, replicas=1)
    cluster.start()
    aclient = async_redis(cluster.url, max_connections=4)
    sclient = sync_redis(cluster.url, timeout_s=2)
    try:
        check_redis(cluster.url)
        assert require_safe_eviction_policy(cluster.url, allow_evicting=False) == "noeviction"
        await aclient.set("ha:async", "before")
        sclient.set("ha:sync", "before")
        old = cluster.kill_9_master()
        cluster.wait_for_new_master(old)
        await wait_until(lambda: _writes_async(aclient), timeout_s=30, what="async client")
        wait_until_sync(lambda: _writes_sync(sclient), timeout_s=30, what="sync client")
        assert await aclient.get("ha:async") == "after"
        assert sclient.get("ha:sync") == b"after"
        assert sclient.connection_pool.get_master_address()[1] != old  # type: ignore[attr-defined]
    finally:
        await aclient.aclose()
        sclient.close()
        cluster.stop()


async def _writes_async(client: redis.asyncio.Redis) -> bool:
    try:
        await client.set("ha:async", "after")
    except (redis.RedisError, OSError):
        return False
    return True


def _writes_sync(client: redis.Redis) -> bool:
    try:
        client.set("ha:sync", "after")
    except (redis.RedisError, OSError):
        return False
    return True


async def test_commands_are_packed_in_c_to_the_same_bytes_and_errors(
    redis_url: str, key_prefix: str
) -> None:
    client = async_redis(redis_url)
    try:
        connection = client.connection_pool.connection_class()
        plain = redis.asyncio.Connection()
        for args in [
            ("EVALSHA", "f" * 40, 2, f"{key_prefix}a", "b", 1.5, 1e20, -3, "ü", b"raw"),
            ("CONFIG GET", "maxmemory-policy"),
            (b"SET", bytearray(b"k"), memoryview(b"v")),
        ]:
            assert b"".join(connection.pack_command(*args)) == b"".join(plain.pack_command(*args))
        with pytest.raises(redis.exceptions.DataError):
            connection.pack_command("SET", "k", None)  # type: ignore[arg-type]
        key = f"{key_prefix}packed"
        await client.set(key, "ü v")
        assert await client.get(key) == "ü v"
        await client.delete(key)
    finally:
        await client.aclose()
