"""The per-subscription delivery log. OWNER: delivery helper. Interface fixed."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from relay.core.models import Attempt
from relay.store.keys import Keys
from relay.store.pagination import Listing


class AttemptLog:
    def __init__(self, *, redis: Redis, keys: Keys, kept: int) -> None:
        self._redis = redis
        self._keys = keys
        self._kept = kept

    async def record_many(self, attempts: Sequence[Attempt]) -> None:
        """Append attempts to their subscriptions' logs in one round trip, trimming each log
        to `kept`; the caller gives each a fresh id (`new_id("att")`)."""
        raise NotImplementedError

    async def page(
        self, subscription_id: str, *, limit: int, cursor: str | None
    ) -> Listing[Attempt]:
        """Newest first; at most `kept` are kept per subscription."""
        raise NotImplementedError
