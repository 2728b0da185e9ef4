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


async def retry_dead_letters(
    ctx: AdminContext, *, subscription_id: str | None = None, since: float | None = None
) -> int:
    """Retry many dead letters at once: those of one subscription and/or failed at or after
    `since` (epoch s), newest first, at most RETRY_ALL_MAX per request. Each goes through
    the same script as a single retry, so one is never queued twice, even by two concurrent
    requests; those whose subscription is deleted or disabled stay. How many were queued.
    Raises NotFound (another tenant's or a missing subscription)."""
    if subscription_id is not None:
        await ctx.store.subscriptions.get(subscription_id, tenant=ctx.tenant)
    store = ctx.store.dead_letters
    deliverable: dict[str, bool] = {}  # subscription id -> exists and is enabled
    queued = 0
    cursor: str | None = None
    while queued < RETRY_ALL_MAX:
        batch = await store.page(limit=RETRY_ALL_BATCH, cursor=cursor, tenant=ctx.tenant)
        wanted = [
            d
            for d in batch.items
            if (subscription_id is None or d.subscription_id == subscription_id)
            and (since is None or d.failed_at >= since)
        ]
        unknown = list({d.subscription_id for d in wanted} - deliverable.keys())
        for subscription in await ctx.store.subscriptions.get_many(unknown):
            deliverable[subscription.id] = subscription.enabled
        for dead_letter in wanted:
            if not deliverable.setdefault(dead_letter.subscription_id, False):
                continue
            try:
                await store.retry(dead_letter.id, tenant=ctx.tenant)
                queued += 1
            except NotFound:  # retried by someone else meanwhile
                continue
            if queued >= RETRY_ALL_MAX:
                break
        cursor = batch.next_cursor
        # Newest first: once a page ends before `since`, every later page does too.
        if cursor is None or (
            since is not None and batch.items[-1:] and batch.items[-1].failed_at < since
        ):
            break
    await audit.record(ctx, "dead_letter.retry_many", subscription_id, tenant_id=ctx.tenant)
    return queued
