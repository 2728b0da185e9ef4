"""The overview page: sources and their lag, subscriptions and their recent success rate,
queue depths, dead letters, and the last hour's deliveries per minute."""

from __future__ import annotations

import asyncio

from starlette.responses import Response

from relay.api.ui.chart import lay_out, minutes_ending
from relay.api.ui.pages import Page, page
from relay.store.stats import queue_depths

SHOWN = 50


@page
async def overview(current: Page) -> Response:
    ctx = current.ctx
    now = ctx.clock()
    sources, subscriptions, depths = await asyncio.gather(
        ctx.store.sources.page(limit=SHOWN, cursor=None),
        ctx.store.subscriptions.page(limit=SHOWN, cursor=None),
        queue_depths(ctx.redis, ctx.store.keys),
    )
    subscription_ids = [s.id for s in subscriptions.items]
    counts = await ctx.store.attempts.minute_counts(
        minutes_ending(now), subscription_ids=subscription_ids
    )
    rates: dict[str, tuple[int, int]] = {}
    for sub_id in subscription_ids:
        ok = sum(c.by_subscription[sub_id][0] for c in counts)
        failed = sum(c.by_subscription[sub_id][1] for c in counts)
        rates[sub_id] = (ok, failed)
    return current.render(
        "overview.html",
        sources=sources,
        subscriptions=subscriptions,
        rates=rates,
        depths=depths,
        chart=lay_out(counts),
    )


@page
async def not_found(current: Page) -> Response:
    return current.error(404, f"There is no console page at {current.request.url.path}.")
