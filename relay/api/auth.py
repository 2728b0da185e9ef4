"""Bearer-token authentication of every `/v1` route (several tokens valid at once)."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from relay.admin.auth import is_valid_token
from relay.web.problems import problem

PROTECTED_PREFIX = "/v1"


class BearerAuth:
    """ASGI middleware: 401 problem+json unless `Authorization: Bearer <token>` is valid."""

    def __init__(self, app: ASGIApp, *, tokens: Iterable[str]) -> None:
        self._app = app
        self._tokens = tuple(tokens)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        protected = path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/")
        if scope["type"] != "http" or not protected:
            await self._app(scope, receive, send)
            return
        header = Headers(scope=scope).get("authorization")
        if header is None:
            detail, challenge = "missing Authorization header", 'Bearer realm="relay"'
        else:
            scheme, _, token = header.partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                detail = "Authorization must be 'Bearer <token>'"
                challenge = 'Bearer realm="relay", error="invalid_request"'
            elif not is_valid_token(token, self._tokens):
                detail = "the token is not valid"
                challenge = 'Bearer realm="relay", error="invalid_token"'
            else:
                await self._app(scope, receive, send)
                return
        response = problem(401, detail, headers={"WWW-Authenticate": challenge})
        await response(scope, receive, send)
