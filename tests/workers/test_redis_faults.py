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

import httpx
import pytest

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
        "RELAY_ADMIN_TOKEN": "fault-token",
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
