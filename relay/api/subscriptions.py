"""`/v1/subscriptions`: subscriber URLs with filters, custom headers and enable/disable.

Zapier REST Hooks: subscribing is POST with a target URL, unsubscribing is DELETE.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.admin import idempotency, subscriptions
from relay.admin.subscription_health import health_of, health_of_one
from relay.api import serializers
from relay.api.auth import requires
from relay.core.access import SUBSCRIPTIONS_READ, SUBSCRIPTIONS_WRITE
from relay.web.bodies import read_json_object
from relay.web.context import context
from relay.web.query import list_params
from relay.web.routing import resource


async def create_subscription(request: Request) -> Response:
    data = await read_json_object(request, known=subscriptions.CREATE_FIELDS)
    ctx = context(request)

    async def create() -> tuple[int, dict[str, Any]]:
        subscription = await subscriptions.add_subscription(ctx, data)
        health = await health_of_one(ctx, subscription)
        return 201, serializers.subscription_created(subscription, health)

    key = request.headers.get(idempotency.HEADER)
    if key is None:
        status, body = await create()
        replayed = False
    else:
        # Keys are per credential, so one client can never be handed another's answer.
        scope = idempotency.credential_scope(request.headers.get("authorization", ""))
        operation = f"subscriptions.create:{scope}"
        answer = await idempotency.once(ctx, operation, key, data, create)
        status, body, replayed = answer.status, answer.body, answer.replayed
    headers = {"Location": f"/v1/subscriptions/{body['id']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body, status_code=status, headers=headers)


async def list_subscriptions(request: Request) -> Response:
    limit, cursor = list_params(request)
    ctx = context(request)
    page = await subscriptions.list_subscriptions(ctx, limit=limit, cursor=cursor)
    health = await health_of(ctx, page.items)
    return JSONResponse(
        serializers.listing(page, lambda sub: serializers.subscription(sub, health[sub.id]))
    )


async def get_subscription(request: Request) -> Response:
    subscription_id = request.path_params["subscription_id"]
    ctx = context(request)
    subscription = await subscriptions.get_subscription(ctx, subscription_id)
    return JSONResponse(
        serializers.subscription(subscription, await health_of_one(ctx, subscription))
    )


async def update_subscription(request: Request) -> Response:
    data = await read_json_object(request, known=subscriptions.FIELDS)
    subscription_id = request.path_params["subscription_id"]
    ctx = context(request)
    subscription = await subscriptions.change_subscription(ctx, subscription_id, data)
    return JSONResponse(
        serializers.subscription(subscription, await health_of_one(ctx, subscription))
    )


async def delete_subscription(request: Request) -> Response:
    subscription_id = request.path_params["subscription_id"]
    await subscriptions.delete_subscription(context(request), subscription_id)
    return Response(status_code=204)


def routes() -> list[Route]:
    return [
        resource(
            "/v1/subscriptions",
            get=requires(SUBSCRIPTIONS_READ, list_subscriptions),
            post=requires(SUBSCRIPTIONS_WRITE, create_subscription),
        ),
        resource(
            "/v1/subscriptions/{subscription_id}",
            get=requires(SUBSCRIPTIONS_READ, get_subscription),
            patch=requires(SUBSCRIPTIONS_WRITE, update_subscription),
            delete=requires(SUBSCRIPTIONS_WRITE, delete_subscription),
        ),
    ]
