"""Console sessions: the cookie, the Origin check, and the per-session CSRF token.

The cookie holds only a random session id (HttpOnly, SameSite=Strict, Secure, path /ui);
Redis maps it to the fact of login (relay.store.console_sessions). `Secure` is always set:
browsers treat http://localhost and http://127.0.0.1 as secure contexts and keep such
cookies there, and any other address should be served through HTTPS anyway (the login page
says so when it is not).
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from relay.admin.auth import console_session
from relay.admin.context import AdminContext
from relay.core.models import ConsoleSession

COOKIE_NAME = "relay_console"
COOKIE_PATH = "/ui"
CSRF_FIELD = "csrf"


async def current_session(request: Request, ctx: AdminContext) -> ConsoleSession | None:
    """The session the request's cookie names, if it is still live."""
    return await console_session(ctx, request.cookies.get(COOKIE_NAME, ""))


def set_cookie(response: Response, session: ConsoleSession) -> None:
    response.set_cookie(
        COOKIE_NAME,
        session.id,
        path=COOKIE_PATH,
        secure=True,
        httponly=True,
        samesite="strict",
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(
        COOKIE_NAME, path=COOKIE_PATH, secure=True, httponly=True, samesite="strict"
    )


def is_same_origin(request: Request) -> bool:
    """False when the request names an Origin other than the host it was sent to (a
    cross-site form post); True when it names none (older browsers, scripts)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "").lower()
    parts = urlsplit(origin)
    return bool(host) and parts.scheme in ("http", "https") and parts.netloc.lower() == host


def is_valid_csrf(presented: str, session: ConsoleSession) -> bool:
    """Whether a form's CSRF field is this session's token (constant-time compare)."""
    return hmac.compare_digest(presented.encode(), session.csrf_token.encode())


def is_cookie_safe_origin(request: Request) -> bool:
    """Whether browsers keep the Secure cookie here: HTTPS, or plain HTTP on loopback."""
    if request.url.scheme == "https":
        return True
    host = (request.url.hostname or "").strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
