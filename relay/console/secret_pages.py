"""Console actions that show a subscription's secret: reveal, rotate; and the test ping.

Each is an explicit POST (with the CSRF token); a secret appears only on the page that
answers it, which is never cached.
"""

from __future__ import annotations

from starlette.responses import Response

from relay.admin import deliveries, secrets, subscriptions
from relay.console.pages import Page, page, redirect


@page
async def reveal_secret(current: Page) -> Response:
    subscription_id = current.request.path_params["subscription_id"]
    subscription = await subscriptions.get_subscription(current.ctx, subscription_id)
    return current.render(
        "secret.html",
        subscription=subscription,
        secret=secrets.current_secret(subscription),
        reason="",
    )


@page
async def rotate_secret(current: Page) -> Response:
    """A new secret; the old one keeps signing for the chosen overlap (as the API does)."""
    raw = current.form.get("overlap_seconds", str(secrets.DEFAULT_OVERLAP_S)).strip()
    overlap_s = secrets.overlap_seconds(int(raw) if raw.isdigit() and len(raw) < 10 else raw)
    rotation = await secrets.rotate_secret(
        current.ctx, current.request.path_params["subscription_id"], overlap_s=overlap_s
    )
    subscription = rotation.subscription
    return current.render(
        "secret.html",
        subscription=subscription,
        secret=secrets.current_secret(subscription),
        reason="rotated",
        overlap_s=overlap_s,
    )


@page
async def send_test_ping(current: Page) -> Response:
    """Send a `relay.ping` now and show the attempt log it was recorded in."""
    subscription_id = current.request.path_params["subscription_id"]
    await deliveries.send_test_ping(current.ctx, subscription_id)
    return redirect(f"/ui/subscriptions/{subscription_id}/attempts", done="pinged")
