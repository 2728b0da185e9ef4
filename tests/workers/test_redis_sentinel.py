"""Redis high availability: the roles run on `REDIS_URL=redis+sentinel://…` against a real
master, replicas and three sentinels on loopback. The master is killed with SIGKILL while
messages arrive; the sentinels promote a replica, every role (API, poller, dispatcher, RQ
worker and its scheduler) reconnects to it without exiting, and every message reaches the
subscriber once per event id. The test prints the failover time, the time until deliveries
resume, and what was lost and duplicated (docs/HA.md keeps the figures)."""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from pathlib import Path

import httpx
import pytest

from relay.settings import Settings
from relay.simulator.app import SimulatorConfig, create_app
from tests.support import Receiver, free_port, serve, wait_until_sync
from tests.workers.crash_harness import RoleProcesses, setup_relay, tally
from tests.workers.sentinel_cluster import SentinelCluster

ACCOUNTS = {"redis-ha@reseller": "pw"}


def _failover_under_load(
    tmp_path: Path, *, replicas: int, server_options: tuple[str, ...], load_s: float
) -> None:
    cluster = SentinelCluster(workdir=tmp_path, replicas=replicas, server_options=server_options)
    cluster.start()
    api_port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "MC5_", "REDIS_"))
    } | {
        "REDIS_URL": cluster.url,
        "RELAY_KEY_PREFIX": "relay-ha:",
        "RELAY_ADMIN_TOKEN": "ha-token-0123456789abc",
        "RELAY_API_PORT": str(api_port),
        "RELAY_ALLOW_PRIVATE_TARGETS": "true",
        "RELAY_POLL_INTERVAL": "0.2",
        "RELAY_DELIVERY_TIMEOUT": "1",
        "RELAY_RETRY_SCHEDULE": "0.5,1,1,1,1,1,1,1,1,1",
    }
    settings = Settings.from_env(env)
    receiver = Receiver(secret="", fail_ratio=0.1, rng=random.Random(14))
    roles = RoleProcesses(env=env, log_dir=tmp_path)
    readyz = f"http://127.0.0.1:{api_port}/readyz"
    fed: list[str] = []
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
            fed += _add(sim, 30)
            wait_until_sync(
                lambda: len(receiver.delivered()) >= 10, timeout_s=30, what="first webhooks"
            )

            stop_feeding = threading.Event()
            feeder = threading.Thread(target=_feed, args=(sim, fed, stop_feeding, load_s))
            feeder.start()
            old = cluster.kill_9_master()
            killed, sent_before = time.monotonic(), len(fed)
            failover_s = cluster.wait_for_new_master(old)
            wait_until_sync(
                lambda: bool(set(fed[sent_before:]) & receiver.delivered()),
                timeout_s=60,
                what="a delivery of a message sent after the kill",
            )
            resumed_s = time.monotonic() - killed
            feeder.join()
            fed += _add(sim, 20)
            wait_until_sync(
                lambda: set(fed) <= receiver.delivered(), timeout_s=90, what="every message"
            )
            assert _status(readyz) == 200
            exited = {n: p.returncode for n, p in roles.processes.items() if p.poll() is not None}
        finally:
            roles.close()
            cluster.stop()

    assert exited == {}, f"roles exited during the failover: {exited}"
    result = tally([receiver], set(fed))
    assert result.lost == 0
    assert result.unverified == 0
    assert all(len(ids) == 1 for ids in result.ids_per_document.values())
    print(
        f"\nsentinel failover ({replicas} replica(s), options {list(server_options)}): "
        f"{len(fed)} messages, {result.lost} lost, {result.duplicates} duplicates; "
        f"new master {failover_s:.1f} s after kill -9, deliveries resumed after "
        f"{resumed_s:.1f} s"
    )


def test_the_roles_follow_a_sentinel_failover_and_lose_nothing(tmp_path: Path) -> None:
    _failover_under_load(tmp_path, replicas=1, server_options=(), load_s=2)


@pytest.mark.slow
@pytest.mark.parametrize(
    "server_options",
    [(), ("--min-replicas-to-write", "1", "--min-replicas-max-lag", "2")],
    ids=["async-replication", "min-replicas-to-write-1"],
)
def test_a_failover_under_sustained_load_loses_nothing_soak(
    tmp_path: Path, server_options: tuple[str, ...]
) -> None:
    _failover_under_load(tmp_path, replicas=2, server_options=server_options, load_s=15)


def _feed(sim: httpx.Client, fed: list[str], stop: threading.Event, seconds: float) -> None:
    """Add 5 messages every 0.1 s upstream for `seconds` (the upstream does not care that
    Redis is failing over)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop.is_set():
        fed += _add(sim, 5)
        stop.wait(0.1)


def _add(sim: httpx.Client, count: int) -> list[str]:
    response = sim.post("/_sim/messages", json={"count": count})
    response.raise_for_status()
    return list(response.json()["documentIds"])


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return 0
