"""`/v1/events`: the feed of recent events, newest first (Zapier-style polling, sample data)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.api import serializers, validation
from relay.api.context import context
from relay.api.routing import resource
from relay.core.models import EVENT_TYPES


async def list_events(request: Request) -> Response:
    limit, cursor = validation.page_params(request)
    event_type = validation.query_choice(request, "type", EVENT_TYPES)
    source_id = validation.query_text(request, "source_id", max_length=100)
    page = await context(request).store.events.page(
        limit=limit, cursor=cursor, type=event_type, source_id=source_id
    )
    return JSONResponse(serializers.listing(page, serializers.event))


async def get_event(request: Request) -> Response:
    event = await context(request).store.events.get(request.path_params["event_id"])
    return JSONResponse(serializers.event(event))


def routes() -> list[Route]:
    return [
        resource("/v1/events", get=list_events),
        resource("/v1/events/{event_id}", get=get_event),
    ]
