"""Stored events: each one string with a TTL, indexed for the feed (by seq), replay (by time)
and search (by documentId and phone number: store/search.py).

An event is stored as `type LF source_id LF timestamp LF created_at_ms LF body` (the source
line is `source_id SP tenant_id` for a tenant's source; ingest adds the tenant): one string
costs far less Redis memory than a hash of the same fields, whose values outgrow the listpack
encoding (BENCHMARKS.md, "Memory"). The ingest script (store/ingest.py) writes the same value
atomically with the dedupe marks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from redis.asyncio import Redis

from relay.core.errors import NotFound
from relay.core.models import Event, Listing
from relay.store.keys import Keys
from relay.store.pagination import encode_cursor, page_ids
from relay.store.search import UNINDEX_LUA, EventQuery, EventSearch, index_event

# Drops feed and search entries of expired events; ids expire in seq order (TTL set at
# ingest). KEYS: feed, by time, numbers hash; ARGV: event key prefix, batch, number prefix.
_TRIM_SCRIPT = (
    """
local numbers_key, number_prefix = KEYS[3], ARGV[3]
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
local removed = 0
for _, id in ipairs(ids) do
  if redis.call('EXISTS', ARGV[1] .. id) == 1 then break end
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
"""
    + UNINDEX_LUA
    + """
  removed = removed + 1
end
return removed
"""
)


def pack_event(event: Event) -> str:
    """The stored value of an event (also written by the ingest script)."""
    source = event.source_id or ""
    if event.tenant_id is not None:
        source += " " + event.tenant_id
    head = (event.type, source, str(event.timestamp), str(event.created_at_ms))
    return "\n".join(head) + "\n" + event.body.decode()


def unpack_event(event_id: str, value: str) -> Event:
    type_, source, timestamp, created_at_ms, body = value.split("\n", 4)
    source_id, _, tenant_id = source.partition(" ")
    return Event(
        id=event_id,
        type=type_,
        source_id=source_id or None,
        tenant_id=tenant_id or None,
        timestamp=int(timestamp),
        created_at_ms=int(created_at_ms),
        body=body.encode(),
    )


class EventStore:
    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._trim = redis.register_script(_TRIM_SCRIPT)
        self._search = EventSearch(redis=redis, keys=keys, get_many=self.get_many)

    async def add(self, events: Sequence[Event], *, retention_s: int) -> None:
        """Store events and queue each for delivery, in one transaction (no dedupe: ingest
        uses store/ingest.py; this serves tests and tools)."""
        keys = self._keys
        first_seq = await self._redis.incrby(keys.seq, len(events)) - len(events) + 1
        async with self._redis.pipeline(transaction=True) as pipe:
            for seq, event in enumerate(events, start=first_seq):
                pipe.set(keys.event(event.id), pack_event(event), ex=retention_s)
                pipe.zadd(keys.events, {event.id: seq})
                pipe.zadd(keys.events_by_time, {event.id: event.timestamp})
                index_event(pipe, keys, event, retention_s=retention_s)
                pipe.xadd(keys.stream, {"e": event.id})
            await pipe.execute()

    async def get(self, event_id: str, *, tenant: str | None = None) -> Event:
        """The event; raises NotFound (also once it expired, and when `tenant` is given and
        the event is not its)."""
        value = cast("str | None", await self._redis.get(self._keys.event(event_id)))
        if value is None:
            raise NotFound(f"event {event_id} not found")
        event = unpack_event(event_id, value)
        if tenant is not None and event.tenant_id != tenant:
            raise NotFound(f"event {event_id} not found")
        return event

    async def get_many(self, event_ids: Sequence[str]) -> list[Event | None]:
        """Events in the order asked, None for any missing; one round trip."""
        if not event_ids:
            return []
        values = await self._redis.mget([self._keys.event(event_id) for event_id in event_ids])
        return [
            unpack_event(event_id, value) if value is not None else None
            for event_id, value in zip(event_ids, cast("list[str | None]", values), strict=True)
        ]

    async def page(
        self,
        *,
        limit: int,
        cursor: str | None,
        type: str | None = None,
        source_id: str | None = None,
        tenant: str | None = None,
        query: EventQuery | None = None,
    ) -> Listing[Event]:
        """Newest first, optionally filtered by type and source; only `tenant`'s when given.
        A `query` with search filters reads the search indexes instead (store/search.py),
        newest first by message time; its other fields override the keyword filters."""
        if query is not None and query.is_search:
            return await self._search.page(query, limit=limit, cursor=cursor)
        if query is not None:
            type, source_id, tenant = query.type, query.source_id, query.tenant
        found: list[Event] = []
        while True:
            ids, next_cursor = await page_ids(
                self._redis, self._keys.events, limit=max(limit, 50), cursor=cursor
            )
            scores = await self._scores(ids)
            for event_id, event in zip(ids, await self.get_many(ids), strict=True):
                if event is None or (type and event.type != type):
                    continue
                if source_id and event.source_id != source_id:
                    continue
                if tenant is not None and event.tenant_id != tenant:
                    continue
                found.append(event)
                if len(found) == limit:
                    more = event_id != ids[-1] or next_cursor is not None
                    return Listing(tuple(found), encode_cursor(scores[event_id]) if more else None)
            if next_cursor is None:
                return Listing(tuple(found), None)
            cursor = next_cursor

    async def ids_in_window(self, *, since: int, until: int | None) -> list[str]:
        """Ids of stored events whose message timestamp is in [since, until], oldest first."""
        high: int | str = "+inf" if until is None else until
        ids = await self._redis.zrangebyscore(self._keys.events_by_time, since, high)
        return cast("list[str]", ids)

    async def trim_expired(self, *, batch: int = 200) -> int:
        """Remove feed and search index entries of expired events (oldest first); returns
        how many events."""
        keys = self._keys
        removed = await self._trim(
            keys=[keys.events, keys.events_by_time, keys.event_numbers],
            args=[keys.event(""), batch, keys.number("")],
        )
        return int(removed)

    async def _scores(self, ids: Sequence[str]) -> dict[str, int]:
        if not ids:
            return {}
        values = await self._redis.zmscore(self._keys.events, list(ids))
        return {i: int(v) for i, v in zip(ids, values, strict=True) if v is not None}
