"""The audit log: every change made through the API or the console, by whom."""

from __future__ import annotations

from relay.admin.context import AdminContext
from relay.core.models import AuditEntry, Listing


async def record(
    ctx: AdminContext, action: str, resource_id: str | None, *, tenant_id: str | None
) -> None:
    """Note that `ctx.principal` did `action` ("subscription.create", ...) to a resource of
    `tenant_id`. Called by each admin operation after its change succeeded; never a secret."""
    await ctx.store.audit.record(
        actor=ctx.principal.actor,
        action=action,
        resource_id=resource_id,
        tenant_id=tenant_id,
        now=ctx.clock(),
    )


async def list_audit(ctx: AdminContext, *, limit: int, cursor: str | None) -> Listing[AuditEntry]:
    """Newest first (operator only: the route needs keys:write)."""
    return await ctx.store.audit.page(limit=limit, cursor=cursor)
