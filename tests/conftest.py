"""Fixtures: a real Redis (REDIS_URL, else an embedded server), one key prefix per test,
settings, and real HTTP servers on loopback for ASGI apps (simulator, receivers, admin API)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import cast

import pytest
import redis
import redis.asyncio

from relay.settings import Settings
from relay.store.connection import async_redis, embedded_redis
from relay.store.keys import Keys
from tests.support import serve


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """REDIS_URL when set (never flushed), otherwise a private embedded server."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    with embedded_redis() as embedded_url:
        yield embedded_url


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; every key under it (and its RQ keys) is deleted after."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        job_ids = Keys(prefix).rq_job_id_prefix
        for pattern in (f"{prefix}*", f"rq:*{prefix}*", f"rq:*{job_ids}*"):
            batch = list(client.scan_iter(match=pattern, count=1000))
            for start in range(0, len(batch), 500):
                client.delete(*batch[start : start + 500])
        client.srem("rq:queues", f"rq:queue:{Keys(prefix).retry_queue}")
        members = cast("set[bytes]", client.smembers("rq:rl-keys"))
        limits = [m for m in members if m.startswith(prefix.encode())]
        if limits:
            client.srem("rq:rl-keys", *limits)  # RQ's index of rate-limit keys
    finally:
        client.close()


@pytest.fixture
def keys(key_prefix: str) -> Keys:
    return Keys(key_prefix)


@pytest.fixture
def settings(redis_url: str, key_prefix: str) -> Settings:
    """Settings for a test: its own prefix, private targets allowed, a short retry schedule."""
    return Settings.from_env(
        {
            "REDIS_URL": redis_url,
            "RELAY_KEY_PREFIX": key_prefix,
            "RELAY_ADMIN_TOKEN": "test-token",
            "RELAY_ALLOW_PRIVATE_TARGETS": "true",
            "RELAY_POLL_INTERVAL": "0.2",
            "RELAY_RETRY_SCHEDULE": "0.2,0.2,0.2",
            "RELAY_DELIVERY_TIMEOUT": "2",
        }
    )


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = async_redis(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def serve_app() -> Iterator[Callable[..., str]]:
    """`serve_app(app)` starts `app` on a free loopback port for this test and returns its URL."""
    with contextlib.ExitStack() as stack:
        yield lambda app, **kw: stack.enter_context(serve(app, **kw))
