"""Dead letters: listing them and sending them again."""

from __future__ import annotations

from relay.admin import audit
from relay.admin.context import AdminContext
from relay.core.errors import Conflict, NotFound
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
    """Queue the delivery again and remove the dead letter, atomically. Raises NotFound, and
    Conflict when its subscription was deleted or is disabled (the dead letter stays: a retry
    would deliver nothing)."""
    dead_letter = await ctx.store.dead_letters.get(dead_letter_id, tenant=ctx.tenant)
    try:
        subscription = await ctx.store.subscriptions.get(dead_letter.subscription_id)
    except NotFound:
        raise Conflict(
            f"subscription {dead_letter.subscription_id} of dead letter {dead_letter_id} was "
            "deleted; there is nothing to deliver it to"
        ) from None
    if not subscription.enabled:
        raise Conflict(
            f"subscription {subscription.id} is disabled"
            + (f" ({subscription.disabled_reason})" if subscription.disabled_reason else "")
            + "; enable it first"
        )
    retried = await ctx.store.dead_letters.retry(dead_letter_id, tenant=ctx.tenant)
    await audit.record(ctx, "dead_letter.retry", dead_letter_id, tenant_id=ctx.tenant)
    return retried


async def retry_all_dead_letters(ctx: AdminContext) -> int:
    """Retry every dead letter whose subscription exists and is enabled (at most
    RETRY_ALL_MAX); the others stay. How many were queued."""
    store = ctx.store.dead_letters
    enabled = {s.id for s in await ctx.store.subscriptions.all() if s.enabled}
    queued = 0
    cursor: str | None = None
    while queued < RETRY_ALL_MAX:
        batch = await store.page(limit=RETRY_ALL_BATCH, cursor=cursor, tenant=ctx.tenant)
        for dead_letter in batch.items:
            if dead_letter.subscription_id not in enabled:
                continue
            try:
                await store.retry(dead_letter.id, tenant=ctx.tenant)
                queued += 1
            except NotFound:  # retried by someone else meanwhile
                continue
        cursor = batch.next_cursor
        if cursor is None:
            break
    await audit.record(ctx, "dead_letter.retry_all", None, tenant_id=ctx.tenant)
    return queued
