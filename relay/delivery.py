"""Sending one webhook: sign, POST, record the attempt. OWNER: delivery helper. Interface fixed."""

from __future__ import annotations

from relay.core.models import Attempt, Subscription
from relay.settings import Settings
from relay.store import Store


class Deliverer:
    """Holds the pooled HTTP client; `start()` before use and `close()` after."""

    def __init__(self, *, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    async def start(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def ping(self, subscription: Subscription, *, now: float) -> Attempt:
        """Send a `relay.ping` event to this one subscription now, whatever its filters or
        enabled state; not retried; recorded in its attempts. Never raises on HTTP failure."""
        raise NotImplementedError
