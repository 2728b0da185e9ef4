"""`/v1/subscriptions`: subscriber URLs with filters, custom headers and enable/disable.

Zapier REST Hooks: subscribing is POST with a target URL, unsubscribing is DELETE.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.api import serializers, validation
from relay.api.bodies import read_json_object
from relay.api.context import ApiContext, context
from relay.api.routing import resource
from relay.core.errors import InvalidInput
from relay.core.models import EVENT_TYPES
from relay.core.urls import validate_target_url

FIELDS = ("url", "event_types", "source_ids", "description", "headers", "enabled")
MAX_DESCRIPTION = 500
MAX_SOURCE_IDS = 100
MAX_ID_LENGTH = 100


def _url(ctx: ApiContext, value: Any) -> str:
    checked = validation.text(
        value,
        "url",
        max_length=2048,
        pattern=validation.TARGET_URL,
        hint="must be an http:// or https:// URL with a host name or IP address",
    )
    if validation.NOT_VISIBLE_ASCII.search(checked):
        raise InvalidInput("url must be printable ASCII without spaces", field="url")
    return validate_target_url(checked, allow_private=ctx.settings.allow_private_targets)


def _event_types(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    return validation.text_list(
        value, "event_types", max_items=len(EVENT_TYPES), max_length=64, choices=EVENT_TYPES
    )


def _source_ids(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    return validation.text_list(
        value, "source_ids", max_items=MAX_SOURCE_IDS, max_length=MAX_ID_LENGTH
    )


def _description(value: Any) -> str | None:
    if value is None:
        return None
    return validation.text(value, "description", max_length=MAX_DESCRIPTION, min_length=0)


def parse_fields(ctx: ApiContext, data: dict[str, Any]) -> dict[str, Any]:
    """The given fields, validated, as SubscriptionStore keyword arguments."""
    parsers: dict[str, Callable[[Any], Any]] = {
        "url": lambda v: _url(ctx, v),
        "event_types": _event_types,
        "source_ids": _source_ids,
        "description": _description,
        "headers": validation.headers,
        "enabled": lambda v: validation.boolean(v, "enabled"),
    }
    return {name: parsers[name](data[name]) for name in FIELDS if name in data}


async def create_subscription(request: Request) -> Response:
    ctx = context(request)
    data = await read_json_object(request, known=FIELDS)
    validation.required(data, "url")
    fields = parse_fields(ctx, data)
    subscription = await ctx.store.subscriptions.create(
        url=fields["url"],
        event_types=fields.get("event_types"),
        source_ids=fields.get("source_ids"),
        description=fields.get("description"),
        headers=fields.get("headers", {}),
        enabled=fields.get("enabled", True),
        now=ctx.clock(),
    )
    return JSONResponse(
        serializers.subscription_created(subscription),
        status_code=201,
        headers={"Location": f"/v1/subscriptions/{subscription.id}"},
    )


async def list_subscriptions(request: Request) -> Response:
    limit, cursor = validation.page_params(request)
    page = await context(request).store.subscriptions.page(limit=limit, cursor=cursor)
    return JSONResponse(serializers.listing(page, serializers.subscription))


async def get_subscription(request: Request) -> Response:
    ctx = context(request)
    subscription = await ctx.store.subscriptions.get(request.path_params["subscription_id"])
    return JSONResponse(serializers.subscription(subscription))


async def update_subscription(request: Request) -> Response:
    ctx = context(request)
    subscription_id = request.path_params["subscription_id"]
    data = await read_json_object(request, known=FIELDS)
    if data.get("url", "") is None:
        raise InvalidInput("url cannot be null", field="url")
    fields = parse_fields(ctx, data)
    if fields:
        subscription = await ctx.store.subscriptions.update(subscription_id, **fields)
    else:
        subscription = await ctx.store.subscriptions.get(subscription_id)
    return JSONResponse(serializers.subscription(subscription))


async def delete_subscription(request: Request) -> Response:
    await context(request).store.subscriptions.delete(request.path_params["subscription_id"])
    return Response(status_code=204)


def routes() -> list[Route]:
    return [
        resource("/v1/subscriptions", get=list_subscriptions, post=create_subscription),
        resource(
            "/v1/subscriptions/{subscription_id}",
            get=get_subscription,
            patch=update_subscription,
            delete=delete_subscription,
        ),
    ]
