"""The login guard around every console page, and what a page handler is given.

A page handler receives a `Page` (request, API context, session, parsed form). The guard
sends visitors without a live session to the login page, resolves who the session acts as
(an env token: the operator; an API key: checked again on every page, so revoking it ends
the session), refuses a page whose declared scope (`scoped`, next to the route) that
principal lacks, checks Origin and the CSRF token on every POST, and turns the RelayError
tree into an HTML page (never a 500 for bad input). The context handed on carries the
principal, so a tenant key's pages hold only its tenant's rows (the customer portal).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from relay.admin.auth import end_console_session, principal_of_session
from relay.admin.context import AdminContext
from relay.console.forms import Form, read_form
from relay.console.rendering import SECURITY_HEADERS, render
from relay.console.session import CSRF_FIELD, current_session, is_same_origin, is_valid_csrf
from relay.core.errors import Conflict, InvalidInput, NotFound
from relay.core.models import ConsoleSession
from relay.web.context import context
from relay.web.problems import RequestProblem

LOGIN_PATH = "/ui/login"
STALE_FORM = (
    "This form was stale or came from another site, so nothing was changed. "
    "Reload the page and try again."
)


@dataclass(frozen=True, slots=True)
class Page:
    """One console request: its API context, the logged-in session and the posted form."""

    request: Request
    ctx: AdminContext
    session: ConsoleSession
    form: Form

    def render(self, name: str, status: int = 200, **values: Any) -> Response:
        values = {"principal": self.ctx.principal, **values}
        return render(
            self.request, name, values, session=self.session, now=self.ctx.clock(), status=status
        )

    def error(self, status: int, message: str) -> Response:
        return self.render("error.html", status=status, status_code=status, message=message)


PageHandler = Callable[[Page], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]
SCOPE_KEY = "relay.console_scope"
ANYONE = "*"  # a page every logged-in principal may use (logging out)


def scoped(scope: str, endpoint: Endpoint) -> Endpoint:
    """`endpoint` (a `page`), allowed only to principals holding `scope` (any principal for
    ANYONE). A page declared without it is for the operator alone."""

    async def guarded(request: Request) -> Response:
        request.scope[SCOPE_KEY] = scope
        return await endpoint(request)

    guarded.__name__ = endpoint.__name__
    guarded.__doc__ = endpoint.__doc__
    return guarded


def list_context(current: Page) -> AdminContext:
    """The context a list page reads with: the operator may narrow it to one tenant with
    `?tenant=` (the tenant filter); a tenant key is narrowed to its own already."""
    wanted = current.request.query_params.get("tenant", "")
    principal = current.ctx.principal
    if not wanted or not principal.is_operator or len(wanted) > 100:
        return current.ctx
    return current.ctx.acting_as(replace(principal, tenant_id=wanted))


def redirect(path: str, **query: str | int) -> Response:
    """303 See Other to a console path (after a POST, or to log in)."""
    if query:
        path += "?" + "&".join(
            f"{key}={quote(str(value), safe='')}" for key, value in query.items()
        )
    return RedirectResponse(path, status_code=303, headers=SECURITY_HEADERS)


def page(handler: PageHandler) -> Endpoint:
    """An endpoint that runs `handler` for a logged-in session (see the module docstring)."""

    async def endpoint(request: Request) -> Response:
        ctx = context(request)
        session = await current_session(request, ctx)
        principal = None if session is None else await principal_of_session(ctx, session)
        if session is not None and principal is None:  # its key was revoked or expired
            await end_console_session(ctx, session.id)
            session = None
        if session is None or principal is None:
            if request.method == "GET":
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return redirect(LOGIN_PATH, next=target)
            return redirect(LOGIN_PATH)
        ctx = ctx.acting_as(principal)
        required = request.scope.get(SCOPE_KEY)
        allowed = principal.is_operator if required is None else principal.has_scope(required)
        if not (allowed or required == ANYONE):
            return Page(request, ctx, session, Form()).error(403, "This key may not use this page.")
        form = Form()
        if request.method == "POST":
            try:
                form = await read_form(request)
            except RequestProblem as exc:
                return Page(request, ctx, session, form).error(exc.status, exc.detail)
            if not is_same_origin(request) or not is_valid_csrf(form.get(CSRF_FIELD), session):
                return Page(request, ctx, session, Form()).error(403, STALE_FORM)
        current = Page(request, ctx, session, form)
        try:
            return await handler(current)
        except NotFound as exc:
            return current.error(404, str(exc))
        except Conflict as exc:
            return current.error(409, str(exc))
        except InvalidInput as exc:
            return current.error(422, exc.detail)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


def field_errors(exc: InvalidInput) -> Mapping[str, str]:
    """{form field: message} for one validation error (`headers.X-Y` belongs to `headers`)."""
    field = (exc.field or "form").split(".", 1)[0]
    return {field: exc.detail}
