"""Finding events by documentId, phone number and message time, without scanning the feed.

Three indexes, written with the event (the ingest script, or `EventStore.add`'s transaction)
and gone with it:
  doc:{documentId}  string, the event id(s): a lookup is one GET. Its TTL is the event's.
  num:{number}      zset of event ids by message timestamp, one per number that is an event's
                    `from` or `recipient`, exactly as the upstream sent it (no normalisation:
                    "+61400..." and "61400..." are different numbers). Like the feed, no TTL:
                    entries of expired events are removed by the feed's trim, which finds an
                    event's numbers in `evs:num` (the event itself is gone by then), and a
                    zset left empty is gone with its last entry. Refreshing a TTL per message
                    cost Redis time on the ingest path for no bound the trim does not give.
  evs:ts            the replay window index (events.py), for `since`/`until` alone.

A query reads the narrowest index that applies (document > the smallest number zset >
time), newest first by message time, and checks every other filter on the events read.
Reads are bounded: at most `SCAN_BUDGET` index entries per page, so a page may hold fewer
than `limit` events and still have a next cursor. The cursor is a position in message time:
the second and how many entries of that second were already read, packed in the feed
cursor's format (`encode_cursor(second * SECOND_SLOTS + skip)`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from relay.core.models import Event, Listing
from relay.store.keys import Keys
from relay.store.pagination import decode_cursor, encode_cursor

SCAN_BUDGET = 5000
SECOND_SLOTS = 1_000_000  # entries of one message second a cursor can skip
_CHUNK = 200

# Lua fragment for the ingest script (store/ingest.py); expects `event_id`, `timestamp`,
# `ttl`, `doc_key`, `numbers_key`, `numbers` (JSON or ''), and `number_keys` (a table).
INDEX_LUA = """
if not redis.call('SET', doc_key, event_id, 'NX', 'EX', ttl) then
  redis.call('SET', doc_key, redis.call('GET', doc_key) .. ' ' .. event_id, 'EX', ttl)
end
for _, number_key in ipairs(number_keys) do
  redis.call('ZADD', number_key, timestamp, event_id)
end
if numbers ~= '' then redis.call('HSET', numbers_key, event_id, numbers) end
"""

# Lua fragment for the feed's trim (store/events.py): drops the `num:` entries of the expired
# event `id`; expects `numbers_key` and `number_prefix`.
UNINDEX_LUA = """
local numbers = redis.call('HGET', numbers_key, id)
if numbers then
  for _, number in ipairs(cjson.decode(numbers)) do
    redis.call('ZREM', number_prefix .. number, id)
  end
  redis.call('HDEL', numbers_key, id)
end
"""


def numbers_of(sender: str | None, recipient: str | None) -> list[str]:
    """The distinct numbers a message is indexed under, as the upstream sent them."""
    return list(dict.fromkeys(n for n in (sender, recipient) if n is not None))


def numbers_json(numbers: Sequence[str]) -> str:
    """The `evs:num` value of an event with these numbers ('' when none)."""
    return json.dumps(list(numbers), separators=(",", ":")) if numbers else ""


def _data(event: Event) -> dict[str, Any]:
    try:
        body = json.loads(event.body)
    except ValueError:
        return {}
    data = body.get("data") if isinstance(body, dict) else None
    return data if isinstance(data, dict) else {}


def _text(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    return value if isinstance(value, str) else None


def index_event(pipe: Pipeline, keys: Keys, event: Event, *, retention_s: int) -> None:
    """Queue the index writes of one event on `pipe` (EventStore.add; ingest uses INDEX_LUA).
    Sets the document key (one id: `add` serves tests and tools, no shared documentIds)."""
    data = _data(event)
    document_id = _text(data, "documentId")
    if document_id is not None:
        pipe.set(keys.document(document_id), event.id, ex=retention_s)
    numbers = numbers_of(_text(data, "from"), _text(data, "recipient"))
    for number in numbers:
        pipe.zadd(keys.number(number), {event.id: event.timestamp})
    if numbers:
        pipe.hset(keys.event_numbers, event.id, numbers_json(numbers))


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters of `GET /v1/events`; all given ones must hold."""

    type: str | None = None
    source_id: str | None = None
    tenant: str | None = None
    document_id: str | None = None
    phone: str | None = None  # `from` or `recipient`
    sender: str | None = None  # `from`
    recipient: str | None = None
    since: int | None = None
    until: int | None = None

    @property
    def is_search(self) -> bool:
        """Whether an index other than the feed is needed."""
        fields = (self.document_id, self.phone, self.sender, self.recipient)
        return (
            any(f is not None for f in fields) or self.since is not None or (self.until is not None)
        )

    def matches(self, event: Event) -> bool:
        if self.type is not None and event.type != self.type:
            return False
        if self.source_id is not None and event.source_id != self.source_id:
            return False
        if self.tenant is not None and event.tenant_id != self.tenant:
            return False
        if self.since is not None and event.timestamp < self.since:
            return False
        if self.until is not None and event.timestamp > self.until:
            return False
        body_filters = (self.document_id, self.phone, self.sender, self.recipient)
        if all(f is None for f in body_filters):
            return True
        data = _data(event)
        sender, recipient = _text(data, "from"), _text(data, "recipient")
        if self.document_id is not None and _text(data, "documentId") != self.document_id:
            return False
        if self.sender is not None and sender != self.sender:
            return False
        if self.recipient is not None and recipient != self.recipient:
            return False
        return self.phone is None or self.phone in (sender, recipient)


