"""The ingest script: dedupe, events, stream and cursor in one atomic, fenced step."""

from __future__ import annotations

import pytest
import redis.asyncio

from relay.core.events import event_from_message
from relay.core.mc5 import gap_note
from relay.core.models import Message
from relay.store.events import EventStore, pack_event, unpack_event
from relay.store.ingest import CHUNK_MESSAGES, Ingest, IngestResult, SourceLockLost
from relay.store.keys import Keys
from relay.store.sources import SourceStore

NOW = 1_700_000_000.25
TOKEN = "poller_a"


@pytest.fixture
def sources(aredis: redis.asyncio.Redis, keys: Keys) -> SourceStore:
    return SourceStore(redis=aredis, keys=keys)


@pytest.fixture
def ingest(aredis: redis.asyncio.Redis, keys: Keys) -> Ingest:
    return Ingest(
        redis=aredis, keys=keys, dedupe_ttl_s=600, event_retention_s=900, gap_note_keep_s=60
    )


@pytest.fixture
async def source_id(sources: SourceStore, aredis: redis.asyncio.Redis, keys: Keys) -> str:
    source = await sources.create(
        username="u@r",
        password="pw",
        base_url="http://x",
        poll_interval_s=1,
        start_from=100,
        now=NOW,
    )
    await aredis.set(keys.source_lock(source.id), TOKEN)
    return source.id


def _messages(*pairs: tuple[str, int]) -> list[Message]:
    return [
        Message(
            kind="incoming", document_id=d, timestamp=t, text=" hi", sender="61", recipient="62"
        )
        for d, t in pairs
    ]


async def _record(
    ingest: Ingest, source_id: str, messages: list[Message], cursor: int, **kw: object
) -> IngestResult:
    args: dict[str, object] = {"token": TOKEN, "version": 0, "now": NOW} | kw
    return await ingest.record_page(
        source_id=source_id,
        messages=messages,
        cursor=cursor,
        **args,  # type: ignore[arg-type]
    )


