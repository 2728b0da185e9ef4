"""Templates (Jinja2, autoescaped, from the package) and the headers every console page gets.

Pages are never cached (they show live state, and some show a secret once), may not be
framed, and may load scripts and styles only from the console itself (no inline script).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from relay import __version__
from relay.core.events import rfc3339
from relay.core.models import ConsoleSession
from relay.core.redaction import display_url

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Not "no-referrer": with it, browsers send `Origin: null` on form posts.
    "Referrer-Policy": "same-origin",
}
# Fixed texts for `?done=` after a redirect, so a link cannot put words on the page.
NOTICES = {
    "logged-out": "You are logged out.",
    "source-added": "Source added.",
    "source-saved": "Source saved.",
    "source-paused": "Source paused.",
    "source-resumed": "Source resumed; the poller picks it up at once.",
    "source-deleted": "Source deleted.",
    "subscription-saved": "Subscription saved.",
    "subscription-enabled": "Subscription enabled.",
    "subscription-disabled": "Subscription disabled.",
    "subscription-deleted": "Subscription deleted.",
    "pinged": "Test ping sent; its attempt is at the top of the log.",
    "redelivered": "Queued {n} delivery(ies).",
    "retried": "Dead letter queued for delivery again.",
    "retried-all": "Queued {n} dead letter(s) for delivery again.",
    "key-revoked": "Key revoked; requests with it fail from now on.",
    "tenant-added": "Tenant added.",
}


def when(epoch_s: float | None) -> str:
    """An epoch second as `2026-11-26 10:00:00 UTC` ("never" for None)."""
    if epoch_s is None:
        return "never"
    return rfc3339(epoch_s).replace("T", " ").replace("Z", " UTC")


def duration(seconds: float) -> str:
    """A short human duration: 45 s, 12 min, 3 h, 2 d."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def pretty_json(body: bytes | str) -> str:
    """Indented JSON (the raw text when it is not JSON)."""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body.decode("utf-8", "replace") if isinstance(body, bytes) else body


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("relay.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # display_url: the same masking as `relay status` (no password, no query values).
    env.filters.update(
        when=when, duration=duration, pretty_json=pretty_json, display_url=display_url
    )
    env.globals.update(version=__version__, inf=math.inf)
    return env


TEMPLATES = Jinja2Templates(env=_environment())


def notice_for(request: Request) -> str | None:
    """The fixed notice a redirect asked for with `?done=` (and a count `n`)."""
    text = NOTICES.get(request.query_params.get("done", ""))
    if text is None:
        return None
    count = request.query_params.get("n", "")
    return text.format(n=int(count) if count.isdigit() and len(count) < 9 else "some")


def render(
    request: Request,
    name: str,
    values: Mapping[str, Any],
    *,
    session: ConsoleSession | None,
    now: float,
    status: int = 200,
) -> Response:
    """The template as an HTML response with the console's security headers."""
    context = {
        "csrf_token": session.csrf_token if session else "",
        "is_logged_in": session is not None,
        "notice": notice_for(request),
        "errors": {},
        "now": now,
        **values,
    }
    return TEMPLATES.TemplateResponse(
        request, name, context, status_code=status, headers=SECURITY_HEADERS
    )
