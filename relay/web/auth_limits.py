"""Failed-authentication limits shared by the API and the console login: the client address
a failure counts against, and the 429 answer once an address used up its minute."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Scope

from relay.admin.auth import blocked_for_s
from relay.admin.client_address import client_address
from relay.admin.context import AdminContext
from relay.web.problems import problem


def request_address(scope: Scope, ctx: AdminContext) -> str:
    """The client address a failed login is counted against."""
    client = scope.get("client")
    headers = Headers(scope=scope)
    return client_address(
        client[0] if client else None,
        headers.get("x-forwarded-for"),
        trusted_proxies=ctx.settings.trusted_proxies,
    )


async def too_many_failures(ctx: AdminContext, address: str) -> Response | None:
    """A 429 problem when `address` used up its failed attempts this minute, else None."""
    wait_s = await blocked_for_s(ctx, address)
    if wait_s is None:
        return None
    return problem(
        429,
        f"too many failed authentications from this address; retry in {wait_s} s",
        slug="too-many-failed-authentications",
        headers={"Retry-After": str(wait_s)},
    )
