"""The overview page: sources and their lag, subscriptions and their recent success rate,
queue depths, dead letters, and the last hour's deliveries per minute."""

from __future__ import annotations

import asyncio

from starlette.responses import Response

from relay.admin import health
from relay.admin.sources import list_sources
from relay.admin.subscriptions import list_subscriptions
from relay.console.chart import lay_out, minutes_ending
from relay.console.pages import Page, page, redirect

SHOWN = 50


@page
async def overview(current: Page) -> Response:
    ctx = current.ctx
    if not ctx.principal.is_operator:  # the portal: a tenant sees no relay-wide figures
        return redirect("/ui/subscriptions")
    now = ctx.clock()
    sources, subscriptions, depths = await asyncio.gather(
        list_sources(ctx, limit=SHOWN, cursor=None),
        list_subscriptions(ctx, limit=SHOWN, cursor=None),
        health.depths(ctx),
    )
    subscription_ids = [s.id for s in subscriptions.items]
    counts = await health.minute_counts(ctx, minutes_ending(now), subscription_ids=subscription_ids)
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
