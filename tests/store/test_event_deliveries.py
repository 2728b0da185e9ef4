"""Each event's delivery record, written with the attempt log and gone with the event."""

from __future__ import annotations

import redis.asyncio

from relay.core.events import event_from_message
from relay.core.models import Attempt, Event, Message
from relay.core.retry import Outcome
from relay.store.attempts import EVENT_BODY_KEPT, AttemptLog
from relay.store.dead_letters import DeadLetterStore
from relay.store.event_deliveries import EventDeliveries, LastAttempt
from relay.store.events import EventStore
from relay.store.keys import Keys
from relay.store.subscriptions import SubscriptionStore


def _event(n: int = 1) -> Event:
    message = Message(
        kind="incoming", document_id=f"d{n}", timestamp=1000 + n, sender="61", recipient="62"
    )
    return event_from_message(message, source_id="src_a", created_at_ms=n)


def _attempt(event: Event, sub: str, n: int, status: int | None, **kw: object) -> Attempt:
    fields: dict[str, object] = {
        "id": f"att_{sub}_{n}", "event_id": event.id, "subscription_id": sub, "attempt": n,
        "at": 1_700_000_000.0 + n, "status_code": status, "error": None,
        "response_body": "x" * 1000, "duration_ms": 5,
    } | kw  # fmt: skip
    return Attempt(**fields)  # type: ignore[arg-type]


async def test_attempts_fill_the_event_record_that_expires_with_the_event(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    event = _event()
    await EventStore(redis=aredis, keys=keys).add([event], retention_s=600)
    log = AttemptLog(redis=aredis, keys=keys, kept=100)
    await log.record_many([_attempt(event, "sub_a", 1, 500), _attempt(event, "sub_b", 1, 200)])
    await log.record_many([_attempt(event, "sub_a", 2, 502)])
    records = EventDeliveries(redis=aredis, keys=keys)

    assert sorted(await records.subscription_ids(event.id)) == ["sub_a", "sub_b"]
    a, b = await records.records([(event.id, "sub_a"), (event.id, "sub_b")])
    assert a.last == LastAttempt(2, 2, 502, 1_700_000_002.0, Outcome.FAILED)
    assert b.last == LastAttempt(1, 1, 200, 1_700_000_001.0, Outcome.DELIVERED)
    attempts = await records.attempts(event.id)
    assert [(x.subscription_id, x.attempt) for x in attempts] == [
        ("sub_a", 2), ("sub_b", 1), ("sub_a", 1),
    ]  # fmt: skip
    assert attempts[0].response_body == "x" * EVENT_BODY_KEPT
    event_ttl_ms = await aredis.pttl(keys.event(event.id))
    for key in (keys.event_deliveries(event.id), keys.event_attempts(event.id)):
        assert 0 < await aredis.pttl(key) <= event_ttl_ms  # set from it, read after it


async def test_one_call_gives_each_of_its_events_a_record_and_the_events_ttl(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    first, second = _event(1), _event(2)
    events = EventStore(redis=aredis, keys=keys)
    await events.add([first], retention_s=600)
    await events.add([second], retention_s=60)
    batch = [
        _attempt(first, "sub_a", 1, 200),
        _attempt(second, "sub_a", 1, 200),
        _attempt(first, "sub_b", 1, 503),
        _attempt(second, "sub_b", 1, 200),
    ]
    await AttemptLog(redis=aredis, keys=keys, kept=100).record_many(batch)
    records = EventDeliveries(redis=aredis, keys=keys)

    for event in (first, second):
        assert sorted(await records.subscription_ids(event.id)) == ["sub_a", "sub_b"]
        assert len(await records.attempts(event.id)) == 2
        event_ttl_ms = await aredis.pttl(keys.event(event.id))
        for key in (keys.event_deliveries(event.id), keys.event_attempts(event.id)):
            assert event_ttl_ms - 5000 < await aredis.pttl(key) <= event_ttl_ms
    (b_first,) = await records.records([(first.id, "sub_b")])
    assert b_first.last == LastAttempt(1, 1, 503, 1_700_000_001.0, Outcome.FAILED)


async def test_an_expired_event_gets_no_record(aredis: redis.asyncio.Redis, keys: Keys) -> None:
    event = _event()  # never stored (a relay.ping, or expired)
    await AttemptLog(redis=aredis, keys=keys, kept=100).record_many([_attempt(event, "s", 1, 200)])
    assert await aredis.exists(keys.event_deliveries(event.id), keys.event_attempts(event.id)) == 0


async def test_a_dead_letter_is_named_in_the_event_record(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    event = _event()
    await EventStore(redis=aredis, keys=keys).add([event], retention_s=600)
    dead_letters = DeadLetterStore(redis=aredis, keys=keys)
    dead = await dead_letters.add(
        event_id=event.id, subscription_id="sub_a", attempts=8, last_error=None,
        last_status_code=500, failed_at=1.0,
    )  # fmt: skip
    records = EventDeliveries(redis=aredis, keys=keys)
    (record,) = await records.records([(event.id, "sub_a")])
    assert record.dead_letter_id == dead.id
    await dead_letters.retry(dead.id)
    (record,) = await records.records([(event.id, "sub_a")])
    assert record.dead_letter_id is None


async def test_an_attempt_finishing_after_its_subscription_was_deleted_records_nothing(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    event = _event()
    await EventStore(redis=aredis, keys=keys).add([event], retention_s=600)
    subscriptions = SubscriptionStore(redis=aredis, keys=keys)
    sub = await subscriptions.create(
        url="http://x/", event_types=None, source_ids=None, description=None, headers={},
        enabled=True, now=1.0,
    )  # fmt: skip
    log = AttemptLog(redis=aredis, keys=keys, kept=100)
    await log.record_many([_attempt(event, sub.id, 1, 500)])
    await subscriptions.delete(sub.id)
    await aredis.delete(keys.event_deliveries(event.id), keys.event_attempts(event.id))

    await log.record_many([_attempt(event, sub.id, 2, 200), _attempt(event, "sub_other", 1, 200)])
    assert await aredis.exists(keys.attempts(sub.id)) == 0
    assert await EventDeliveries(redis=aredis, keys=keys).subscription_ids(event.id) == [
        "sub_other"
    ]
    assert (await log.page("sub_other", limit=5, cursor=None)).items[0].attempt == 1
