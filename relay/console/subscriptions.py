"""Console pages for subscriptions: list, create (the secret shown once), edit filters and
headers, enable/disable, delete, and the attempt log.

Forms become the REST API's fields and pass through `relay.admin.subscriptions`,
so URL safety (RELAY_ALLOW_PRIVATE_TARGETS) and header rules are the API's own.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from relay.admin import deliveries
from relay.admin import subscriptions as subscription_ops
from relay.admin.secrets import current_secret
from relay.admin.subscription_health import health_of_one
from relay.console import forms
from relay.console.pages import Page, list_context, page, redirect
from relay.core.errors import InvalidInput
from relay.core.models import EVENT_TYPES, Subscription
from relay.web.query import page_params

TEXT_FIELDS = ("url", "description", "source_ids", "headers")


def _fields(form: forms.Form, problems: list[InvalidInput]) -> dict[str, Any]:
    """The form as API fields (blank filters mean "all"); every field error goes to
    `problems`, so the form shows them all at once."""
    data: dict[str, Any] = {
        "url": form.get("url").strip(),
        "description": forms.optional_text(form.get("description")),
        "event_types": form.getlist("event_types") or None,
        "source_ids": forms.word_list(form.get("source_ids")),
    }
    forms.converted(data, "headers", lambda: forms.header_lines(form.get("headers")), problems)
    return data


def _entered(form: forms.Form) -> dict[str, Any]:
    entered: dict[str, Any] = {name: form.get(name) for name in TEXT_FIELDS}
    entered["event_types"] = form.getlist("event_types")
    entered["enabled"] = form.has("enabled")
    return entered


def _shown(subscription: Subscription) -> dict[str, Any]:
    """The edit form's initial values."""
    return {
        "url": subscription.url,
        "description": subscription.description or "",
        "source_ids": forms.joined(subscription.source_ids),
        "headers": forms.header_text(subscription.headers),
        "event_types": list(subscription.event_types or ()),
        "enabled": subscription.enabled,
    }


async def _list(current: Page, *, status: int = 200, **values: Any) -> Response:
    limit, cursor = page_params(current.request)
    listing = await subscription_ops.list_subscriptions(
        list_context(current), limit=limit, cursor=cursor
    )
    values.setdefault("entered", {"enabled": True, "event_types": []})
    return current.render(
        "subscriptions.html",
        status=status,
        subscriptions=listing,
        event_types=EVENT_TYPES,
        **values,
    )


@page
async def list_subscriptions(current: Page) -> Response:
    return await _list(current)


@page
async def create_subscription(current: Page) -> Response:
    """Create, then show the secret this once (the page is not cached)."""
    problems: list[InvalidInput] = []
    data = {**_fields(current.form, problems), "enabled": current.form.has("enabled")}
    problems += subscription_ops.invalid_fields(current.ctx, data)
    try:
        if not problems:
            subscription = await subscription_ops.add_subscription(current.ctx, data)
    except InvalidInput as exc:
        problems.append(exc)
    if problems:
        errors = forms.error_messages(problems)
        return await _list(current, status=422, errors=errors, entered=_entered(current.form))
    return current.render(
        "secret.html",
        subscription=subscription,
        secret=current_secret(subscription),
        reason="created",
    )


@page
async def show_subscription(current: Page) -> Response:
    subscription_id = current.request.path_params["subscription_id"]
    subscription = await subscription_ops.get_subscription(current.ctx, subscription_id)
    return current.render(
        "subscription.html",
        subscription=subscription,
        health=await health_of_one(current.ctx, subscription),
        entered=_shown(subscription),
        event_types=EVENT_TYPES,
    )


@page
async def update_subscription(current: Page) -> Response:
    ctx = current.ctx
    subscription_id = current.request.path_params["subscription_id"]
    subscription = await subscription_ops.get_subscription(ctx, subscription_id)
    problems: list[InvalidInput] = []
    data = _fields(current.form, problems)
    problems += subscription_ops.invalid_fields(ctx, data)
    try:
        if not problems:
            await subscription_ops.change_subscription(ctx, subscription_id, data)
    except InvalidInput as exc:
        problems.append(exc)
    if problems:
        return current.render(
            "subscription.html",
            status=422,
            subscription=subscription,
            health=await health_of_one(ctx, subscription),
            entered={**_entered(current.form), "enabled": subscription.enabled},
            event_types=EVENT_TYPES,
            errors=forms.error_messages(problems),
        )
    return redirect(f"/ui/subscriptions/{subscription_id}", done="subscription-saved")


@page
async def set_subscription_enabled(current: Page) -> Response:
    subscription_id = current.request.path_params["subscription_id"]
    enabled = current.form.get("enabled") == "true"
    await subscription_ops.change_subscription(current.ctx, subscription_id, {"enabled": enabled})
    done = "subscription-enabled" if enabled else "subscription-disabled"
    return redirect(f"/ui/subscriptions/{subscription_id}", done=done)


@page
async def delete_subscription(current: Page) -> Response:
    subscription_id = current.request.path_params["subscription_id"]
    await subscription_ops.delete_subscription(current.ctx, subscription_id)
    return redirect("/ui/subscriptions", done="subscription-deleted")


@page
async def list_attempts(current: Page) -> Response:
    subscription_id = current.request.path_params["subscription_id"]
    subscription = await subscription_ops.get_subscription(current.ctx, subscription_id)
    limit, cursor = page_params(current.request)
    attempts = await deliveries.list_attempts(
        current.ctx, subscription.id, limit=limit, cursor=cursor
    )
    return current.render("attempts.html", subscription=subscription, attempts=attempts)
