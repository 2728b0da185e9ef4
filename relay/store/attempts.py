"""The per-subscription delivery log. OWNER: delivery helper. Interface fixed."""

from __future__ import annotations

from redis.asyncio import Redis

from relay.core.models import Attempt
from relay.store.keys import Keys
from relay.store.pagination import Listing


class AttemptLog:
    def __init__(self, *, redis: Redis, keys: Keys, kept: int) -> None:
        self._redis = redis
        self._keys = keys
        self._kept = kept

    async def page(
        self, subscription_id: str, *, limit: int, cursor: str | None
    ) -> Listing[Attempt]:
        """Newest first; at most `kept` are kept per subscription."""
        raise NotImplementedError
