"""Dead letters: listing them and sending them again."""

from __future__ import annotations

from relay.admin import audit
from relay.admin.context import AdminContext
from relay.core.errors import NotFound
from relay.core.models import DeadLetter, Listing

RETRY_ALL_BATCH = 100
RETRY_ALL_MAX = 10_000  # one request never loops forever while new dead letters arrive


async def list_dead_letters(
    ctx: AdminContext, *, limit: int, cursor: str | None
) -> Listing[DeadLetter]:
    """Newest first."""
    return await ctx.store.dead_letters.page(limit=limit, cursor=cursor, tenant=ctx.tenant)


async def get_dead_letter(ctx: AdminContext, dead_letter_id: str) -> DeadLetter:
    """The dead letter; raises NotFound."""
    return await ctx.store.dead_letters.get(dead_letter_id, tenant=ctx.tenant)


async def retry_dead_letter(ctx: AdminContext, dead_letter_id: str) -> DeadLetter:
    """Queue the delivery again and remove the dead letter, atomically; raises NotFound."""
    dead_letter = await ctx.store.dead_letters.retry(dead_letter_id, tenant=ctx.tenant)
    await audit.record(ctx, "dead_letter.retry", dead_letter_id, tenant_id=ctx.tenant)
    return dead_letter


async def retry_all_dead_letters(ctx: AdminContext) -> int:
    """Retry every dead letter there is (at most RETRY_ALL_MAX); how many were queued."""
    store = ctx.store.dead_letters
    queued = 0
    while queued < RETRY_ALL_MAX:
        batch = await store.page(limit=RETRY_ALL_BATCH, cursor=None, tenant=ctx.tenant)
        if not batch.items:
            break
        for dead_letter in batch.items:
            try:
                await store.retry(dead_letter.id, tenant=ctx.tenant)
                queued += 1
            except NotFound:  # retried by someone else meanwhile
                continue
    await audit.record(ctx, "dead_letter.retry_all", None, tenant_id=ctx.tenant)
    return queued
