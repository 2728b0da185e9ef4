"""Stored events: the feed, replay windows. OWNER: ingest helper. Interface fixed."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from relay.core.models import Event
from relay.store.keys import Keys
from relay.store.pagination import Listing


class EventStore:
    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def get(self, event_id: str) -> Event:
        """The event; raises NotFound (also once it expired)."""
        raise NotImplementedError

    async def get_many(self, event_ids: Sequence[str]) -> list[Event | None]:
        """Events in the order asked, None for any missing; one round trip."""
        raise NotImplementedError

    async def list(
        self,
        *,
        limit: int,
        cursor: str | None,
        type: str | None = None,
        source_id: str | None = None,
    ) -> Listing[Event]:
        """Newest first, optionally filtered by type and source."""
        raise NotImplementedError

    async def ids_in_window(self, *, since: int, until: int | None) -> list[str]:
        """Ids of stored events whose message timestamp is in [since, until], oldest first."""
        raise NotImplementedError
