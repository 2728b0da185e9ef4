"""End to end: subscriptions with SMS `match` filters get only the messages they ask for, from
the real dispatcher through real Redis to real receivers."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis.asyncio

from relay.core.events import event_from_message
from relay.core.models import Event, Message
from relay.core.sms_match import SmsMatch
from relay.settings import Settings
from relay.store import Store
from tests.support import Receiver
from workers.dispatcher import open_dispatcher


@pytest.fixture
def store(aredis: redis.asyncio.Redis, settings: Settings) -> Store:
    return Store.create(aredis, settings)


async def subscribe(store: Store, url: str, receiver: Receiver, match: SmsMatch | None) -> None:
    subscription = await store.subscriptions.create(
        url=url + "/", event_types=None, source_ids=None, description=None, headers={},
        enabled=True, now=time.time(), match=match,
    )  # fmt: skip
    receiver.secret = subscription.secrets[0].value


def sms(document_id: str, sender: str | None, recipient: str, text: str) -> Event:
    now = time.time()
    message = Message(
        kind="incoming" if sender else "outgoing", document_id=document_id, timestamp=int(now),
        text=text, sender=sender, recipient=recipient,
    )  # fmt: skip
    return event_from_message(message, source_id="src_shared", created_at_ms=int(now * 1000))


async def test_match_filters_route_by_recipient_sender_and_keyword(
    store: Store, serve_app: Callable[..., str], settings: Settings
) -> None:
    """One account serving two numbers and a keyword app: each subscriber gets its share."""
    app_a, app_b, uk_senders, stop_words, everything = (Receiver() for _ in range(5))
    await subscribe(store, serve_app(app_a.app()), app_a, SmsMatch(recipients=("+4477001",)))
    await subscribe(store, serve_app(app_b.app()), app_b, SmsMatch(recipients=("+4477002",)))
    await subscribe(store, serve_app(uk_senders.app()), uk_senders, SmsMatch(senders=("+44",)))
    await subscribe(
        store, serve_app(stop_words.app()), stop_words,
        SmsMatch(recipients=("+4477001", "+4477002"), keywords=("stop",)),
    )  # fmt: skip
    await subscribe(store, serve_app(everything.app()), everything, None)
    events = [
        sms("m1", "+447911000001", "+447700100", "hello A"),
        sms("m2", "+15550000001", "+447700200", "STOP please"),
        sms("m3", "+447911000002", "+447700200", "stop"),
        sms("m4", None, "+447700100", "outgoing reply"),
        sms("m5", "+15550000002", "+447700300", "stop elsewhere"),
    ]
    await store.events.add(events, retention_s=3600)

    async with open_dispatcher(settings) as dispatcher:
        assert await dispatcher.run_until_idle() == len(events)

    by_doc = {e.id: doc for e, doc in zip(events, ["m1", "m2", "m3", "m4", "m5"], strict=True)}

    def got(receiver: Receiver) -> list[str]:
        assert all(r.verified for r in receiver.received)
        return sorted(by_doc[event_id] for event_id in receiver.ids())

    assert got(app_a) == ["m1", "m4"]
    assert got(app_b) == ["m2", "m3"]
    assert got(uk_senders) == ["m1", "m3"]  # the outgoing m4 has no sender
    assert got(stop_words) == ["m2", "m3"]
    assert got(everything) == ["m1", "m2", "m3", "m4", "m5"]
