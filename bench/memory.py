"""Memory: Redis bytes per message kept after a large backlog, by key family, the TTLs that
bound them, and each relay process's peak RSS."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from bench.context import SOURCES, Context
from bench.harness import RelayRun
from bench.throughput import add_backlog

_SAMPLED_EVENTS = 1000


async def run_memory(ctx: Context, *, name: str, n: int) -> dict[str, Any]:
    """`n` messages through poller and dispatcher to one subscriber, then a census of Redis."""
    usernames = await ctx.accounts(SOURCES)
    first_second = await add_backlog(ctx, usernames, n)
    relay = RelayRun(redis_url=ctx.redis_url, log_dir=ctx.log_dir, name=name)
    try:
        await relay.add_sources(ctx.upstream.base_url, usernames, start_from=first_second)
        path = f"/{name}/s0"
        await relay.add_subscriptions([ctx.receiver.url(path)])
        await ctx.receiver.reset()
        before = await _used_memory(relay)
        relay.start_roles()
        got = await ctx.receiver.wait_for(
            n, timeout_s=60 + n / 400, stall_s=20, alive=relay.check_alive
        )
        await _wait_for_acks(relay, timeout_s=20)
        await asyncio.sleep(1.0)  # attempts are recorded after the 2xx
        peaks = relay.stop_roles()
        after = await _used_memory(relay)
        families = await _families(relay)
        ttls = await _ttls(relay)
        json_bytes = await _mean_body_bytes(relay)
        per_message = {family: size / n for family, size in families.items()}
        dedupe = per_message.get("seen", 0.0)
        event = per_message.get("ev", 0.0)
        return {
            "messages": n,
            "delivered_unique": got,
            "used_memory_delta_bytes": after - before,
            "bytes_per_message_total": (after - before) / n,
            "bytes_per_message_by_family": per_message,
            "dedupe_bytes_per_id": dedupe,
            "event_bytes": event,
            "event_json_bytes": json_bytes,
            "event_to_json_ratio": event / json_bytes if json_bytes else None,
            "ttl_s": ttls,
            "peak_rss_bytes": peaks,
        }
    finally:
        await relay.close()
        await ctx.upstream.clear(usernames)


async def _used_memory(relay: RelayRun) -> int:
    info = await relay.redis.info("memory")
    return int(info["used_memory"])


async def _wait_for_acks(relay: RelayRun, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            groups = await relay.redis.xinfo_groups(relay.store.keys.stream)
        except Exception:  # no stream yet / other layout: nothing to wait for
            return
        if all(int(group.get("pending", 0)) == 0 for group in groups):
            return
        await asyncio.sleep(0.2)


def _family(key: str, prefix: str) -> str:
    rest = key[len(prefix) :]
    if rest.startswith("evs:"):
        return rest.split(":", 2)[0] + ":" + rest.split(":", 2)[1]
    return rest.split(":", 1)[0]


async def _families(relay: RelayRun) -> dict[str, int]:
    """MEMORY USAGE of every key under the prefix (and its RQ keys), summed by family."""
    sizes: Counter[str] = Counter()
    keys = [key async for key in relay.redis.scan_iter(match=f"{relay.prefix}*", count=5000)]
    rq_keys = [key async for key in relay.redis.scan_iter(match=f"rq:*{relay.prefix}*")]
    for start in range(0, len(keys) + len(rq_keys), 1000):
        chunk = (keys + rq_keys)[start : start + 1000]
        async with relay.redis.pipeline(transaction=False) as pipe:
            for key in chunk:
                pipe.memory_usage(key, samples=0)
            usages = await pipe.execute()
        for key, usage in zip(chunk, usages, strict=True):
            family = "rq" if key.startswith("rq:") else _family(key, relay.prefix)
            sizes[family] += int(usage or 0)
    return dict(sizes.most_common())


async def _ttls(relay: RelayRun) -> dict[str, int | None]:
    """The TTL of one dedupe key and one event (None: no TTL, unbounded)."""
    found: dict[str, int | None] = {}
    for family in ("seen", "ev"):
        async for key in relay.redis.scan_iter(match=f"{relay.prefix}{family}:*", count=1000):
            ttl = await relay.redis.ttl(key)
            found[family] = ttl if ttl >= 0 else None
            break
    return found


async def _mean_body_bytes(relay: RelayRun) -> float:
    """The mean size of the stored events' JSON bodies (a sample)."""
    ids = [
        str(i) for i in await relay.redis.zrange(relay.store.keys.events, 0, _SAMPLED_EVENTS - 1)
    ]
    events = await relay.store.events.get_many(ids)
    sizes = [len(event.body) for event in events if event is not None]
    return sum(sizes) / len(sizes) if sizes else 0.0
