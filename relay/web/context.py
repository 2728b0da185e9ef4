"""The admin context of a request (built once by the app's lifespan, on `app.state`)."""

from __future__ import annotations

from typing import cast

from starlette.requests import Request

from relay.admin.context import AdminContext


def context(request: Request) -> AdminContext:
    """The app's AdminContext (set on `app.state.context` at startup)."""
    return cast(AdminContext, request.app.state.context)
