"""`/v1/dead-letters`: deliveries that used up the retry schedule, and retrying one."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.admin import dead_letters
from relay.api import serializers
from relay.api.auth import requires
from relay.core.access import DELIVERIES_WRITE, EVENTS_READ
from relay.web.context import context
from relay.web.query import page_params
from relay.web.routing import resource


async def list_dead_letters(request: Request) -> Response:
    limit, cursor = page_params(request)
    page = await dead_letters.list_dead_letters(context(request), limit=limit, cursor=cursor)
    return JSONResponse(serializers.listing(page, serializers.dead_letter))


async def get_dead_letter(request: Request) -> Response:
    dead_letter_id = request.path_params["dead_letter_id"]
    dead_letter = await dead_letters.get_dead_letter(context(request), dead_letter_id)
    return JSONResponse(serializers.dead_letter(dead_letter))


async def retry_dead_letter(request: Request) -> Response:
    dead_letter_id = request.path_params["dead_letter_id"]
    dead_letter = await dead_letters.retry_dead_letter(context(request), dead_letter_id)
    return JSONResponse(serializers.dead_letter(dead_letter), status_code=202)


def routes() -> list[Route]:
    return [
        resource("/v1/dead-letters", get=requires(EVENTS_READ, list_dead_letters)),
        resource("/v1/dead-letters/{dead_letter_id}", get=requires(EVENTS_READ, get_dead_letter)),
        resource(
            "/v1/dead-letters/{dead_letter_id}/retry",
            post=requires(DELIVERIES_WRITE, retry_dead_letter),
        ),
    ]
