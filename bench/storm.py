"""Recovery storm: a subscriber is down (503) until every delivery of a backlog to it is
scheduled for retry, then comes back; how fast the retry path drains them, beside the rate of
the first attempts to a healthy subscriber of the same backlog in the same run.

The retry schedule starts with one long delay (`FIRST_RETRY_S`), so every retry is still
waiting when the subscriber comes back and the drain measures the retry path (RQ scheduler,
rate limits, workers), not the schedule's spacing.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.context import SOURCES, Context
from bench.harness import RelayRun
from bench.stats import drain_rate
from bench.throughput import add_backlog
from relay.store.stats import queue_depths

FIRST_RETRY_S = 30.0


async def run_storm(ctx: Context, *, n: int, workers: int = 1) -> dict[str, Any]:
    usernames = await ctx.accounts(SOURCES)
    first_second = await add_backlog(ctx, usernames, n)
    relay = RelayRun(redis_url=ctx.redis_url, log_dir=ctx.log_dir, name="storm")
    relay.env["RELAY_RETRY_SCHEDULE"] = f"{FIRST_RETRY_S:g},1,1,1"
    try:
        await relay.add_sources(ctx.upstream.base_url, usernames, start_from=first_second)
        healthy, down = "/storm/healthy", "/down/storm"
        await relay.add_subscriptions([ctx.receiver.url(healthy), ctx.receiver.url(down)])
        await ctx.receiver.reset()
        relay.start_roles(workers=workers)
        await ctx.receiver.wait_for(n, timeout_s=60 + n / 200, stall_s=30, alive=relay.check_alive)
        waiting = 0
        deadline = time.monotonic() + FIRST_RETRY_S
        while time.monotonic() < deadline:  # every first attempt to the down one failed
            q = await queue_depths(relay.redis, relay.store.keys)
            waiting = q.retry_scheduled + q.retry_rate_limited + q.retry_ready + q.retry_running
            if waiting >= n:
                break
            relay.check_alive()
            await asyncio.sleep(0.5)
        await ctx.receiver.up()
        await ctx.receiver.wait_for(
            2 * n,
            timeout_s=FIRST_RETRY_S + 60 + n / 50,
            stall_s=FIRST_RETRY_S + 30,
            alive=relay.check_alive,
        )
        arrivals, _ = await ctx.receiver.arrivals()
        stats = await ctx.receiver.stats()
        relay.stop_roles()
        first = drain_rate(list(arrivals.get(healthy, {}).values()))
        retried = drain_rate(list(arrivals.get(down, {}).values()))
        return {
            "messages": n,
            "workers": workers,
            "retries_waiting_when_back": waiting,
            "first_attempt_rate_per_s": first["rate"],
            "retry_drain_rate_per_s": retried["rate"],
            "retry_drain_s": retried["span_s"],
            "delivered_after_recovery": len(arrivals.get(down, {})),
            "duplicates": stats["duplicates"],
        }
    finally:
        await relay.close()
        await ctx.upstream.clear(usernames)
