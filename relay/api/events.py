"""`/v1/events`: the feed of recent events, newest first (Zapier-style polling, sample data)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.admin import events
from relay.api import serializers
from relay.api.auth import requires
from relay.core.access import EVENTS_READ
from relay.core.models import EVENT_TYPES
from relay.web.context import context
from relay.web.query import page_params, query_choice, query_text
from relay.web.routing import resource


async def list_events(request: Request) -> Response:
    limit, cursor = page_params(request)
    page = await events.list_events(
        context(request),
        limit=limit,
        cursor=cursor,
        type=query_choice(request, "type", EVENT_TYPES),
        source_id=query_text(request, "source_id", max_length=100),
    )
    return JSONResponse(serializers.listing(page, serializers.event))


async def get_event(request: Request) -> Response:
    event = await events.get_event(context(request), request.path_params["event_id"])
    return JSONResponse(serializers.event(event))


def routes() -> list[Route]:
    return [
        resource("/v1/events", get=requires(EVENTS_READ, list_events)),
        resource("/v1/events/{event_id}", get=requires(EVENTS_READ, get_event)),
    ]
