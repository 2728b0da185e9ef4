"""Redis restarts mid-run: a private redis-server with `appendonly yes` (never the shared one)
is stopped while messages keep arriving, kept down a few seconds, and started again on the
same append-only file. Every role keeps running (waits and reconnects), `/readyz` answers 503
while Redis is down, and every message still reaches the subscriber once per event id."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis

from relay.observability.status_report import read_status, render_text
from relay.settings import Settings
from relay.simulator.app import SimulatorConfig, create_app
from tests.support import Receiver, free_port, serve, wait_until_sync
from tests.workers.crash_harness import (
    RoleProcesses,
    setup_relay,
    tally,
)
from tests.workers.own_redis import OwnRedis

ACCOUNTS = {"redis-fault@reseller": "pw"}


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = OwnRedis(workdir=workdir, port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_redis_restart_mid_run_loses_nothing_and_roles_reconnect(
    own_redis: OwnRedis, tmp_path: Path
) -> None:
    api_port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "MC5_", "REDIS_"))
    } | {
        "REDIS_URL": own_redis.url,
        "RELAY_KEY_PREFIX": "relay-fault:",
        "RELAY_ADMIN_TOKEN": "fault-token-0123456789",
        "RELAY_API_PORT": str(api_port),
        "RELAY_ALLOW_PRIVATE_TARGETS": "true",
        "RELAY_POLL_INTERVAL": "0.2",
        "RELAY_DELIVERY_TIMEOUT": "1",
        "RELAY_RETRY_SCHEDULE": "0.5,1,1,1,1,1,1,1,1,1",
    }
    settings = Settings.from_env(env)
    receiver = Receiver(secret="", fail_ratio=0.1, rng=random.Random(8))
    roles = RoleProcesses(env=env, log_dir=tmp_path)
    readyz = f"http://127.0.0.1:{api_port}/readyz"
    with (
        serve(create_app(SimulatorConfig(accounts=dict(ACCOUNTS)))) as sim_url,
        serve(receiver.app()) as receiver_url,
        httpx.Client(base_url=sim_url, timeout=10) as sim,
    ):
        try:
            (receiver.secret,) = asyncio.run(
                setup_relay(settings, ACCOUNTS, sim_url, [receiver_url])
            )
            for role in ("api", "poller", "dispatcher", "worker"):
                roles.start(role)
            wait_until_sync(lambda: _status(readyz) == 200, timeout_s=30, what="/readyz 200")
            fed = _add(sim, 30)
            wait_until_sync(
                lambda: len(receiver.delivered()) >= 10, timeout_s=30, what="first webhooks"
            )

            own_redis.stop()
            fed += _add(sim, 30)  # arrives upstream while Redis is down
            wait_until_sync(lambda: _status(readyz) == 503, timeout_s=10, what="/readyz 503")
            time.sleep(3)  # roles keep trying against a dead Redis
            assert _status(readyz) == 503
            exited = {n: p.returncode for n, p in roles.processes.items() if p.poll() is not None}
            own_redis.start()

            fed += _add(sim, 30)
            wait_until_sync(lambda: _status(readyz) == 200, timeout_s=30, what="/readyz 200 again")
            wait_until_sync(
                lambda: set(fed) <= receiver.delivered(), timeout_s=60, what="every message"
            )
            exited |= {n: p.returncode for n, p in roles.processes.items() if p.poll() is not None}
        finally:
            roles.close()

    assert exited == {}, f"roles exited while Redis was down: {exited}"
    result = tally([receiver], set(fed))
    assert result.lost == 0
    assert result.unverified == 0
    assert all(len(ids) == 1 for ids in result.ids_per_document.values())
    print(f"\nredis restart: {len(fed)} messages, {result.duplicates} duplicates")


def _add(sim: httpx.Client, count: int) -> list[str]:
    response = sim.post("/_sim/messages", json={"count": count})
    response.raise_for_status()
    return list(response.json()["documentIds"])


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return 0


@pytest.mark.timeout(360)  # retries a refused write failed wait out RQ's 60 s job retry
def test_redis_out_of_memory_roles_wait_say_so_and_resume_when_memory_frees(
    own_redis: OwnRedis, tmp_path: Path
) -> None:
    """Issue 14, case 6: under noeviction at maxmemory every write is refused. Before, the RQ
    worker quit on its first refused heartbeat and readiness called every role down. Now every
    role waits, readiness and status say "Redis is out of memory", and once memory frees
    everything is delivered, no message twice."""
    api_port = free_port()
    env = _env(own_redis.url, api_port)
    settings = Settings.from_env(env)
    receiver = Receiver(secret="", fail_ratio=0.2, rng=random.Random(14))
    roles = RoleProcesses(env=env, log_dir=tmp_path)
    readyz = f"http://127.0.0.1:{api_port}/readyz"
    admin = own_redis.client()
    with (
        serve(create_app(SimulatorConfig(accounts=dict(ACCOUNTS)))) as sim_url,
        serve(receiver.app()) as receiver_url,
        httpx.Client(base_url=sim_url, timeout=10) as sim,
    ):
        try:
            (receiver.secret,) = asyncio.run(
                setup_relay(settings, ACCOUNTS, sim_url, [receiver_url])
            )
            for role in ("api", "poller", "dispatcher", "worker"):
                roles.start(role)
            wait_until_sync(lambda: _status(readyz) == 200, timeout_s=30, what="/readyz 200")
            fed = _add(sim, 30)
            wait_until_sync(
                lambda: len(receiver.delivered()) >= 10, timeout_s=30, what="first webhooks"
            )

            # Recorded, then Redis fills while their deliveries and retries are under way.
            fed += _add(sim, 30)
            wait_until_sync(
                lambda: admin.zcard(f"{env['RELAY_KEY_PREFIX']}evs") >= len(fed),
                timeout_s=30,
                what="every message recorded",
            )
            filled = _fill_to_maxmemory(admin)
            wait_until_sync(
                lambda: _ready_body(readyz).get("redis") == "out_of_memory",
                timeout_s=30,
                what="/readyz to say Redis is out of memory",
            )
            # Long enough for every heartbeat to go stale: no role may be called down.
            wait_until_sync(
                lambda: _all_roles_silent(settings), timeout_s=60, what="heartbeats to go stale"
            )
            ready = _ready_body(readyz)
            status = read_status(settings)
            during = _add(sim, 20)  # upstream while Redis refuses every write
            fed += during
            exited = {n: p.returncode for n, p in roles.processes.items() if p.poll() is not None}

            admin.config_set("maxmemory", 0)
            admin.delete(*filled)
            freed = time.monotonic()
            wait_until_sync(lambda: _status(readyz) == 200, timeout_s=60, what="/readyz 200 again")
            wait_until_sync(
                lambda: set(fed) <= receiver.delivered(), timeout_s=240, what="every message"
            )
            resumed_s = time.monotonic() - freed
            exited |= {n: p.returncode for n, p in roles.processes.items() if p.poll() is not None}
        finally:
            roles.close()
            admin.close()

    assert exited == {}, f"roles exited while Redis was out of memory: {exited}"
    # One warning line per retry while Redis refuses writes, not a traceback every second.
    assert "Traceback" not in (tmp_path / "poller.log").read_text()
    assert ready["status"] == 503 and "Redis is out of memory" in ready["detail"]
    assert "roles_down" not in ready
    assert status.redis.is_out_of_memory and status.roles_down == []
    assert "Redis is out of memory" in render_text(status)
    result = tally([receiver], set(fed))
    assert result.lost == 0
    assert result.unverified == 0
    assert all(len(ids) == 1 for ids in result.ids_per_document.values())
    print(
        f"\nredis OOM: {len(fed)} messages, {result.duplicates} repeated webhook-ids, "
        f"all delivered {resumed_s:.1f} s after memory was freed"
    )


def _env(url: str, api_port: int) -> dict[str, str]:
    return {
        k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "MC5_", "REDIS_"))
    } | {
        "REDIS_URL": url,
        "RELAY_KEY_PREFIX": "relay-fault:",
        "RELAY_ADMIN_TOKEN": "fault-token-0123456789",
        "RELAY_API_PORT": str(api_port),
        "RELAY_ALLOW_PRIVATE_TARGETS": "true",
        "RELAY_POLL_INTERVAL": "0.2",
        "RELAY_DELIVERY_TIMEOUT": "1",
        "RELAY_RETRY_SCHEDULE": "0.5,1,1,1,1,1,1,1,1,1",
    }


def _fill_to_maxmemory(client: redis.Redis) -> list[str]:
    """Cap Redis just above its use, write filler until a write is refused, then lower the cap
    below the use so Redis stays out of memory until the test frees it."""
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", used + 4 * 1024 * 1024)
    filled: list[str] = []
    blob = b"x" * 64 * 1024
    while True:
        key = f"oom-filler:{len(filled)}"
        try:
            client.set(key, blob)
        except redis.exceptions.OutOfMemoryError:
            # 1 MiB under the use: the relay's own deletes cannot bring Redis back under it.
            used = int(client.info("memory")["used_memory"])
            client.config_set("maxmemory", used - 1024 * 1024)
            return filled
        filled.append(key)


def _ready_body(url: str) -> dict[str, Any]:
    try:
        return cast("dict[str, Any]", httpx.get(url, timeout=5).json())
    except (httpx.HTTPError, ValueError):
        return {}


def _all_roles_silent(settings: Settings) -> bool:
    roles = read_status(settings).roles
    return bool(roles) and all(p.instances == 0 for p in roles.values())
