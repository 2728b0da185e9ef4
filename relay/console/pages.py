"""The login guard around every console page, and what a page handler is given.

A page handler receives a `Page` (request, API context, session, parsed form). The guard
sends visitors without a live session to the login page, checks Origin and the CSRF token
on every POST, and turns the RelayError tree into an HTML page (never a 500 for bad input).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

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
        return render(
            self.request, name, values, session=self.session, now=self.ctx.clock(), status=status
        )

    def error(self, status: int, message: str) -> Response:
        return self.render("error.html", status=status, status_code=status, message=message)


PageHandler = Callable[[Page], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


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
        if session is None:
            if request.method == "GET":
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return redirect(LOGIN_PATH, next=target)
            return redirect(LOGIN_PATH)
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
