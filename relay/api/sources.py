"""`/v1/sources`: the MC5 accounts relay polls. The password is write-only."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.api import serializers, validation
from relay.api.bodies import read_json_object
from relay.api.context import ApiContext, context
from relay.api.routing import resource
from relay.core.errors import Conflict, InvalidInput
from relay.core.models import Source, SourceStatus

MIN_POLL_INTERVAL_S = 0.05
MAX_POLL_INTERVAL_S = 3600.0
CREATE_FIELDS = ("username", "password", "base_url", "poll_interval", "start_from")
UPDATE_FIELDS = ("username", "password", "base_url", "poll_interval", "cursor", "status")
_STATUSES: dict[str, SourceStatus] = {"ok": "ok", "paused": "paused"}


def _username(value: Any) -> str:
    return validation.no_whitespace(value, "username", max_length=200)


def _password(value: Any) -> str:
    return validation.text(value, "password", max_length=200)


def _base_url(value: Any) -> str:
    checked = validation.text(
        value,
        "base_url",
        max_length=2048,
        pattern=validation.BASE_URL,
        hint="must be an http:// or https:// URL without credentials",
    )
    if validation.NOT_VISIBLE_ASCII.search(checked):
        raise InvalidInput("base_url must be printable ASCII without spaces", field="base_url")
    return checked.rstrip("/")


def _poll_interval(value: Any) -> float:
    return validation.number(
        value, "poll_interval", low=MIN_POLL_INTERVAL_S, high=MAX_POLL_INTERVAL_S
    )


def _start_from(value: Any) -> int | None:
    if value == "now":
        return None
    if isinstance(value, str):
        raise InvalidInput('start_from must be an epoch second or "now"', field="start_from")
    return validation.integer(value, "start_from", low=0, high=validation.MAX_EPOCH_S)


async def _ensure_unique(
    ctx: ApiContext, *, username: str, base_url: str, except_id: str | None = None
) -> None:
    """Conflict when another source polls the same account."""
    for source_id in await ctx.store.sources.ids():
        if source_id == except_id:
            continue
        other = await ctx.store.sources.get(source_id)
        if other.username == username and other.base_url == base_url:
            raise Conflict(f"source {other.id} already polls {username} at {base_url}")


async def add_source(ctx: ApiContext, data: dict[str, Any]) -> Source:
    """Validate the fields of a new source (API names) and create it; raises InvalidInput,
    Conflict. The web console calls this too, so both apply the same rules."""
    username = _username(validation.required(data, "username"))
    password = _password(validation.required(data, "password"))
    base_url = _base_url(data.get("base_url", ctx.settings.mc5_base_url))
    poll_interval_s = (
        _poll_interval(data["poll_interval"])
        if "poll_interval" in data
        else ctx.settings.poll_interval_s
    )
    start_from = _start_from(data["start_from"]) if "start_from" in data else None
    if "start_from" not in data:
        start_from = ctx.settings.start_from
    await _ensure_unique(ctx, username=username, base_url=base_url)
    return await ctx.store.sources.create(
        username=username,
        password=password,
        base_url=base_url,
        poll_interval_s=poll_interval_s,
        start_from=start_from,
        now=ctx.clock(),
    )


async def create_source(request: Request) -> Response:
    data = await read_json_object(request, known=CREATE_FIELDS)
    source = await add_source(context(request), data)
    return JSONResponse(
        serializers.source(source),
        status_code=201,
        headers={"Location": f"/v1/sources/{source.id}"},
    )


async def list_sources(request: Request) -> Response:
    ctx = context(request)
    limit, cursor = validation.page_params(request)
    page = await ctx.store.sources.page(limit=limit, cursor=cursor)
    return JSONResponse(serializers.listing(page, serializers.source))


async def get_source(request: Request) -> Response:
    source = await context(request).store.sources.get(request.path_params["source_id"])
    return JSONResponse(serializers.source(source))


async def change_source(ctx: ApiContext, source_id: str, data: dict[str, Any]) -> Source:
    """Validate the given fields (API names) and apply them; raises InvalidInput, Conflict,
    NotFound. Shared with the web console."""
    changes: dict[str, Any] = {}
    if "username" in data:
        changes["username"] = _username(data["username"])
    if "password" in data:
        changes["password"] = _password(data["password"])
    if "base_url" in data:
        changes["base_url"] = _base_url(data["base_url"])
    if "poll_interval" in data:
        changes["poll_interval_s"] = _poll_interval(data["poll_interval"])
    if "cursor" in data:
        changes["cursor"] = validation.integer(
            data["cursor"], "cursor", low=0, high=validation.MAX_EPOCH_S
        )
    if "status" in data:
        status = data["status"]
        if not isinstance(status, str) or status not in _STATUSES:
            raise InvalidInput('status must be "ok" (resume) or "paused"', field="status")
        changes["status"] = _STATUSES[status]
    current = await ctx.store.sources.get(source_id)
    if "username" in changes or "base_url" in changes:
        await _ensure_unique(
            ctx,
            username=changes.get("username", current.username),
            base_url=changes.get("base_url", current.base_url),
            except_id=source_id,
        )
    return await ctx.store.sources.update(source_id, **changes) if changes else current


async def update_source(request: Request) -> Response:
    data = await read_json_object(request, known=UPDATE_FIELDS)
    source = await change_source(context(request), request.path_params["source_id"], data)
    return JSONResponse(serializers.source(source))


async def delete_source(request: Request) -> Response:
    await context(request).store.sources.delete(request.path_params["source_id"])
    return Response(status_code=204)


def routes() -> list[Route]:
    return [
        resource("/v1/sources", get=list_sources, post=create_source),
        resource(
            "/v1/sources/{source_id}", get=get_source, patch=update_source, delete=delete_source
        ),
    ]
