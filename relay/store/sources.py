"""Sources (MC5 accounts) in Redis. OWNER: ingest helper. Interface fixed; bodies to implement."""

from __future__ import annotations

from redis.asyncio import Redis

from relay.core.models import Source, SourceStatus
from relay.store.keys import Keys
from relay.store.pagination import Listing


class SourceStore:
    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def create(
        self,
        *,
        username: str,
        password: str,
        base_url: str,
        poll_interval_s: float,
        start_from: int | None,
        now: float,
    ) -> Source:
        """Add a source; `start_from` None means the cursor starts at `now`."""
        raise NotImplementedError

    async def ensure(
        self,
        *,
        username: str,
        password: str,
        base_url: str,
        poll_interval_s: float,
        start_from: int | None,
        now: float,
    ) -> Source:
        """The source with this username and base_url, created if missing (idempotent);
        an existing one gets the given password (the environment is the truth)."""
        raise NotImplementedError

    async def get(self, source_id: str) -> Source:
        """The source; raises NotFound."""
        raise NotImplementedError

    async def page(self, *, limit: int, cursor: str | None) -> Listing[Source]:
        """Newest first."""
        raise NotImplementedError

    async def ids(self) -> list[str]:
        """Every source id (the poller's work list)."""
        raise NotImplementedError

    async def update(
        self,
        source_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        base_url: str | None = None,
        poll_interval_s: float | None = None,
        cursor: int | None = None,
        status: SourceStatus | None = None,
    ) -> Source:
        """Change the given fields; raises NotFound. Changing credentials, base_url or status
        clears a failing state so the poller tries again at once. `status` may be "ok" or
        "paused" (pause/resume); "failing" is set only by the poller."""
        raise NotImplementedError

    async def delete(self, source_id: str) -> None:
        """Remove the source (its events stay until they expire); raises NotFound."""
        raise NotImplementedError
