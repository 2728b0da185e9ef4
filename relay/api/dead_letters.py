"""`/v1/dead-letters`: deliveries that used up the retry schedule, and retrying them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.admin import dead_letters, validation
from relay.api import serializers
from relay.api.auth import requires
from relay.core.access import DELIVERIES_WRITE, EVENTS_READ
from relay.web.bodies import read_json_object
from relay.web.context import context
from relay.web.query import list_params
from relay.web.routing import resource


async def list_dead_letters(request: Request) -> Response:
    limit, cursor = list_params(request)
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


async def retry_dead_letters(request: Request) -> Response:
    data = await read_json_object(request, known=("subscription_id", "since"), required=False)
    subscription_id = data.get("subscription_id")
    if subscription_id is not None:
        subscription_id = validation.text(subscription_id, "subscription_id", max_length=100)
    since = data.get("since")
    if since is not None:
        since = validation.integer(since, "since", low=0, high=validation.MAX_EPOCH_S)
    queued = await dead_letters.retry_dead_letters(
        context(request), subscription_id=subscription_id, since=since
    )
    return JSONResponse({"queued": queued}, status_code=202)


def routes() -> list[Route]:
    return [
        resource("/v1/dead-letters", get=requires(EVENTS_READ, list_dead_letters)),
        # Before `/{dead_letter_id}`, which would take "retry" for an id.
        resource("/v1/dead-letters/retry", post=requires(DELIVERIES_WRITE, retry_dead_letters)),
        resource("/v1/dead-letters/{dead_letter_id}", get=requires(EVENTS_READ, get_dead_letter)),
        resource(
            "/v1/dead-letters/{dead_letter_id}/retry",
            post=requires(DELIVERIES_WRITE, retry_dead_letter),
        ),
    ]
