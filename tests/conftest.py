"""Fixtures: a real Redis (REDIS_URL, else an embedded server), one key prefix per test,
settings, and real HTTP servers on loopback for ASGI apps (simulator, receivers, admin API)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
import uvicorn

from relay.connection import async_redis, embedded_redis
from relay.settings import Settings
from relay.store.keys import Keys


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
        limits = [m for m in client.smembers("rq:rl-keys") if m.startswith(prefix.encode())]
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(app: Any, *, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on loopback in a background thread; yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def serve_app() -> Iterator[Callable[..., str]]:
    """`serve_app(app)` starts `app` on a free loopback port for this test and returns its URL."""
    with contextlib.ExitStack() as stack:
        yield lambda app, **kw: stack.enter_context(serve(app, **kw))
