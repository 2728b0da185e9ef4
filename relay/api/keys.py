"""`/v1/keys`: scoped API keys (operator only: `keys:write`), and `/v1/audit-log`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.admin import audit, keys
from relay.api import serializers
from relay.api.auth import requires
from relay.core.access import KEYS_WRITE
from relay.web.bodies import read_json_object
from relay.web.context import context
from relay.web.query import list_params
from relay.web.routing import resource

_NO_STORE = {"Cache-Control": "no-store"}


async def create_key(request: Request) -> Response:
    data = await read_json_object(request, known=keys.FIELDS)
    created = await keys.create_key(context(request), data)
    return JSONResponse(
        {**serializers.api_key(created.key), "key": created.secret},
        status_code=201,
        headers={"Location": f"/v1/keys/{created.key.id}", **_NO_STORE},
    )


async def list_keys(request: Request) -> Response:
    limit, cursor = list_params(request)
    page = await keys.list_keys(context(request), limit=limit, cursor=cursor)
    return JSONResponse(serializers.listing(page, serializers.api_key))


async def get_key(request: Request) -> Response:
    key = await keys.get_key(context(request), request.path_params["key_id"])
    return JSONResponse(serializers.api_key(key))


async def revoke_key(request: Request) -> Response:
    await keys.revoke_key(context(request), request.path_params["key_id"])
    return Response(status_code=204)


async def list_audit_log(request: Request) -> Response:
    limit, cursor = list_params(request)
    page = await audit.list_audit(context(request), limit=limit, cursor=cursor)
    return JSONResponse(serializers.listing(page, serializers.audit_entry))


def routes() -> list[Route]:
    return [
        resource(
            "/v1/keys", get=requires(KEYS_WRITE, list_keys), post=requires(KEYS_WRITE, create_key)
        ),
        resource(
            "/v1/keys/{key_id}",
            get=requires(KEYS_WRITE, get_key),
            delete=requires(KEYS_WRITE, revoke_key),
        ),
        resource("/v1/audit-log", get=requires(KEYS_WRITE, list_audit_log)),
    ]
