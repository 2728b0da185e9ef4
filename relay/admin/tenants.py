"""Tenants: the operator's customers, who own sources and subscriptions."""

from __future__ import annotations

from typing import Any

from relay.admin import audit, validation
from relay.admin.context import AdminContext
from relay.core.errors import InvalidInput, NotFound
from relay.core.models import Listing, Tenant

FIELDS = ("name",)
MAX_NAME = 200


def _name(value: Any) -> str:
    return validation.text(value, "name", max_length=MAX_NAME)


async def add_tenant(ctx: AdminContext, data: dict[str, Any]) -> Tenant:
    """Validate and create a tenant; raises InvalidInput."""
    tenant = await ctx.store.tenants.create(
        name=_name(validation.required(data, "name")), now=ctx.clock()
    )
    await audit.record(ctx, "tenant.create", tenant.id, tenant_id=tenant.id)
    return tenant


async def list_tenants(ctx: AdminContext, *, limit: int, cursor: str | None) -> Listing[Tenant]:
    """Newest first."""
    return await ctx.store.tenants.page(limit=limit, cursor=cursor)


async def get_tenant(ctx: AdminContext, tenant_id: str) -> Tenant:
    """The tenant; raises NotFound."""
    return await ctx.store.tenants.get(tenant_id)


async def change_tenant(ctx: AdminContext, tenant_id: str, data: dict[str, Any]) -> Tenant:
    """Rename; raises InvalidInput, NotFound."""
    if "name" not in data:
        return await ctx.store.tenants.get(tenant_id)
    tenant = await ctx.store.tenants.rename(tenant_id, name=_name(data["name"]))
    await audit.record(ctx, "tenant.update", tenant_id, tenant_id=tenant_id)
    return tenant


async def delete_tenant(ctx: AdminContext, tenant_id: str) -> None:
    """Remove it; raises NotFound, Conflict while it owns sources or subscriptions."""
    await ctx.store.tenants.delete(tenant_id)
    await audit.record(ctx, "tenant.delete", tenant_id, tenant_id=tenant_id)


async def owner_of_new_row(ctx: AdminContext, data: dict[str, Any]) -> str | None:
    """The tenant a new source or subscription belongs to: the asker's own for a tenant key
    (a `tenant_id` naming another is NotFound, as if it did not exist), else the body's
    `tenant_id` (null or absent: the operator's), which must exist (else NotFound)."""
    given = data.get("tenant_id")
    if given is not None and not isinstance(given, str):
        raise InvalidInput("tenant_id must be a tenant id or null", field="tenant_id")
    if ctx.tenant is not None:
        if given not in (None, ctx.tenant):
            raise NotFound(f"tenant {given} not found")
        return ctx.tenant
    if given is not None:
        await ctx.store.tenants.get(given)
    return given
