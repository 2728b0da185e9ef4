"""The search indexes: written by ingest with the event, read without scanning, trimmed with it."""

from __future__ import annotations

import pytest
import redis.asyncio

from relay.core.events import event_from_message
from relay.core.models import Attempt, Message
from relay.store.attempts import AttemptLog
from relay.store.events import EventStore
from relay.store.ingest import Ingest
from relay.store.keys import Keys
from relay.store.search import SCAN_BUDGET, EventQuery
from relay.store.sources import SourceStore
from tests.support import wait_until

NOW = 1_700_000_000.0
TOKEN = "poller_a"


def _sms(n: int, *, sender: str | None, recipient: str, timestamp: int) -> Message:
    return Message(
        kind="incoming" if sender is not None else "outgoing",
        document_id=f"doc{n:04d}",
        timestamp=timestamp,
        text=f" text {n}",
        sender=sender,
        recipient=recipient,
    )


@pytest.fixture
async def ingested(aredis: redis.asyncio.Redis, keys: Keys) -> tuple[EventStore, list[str]]:
    """Through the real ingest script: six messages between three numbers, one outgoing."""
    sources = SourceStore(redis=aredis, keys=keys)
    source = await sources.create(
        username="u@r", password="pw", base_url="http://x", poll_interval_s=1, start_from=0,
        now=NOW,
    )  # fmt: skip
    await aredis.set(keys.source_lock(source.id), TOKEN)
    messages = [
        _sms(0, sender="+61400000001", recipient="61500", timestamp=1000),
        _sms(1, sender="61400000001", recipient="61500", timestamp=1001),  # not normalised
        _sms(2, sender="+61400000001", recipient="61500", timestamp=1001),  # same second
        _sms(3, sender="+61400000002", recipient="61500", timestamp=1002),
        _sms(4, sender=None, recipient="+61400000001", timestamp=1003),  # sent to the customer
        _sms(5, sender="+61400000001", recipient="61501", timestamp=1004),
    ]
    ingest = Ingest(redis=aredis, keys=keys, dedupe_ttl_s=600, event_retention_s=900)
    result = await ingest.record_page(
        source_id=source.id, token=TOKEN, version=0, messages=messages, cursor=1004, now=NOW
    )
    return EventStore(redis=aredis, keys=keys), list(result.new_event_ids)


async def _ids(store: EventStore, limit: int = 50, **filters: object) -> list[str]:
    page = await store.page(limit=limit, cursor=None, query=EventQuery(**filters))  # type: ignore[arg-type]
    return [e.id for e in page.items]


async def test_document_id_finds_its_one_event(ingested: tuple[EventStore, list[str]]) -> None:
    store, ids = ingested
    assert await _ids(store, document_id="doc0003") == [ids[3]]
    assert await _ids(store, document_id="doc0003", type="message.sent") == []
    assert await _ids(store, document_id="nope") == []


async def test_phone_matches_from_or_recipient_exactly_as_sent_newest_first(
    ingested: tuple[EventStore, list[str]],
) -> None:
    store, ids = ingested
    assert await _ids(store, phone="+61400000001") == [ids[5], ids[4], ids[2], ids[0]]
    assert await _ids(store, phone="61400000001") == [ids[1]]
    assert await _ids(store, sender="+61400000001") == [ids[5], ids[2], ids[0]]
    assert await _ids(store, recipient="+61400000001") == [ids[4]]
    assert await _ids(store, sender="+61400000001", recipient="61500") == [ids[2], ids[0]]
    assert await _ids(store, phone="+61400000001", since=1001, until=1003) == [ids[4], ids[2]]
    in_window = await _ids(store, since=1001, until=1002)  # ties in one second: by id
    assert in_window == [ids[3], *sorted([ids[1], ids[2]], reverse=True)]
    assert await _ids(store, until=1000) == [ids[0]]


