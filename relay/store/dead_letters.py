"""Dead letters: deliveries that used up the retry schedule. OWNER: delivery helper."""

from __future__ import annotations

from redis.asyncio import Redis

from relay.core.models import DeadLetter
from relay.store.keys import Keys
from relay.store.pagination import Listing


class DeadLetterStore:
    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def add(
        self,
        *,
        event_id: str,
        subscription_id: str,
        attempts: int,
        last_error: str | None,
        last_status_code: int | None,
        failed_at: float,
    ) -> DeadLetter:
        """Record a delivery that used up the retry schedule."""
        raise NotImplementedError

    async def get(self, dead_letter_id: str) -> DeadLetter:
        """The dead letter; raises NotFound."""
        raise NotImplementedError

    async def page(self, *, limit: int, cursor: str | None) -> Listing[DeadLetter]:
        """Newest first."""
        raise NotImplementedError

    async def retry(self, dead_letter_id: str) -> DeadLetter:
        """Queue the delivery again (explicit, to its one subscription) and remove the dead
        letter, atomically; raises NotFound."""
        raise NotImplementedError
