"""Console actions that show a subscription's secret: reveal, rotate; and the test ping.

Each is an explicit POST (with the CSRF token); a secret appears only on the page that
answers it, which is never cached.
"""

from __future__ import annotations

from starlette.responses import Response

from relay.api import validation
from relay.api.subscription_secrets import DEFAULT_OVERLAP_S, MAX_OVERLAP_S
from relay.api.ui.pages import Page, page, redirect


@page
async def reveal_secret(current: Page) -> Response:
    store = current.ctx.store
    subscription = await store.subscriptions.get(current.request.path_params["subscription_id"])
    return current.render(
        "secret.html", subscription=subscription, secret=subscription.secrets[0].value, reason=""
    )


@page
async def rotate_secret(current: Page) -> Response:
    """A new secret; the old one keeps signing for the chosen overlap (as the API does)."""
    ctx = current.ctx
    raw = current.form.get("overlap_seconds", str(DEFAULT_OVERLAP_S)).strip()
    overlap_s = validation.integer(
        int(raw) if raw.isdigit() and len(raw) < 10 else raw,
        "overlap_seconds",
        low=0,
        high=MAX_OVERLAP_S,
    )
    subscription = await ctx.store.subscriptions.rotate_secret(
        current.request.path_params["subscription_id"], overlap_s=overlap_s, now=ctx.clock()
    )
    return current.render(
        "secret.html",
        subscription=subscription,
        secret=subscription.secrets[0].value,
        reason="rotated",
        overlap_s=overlap_s,
    )


@page
async def send_test_ping(current: Page) -> Response:
    """Send a `relay.ping` now and show the attempt log it was recorded in."""
    ctx = current.ctx
    subscription = await ctx.store.subscriptions.get(current.request.path_params["subscription_id"])
    await ctx.deliverer.ping(subscription, now=ctx.clock())
    return redirect(f"/ui/subscriptions/{subscription.id}/attempts", done="pinged")