async def test_paging_a_search_walks_every_match_once_across_same_second_ties(
    ingested: tuple[EventStore, list[str]],
) -> None:
    store, ids = ingested
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = await store.page(limit=1, cursor=cursor, query=EventQuery(recipient="61500"))
        seen += [e.id for e in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [ids[3], *sorted([ids[1], ids[2]], reverse=True), ids[0]]


async def test_a_lookup_reads_its_number_not_the_feed(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    """More non-matching events than one page may scan: the number's index still finds its
    one event at once, because only that number's entries are read."""
    store = EventStore(redis=aredis, keys=keys)
    noise = [
        event_from_message(
            _sms(n, sender=f"614{n:08d}", recipient="61500", timestamp=2000 + n),
            source_id="src_a",
            created_at_ms=n,
        )
        for n in range(SCAN_BUDGET + 10)
    ]
    wanted = event_from_message(
        _sms(99999, sender="+61499999999", recipient="61500", timestamp=1),
        source_id="src_a",
        created_at_ms=1,
    )
    for start in range(0, len(noise), 1000):
        await store.add(noise[start : start + 1000], retention_s=600)
    await store.add([wanted], retention_s=600)
    page = await store.page(limit=5, cursor=None, query=EventQuery(phone="+61499999999"))
    assert [e.id for e in page.items] == [wanted.id] and page.next_cursor is None


async def test_index_entries_go_when_their_event_expires(
    ingested: tuple[EventStore, list[str]], aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    store, ids = ingested
    assert await aredis.ttl(keys.document("doc0000")) > 0
    assert await aredis.zcard(keys.number("+61400000001")) == 4  # trimmed with the feed
    for event_id in ids[:3]:  # what the TTL does to the oldest events
        await aredis.delete(keys.event(event_id))
    await aredis.delete(keys.document("doc0000"), keys.document("doc0001"))
    assert await store.trim_expired() == 3
    assert await aredis.zrange(keys.number("+61400000001"), 0, -1) == [ids[4], ids[5]]
    assert await aredis.exists(keys.number("61400000001")) == 0  # its only entry went
    assert await aredis.zrange(keys.number("61500"), 0, -1) == [ids[3]]
    assert sorted(await aredis.hkeys(keys.event_numbers)) == sorted(ids[3:])
    assert await _ids(store, phone="+61400000001") == [ids[5], ids[4]]


async def test_with_real_ttls_every_index_and_record_of_an_event_goes_with_it(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    """No simulated expiry: a 1 s retention, the attempt record written, then Redis expires
    the event and its own keys, and the trim takes the rest."""
    sources = SourceStore(redis=aredis, keys=keys)
    source = await sources.create(
        username="u@r", password="pw", base_url="http://x", poll_interval_s=1, start_from=0,
        now=NOW,
    )  # fmt: skip
    await aredis.set(keys.source_lock(source.id), TOKEN)
    ingest = Ingest(redis=aredis, keys=keys, dedupe_ttl_s=600, event_retention_s=1)
    sms = _sms(1, sender="61400000009", recipient="61500", timestamp=1000)
    result = await ingest.record_page(
        source_id=source.id, token=TOKEN, version=0, messages=[sms], cursor=1000, now=NOW
    )
    (event_id,) = result.new_event_ids
    attempt = Attempt(
        id="att_1", event_id=event_id, subscription_id="sub_a", attempt=1, at=NOW,
        status_code=200, error=None, response_body="", duration_ms=1,
    )  # fmt: skip
    await AttemptLog(redis=aredis, keys=keys, kept=10).record_many([attempt])
    own_keys = [
        keys.event(event_id), keys.document(sms.document_id), keys.event_deliveries(event_id),
        keys.event_attempts(event_id),
    ]  # fmt: skip
    assert await aredis.exists(*own_keys) == 4
    store = EventStore(redis=aredis, keys=keys)

    async def expired() -> bool:
        return await aredis.exists(*own_keys) == 0

    await wait_until(expired, timeout_s=10, what="Redis to expire the event and its keys")
    assert await store.trim_expired() == 1
    assert await aredis.exists(keys.number("61400000009"), keys.number("61500")) == 0
    assert await aredis.hexists(keys.event_numbers, event_id) == 0
    assert await aredis.zscore(keys.events_by_time, event_id) is None
    assert await _ids(store, phone="61500") == []
