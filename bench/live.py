"""Latency and isolation: messages injected live, from appearance upstream to arrival.

Latency of one delivery = its arrival time at the receiver - the wall time just before the
message was added to the simulator. Only the healthy subscribers' deliveries are counted;
with `hang=True` a further subscriber whose endpoint never answers is added (isolation).
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.context import SOURCES, Context, verify_samples
from bench.harness import RelayRun
from bench.stats import summarize_latency
from bench.upstream import inject_live

WARMUP_TIMEOUT_S = 30.0


async def run_live(
    ctx: Context,
    *,
    name: str,
    rate_per_s: float,
    duration_s: float,
    k: int = 4,
    hang: bool = False,
    poll_interval_s: float = 1.0,
    dispatchers: int = 1,
) -> dict[str, Any]:
    usernames = await ctx.accounts(SOURCES)
    relay = RelayRun(
        redis_url=ctx.redis_url, log_dir=ctx.log_dir, name=name, poll_interval_s=poll_interval_s
    )
    try:
        await relay.add_sources(ctx.upstream.base_url, usernames, start_from=None)
        paths = [f"/{name}/s{i}" for i in range(k)]
        urls = [ctx.receiver.url(path) for path in paths]
        if hang:
            urls.append(ctx.hang().url(f"/hang/{name}"))
        subscription_ids = await relay.add_subscriptions(urls)
        await ctx.receiver.reset()
        relay.start_roles(dispatchers=dispatchers)
        await _warm_up(ctx, relay, usernames, k)
        await ctx.receiver.reset()
        if ctx.profile:
            relay.profile(duration_s=duration_s)
        injected = await inject_live(
            ctx.upstream, usernames, rate_per_s=rate_per_s, duration_s=duration_s
        )
        injected_span = max(injected.values()) - min(injected.values()) if injected else 0.0
        expected = len(injected) * k
        got = await ctx.receiver.wait_for(
            expected, timeout_s=60, stall_s=15, alive=relay.check_alive
        )
        arrivals, documents = await ctx.receiver.arrivals()
        recorded = await relay.recorded_at(list(documents))
        latencies, to_record, to_arrive = [], [], []
        for path in paths:
            for webhook_id, arrived in arrivals.get(path, {}).items():
                sent = injected.get(documents.get(webhook_id, ""))
                if sent is None:
                    continue
                latencies.append(arrived - sent)
                if webhook_id in recorded:
                    to_record.append(recorded[webhook_id] - sent)
                    to_arrive.append(arrived - recorded[webhook_id])
        peaks = relay.stop_roles()
        secrets = await relay.secrets(subscription_ids[:k])
        samples = await ctx.receiver.samples()
        checks = verify_samples(samples, dict(zip(paths, secrets.values(), strict=True)))
        return {
            "rate_per_s": rate_per_s,
            "achieved_rate_per_s": len(injected) / injected_span if injected_span else 0.0,
            "duration_s": duration_s,
            "poll_interval_s": poll_interval_s,
            "dispatchers": dispatchers,
            "sources": len(usernames),
            "healthy_subscribers": k,
            "hanging_subscriber": hang,
            "injected": len(injected),
            "expected": expected,
            "delivered_unique": got,
            "measured": len(latencies),
            "latency": summarize_latency(latencies),
            # The two legs: upstream -> recorded in Redis by the poller (polling, ingest), and
            # recorded -> arrival at the receiver (stream, dispatcher, HTTP).
            "upstream_to_recorded": summarize_latency(to_record),
            "recorded_to_arrival": summarize_latency(to_arrive),
            "signatures": checks,
            "peak_rss_bytes": peaks,
        }
    finally:
        await relay.close()
        await ctx.upstream.clear(usernames)


async def _warm_up(ctx: Context, relay: RelayRun, usernames: list[str], k: int) -> None:
    """One message per account, delivered to every healthy subscriber: the pipeline is live
    (roles started, connections open) before the measured injection starts."""
    for username in usernames:
        await ctx.upstream.add_now(username, 1)
    expected = len(usernames) * k
    got = await ctx.receiver.wait_for(
        expected, timeout_s=WARMUP_TIMEOUT_S, stall_s=WARMUP_TIMEOUT_S, alive=relay.check_alive
    )
    if got < expected:
        raise RuntimeError(f"{relay.name}: warm-up delivered {got} of {expected} webhooks")
    # Let the sources' cursors move past the warm-up second before measuring.
    await asyncio.sleep(1.0)
