"""The shared delivery limiter against a real Redis: GCRA reservations, concurrency leases,
and a killed holder's lease expiring."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis.asyncio

from relay.store.keys import Keys
from relay.store.limits import DeliveryLimiter
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def limiter(aredis: redis.asyncio.Redis, keys: Keys) -> DeliveryLimiter:
    return DeliveryLimiter(redis=aredis, keys=keys)


async def test_rate_reserves_consecutive_slots_one_interval_apart(
    limiter: DeliveryLimiter,
) -> None:
    waits = []
    for _ in range(5):
        admission = await limiter.acquire(
            "sub_a", rate_limit_per_s=10, concurrency=None, lease_s=5, max_wait_s=1
        )
        assert admission.admitted and admission.lease is None
        waits.append(admission.wait_s)
    assert waits[0] == 0
    for earlier, later in itertools.pairwise(waits):
        assert later - earlier == pytest.approx(0.1, abs=0.02)  # no burst: one slot each


async def test_rate_refuses_beyond_the_wait_and_takes_nothing(limiter: DeliveryLimiter) -> None:
    first = await limiter.acquire(
        "sub_a", rate_limit_per_s=1, concurrency=None, lease_s=5, max_wait_s=0.5
    )
    refused = [
        await limiter.acquire(
            "sub_a", rate_limit_per_s=1, concurrency=None, lease_s=5, max_wait_s=0.5
        )
        for _ in range(3)
    ]
    assert first.admitted and first.wait_s == 0
    assert all(not r.admitted and r.reason == "rate" for r in refused)
    # Refusals reserve nothing: each still waits about one interval, not more.
    assert all(0.8 < r.wait_s <= 1.0 for r in refused)
    other = await limiter.acquire(
        "sub_b", rate_limit_per_s=1, concurrency=None, lease_s=5, max_wait_s=0
    )
    assert other.admitted  # limits are per subscription


async def test_concurrency_leases_cap_and_free_on_release(limiter: DeliveryLimiter) -> None:
    taken = [
        await limiter.acquire(
            "sub_a", rate_limit_per_s=None, concurrency=2, lease_s=30, max_wait_s=0
        )
        for _ in range(2)
    ]
    full = await limiter.acquire(
        "sub_a", rate_limit_per_s=None, concurrency=2, lease_s=30, max_wait_s=0
    )
    assert all(t.admitted and t.lease for t in taken)
    assert not full.admitted and full.reason == "concurrency" and 29 < full.wait_s <= 30
    await limiter.release("sub_a", taken[0].lease)
    again = await limiter.acquire(
        "sub_a", rate_limit_per_s=None, concurrency=2, lease_s=30, max_wait_s=0
    )
    assert again.admitted


async def test_a_killed_holders_lease_expires(
    limiter: DeliveryLimiter, redis_url: str, key_prefix: str
) -> None:
    lease_s = 3.0
    holder = textwrap.dedent(
        f"""
        import asyncio, sys, time
        from relay.store.connection import async_redis
        from relay.store.keys import Keys
        from relay.store.limits import DeliveryLimiter

        async def main():
            client = async_redis({redis_url!r})
            limiter = DeliveryLimiter(redis=client, keys=Keys({key_prefix!r}))
            admission = await limiter.acquire(
                "sub_a", rate_limit_per_s=None, concurrency=1, lease_s={lease_s}, max_wait_s=0
            )
            print("held" if admission.admitted else "refused", flush=True)
            await asyncio.sleep(3600)

        asyncio.run(main())
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", holder], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), timeout=30)
        assert line.strip() == "held"
        os.kill(process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        locked = await limiter.acquire(
            "sub_a", rate_limit_per_s=None, concurrency=1, lease_s=lease_s, max_wait_s=0
        )
        assert not locked.admitted and locked.reason == "concurrency"

        async def admitted() -> bool:
            admission = await limiter.acquire(
                "sub_a", rate_limit_per_s=None, concurrency=1, lease_s=lease_s, max_wait_s=0
            )
            return admission.admitted

        await wait_until(admitted, what="the dead holder's lease to expire", timeout_s=lease_s + 10)
        assert time.monotonic() - killed_at <= lease_s + 10
    finally:
        process.kill()
        process.wait(timeout=10)


async def test_a_shorter_lease_never_cuts_a_longer_ones_expiry(
    limiter: DeliveryLimiter, aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    long = await limiter.acquire(
        "sub_a", rate_limit_per_s=None, concurrency=2, lease_s=60, max_wait_s=0
    )
    short = await limiter.acquire(
        "sub_a", rate_limit_per_s=None, concurrency=2, lease_s=1, max_wait_s=0
    )
    assert long.admitted and short.admitted
    assert int(await aredis.pttl(keys.limit_leases("sub_a"))) > 59_000
