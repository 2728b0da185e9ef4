"""Logging in with an admin token (one of RELAY_ADMIN_TOKEN) or an API key, and logging out.

A tenant key's session is that tenant's portal. Failed logins count against the client
address exactly as failed API calls do (one limit for both)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from relay.admin.auth import (
    authenticate,
    end_console_session,
    note_failed_authentication,
    start_console_session,
)
from relay.console.forms import read_form
from relay.console.pages import LOGIN_PATH, Page, page, redirect
from relay.console.rendering import render
from relay.console.session import (
    clear_cookie,
    current_session,
    is_cookie_safe_origin,
    is_same_origin,
    set_cookie,
)
from relay.core.access import ENV_ACTOR
from relay.web.auth_limits import request_address, too_many_failures
from relay.web.context import context
from relay.web.problems import RequestProblem

HOME = "/ui/"


def _safe_next(target: str) -> str:
    """Where to go after login: a console path only (never another site)."""
    if target.startswith("/ui/") and not target.startswith("/ui//") and "\\" not in target:
        return target
    return HOME


async def login_form(request: Request) -> Response:
    ctx = context(request)
    if await current_session(request, ctx) is not None:
        return redirect(HOME)
    return _login_page(request, now=ctx.clock(), target=request.query_params.get("next", HOME))


def _login_page(
    request: Request, *, now: float, target: str, error: str = "", status: int = 200
) -> Response:
    return render(
        request,
        "login.html",
        {
            "error": error,
            "next": _safe_next(target),
            "is_cookie_safe": is_cookie_safe_origin(request),
        },
        session=None,
        now=now,
        status=status,
    )


async def login(request: Request) -> Response:
    """Check the token in constant time; on success start a new session (a fresh id, so a
    session id planted before login is useless) and go where the visitor was headed."""
    ctx = context(request)
    now = ctx.clock()
    if not is_same_origin(request):
        error = "Log in from this console's own login page."
        return _login_page(request, now=now, target=HOME, error=error, status=403)
    try:
        form = await read_form(request)
    except RequestProblem as exc:
        return _login_page(request, now=now, target=HOME, error=exc.detail, status=exc.status)
    address = request_address(request.scope, ctx)
    if (refusal := await too_many_failures(ctx, address)) is not None:
        error = "Too many failed logins from this address; try again in a minute."
        response = _login_page(request, now=now, target=HOME, error=error, status=429)
        response.headers["Retry-After"] = refusal.headers["Retry-After"]
        return response
    token = form.get("token").strip()
    principal = await authenticate(ctx, token) if token else None
    if principal is None:
        await note_failed_authentication(ctx, address)
        error = "That token is not valid."
        return _login_page(request, now=now, target=form.get("next"), error=error, status=401)
    key_id = None if principal.actor == ENV_ACTOR else principal.actor
    session = await start_console_session(ctx, key_id=key_id)
    response = redirect(_safe_next(form.get("next", HOME)))
    set_cookie(response, session)
    return response


@page
async def logout(current: Page) -> Response:
    await end_console_session(current.ctx, current.session.id)
    response = redirect(LOGIN_PATH, done="logged-out")
    clear_cookie(response)
    return response
