"""An evicting Redis (issue 14, case 1): with `maxmemory 20mb` and `allkeys-lru`, Redis
deleted subscriptions and dedupe marks and the relay never noticed. Every role now refuses to
start on a policy other than noeviction (the volatile ones too: retry jobs and locks carry
TTLs) unless RELAY_ALLOW_EVICTING_REDIS=true, and readiness, `relay status` and /metrics show
the policy. Each test runs a redis-server of its own."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from relay.api import create_app
from relay.observability.status_report import read_status, render_text
from relay.observability.telemetry import HeartbeatPublisher
from relay.settings import Settings
from relay.store.connection import async_redis
from relay.store.keys import Keys
from relay.store.server import read_policy
from tests.support import free_port
from tests.workers.own_redis import OwnRedis

RELAY = [sys.executable, "-m", "workers.cli"]
TOKEN = "eviction-test-token-0123456789"


def _own_redis(tmp_path: Path, *options: str) -> Iterator[OwnRedis]:
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = OwnRedis(workdir=workdir, port=free_port(), options=options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def lru_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    yield from _own_redis(tmp_path, "--maxmemory", "20mb", "--maxmemory-policy", "allkeys-lru")


def _env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "MC5_", "REDIS_"))}
    return (
        env | {"REDIS_URL": url, "RELAY_ADMIN_TOKEN": TOKEN, "RELAY_KEY_PREFIX": "evict:"} | extra
    )


@pytest.mark.parametrize(
    ("command", "policy"),
    [("run", "allkeys-lru"), ("dispatcher", "volatile-lru"), ("worker", "volatile-ttl")],
)
def test_an_evicting_policy_is_refused_at_start_naming_the_setting(
    tmp_path: Path, command: str, policy: str
) -> None:
    for server in _own_redis(tmp_path, "--maxmemory", "20mb", "--maxmemory-policy", policy):
        result = subprocess.run(
            [*RELAY, command], env=_env(server.url), capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2, result.stderr
        assert f"maxmemory-policy is '{policy}'" in result.stderr
        assert "RELAY_ALLOW_EVICTING_REDIS=true" in result.stderr


async def test_readyz_status_and_metrics_report_an_evicting_policy(lru_redis: OwnRedis) -> None:
    settings = Settings.from_env(_env(lru_redis.url))
    client = async_redis(lru_redis.url)
    try:
        for allowed, expected in ((False, 503), (True, 200)):
            app = create_app(settings.replace(allow_evicting_redis=allowed), redis=client)
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://t"
                ) as http,
            ):
                ready = await http.get("/readyz")
                metrics = (await http.get("/metrics")).text
            assert ready.status_code == expected
            assert ready.json()["redis_memory"]["maxmemory_policy"] == "allkeys-lru"
            assert ready.json()["redis_memory"]["evicting"] is True
            assert 'relay_redis_evicting{policy="allkeys-lru"} 1.0' in metrics
    finally:
        await client.aclose()
    status = await asyncio.to_thread(read_status, settings)
    assert status.redis.policy == "allkeys-lru" and status.redis.is_evicting
    assert "EVICTING" in render_text(status)


async def test_readyz_names_the_setting_when_refusing(lru_redis: OwnRedis) -> None:
    settings = Settings.from_env(_env(lru_redis.url))
    client = async_redis(lru_redis.url)
    app = create_app(settings, redis=client)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
        ):
            ready = await http.get("/readyz")
    finally:
        await client.aclose()
    assert ready.status_code == 503
    assert "maxmemory-policy is 'allkeys-lru'" in ready.json()["detail"]
    assert "RELAY_ALLOW_EVICTING_REDIS=true" in ready.json()["detail"]


def test_a_policy_changed_at_run_time_is_logged_by_the_heartbeat(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for server in _own_redis(tmp_path):
        publisher = HeartbeatPublisher(redis_url=server.url, keys=Keys("evict:"), role="poller")
        try:
            with caplog.at_level(logging.INFO, logger="relay.telemetry"):
                publisher.check_eviction_policy()
                assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
                server.client().config_set("maxmemory-policy", "allkeys-lfu")
                publisher.check_eviction_policy()
                publisher.check_eviction_policy()  # logged once per change, not every beat
            errors = [r for r in caplog.records if r.levelno == logging.ERROR]
            assert len(errors) == 1
            assert "now evicts" in errors[0].getMessage()
        finally:
            publisher.stop()


def test_policy_is_read_from_info_memory_when_config_is_refused(tmp_path: Path) -> None:
    for server in _own_redis(tmp_path, "--rename-command", "CONFIG", '""'):
        client = server.client()
        try:
            assert read_policy(client) == "noeviction"
        finally:
            client.close()
