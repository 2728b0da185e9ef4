"""The delivery hand-off stream and its consumer group. OWNER: delivery helper. Interface fixed."""

from __future__ import annotations

from redis.asyncio import Redis

from relay.store.keys import Keys


class DeliveryQueue:
    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def publish(
        self, event_id: str, *, subscription_id: str | None = None, explicit: bool = False
    ) -> None:
        """Queue an event for first-attempt delivery by the dispatcher.

        `subscription_id` limits it to that subscription; `explicit` marks a replay,
        redelivery or dead-letter retry, which ignores the created-after rule."""
        raise NotImplementedError
