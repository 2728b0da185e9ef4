"""The delivery hand-off stream and its consumer group. OWNER: delivery helper.

`publish` is fixed (the admin API uses it); the consumer side belongs to the dispatcher.
"""

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
        fields = {"e": event_id}
        if subscription_id is not None:
            fields["s"] = subscription_id
        if explicit:
            fields["x"] = "1"
        await self._redis.xadd(self._keys.stream, fields)  # type: ignore[arg-type]