async def test_new_messages_become_stored_streamed_events(
    ingest: Ingest, source_id: str, aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    messages = _messages(("a1", 100), ("a2", 101))
    result = await _record(ingest, source_id, messages, 101)
    expected = [
        event_from_message(m, source_id=source_id, created_at_ms=int(NOW * 1000)) for m in messages
    ]
    assert result.new_event_ids == tuple(e.id for e in expected)
    assert result.duplicates == 0
    for event in expected:
        stored = await aredis.get(keys.event(event.id))
        assert stored == pack_event(event)
        assert unpack_event(event.id, stored) == event
        assert 0 < await aredis.ttl(keys.event(event.id)) <= 900
    assert await aredis.zrange(keys.events, 0, -1) == [e.id for e in expected]
    assert await aredis.zrange(keys.events_by_time, 0, -1, withscores=True) == [
        (expected[0].id, 100.0),
        (expected[1].id, 101.0),
    ]
    entries = await aredis.xrange(keys.stream)
    assert entries is not None
    assert [fields for _, fields in entries] == [{"e": e.id} for e in expected]
    got = await EventStore(redis=aredis, keys=keys).get(expected[0].id)
    assert got == expected[0]


async def test_same_page_again_creates_no_duplicate(
    ingest: Ingest, source_id: str, aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    await _record(ingest, source_id, _messages(("a1", 100), ("a2", 101)), 101)
    again = await _record(ingest, source_id, _messages(("a2", 101), ("a3", 101)), 101)
    assert again.duplicates == 1
    assert len(again.new_event_ids) == 1
    assert await aredis.xlen(keys.stream) == 3
    assert await aredis.zcard(keys.events) == 3


async def test_dedupe_marks_live_in_one_expiring_hash_per_second(
    ingest: Ingest, source_id: str, aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    await _record(ingest, source_id, _messages(("a1", 100), ("a2", 100), ("b1", 101)), 101)
    assert sorted(await aredis.hkeys(keys.seen(source_id, 100))) == ["a1", "a2"]
    assert await aredis.hkeys(keys.seen(source_id, 101)) == ["b1"]
    assert 0 < await aredis.ttl(keys.seen(source_id, 100)) <= 600


async def test_without_the_lock_nothing_is_recorded(
    ingest: Ingest, source_id: str, aredis: redis.asyncio.Redis, keys: Keys, sources: SourceStore
) -> None:
    await aredis.set(keys.source_lock(source_id), "poller_b")
    with pytest.raises(SourceLockLost):
        await _record(ingest, source_id, _messages(("a1", 100)), 100)
    assert not await aredis.exists(keys.seen(source_id, 100), keys.stream, keys.events)
    assert (await sources.get(source_id)).cursor == 100
    # the rightful holder later records it normally
    await aredis.set(keys.source_lock(source_id), TOKEN)
    assert len((await _record(ingest, source_id, _messages(("a1", 100)), 100)).new_event_ids) == 1


async def test_cursor_only_moves_forward_and_poll_is_booked(
    ingest: Ingest, source_id: str, sources: SourceStore
) -> None:
    _, version = await sources.get_versioned(source_id)
    await sources.record_failure(
        source_id,
        version=version,
        error="transport: HTTP 502 from upstream",
        failures=3,
        next_poll_at=NOW + 8,
        now=NOW,
    )
    await _record(ingest, source_id, _messages(("a1", 150)), 150, now=NOW + 10)
    await _record(ingest, source_id, [], 120, now=NOW + 11)
    source = await sources.get(source_id)
    assert source.cursor == 150
    assert (source.status, source.last_error, source.failures, source.next_poll_at) == (
        "ok",
        None,
        0,
        0,
    )
    assert source.last_polled_at == NOW + 11


async def test_a_changed_source_keeps_its_cursor_but_gets_the_events(
    ingest: Ingest, source_id: str, sources: SourceStore
) -> None:
    await sources.update(source_id, cursor=90)  # an admin moved it while the poll ran
    result = await _record(ingest, source_id, _messages(("a1", 150)), 150, version=0)
    assert not result.is_cursor_recorded
    assert len(result.new_event_ids) == 1
    assert (await sources.get(source_id)).cursor == 90


async def test_gap_note_stays_for_the_keep_window_then_clears(
    ingest: Ingest, source_id: str, sources: SourceStore
) -> None:
    note = gap_note(second=150)
    await _record(ingest, source_id, _messages(("a1", 150)), 151, gap_note=note)
    assert (await sources.get(source_id)).last_error == note
    await _record(ingest, source_id, [], 151, now=NOW + 30)
    assert (await sources.get(source_id)).last_error == note
    await _record(ingest, source_id, [], 151, now=NOW + 61)
    source = await sources.get(source_id)
    assert (source.status, source.last_error) == ("ok", None)


async def test_deleted_source_records_nothing(
    ingest: Ingest, source_id: str, sources: SourceStore, aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    await sources.delete(source_id)
    with pytest.raises(SourceLockLost):
        await _record(ingest, source_id, _messages(("a1", 100)), 100)
    assert not await aredis.exists(keys.source(source_id), keys.stream)


async def test_a_page_larger_than_a_chunk_is_recorded_whole_and_once(
    ingest: Ingest, source_id: str, sources: SourceStore, aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    count = 2 * CHUNK_MESSAGES + 7
    page = _messages(*((f"d{i}", 200 + i // 50) for i in range(count)))
    first = await _record(ingest, source_id, page, 200 + (count - 1) // 50)
    assert len(first.new_event_ids) == count and first.is_cursor_recorded
    assert await aredis.xlen(keys.stream) == count
    assert (await sources.get(source_id)).cursor == 200 + (count - 1) // 50
    again = await _record(ingest, source_id, page, 200 + (count - 1) // 50)
    assert (again.new_event_ids, again.duplicates) == ((), count)
