"""`/v1/tenants`: the operator's customers (operator only: `tenants:write`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.admin import tenants
from relay.api import serializers
from relay.api.auth import requires
from relay.core.access import TENANTS_WRITE
from relay.web.bodies import read_json_object
from relay.web.context import context
from relay.web.query import list_params
from relay.web.routing import resource


async def create_tenant(request: Request) -> Response:
    data = await read_json_object(request, known=tenants.FIELDS)
    tenant = await tenants.add_tenant(context(request), data)
    return JSONResponse(
        serializers.tenant(tenant),
        status_code=201,
        headers={"Location": f"/v1/tenants/{tenant.id}"},
    )


async def list_tenants(request: Request) -> Response:
    limit, cursor = list_params(request)
    page = await tenants.list_tenants(context(request), limit=limit, cursor=cursor)
    return JSONResponse(serializers.listing(page, serializers.tenant))


async def get_tenant(request: Request) -> Response:
    tenant = await tenants.get_tenant(context(request), request.path_params["tenant_id"])
    return JSONResponse(serializers.tenant(tenant))


async def update_tenant(request: Request) -> Response:
    data = await read_json_object(request, known=tenants.FIELDS)
    tenant = await tenants.change_tenant(context(request), request.path_params["tenant_id"], data)
    return JSONResponse(serializers.tenant(tenant))


async def delete_tenant(request: Request) -> Response:
    await tenants.delete_tenant(context(request), request.path_params["tenant_id"])
    return Response(status_code=204)


def routes() -> list[Route]:
    return [
        resource(
            "/v1/tenants",
            get=requires(TENANTS_WRITE, list_tenants),
            post=requires(TENANTS_WRITE, create_tenant),
        ),
        resource(
            "/v1/tenants/{tenant_id}",
            get=requires(TENANTS_WRITE, get_tenant),
            patch=requires(TENANTS_WRITE, update_tenant),
            delete=requires(TENANTS_WRITE, delete_tenant),
        ),
    ]
