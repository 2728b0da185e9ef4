from __future__ import annotations

import json

import pytest
import redis.asyncio

from relay.core.errors import InvalidInput, NotFound
from relay.core.events import event_from_message
from relay.core.models import Message
from relay.store.events import EventStore
from relay.store.keys import Keys


def _message(n: int, *, kind: str = "incoming") -> Message:
    return Message(
        kind="incoming" if kind == "incoming" else "outgoing",
        document_id=f"{1366624700 + n:08x}e4b0d1406c9c{n:04x}",
        timestamp=1366624700 + n,
        text=f" hello {n}",
        sender="61555879987" if kind == "incoming" else None,
        recipient="61500079987",
    )


async def test_events_page_newest_first_with_filters(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    store = EventStore(redis=aredis, keys=keys)
    events = [
        event_from_message(
            _message(n, kind="incoming" if n % 2 else "outgoing"),
            source_id="src_a",
            created_at_ms=n,
        )
        for n in range(7)
    ]
    await store.add(events, retention_s=600)

    first = await store.page(limit=3, cursor=None)
    assert [e.id for e in first.items] == [e.id for e in reversed(events)][:3]
    assert first.next_cursor is not None
    rest = await store.page(limit=10, cursor=first.next_cursor)
    assert [e.id for e in rest.items] == [e.id for e in reversed(events)][3:]
    assert rest.next_cursor is None

    sent = await store.page(limit=50, cursor=None, type="message.sent")
    assert {e.type for e in sent.items} == {"message.sent"}
    assert len(sent.items) == 4
    assert (await store.page(limit=50, cursor=None, source_id="src_b")).items == ()


async def test_event_round_trips_body_and_window(aredis: redis.asyncio.Redis, keys: Keys) -> None:
    store = EventStore(redis=aredis, keys=keys)
    event = event_from_message(_message(3), source_id="src_a", created_at_ms=99)
    await store.add([event], retention_s=600)
    assert await store.get(event.id) == event
    body = json.loads(event.body)
    assert body["data"]["text"] == " hello 3"
    assert body["timestamp"] == "2013-04-22T09:58:23Z"
    assert await store.ids_in_window(since=event.timestamp, until=event.timestamp) == [event.id]
    assert await store.ids_in_window(since=event.timestamp + 1, until=None) == []
    with pytest.raises(NotFound):
        await store.get("evt_missing")


async def test_expired_events_leave_the_feed(aredis: redis.asyncio.Redis, keys: Keys) -> None:
    store = EventStore(redis=aredis, keys=keys)
    events = [event_from_message(_message(n), source_id="s", created_at_ms=n) for n in range(3)]
    await store.add(events, retention_s=600)
    await aredis.delete(keys.event(events[0].id))
    assert await store.trim_expired() == 1
    assert [e.id for e in (await store.page(limit=10, cursor=None)).items] == [
        events[2].id,
        events[1].id,
    ]


async def test_foreign_cursor_is_invalid_input(aredis: redis.asyncio.Redis, keys: Keys) -> None:
    with pytest.raises(InvalidInput):
        await EventStore(redis=aredis, keys=keys).page(limit=5, cursor="bm9wZQ")
