"""Authentication and authorization of every `/v1` route, in one place.

`BearerAuth` (ASGI middleware) resolves `Authorization: Bearer <env token | rk_ key>` into a
Principal once per request and leaves it in `scope["state"]["principal"]`; it answers 401
for a missing or wrong credential and 429 once a client address has failed
RELAY_AUTH_FAILURES_PER_MINUTE times in the current minute (checked before the credential,
so a blocked address cannot keep guessing; other addresses are not affected).

`requires(scope, handler)` is how each route declares the scope it needs, next to the route
(`resource("/v1/sources", get=requires(SOURCES_READ, list_sources))`); without it the
handler answers 403 `insufficient-scope`. Tenant limits are not checked here: the principal
travels in the admin context and the stores filter by its tenant.
"""

from __future__ import annotations

from typing import Any, cast

from redis.exceptions import RedisError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from relay.admin.auth import authenticate, note_failed_authentication
from relay.admin.context import AdminContext
from relay.core.access import Principal
from relay.web.auth_limits import request_address, too_many_failures
from relay.web.problems import problem
from relay.web.routing import Handler

PROTECTED_PREFIX = "/v1"


class BearerAuth:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        protected = path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/")
        if scope["type"] != "http" or not protected:
            await self._app(scope, receive, send)
            return
        try:
            principal = await self._authenticate(scope)
        except RedisError:  # outside the app's exception handlers: answer as they would
            response = problem(
                503, "Redis is unavailable; try again shortly", headers={"Retry-After": "5"}
            )
            await response(scope, receive, send)
            return
        if isinstance(principal, Response):
            await principal(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self._app(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> Principal | Response:
        """The principal, or the 401/429 answer."""
        ctx = cast(AdminContext, scope["app"].state.context)
        address = request_address(scope, ctx)
        refusal = await too_many_failures(ctx, address)
        if refusal is not None:
            return refusal
        header = Headers(scope=scope).get("authorization")
        if header is None:
            detail, challenge = "missing Authorization header", 'Bearer realm="relay"'
        else:
            scheme, _, token = header.partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                detail = "Authorization must be 'Bearer <token>'"
                challenge = 'Bearer realm="relay", error="invalid_request"'
            elif (principal := await authenticate(ctx, token)) is None:
                await note_failed_authentication(ctx, address)
                detail = "the token is not valid"
                challenge = 'Bearer realm="relay", error="invalid_token"'
            else:
                return principal
        return problem(401, detail, headers={"WWW-Authenticate": challenge})


def principal_of(request: Request) -> Principal | None:
    """The principal BearerAuth resolved for this request (None outside /v1)."""
    state = cast("dict[str, Any]", request.scope.get("state", {}))
    return cast("Principal | None", state.get("principal"))


def requires(scope: str, handler: Handler) -> Handler:
    """`handler`, answering 403 `insufficient-scope` unless the principal holds `scope`."""

    async def guarded(request: Request) -> Response:
        principal = principal_of(request)
        if principal is None or not principal.has_scope(scope):
            return problem(
                403,
                f"this credential lacks the {scope} scope",
                slug="insufficient-scope",
                extra={"required_scope": scope},
            )
        return await handler(request)

    guarded.__name__ = handler.__name__
    guarded.__doc__ = handler.__doc__
    setattr(guarded, "required_scope", scope)  # noqa: B010  (read by tests and docs)
    return guarded
