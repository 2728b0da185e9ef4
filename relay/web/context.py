"""The admin context of a request (built once by the app's lifespan, on `app.state`)."""

from __future__ import annotations

from typing import Any, cast

from starlette.requests import Request

from relay.admin.context import AdminContext
from relay.core.access import Principal


def context(request: Request) -> AdminContext:
    """The app's AdminContext (set on `app.state.context` at startup), acting as the
    principal the API's auth middleware resolved for this request, if any."""
    ctx = cast(AdminContext, request.app.state.context)
    principal = cast("dict[str, Any]", request.scope.get("state", {})).get("principal")
    return ctx if principal is None else ctx.acting_as(cast(Principal, principal))
