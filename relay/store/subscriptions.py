"""Subscriptions in Redis. OWNER: delivery helper. Interface fixed; bodies to implement."""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import Redis

from relay.core.models import Subscription
from relay.store.keys import Keys
from relay.store.pagination import Listing


class Unset:
    """Marks an update argument that was not given (None is a real value for filters)."""


UNSET = Unset()


class SubscriptionStore:
    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def create(
        self,
        *,
        url: str,
        event_types: tuple[str, ...] | None,
        source_ids: tuple[str, ...] | None,
        description: str | None,
        headers: Mapping[str, str],
        enabled: bool,
        now: float,
    ) -> Subscription:
        """Add a subscription with a fresh `whsec_` secret."""
        raise NotImplementedError

    async def get(self, subscription_id: str) -> Subscription:
        """The subscription; raises NotFound."""
        raise NotImplementedError

    async def page(self, *, limit: int, cursor: str | None) -> Listing[Subscription]:
        """Newest first."""
        raise NotImplementedError

    async def all(self) -> list[Subscription]:
        """Every subscription (the dispatcher's routing table)."""
        raise NotImplementedError

    async def version(self) -> int:
        """A counter bumped by every change, so readers can cache `all()`."""
        raise NotImplementedError

    async def update(
        self,
        subscription_id: str,
        *,
        url: str | Unset = UNSET,
        event_types: tuple[str, ...] | Unset | None = UNSET,
        source_ids: tuple[str, ...] | Unset | None = UNSET,
        description: str | Unset | None = UNSET,
        headers: Mapping[str, str] | Unset = UNSET,
        enabled: bool | Unset = UNSET,
    ) -> Subscription:
        """Change the given fields; raises NotFound. Enabling clears `disabled_reason`."""
        raise NotImplementedError

    async def disable(self, subscription_id: str, *, reason: str) -> None:
        """Disable (e.g. after 410 Gone) and record why."""
        raise NotImplementedError

    async def delete(self, subscription_id: str) -> None:
        """Remove it and its attempt log; raises NotFound."""
        raise NotImplementedError

    async def rotate_secret(
        self, subscription_id: str, *, overlap_s: float, now: float
    ) -> Subscription:
        """A new current secret; the previous one keeps signing until now + overlap_s."""
        raise NotImplementedError
