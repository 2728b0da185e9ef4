"""`/v1/sources`: the MC5 accounts relay polls. The password is write-only."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.admin import sources
from relay.api import serializers
from relay.api.auth import requires
from relay.core.access import SOURCES_READ, SOURCES_WRITE
from relay.web.bodies import read_json_object
from relay.web.context import context
from relay.web.query import list_params
from relay.web.routing import resource


async def create_source(request: Request) -> Response:
    data = await read_json_object(request, known=sources.CREATE_FIELDS)
    source = await sources.add_source(context(request), data)
    return JSONResponse(
        serializers.source(source),
        status_code=201,
        headers={"Location": f"/v1/sources/{source.id}"},
    )


async def list_sources(request: Request) -> Response:
    limit, cursor = list_params(request)
    page = await sources.list_sources(context(request), limit=limit, cursor=cursor)
    return JSONResponse(serializers.listing(page, serializers.source))


async def get_source(request: Request) -> Response:
    source = await sources.get_source(context(request), request.path_params["source_id"])
    return JSONResponse(serializers.source(source))


async def update_source(request: Request) -> Response:
    data = await read_json_object(request, known=sources.UPDATE_FIELDS)
    source = await sources.change_source(context(request), request.path_params["source_id"], data)
    return JSONResponse(serializers.source(source))


async def delete_source(request: Request) -> Response:
    await sources.delete_source(context(request), request.path_params["source_id"])
    return Response(status_code=204)


def routes() -> list[Route]:
    return [
        resource(
            "/v1/sources",
            get=requires(SOURCES_READ, list_sources),
            post=requires(SOURCES_WRITE, create_source),
        ),
        resource(
            "/v1/sources/{source_id}",
            get=requires(SOURCES_READ, get_source),
            patch=requires(SOURCES_WRITE, update_source),
            delete=requires(SOURCES_WRITE, delete_source),
        ),
    ]
