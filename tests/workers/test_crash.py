"""Crash test: messages fed live into the simulator over several accounts, several verifying
subscribers, and every role (`relay poller`, `relay dispatcher`, `relay worker`, each child of
a `relay run` tree, and the whole tree) killed with SIGKILL at random moments and restarted.
At the end every message reached every subscriber and each repeat carried its first
delivery's `webhook-id`.

`test_kill_9_small` runs in `make test` (well under a minute); `test_kill_9_soak` (marker
`slow`, `make soak`) feeds thousands of messages for minutes. Sizes: RELAY_SOAK=1 gives the
default soak, RELAY_SOAK=<n> (n > 1) feeds n messages. Each run prints its figures and writes
them to crash-figures.json in its tmp dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import os
import random
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import pytest
import redis
from rq import Queue
from rq.intermediate_queue import IntermediateQueue
from rq.registry import StartedJobRegistry

from relay.settings import Settings
from relay.simulator.app import SimulatorConfig, create_app
from relay.store import Store
from relay.store.connection import async_redis
from relay.store.keys import Keys
from tests.support import Receiver, free_port, serve, wait_until_sync
from tests.workers.crash_harness import (
    STANDALONE_ROLES,
    RoleProcesses,
    children_of,
    processes_with,
    setup_relay,
    tally,
)

TARGETS = (*STANDALONE_ROLES, "run", "run/poller", "run/dispatcher", "run/worker")


@dataclass(frozen=True)
class Plan:
    messages: int
    sources: int
    subscribers: int
    feed_s: float  # the messages are spread over this long, while the killing goes on
    kill_gap_s: tuple[float, float]  # random pause between two kills
    converge_s: float  # how long the relay may take to finish after the last kill
    # The small run cannot wait out RQ's abandoned-job detection (heartbeat + 60 s, then the
    # next maintenance pass, ~2.5 min): once every worker has stopped, it runs that cleanup
    # as of an hour later instead. The soak waits for the real thing.
    expire_abandoned_jobs: bool


SMALL = Plan(
    messages=180,
    sources=3,
    subscribers=3,
    feed_s=10.0,
    kill_gap_s=(0.3, 1.0),
    converge_s=90.0,
    expire_abandoned_jobs=True,
)


def soak_plan() -> Plan:
    raw = os.environ.get("RELAY_SOAK", "")
    messages = int(raw) if raw.isdigit() and int(raw) > 1 else 3000
    return Plan(
        messages=messages,
        sources=4,
        subscribers=3,
        feed_s=max(60.0, messages / 15),
        kill_gap_s=(1.0, 4.0),
        converge_s=420.0,
        expire_abandoned_jobs=False,
    )


def test_kill_9_small(redis_url: str, key_prefix: str, tmp_path: Path) -> None:
    run_crash_test(SMALL, redis_url=redis_url, key_prefix=key_prefix, tmp_path=tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_kill_9_soak(redis_url: str, key_prefix: str, tmp_path: Path) -> None:
    if not os.environ.get("RELAY_SOAK"):
        pytest.skip("set RELAY_SOAK=1 (make soak) or RELAY_SOAK=<messages>")
    run_crash_test(soak_plan(), redis_url=redis_url, key_prefix=key_prefix, tmp_path=tmp_path)


def run_crash_test(plan: Plan, *, redis_url: str, key_prefix: str, tmp_path: Path) -> None:
    started = time.monotonic()
    rng = random.Random()
    accounts = {f"crash{i}@reseller": f"pw{i}" for i in range(plan.sources)}
    receivers = [
        Receiver(secret="", fail_ratio=0.1, rng=random.Random(rng.random()))
        for _ in range(plan.subscribers)
    ]
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "MC5_", "REDIS_"))
    } | {
        "REDIS_URL": redis_url,
        "RELAY_KEY_PREFIX": key_prefix,
        "RELAY_ADMIN_TOKEN": "crash-test-token-0123456789",
        "RELAY_API_PORT": str(free_port()),
        "RELAY_ALLOW_PRIVATE_TARGETS": "true",
        "RELAY_POLL_INTERVAL": "0.2",
        "RELAY_DELIVERY_TIMEOUT": "1",
        # Ten quick retries: a 10 % failure rate cannot exhaust them (1e-11 per delivery).
        "RELAY_RETRY_SCHEDULE": "0.5,1,1,1,1,1,1,1,1,1",
        "RELAY_LOG_LEVEL": "INFO",
    }
    settings = Settings.from_env(env)
    roles = RoleProcesses(env=env, log_dir=tmp_path)
    with contextlib.ExitStack() as servers:
        sim_url = servers.enter_context(serve(create_app(SimulatorConfig(accounts=accounts))))
        # Each receiver gets its own server (and thread), like separate subscribers.
        urls = [servers.enter_context(serve(receiver.app())) for receiver in receivers]
        try:
            secrets = asyncio.run(setup_relay(settings, accounts, sim_url, urls))
            for receiver, secret in zip(receivers, secrets, strict=True):
                receiver.secret = secret
            for name in (*STANDALONE_ROLES, "run"):
                roles.start(name)
            fed: list[str] = []
            feeder = threading.Thread(
                target=_feed, args=(sim_url, accounts, plan, fed), daemon=True
            )
            feeder.start()
            _kill_while(feeder, roles, plan, rng)
            feeder.join()
            kill_phase_s = time.monotonic() - started
            document_ids = set(fed)
            assert len(document_ids) == plan.messages

            if plan.expire_abandoned_jobs:
                # SIGTERM; a role restarted a moment ago may still be importing and die of it.
                roles.stop("run", "worker")
                _expire_abandoned_jobs(redis_url, key_prefix)
                roles.start("worker")

            progress: list[tuple[float, int]] = []

            def all_delivered() -> bool:
                missing = sum(len(document_ids - r.delivered()) for r in receivers)
                if not progress or progress[-1][1] != missing:
                    progress.append((round(time.monotonic() - started, 1), missing))
                return missing == 0

            try:
                wait_until_sync(all_delivered, timeout_s=plan.converge_s, what="every message")
            except AssertionError as exc:
                missing = [sorted(document_ids - r.delivered())[:3] for r in receivers]
                state = _redis_state(redis_url, Keys(key_prefix))
                seen = [
                    [(d.status, d.webhook_id) for d in r.snapshot() if d.document_id in ids]
                    for r, ids in zip(receivers, missing, strict=True)
                ]
                dead = asyncio.run(_dead_letter_count(settings))
                raise AssertionError(
                    f"{exc}; missing {missing}; requests for them {seen}; dead letters {dead}; "
                    f"{state}"
                ) from None
            dead = asyncio.run(_dead_letter_count(settings))
            orphans = len(_orphans(roles))
        finally:
            roles.close()

    result = tally(receivers, document_ids)
    figures = {
        "plan": asdict(plan),
        "messages": len(document_ids),
        "subscribers": len(receivers),
        "kills": dict(sorted(roles.kills.items())),
        "kills_total": sum(roles.kills.values()),
        "restarts": dict(sorted((k, v - 1) for k, v in roles.starts.items())),
        "deliveries_expected": result.expected,
        "lost": result.lost,
        "successful_deliveries": result.successful,
        "duplicates": result.duplicates,
        "duplicate_rate": round(result.duplicate_rate, 4),
        "requests_including_failed": result.requests,
        "dead_letters": dead,
        "orphan_processes_after_stop": orphans,
        "kill_phase_s": round(kill_phase_s, 1),
        "missing_over_time": progress[-6:],
        "total_s": round(time.monotonic() - started, 1),
    }
    (tmp_path / "crash-figures.json").write_text(json.dumps(figures, indent=2))
    print("\ncrash test figures:", json.dumps(figures))

    assert result.lost == 0
    assert result.unverified == 0
    assert dead == 0
    assert orphans == 0  # e.g. no RQ scheduler outlived its killed worker
    # One event per message: every request for a documentId, at every subscriber, on every
    # retry, reclaim or duplicate after a crash, carried the same webhook-id.
    assert all(len(ids) == 1 for ids in result.ids_per_document.values())
    assert set(result.ids_per_document) == document_ids
    assert min(roles.kills[t] for t in TARGETS) >= 1


async def _dead_letter_count(settings: Settings) -> int:
    client = async_redis(settings.require_redis_url())
    try:
        page = await Store.create(client, settings).dead_letters.page(limit=100, cursor=None)
        return len(page.items)
    finally:
        await client.aclose()


def _feed(sim_url: str, accounts: dict[str, str], plan: Plan, fed: list[str]) -> None:
    """Add `plan.messages` messages over `plan.feed_s`, in small batches across accounts."""
    batches = max(1, int(plan.feed_s / 0.25))
    sizes = [plan.messages // batches + (i < plan.messages % batches) for i in range(batches)]
    names = itertools.cycle(accounts)
    started = time.monotonic()
    with httpx.Client(base_url=sim_url, timeout=30) as http:
        for index, size in enumerate(sizes):
            if size:
                body = {"username": next(names), "count": size}
                response = http.post("/_sim/messages", json=body)
                response.raise_for_status()
                fed.extend(response.json()["documentIds"])
            pause = started + (index + 1) * plan.feed_s / batches - time.monotonic()
            if pause > 0:
                time.sleep(pause)


def _kill_while(
    feeder: threading.Thread, roles: RoleProcesses, plan: Plan, rng: random.Random
) -> None:
    """Kill a role at random moments while messages are fed: every target in turn, in a
    fresh random order each round; a killed standalone role or tree is restarted at once."""
    order: list[str] = []
    while feeder.is_alive():
        feeder.join(timeout=rng.uniform(*plan.kill_gap_s))  # a random gap, or feeding ended
        if not feeder.is_alive():
            break
        if not order:
            order = rng.sample(TARGETS, len(TARGETS))
        target = order.pop()
        if target.startswith("run/"):
            if not roles.kill_9_run_child(target.removeprefix("run/")):
                order.insert(0, target)  # still being restarted by its supervisor: later
            continue
        roles.kill_9(target)
        time.sleep(rng.uniform(0.0, 0.3))
        roles.start(target)
    for target in (t for t in TARGETS if roles.kills[t] == 0):
        if target.startswith("run/"):
            role = target.removeprefix("run/")
            wait_until_sync(
                functools.partial(roles.kill_9_run_child, role), timeout_s=60, what=target
            )
        else:
            roles.kill_9(target)
            roles.start(target)


def _expire_abandoned_jobs(redis_url: str, key_prefix: str) -> None:
    """With no retry worker running, every job still marked started, or dequeued but never
    started (RQ's intermediate queue), was abandoned by a killed worker: hand them back now,
    as RQ's maintenance does about a minute later."""
    client = redis.Redis.from_url(redis_url)
    try:
        queue = Queue(Keys(key_prefix).retry_queue, connection=client)
        StartedJobRegistry(queue=queue).cleanup(timestamp=time.time() + 3600)
        intermediate = IntermediateQueue(queue.key, connection=client)
        for job_id in intermediate.get_job_ids():
            job = queue.fetch_job(job_id)
            if job is not None:
                with client.pipeline() as pipe:
                    job.retry(queue, pipe)
                    pipe.execute()
            intermediate.remove(job_id)
    finally:
        client.close()


def _redis_state(redis_url: str, keys: Keys) -> dict[str, object]:
    """Where undelivered work sits, for the failure message."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        pending = client.xpending(keys.stream, "dispatch")
        return {
            "stream": client.xlen(keys.stream),
            "stream_pending": pending["pending"],
            "rq_queued": client.llen(keys.rq_queue),
            "rq_scheduled": client.zcard(keys.rq_scheduled),
            "rq_started": client.zcard(keys.rq_started),
            "rq_failed": client.zcard(keys.rq_failed),
            "sources": [
                {f: h.get(f) for f in ("username", "status", "cursor", "last_error")}
                for k in client.scan_iter(keys.source("*"))
                if client.type(k) == "hash" and (h := client.hgetall(k))
            ],
            "locks": {k: client.pttl(k) for k in client.scan_iter(keys.source_lock("*"))},
            "rate_limits": {
                k: client.zrange(k, 0, -1)
                for k in client.scan_iter(f"rq:rl:{keys.prefix}*")
                if client.type(k) == "zset" and client.zcard(k)
            },
            "retry_states": {
                k: client.hgetall(k) for k in client.scan_iter(keys.retry_state("*", "*"))
            },
        }
    finally:
        client.close()


def _orphans(roles: RoleProcesses) -> list[int]:
    """Processes carrying the marker that no live role process accounts for."""
    known: set[int] = set()
    pending = [p.pid for p in roles.processes.values() if p.poll() is None]
    while pending:
        pid = pending.pop()
        known.add(pid)
        pending.extend(children_of(pid))
    return [pid for pid in processes_with(roles.marker) if pid not in known]
