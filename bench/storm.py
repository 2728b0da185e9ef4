"""The retry path. Recovery storm: a subscriber is down (503) until every delivery of a
backlog to it is scheduled for retry, then comes back; how fast the retry path drains them,
beside the rate of the first attempts to a healthy subscriber of the same backlog in the
same run.

The retry worker starts only once every retry is due and the subscriber is back, so the drain
measures the retry path (RQ scheduler, rate limits, drains, workers), not the schedule's
spacing: with the worker running, the retries come due spread over the first attempts' window
plus the schedule's jitter (±20 % of `FIRST_RETRY_S`), and the drain can go no faster than
that (the span measured was exactly that spread). The long first delay keeps every retry
waiting until all first attempts are made.

Fairness: one subscriber hangs with a parked backlog while another's retries come due; how
late those run (`run_fairness`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from bench.context import SOURCES, Context
from bench.harness import RelayRun
from bench.stats import drain_rate, summarize_latency
from bench.throughput import add_backlog
from relay.store.stats import queue_depths

FIRST_RETRY_S = 30.0


async def run_storm(ctx: Context, *, n: int, workers: int = 1) -> dict[str, Any]:
    """The drain with every retry due at once when the subscriber returns (the retry path's
    speed), then again with the worker running throughout, so the retries come due as
    scheduled (`as_scheduled`: how late they run behind their due times)."""
    held = await _storm_once(ctx, n=n, workers=workers, hold_worker=True)
    live = await _storm_once(ctx, n=n, workers=workers, hold_worker=False)
    return held | {"as_scheduled": live}


async def _storm_once(ctx: Context, *, n: int, workers: int, hold_worker: bool) -> dict[str, Any]:
    usernames = await ctx.accounts(SOURCES)
    first_second = await add_backlog(ctx, usernames, n)
    relay = RelayRun(redis_url=ctx.redis_url, log_dir=ctx.log_dir, name="storm")
    relay.env["RELAY_RETRY_SCHEDULE"] = f"{FIRST_RETRY_S:g},1,1,1"
    try:
        await relay.add_sources(ctx.upstream.base_url, usernames, start_from=first_second)
        healthy, down = "/storm/healthy", "/down/storm"
        _, down_id = await relay.add_subscriptions(
            [ctx.receiver.url(healthy), ctx.receiver.url(down)]
        )
        retries_key = relay.store.keys.subscription_retries(down_id)
        await ctx.receiver.reset()
        relay.start_roles(workers=0 if hold_worker else workers)
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
        if hold_worker:
            await _wait_all_due(relay, retries_key, deadline_s=2 * FIRST_RETRY_S)
        rows = cast("list[Any]", await relay.redis.zrange(retries_key, 0, -1, withscores=True))
        due = {str(event_id): float(due_s) for event_id, due_s in rows}
        back_at = time.time()
        await ctx.receiver.up()
        if hold_worker:
            relay.start_roles(pollers=0, dispatchers=0, workers=workers)
            await relay.wait_ready(("worker",))
        cpu_before = relay.cpu_seconds()
        if ctx.profile and hold_worker:  # the drain, from the subscriber's return
            relay.profile(duration_s=max(5.0, n / 1000))
        await ctx.receiver.wait_for(
            2 * n,
            timeout_s=FIRST_RETRY_S + 60 + n / 50,
            stall_s=FIRST_RETRY_S + 30,
            alive=relay.check_alive,
        )
        cpu = {
            role: round(used - cpu_before.get(role, 0.0), 2)
            for role, used in relay.cpu_seconds().items()
        }
        arrivals, _ = await ctx.receiver.arrivals()
        stats = await ctx.receiver.stats()
        relay.stop_roles()
        got = arrivals.get(down, {})
        first = drain_rate(list(arrivals.get(healthy, {}).values()))
        retried = drain_rate(list(got.values()))
        late = [
            max(0.0, got[event_id] - due_s) for event_id, due_s in due.items() if event_id in got
        ]
        return {
            "messages": n,
            "workers": workers,
            "retries_waiting_when_back": waiting,
            "first_attempt_rate_per_s": first["rate"],
            "retry_drain_rate_per_s": retried["rate"],
            "retry_drain_s": retried["span_s"],
            # From the first retry's due time to the last's: the fastest a drain can go.
            "due_span_s": max(due.values()) - min(due.values()) if due else 0.0,
            "due_before_back": sum(1 for due_s in due.values() if due_s <= back_at),
            "lateness": summarize_latency(late),
            # CPU of each role from the subscriber's return to the last retry delivered.
            "drain_cpu_s": cpu,
            "delivered_after_recovery": len(got),
            "duplicates": stats["duplicates"],
        }
    finally:
        await relay.close()
        await ctx.upstream.clear(usernames)


async def _wait_all_due(relay: RelayRun, key: str, *, deadline_s: float) -> None:
    """Wait until the last retry queued in `key` (a subscription's retries) is due."""
    give_up = time.monotonic() + deadline_s
    while True:
        last = cast(
            "list[tuple[str, float]]", await relay.redis.zrange(key, -1, -1, withscores=True)
        )
        if not last or last[0][1] <= time.time():
            return
        if time.monotonic() > give_up:
            raise RuntimeError(f"storm: retries not due after {deadline_s} s")
        relay.check_alive()
        await asyncio.sleep(min(0.5, max(0.01, last[0][1] - time.time())))


FAIR_FIRST_RETRY_S = 10.0
FAIR_TIMEOUT_S = 5


async def run_fairness(ctx: Context, *, parked: int, flaky: int = 50) -> dict[str, Any]:
    """A subscriber that never answers holds `parked` deliveries in the retry queue while
    another's `flaky` retries come due: how late those run (arrival at the receiver minus the
    due time the retry queue gave them). Each subscriber gets one account's messages."""
    hang_user, flaky_user = await ctx.accounts(2)
    first_second = await add_backlog(ctx, [hang_user], parked)
    relay = RelayRun(redis_url=ctx.redis_url, log_dir=ctx.log_dir, name="fairness")
    relay.env["RELAY_RETRY_SCHEDULE"] = f"{FAIR_FIRST_RETRY_S:g},{FAIR_FIRST_RETRY_S:g}"
    relay.env["RELAY_DELIVERY_TIMEOUT"] = str(FAIR_TIMEOUT_S)
    flaky_path = "/down/fairness"
    try:
        sources = await relay.add_sources(
            ctx.upstream.base_url, [hang_user, flaky_user], start_from=first_second
        )
        urls = [ctx.hang().url("/hang/fairness"), ctx.receiver.url(flaky_path)]
        hang_sub, flaky_sub = [
            await relay.store.subscriptions.create(
                url=url,
                event_types=None,
                source_ids=(source_id,),
                description="bench fairness",
                headers={},
                enabled=True,
                now=time.time(),
            )
            for url, source_id in zip(urls, sources, strict=True)
        ]
        await ctx.receiver.reset()
        relay.start_roles()
        keys = relay.store.keys

        async def queued(subscription_id: str) -> int:
            return int(await relay.redis.zcard(keys.subscription_retries(subscription_id)))

        await _wait(lambda: queued(hang_sub.id), at_least=int(parked * 0.9), relay=relay)
        await ctx.upstream.add_now(flaky_user, flaky)
        await _wait(lambda: queued(flaky_sub.id), at_least=flaky, relay=relay)
        rows = await relay.redis.zrange(
            keys.subscription_retries(flaky_sub.id), 0, -1, withscores=True
        )
        due = {str(event_id): float(due_s) for event_id, due_s in cast("list[Any]", rows)}
        hanging_when_due = await queued(hang_sub.id)
        await ctx.receiver.up()
        await ctx.receiver.wait_for(
            flaky,
            timeout_s=FAIR_FIRST_RETRY_S + 60,
            stall_s=FAIR_FIRST_RETRY_S + 30,
            alive=relay.check_alive,
        )
        arrivals, _ = await ctx.receiver.arrivals()
        got = arrivals.get(flaky_path, {})
        relay.stop_roles()
        late = [
            max(0.0, got[event_id] - due_s) for event_id, due_s in due.items() if event_id in got
        ]
        return {
            "parked_hanging": hanging_when_due,
            "retries": len(due),
            "delivered": len(got),
            "lateness": summarize_latency(late),
        }
    finally:
        await relay.close()
        await ctx.upstream.clear([hang_user, flaky_user])


async def _wait(
    count: Callable[[], Awaitable[int]], *, at_least: int, relay: RelayRun, timeout_s: float = 120
) -> None:
    deadline = time.monotonic() + timeout_s
    while (value := await count()) < at_least:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fairness: {value} of {at_least} retries queued in {timeout_s} s")
        relay.check_alive()
        await asyncio.sleep(0.2)
