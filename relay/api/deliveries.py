"""Delivering again on demand: subscription test pings, attempts, replay and redelivery."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.api import serializers, validation
from relay.api.bodies import read_json_object
from relay.api.context import ApiContext, context
from relay.api.routing import resource
from relay.core.errors import Conflict
from relay.core.models import Subscription

PUBLISH_BATCH = 100


async def _publish(ctx: ApiContext, pairs: Iterable[tuple[str, str]]) -> int:
    """Queue each (event id, subscription id) as an explicit delivery; how many were queued."""
    pending = list(pairs)
    for start in range(0, len(pending), PUBLISH_BATCH):
        await asyncio.gather(
            *(
                ctx.store.deliveries.publish(event_id, subscription_id=sub_id, explicit=True)
                for event_id, sub_id in pending[start : start + PUBLISH_BATCH]
            )
        )
    return len(pending)


def _require_enabled(subscription: Subscription) -> None:
    if not subscription.enabled:
        raise Conflict(
            f"subscription {subscription.id} is disabled"
            + (f" ({subscription.disabled_reason})" if subscription.disabled_reason else "")
            + "; enable it first"
        )


async def send_test_ping(request: Request) -> Response:
    ctx = context(request)
    subscription = await ctx.store.subscriptions.get(request.path_params["subscription_id"])
    attempt = await ctx.deliverer.ping(subscription, now=ctx.clock())
    return JSONResponse(serializers.attempt(attempt))


async def list_attempts(request: Request) -> Response:
    ctx = context(request)
    subscription_id = request.path_params["subscription_id"]
    limit, cursor = validation.page_params(request)
    await ctx.store.subscriptions.get(subscription_id)
    page = await ctx.store.attempts.page(subscription_id, limit=limit, cursor=cursor)
    return JSONResponse(serializers.listing(page, serializers.attempt))


async def replay(request: Request) -> Response:
    ctx = context(request)
    data = await read_json_object(request, known=("since", "until"))
    since = validation.integer(
        validation.required(data, "since"), "since", low=0, high=validation.MAX_EPOCH_S
    )
    until = data.get("until")
    if until is not None:
        until = validation.integer(until, "until", low=0, high=validation.MAX_EPOCH_S)
    subscription = await ctx.store.subscriptions.get(request.path_params["subscription_id"])
    _require_enabled(subscription)
    ids = await ctx.store.events.ids_in_window(since=since, until=until)
    found = [event for event in await ctx.store.events.get_many(ids) if event is not None]
    queued = await _publish(
        ctx, ((event.id, subscription.id) for event in found if subscription.matches(event))
    )
    return JSONResponse({"queued": queued}, status_code=202)


async def redeliver_event(ctx: ApiContext, event_id: str, subscription_id: str | None) -> int:
    """Queue one event again to one enabled subscription, or to every enabled one it matches;
    how many were queued. Raises NotFound, Conflict (disabled). Shared with the web console."""
    event = await ctx.store.events.get(event_id)
    if subscription_id is not None:
        subscription = await ctx.store.subscriptions.get(subscription_id)
        _require_enabled(subscription)
        targets = [subscription]
    else:
        targets = [s for s in await ctx.store.subscriptions.all() if s.enabled and s.matches(event)]
    return await _publish(ctx, ((event.id, target.id) for target in targets))


async def redeliver(request: Request) -> Response:
    ctx = context(request)
    data = await read_json_object(request, known=("subscription_id",), required=False)
    subscription_id = data.get("subscription_id")
    if subscription_id is not None:
        subscription_id = validation.text(subscription_id, "subscription_id", max_length=100)
    queued = await redeliver_event(ctx, request.path_params["event_id"], subscription_id)
    return JSONResponse({"queued": queued}, status_code=202)


def routes() -> list[Route]:
    return [
        resource("/v1/subscriptions/{subscription_id}/test", post=send_test_ping),
        resource("/v1/subscriptions/{subscription_id}/attempts", get=list_attempts),
        resource("/v1/subscriptions/{subscription_id}/replay", post=replay),
        resource("/v1/events/{event_id}/redeliver", post=redeliver),
    ]