# (highest message second or None for no bound, entries of it to skip, count) -> rows
_Fetch = Callable[[int | None, int, int], Awaitable[list[tuple[str, int]]]]


class EventSearch:
    """Reads the search indexes; `EventStore.page` hands it every query `is_search`."""

    def __init__(
        self,
        *,
        redis: Redis,
        keys: Keys,
        get_many: Callable[[Sequence[str]], Awaitable[list[Event | None]]],
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._get_many = get_many

    async def page(self, query: EventQuery, *, limit: int, cursor: str | None) -> Listing[Event]:
        """Newest first by message time; see the module docstring for cost and cursors."""
        fetch = await self._plan(query)
        second: int | None = query.until
        skip = 0
        if cursor:
            second, skip = divmod(decode_cursor(cursor), SECOND_SLOTS)
        found: list[Event] = []
        scanned = 0
        while True:
            rows = await fetch(second, skip, _CHUNK + 1)
            chunk = rows[:_CHUNK]
            events = await self._get_many([event_id for event_id, _ in chunk])
            used = 0
            for (_, at), event in zip(chunk, events, strict=True):
                used += 1
                skip = skip + 1 if at == second else 1
                second = at
                if event is not None and query.matches(event):
                    found.append(event)
                    if len(found) == limit:
                        break
            scanned += used
            is_more = used < len(rows)
            if len(found) == limit or not is_more or scanned >= SCAN_BUDGET:
                break
        if not is_more or second is None:
            return Listing(tuple(found), None)
        position = second * SECOND_SLOTS + min(skip, SECOND_SLOTS - 1)
        return Listing(tuple(found), encode_cursor(position))

    async def _plan(self, query: EventQuery) -> _Fetch:
        """How to read candidate (event id, message second) rows, newest first."""
        low = query.since if query.since is not None else 0
        if query.document_id is not None:
            value = cast(
                "str | None", await self._redis.get(self._keys.document(query.document_id))
            )
            ids = value.split(" ") if value else []
            events = await self._get_many(ids)
            rows = sorted(
                ((e.id, e.timestamp) for e in events if e is not None),
                key=lambda row: (row[1], row[0]),
                reverse=True,
            )
            return _in_memory(rows, low=low)
        numbers = [n for n in (query.phone, query.sender, query.recipient) if n is not None]
        if numbers:
            async with self._redis.pipeline(transaction=False) as pipe:
                for number in numbers:
                    pipe.zcard(self._keys.number(number))
                sizes = cast("list[int]", await pipe.execute())
            key = self._keys.number(min(zip(sizes, numbers, strict=True))[1])
        else:
            key = self._keys.events_by_time
        return self._zset(key, low=low)

    def _zset(self, key: str, *, low: int) -> _Fetch:
        async def fetch(high: int | None, skip: int, count: int) -> list[tuple[str, int]]:
            rows = cast(
                "list[tuple[str, float]]",
                await self._redis.zrevrangebyscore(
                    key, "+inf" if high is None else high, low, start=skip, num=count,
                    withscores=True,
                ),
            )  # fmt: skip
            return [(member, int(score)) for member, score in rows]

        return fetch


def _in_memory(rows: list[tuple[str, int]], *, low: int) -> _Fetch:
    """A fetch over a few rows already read (a document's events), same order and cursor."""

    async def fetch(high: int | None, skip: int, count: int) -> list[tuple[str, int]]:
        window = [r for r in rows if low <= r[1] and (high is None or r[1] <= high)]
        return window[skip : skip + count]

    return fetch
