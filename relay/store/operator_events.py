"""Queueing operator events: stored like any event (not in the feed) and handed to the
dispatcher for the in-memory operator subscription only (relay.core.health).

No-op when no operator URL is configured. The event and its stream entry are written in one
MULTI, so an operator event is delivered (and retried) at least once or not queued at all.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio import Redis

from relay.core.health import OPERATOR_SUBSCRIPTION_ID, operator_event
from relay.store.events import pack_event
from relay.store.keys import Keys

log = logging.getLogger("relay.operator")


class OperatorEvents:
    def __init__(self, *, redis: Redis, keys: Keys, retention_s: int, is_enabled: bool) -> None:
        self._redis = redis
        self._keys = keys
        self._retention_s = retention_s
        self.is_enabled = is_enabled

    async def emit(self, event_type: str, data: dict[str, Any], *, now: float) -> str | None:
        """Queue one operator event; returns its id (None when disabled)."""
        if not self.is_enabled:
            return None
        event = operator_event(event_type, data, now=now)
        keys = self._keys
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.event(event.id), pack_event(event), ex=self._retention_s)
            pipe.xadd(keys.stream, {"e": event.id, "s": OPERATOR_SUBSCRIPTION_ID})
            await pipe.execute()
        log.info("operator event queued", extra={"event_id": event.id, "type": event_type})
        return event.id
