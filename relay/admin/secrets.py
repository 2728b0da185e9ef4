"""Signing secrets of a subscription: reading the current one and rotating."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relay.admin import audit, validation
from relay.admin.context import AdminContext
from relay.core.models import Subscription

DEFAULT_OVERLAP_S = 86400
MAX_OVERLAP_S = 7 * 86400


def current_secret(subscription: Subscription) -> str:
    """The newest secret (the one new signatures start with)."""
    return subscription.secrets[0].value


def overlap_seconds(value: Any) -> int:
    """A rotation's overlap in seconds (0 to 7 days); raises InvalidInput."""
    return validation.integer(value, "overlap_seconds", low=0, high=MAX_OVERLAP_S)


@dataclass(frozen=True, slots=True)
class Rotation:
    """A rotation's outcome: the subscription with its new current secret, and when every
    earlier secret stops signing (the rotation's own time for an overlap of 0)."""

    subscription: Subscription
    previous_expires_at: float


async def rotate_secret(
    ctx: AdminContext, subscription_id: str, *, overlap_s: int = DEFAULT_OVERLAP_S
) -> Rotation:
    """A new current secret; every earlier one keeps signing for `overlap_s` at most (0 ends
    them all now). NotFound."""
    now = ctx.clock()
    subscription = await ctx.store.subscriptions.rotate_secret(
        subscription_id, overlap_s=overlap_s, now=now, tenant=ctx.tenant
    )
    await audit.record(ctx, "secret.rotate", subscription_id, tenant_id=subscription.tenant_id)
    return Rotation(subscription, previous_expires_at=now + overlap_s)
