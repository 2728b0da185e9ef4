"""Throughput: a backlog drained by the relay, by the plain-client limit and by the naive
RQ-job-per-delivery design, each measured the same way: deliveries per second between the
first and the last arrival at the receiver."""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from typing import Any

import redis
from redis.asyncio import Redis

from bench import naive
from bench.context import (
    BACKLOG_PER_SECOND,
    SOURCES,
    Context,
    last_json_line,
    split,
    verify_samples,
)
from bench.harness import RelayRun
from bench.procs import python_child
from bench.stats import drain_rate


async def add_backlog(ctx: Context, usernames: list[str], n: int) -> int:
    """Put `n` messages into the simulator, spread over the accounts and over past seconds
    (at most BACKLOG_PER_SECOND per account-second); returns the first second."""
    counts = split(n, len(usernames))
    first_second = int(time.time()) - math.ceil(max(counts) / BACKLOG_PER_SECOND) - 2
    for username, count in zip(usernames, counts, strict=True):
        if count:
            await ctx.upstream.add_backlog(
                username, count=count, first_second=first_second, per_second=BACKLOG_PER_SECOND
            )
    return first_second


async def run_relay_backlog(
    ctx: Context,
    *,
    name: str,
    n: int,
    k: int,
    dispatchers: int = 1,
    sources: int = SOURCES,
    keep_deliveries: bool,
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The relay drains a backlog of `n` messages, spread over `sources` accounts, to `k`
    subscribers; returns the figures and, if asked, the deliveries it made (for the limit
    and naive runs)."""
    usernames = await ctx.accounts(sources)
    first_second = await add_backlog(ctx, usernames, n)
    relay = RelayRun(redis_url=ctx.redis_url, log_dir=ctx.log_dir, name=name)
    try:
        paths = [f"/{name}/s{i}" for i in range(k)]
        urls = [ctx.receiver.url(path) for path in paths]
        subscription_ids = await relay.add_subscriptions(urls)
        await ctx.receiver.reset()
        relay.start_roles(dispatchers=dispatchers)
        # End to end as a user sees it: the relay is up, the sources are created, and the
        # clock runs from their creation to the last delivery (discovery, ingest included).
        await relay.wait_ready(("poller", "dispatcher"))
        started = time.time()
        await relay.add_sources(ctx.upstream.base_url, usernames, start_from=first_second)
        expected = n * k
        if ctx.profile:
            # Attach once deliveries flow, so the profile shows the steady state, not imports.
            await ctx.receiver.wait_for(
                expected // 20, timeout_s=60, stall_s=60, alive=relay.check_alive
            )
            relay.profile(duration_s=max(3.0, expected / 4000))
        # CPU is counted from the first arrival on: the roles' start-up (imports) is excluded.
        await ctx.receiver.wait_for(1, timeout_s=60, stall_s=60, alive=relay.check_alive)
        cpu_before = relay.cpu_seconds()
        receiver_cpu_before = ctx.receiver.child.cpu_seconds() or 0.0
        redis_cpu_before = await redis_cpu_seconds(relay.redis)
        calls_before = await redis_calls(relay.redis)
        got = await ctx.receiver.wait_for(
            expected, timeout_s=60 + expected / 400, stall_s=20, alive=relay.check_alive
        )
        cpu = {
            name: round(used - cpu_before.get(name, 0.0), 2)
            for name, used in relay.cpu_seconds().items()
        }
        receiver_cpu = (ctx.receiver.child.cpu_seconds() or 0.0) - receiver_cpu_before
        redis_cpu = await redis_cpu_seconds(relay.redis) - redis_cpu_before
        calls = calls_per_delivery(calls_before, await redis_calls(relay.redis), got)
        arrivals, _ = await ctx.receiver.arrivals()
        stats = await ctx.receiver.stats()
        times = [t for path in paths for t in arrivals.get(path, {}).values()]
        peaks = relay.stop_roles()
        recorded = list((await relay.recorded_at(list(_ids(arrivals)))).values())
        secrets = await relay.secrets(subscription_ids)
        samples = await ctx.receiver.samples()
        checks = verify_samples(samples, dict(zip(paths, secrets.values(), strict=True)))
        deliveries = (
            await relay.deliveries(dict(zip(subscription_ids, urls, strict=True)))
            if keep_deliveries
            else []
        )
        rate = drain_rate(times)
        result = {
            "messages": n,
            "sources": sources,
            "subscribers": k,
            "dispatchers": dispatchers,
            "expected": expected,
            "delivered_unique": got,
            "duplicates": stats["duplicates"],
            "rate_per_s": rate["rate"],
            "first_to_last_s": rate["span_s"],
            "start_to_last_s": (max(times) - started) if times else None,
            # From the sources' creation to the first event recorded and the first arrival.
            "start_to_first_recorded_s": (min(recorded) - started) if recorded else None,
            "start_to_first_s": (min(times) - started) if times else None,
            # How fast the poller recorded the backlog (events per second, first to last).
            "ingest_rate_per_s": drain_rate(recorded)["rate"],
            "signatures": checks,
            "cpu_s": cpu,
            "cpu_us_per_delivery": 1e6 * sum(cpu.values()) / max(1, got),
            "receiver_cpu_us_per_delivery": 1e6 * receiver_cpu / max(1, got),
            # The whole server's (with REDIS_URL, anything else it serves meanwhile too).
            "redis_cpu_us_per_delivery": 1e6 * redis_cpu / max(1, got),
            "redis_commands_per_delivery": round(sum(calls.values()), 2),
            "redis_calls_per_delivery": calls,
            "peak_rss_bytes": peaks,
        }
        return result, deliveries
    finally:
        await relay.close()
        await ctx.upstream.clear(usernames)


async def redis_cpu_seconds(client: Redis) -> float:
    """CPU the Redis server has used so far (INFO cpu: user + system, all its threads)."""
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def redis_calls(client: Redis) -> dict[str, int]:
    """Commands the Redis server has run so far, by name (INFO commandstats; a script's
    own commands count under their names, and the script call under `evalsha`)."""
    info = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(row["calls"]) for name, row in info.items()}


def calls_per_delivery(
    before: dict[str, int], after: dict[str, int], deliveries: int
) -> dict[str, float]:
    """Each command's calls between two `redis_calls` readings per delivery, most first."""
    grown = {name: n - before.get(name, 0) for name, n in after.items()}
    return {
        name: round(n / max(1, deliveries), 2)
        for name, n in sorted(grown.items(), key=lambda item: -item[1])
        if n > 0
    }


def _ids(arrivals: dict[str, dict[str, float]]) -> set[str]:
    return {webhook_id for per_path in arrivals.values() for webhook_id in per_path}


async def run_limit(
    ctx: Context,
    deliveries: list[dict[str, str]],
    *,
    concurrency: int = 64,
    loop: str = "uvloop",
    client: str = "aiohttp",
) -> dict[str, Any]:
    """A plain loop posting the same signed bodies to the same receiver paths, on `loop`
    (uvloop by default: the relay's roles run on it, and a baseline is the fastest this
    client gets), through `client`: aiohttp's, or the relay's own ("relay")."""
    path = ctx.log_dir / "deliveries.jsonl"
    with path.open("w") as out:
        for row in deliveries:
            out.write(json.dumps(row) + "\n")
    await ctx.receiver.reset()
    receiver_cpu_before = ctx.receiver.child.cpu_seconds() or 0.0
    child = python_child(
        "limit",
        "bench.limit",
        str(path),
        "--concurrency",
        str(concurrency),
        "--time-limit",
        "120",
        "--loop",
        loop,
        "--client",
        client,
        log_dir=ctx.log_dir,
    )
    finished = await asyncio.to_thread(child.wait, 180)
    child.stop()
    if not finished:
        raise RuntimeError(f"the limit client did not finish:\n{child.tail()}")
    own = last_json_line(child.log_path)
    receiver_cpu = (ctx.receiver.child.cpu_seconds() or 0.0) - receiver_cpu_before
    arrivals, _ = await ctx.receiver.arrivals()
    times = [t for per_path in arrivals.values() for t in per_path.values()]
    rate = drain_rate(times)
    return {
        "deliveries": len(deliveries),
        "concurrency": concurrency,
        "event_loop": loop,
        "client": client,
        "delivered_unique": len(times),
        "errors": own["errors"],
        "rate_per_s": rate["rate"],
        "client_rate_per_s": own["rate"],
        "first_to_last_s": rate["span_s"],
        "cpu_s": own["cpu_s"],
        "cpu_us_per_delivery": 1e6 * own["cpu_s"] / max(1, len(times)),
        "receiver_cpu_us_per_delivery": 1e6 * receiver_cpu / max(1, len(times)),
        "peak_rss_bytes": own["peak_rss_bytes"],
    }


async def run_naive(
    ctx: Context, deliveries: list[dict[str, str]], *, jobs: int, workers: int
) -> dict[str, Any]:
    """`jobs` of the same deliveries as one RQ job each, run by `workers` SimpleWorkers."""
    rows = deliveries[:jobs]
    tag = uuid.uuid4().hex[:10]
    queue = f"bench:{tag}:naive"
    client = redis.Redis.from_url(ctx.redis_url)
    try:
        await asyncio.to_thread(naive.enqueue, client, queue, rows, tag=tag)
        await ctx.receiver.reset()
        children = [
            python_child(
                f"naive-{workers}w-{n}",
                "bench.naive",
                "work",
                "--redis",
                ctx.redis_url,
                "--queue",
                queue,
                log_dir=ctx.log_dir,
            )
            for n in range(workers)
        ]
        timeout_s = 60 + len(rows) / 50
        for child in children:
            await asyncio.to_thread(child.wait, timeout_s)
            child.stop()
        arrivals, _ = await ctx.receiver.arrivals()
        times = [t for per_path in arrivals.values() for t in per_path.values()]
        rate = drain_rate(times)
        results = [last_json_line(child.log_path) for child in children]
        cpu_s = sum(result["cpu_s"] for result in results)
        return {
            "jobs": len(rows),
            "workers": workers,
            "delivered_unique": len(times),
            "rate_per_s": rate["rate"],
            "first_to_last_s": rate["span_s"],
            "cpu_s": cpu_s,
            "cpu_us_per_delivery": 1e6 * cpu_s / max(1, len(times)),
            "peak_rss_bytes": {
                child.name: result["peak_rss_bytes"]
                for child, result in zip(children, results, strict=True)
            },
        }
    finally:
        naive.cleanup(client, queue, tag=tag)
        client.close()
