"""Console pages for the operator: API keys (create, show once, revoke) and tenants.

They go through `relay.admin.keys` and `relay.admin.tenants`, the same operations (and
validation and audit) as `/v1/keys` and `/v1/tenants`.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from relay.admin import keys as key_ops
from relay.admin import tenants as tenant_ops
from relay.console.pages import Page, field_errors, page, redirect
from relay.core.access import OPERATOR_ONLY_SCOPES, SCOPES
from relay.core.errors import InvalidInput, NotFound
from relay.web.query import page_params


async def _page(current: Page, *, status: int = 200, **values: Any) -> Response:
    limit, cursor = page_params(current.request)
    listing = await key_ops.list_keys(current.ctx, limit=limit, cursor=cursor)
    tenants = await tenant_ops.list_tenants(current.ctx, limit=100, cursor=None)
    values.setdefault("entered", {})
    return current.render(
        "keys.html",
        status=status,
        keys=listing,
        tenants=tenants.items,
        scopes=SCOPES,
        operator_only=OPERATOR_ONLY_SCOPES,
        **values,
    )


@page
async def list_keys(current: Page) -> Response:
    return await _page(current)


@page
async def create_key(current: Page) -> Response:
    form = current.form
    data: dict[str, Any] = {
        "name": form.get("name").strip(),
        "scopes": [s for s in SCOPES if form.get(f"scope.{s}")],
        "tenant_id": form.get("tenant_id") or None,
    }
    if form.get("expires_at").strip():
        data["expires_at"] = form.get("expires_at").strip()
    entered = {"name": data["name"], "tenant_id": form.get("tenant_id")}
    try:
        if "expires_at" in data:
            if not data["expires_at"].isdigit():
                raise InvalidInput("expires_at must be an epoch second", field="expires_at")
            data["expires_at"] = int(data["expires_at"])
        created = await key_ops.create_key(current.ctx, data)
    except (InvalidInput, NotFound) as exc:
        errors = field_errors(exc) if isinstance(exc, InvalidInput) else {"tenant_id": str(exc)}
        return await _page(current, status=422, errors=errors, entered=entered)
    # Shown once, on this page (never stored, never in a redirect URL).
    return await _page(current, status=201, created=created)


@page
async def revoke_key(current: Page) -> Response:
    await key_ops.revoke_key(current.ctx, current.request.path_params["key_id"])
    return redirect("/ui/keys", done="key-revoked")


@page
async def create_tenant(current: Page) -> Response:
    try:
        await tenant_ops.add_tenant(current.ctx, {"name": current.form.get("tenant_name").strip()})
    except InvalidInput as exc:
        return await _page(current, status=422, errors={"tenant_name": exc.detail})
    return redirect("/ui/keys", done="tenant-added")
