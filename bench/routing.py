"""Routing: the dispatcher's first-attempt rate with 10 / 1,000 / 10,000 subscriptions, each
filtered to one source, every event matching exactly one of them (dispatch only: the events
are put straight into the stream, no polling). With routing independent of the number of
subscriptions, the rates are equal.

The dispatcher runs in this process, stepped (`run_until_idle`), so its CPU time per delivery
is measured too: on a shared machine that figure is steadier than a rate. The process tunes
its garbage collector as the dispatcher role does (relay/gc_tuning.py) while it measures.
The sizes are measured in interleaved rounds and the best round of each is kept. The same
run times the admin store operations at that N (create and read p99, a page of 100: median
of 20).
"""

from __future__ import annotations

import contextlib
import gc
import time
import uuid
from typing import Any

import redis

from bench.context import Context
from bench.throughput import calls_per_delivery, redis_calls
from relay import gc_tuning
from relay.core.events import event_from_message
from relay.core.models import Message
from relay.delivery.dispatcher import Dispatcher
from relay.settings import Settings
from relay.store import Store
from relay.store.connection import async_redis
from workers.dispatcher import open_dispatcher

RETENTION_S = 3600
ROUNDS = 3


async def run_routing(ctx: Context, *, counts: list[int], events: int) -> list[dict[str, Any]]:
    prefixes = [f"bench:routing:{uuid.uuid4().hex[:8]}:" for _ in counts]
    client = async_redis(ctx.redis_url)
    try:
        async with contextlib.AsyncExitStack() as stack:
            setups = []
            for n, prefix in zip(counts, prefixes, strict=True):
                settings = Settings.from_env(
                    {
                        "REDIS_URL": ctx.redis_url,
                        "RELAY_KEY_PREFIX": prefix,
                        "RELAY_ALLOW_PRIVATE_TARGETS": "true",
                    }
                )
                store = Store.create(client, settings)
                result = await _subscribe(store, n, ctx.receiver.url(f"/routing/{n}"))
                dispatcher = await stack.enter_async_context(open_dispatcher(settings))
                await dispatcher.run_until_idle()  # builds the routing index: not timed
                setups.append((store, dispatcher, result))
            threshold = gc.get_threshold()
            gc_tuning.tune()  # as the dispatcher role does once it has started
            try:
                for round_number in range(ROUNDS):
                    for store, dispatcher, result in setups:
                        tag = f"r{round_number}-"
                        await _measure(store, dispatcher, result, events=events, tag=tag)
            finally:
                gc.unfreeze()
                gc.set_threshold(*threshold)
        return [result for _, _, result in setups]
    finally:
        await client.aclose()
        for prefix in prefixes:
            _delete_prefix(ctx.redis_url, prefix)


async def _subscribe(store: Store, n: int, url: str) -> dict[str, Any]:
    create_ms, ids = [], []
    for i in range(n):
        began = time.perf_counter()
        sub = await store.subscriptions.create(
            url=url,
            event_types=None,
            source_ids=(f"src_{i}",),
            description=None,
            headers={},
            enabled=True,
            now=time.time() - 60,
        )
        create_ms.append((time.perf_counter() - began) * 1000)
        ids.append(sub.id)
    read_ms = []
    for sub_id in ids[:: max(1, n // 500)]:
        began = time.perf_counter()
        await store.subscriptions.get(sub_id)
        read_ms.append((time.perf_counter() - began) * 1000)
    page_ms = []
    for _ in range(20):
        began = time.perf_counter()
        await store.subscriptions.page(limit=100, cursor=None)
        page_ms.append((time.perf_counter() - began) * 1000)
    return {
        "subscriptions": n,
        "create_p99_ms": _p99(create_ms),
        "read_p99_ms": _p99(read_ms),
        "page_ms": sorted(page_ms)[len(page_ms) // 2],
        "rounds": [],
        "rate_per_s": 0.0,
        "cpu_us_per_delivery": None,
    }


async def _measure(
    store: Store, dispatcher: Dispatcher, result: dict[str, Any], *, events: int, tag: str
) -> None:
    n = result["subscriptions"]
    now = time.time()
    batch = [
        event_from_message(
            Message(kind="incoming", document_id=f"{tag}{i}", timestamp=int(now), text="hi"),
            source_id=f"src_{i % n}",
            created_at_ms=int(now * 1000),
        )
        for i in range(events)
    ]
    await store.events.add(batch, retention_s=RETENTION_S)
    calls_before = await redis_calls(store.redis)
    began, cpu_began = time.perf_counter(), time.process_time()
    read = await dispatcher.run_until_idle()
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu_began
    calls = calls_per_delivery(calls_before, await redis_calls(store.redis), events)
    rate, cpu_us = events / elapsed, 1e6 * cpu / events
    result["rounds"].append(
        {
            "entries_read": read,
            "rate_per_s": rate,
            "cpu_us": cpu_us,
            "redis_commands_per_delivery": round(sum(calls.values()), 2),
            "redis_calls_per_delivery": calls,
        }
    )
    result["rate_per_s"] = max(result["rate_per_s"], rate)
    best_cpu = result["cpu_us_per_delivery"]
    result["cpu_us_per_delivery"] = cpu_us if best_cpu is None else min(best_cpu, cpu_us)


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


def _delete_prefix(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        batch = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(batch), 500):
            client.delete(*batch[start : start + 500])
    finally:
        client.close()
