"""The web console at /ui: server-rendered pages over the same stores and validation as the
REST API, behind a login with an admin token (session cookie, CSRF token on every form).

Modules: `session` (cookie, Origin, CSRF), `pages` (the login guard), `login`, one module
per area (`overview`, `sources`, `subscriptions`, `secret_pages`, `messages` (events, with
`message_view`), `feeds` (dead letters)), `forms`, `rendering` and
`chart`. Templates and static files ship inside this package.
"""

from __future__ import annotations

from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Match, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from relay.console import (
    feeds,
    keys,
    login,
    messages,
    overview,
    secret_pages,
    sources,
    subscriptions,
)
from relay.console.pages import ANYONE, scoped
from relay.core.access import (
    DELIVERIES_WRITE,
    EVENTS_READ,
    KEYS_WRITE,
    SOURCES_READ,
    SOURCES_WRITE,
    SUBSCRIPTIONS_READ,
    SUBSCRIPTIONS_WRITE,
    TENANTS_WRITE,
)
from relay.web.routing import resource

PREFIX = "/ui"


class _ExactRedirect(BaseRoute):
    """`/ui` -> `/ui/` (the API router does not redirect slashes, and a Route here would
    count as a JSON API route)."""

    def __init__(self, path: str, target: str) -> None:
        self.path = path
        self.target = target

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        is_match = scope["type"] == "http" and scope["path"] == self.path
        return (Match.FULL if is_match else Match.NONE), {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await RedirectResponse(self.target, status_code=308)(scope, receive, send)


def console_routes() -> list[BaseRoute]:
    """The console's routes, relative to /ui, each page with the scope it needs (as the
    API's; undeclared pages, like the overview and keys, are the operator's alone)."""
    sub = "/subscriptions/{subscription_id}"
    return [
        resource("/", get=scoped(ANYONE, overview.overview)),
        resource("/login", get=login.login_form, post=login.login),
        resource("/logout", post=scoped(ANYONE, login.logout)),
        resource(
            "/sources",
            get=scoped(SOURCES_READ, sources.list_sources),
            post=scoped(SOURCES_WRITE, sources.create_source),
        ),
        resource(
            "/sources/{source_id}",
            get=scoped(SOURCES_READ, sources.edit_source),
            post=scoped(SOURCES_WRITE, sources.update_source),
        ),
        resource(
            "/sources/{source_id}/status", post=scoped(SOURCES_WRITE, sources.set_source_status)
        ),
        resource("/sources/{source_id}/delete", post=scoped(SOURCES_WRITE, sources.delete_source)),
        resource(
            "/subscriptions",
            get=scoped(SUBSCRIPTIONS_READ, subscriptions.list_subscriptions),
            post=scoped(SUBSCRIPTIONS_WRITE, subscriptions.create_subscription),
        ),
        resource(
            sub,
            get=scoped(SUBSCRIPTIONS_READ, subscriptions.show_subscription),
            post=scoped(SUBSCRIPTIONS_WRITE, subscriptions.update_subscription),
        ),
        resource(
            f"{sub}/enabled",
            post=scoped(SUBSCRIPTIONS_WRITE, subscriptions.set_subscription_enabled),
        ),
        resource(
            f"{sub}/delete", post=scoped(SUBSCRIPTIONS_WRITE, subscriptions.delete_subscription)
        ),
        resource(f"{sub}/attempts", get=scoped(SUBSCRIPTIONS_READ, subscriptions.list_attempts)),
        resource(f"{sub}/secret", post=scoped(SUBSCRIPTIONS_WRITE, secret_pages.reveal_secret)),
        resource(
            f"{sub}/secret/rotate", post=scoped(SUBSCRIPTIONS_WRITE, secret_pages.rotate_secret)
        ),
        resource(f"{sub}/test", post=scoped(DELIVERIES_WRITE, secret_pages.send_test_ping)),
        resource("/events", get=scoped(EVENTS_READ, messages.list_events)),
        resource("/events/{event_id}", get=scoped(EVENTS_READ, messages.show_event)),
        resource("/events/{event_id}/redeliver", post=scoped(DELIVERIES_WRITE, messages.redeliver)),
        resource("/dead-letters", get=scoped(EVENTS_READ, feeds.list_dead_letters)),
        resource(
            "/dead-letters/retry-all", post=scoped(DELIVERIES_WRITE, feeds.retry_all_dead_letters)
        ),
        resource(
            "/dead-letters/{dead_letter_id}/retry",
            post=scoped(DELIVERIES_WRITE, feeds.retry_dead_letter),
        ),
        resource(
            "/keys",
            get=scoped(KEYS_WRITE, keys.list_keys),
            post=scoped(KEYS_WRITE, keys.create_key),
        ),
        resource("/keys/{key_id}/revoke", post=scoped(KEYS_WRITE, keys.revoke_key)),
        resource("/tenants", post=scoped(TENANTS_WRITE, keys.create_tenant)),
        Mount("/static", app=StaticFiles(packages=[("relay.console", "static")])),
        resource("/{path:path}", get=overview.not_found),
    ]


def console() -> list[BaseRoute]:
    """What create_app mounts: the console under /ui, and /ui itself redirecting there."""
    return [_ExactRedirect(PREFIX, PREFIX + "/"), Mount(PREFIX, routes=console_routes())]
