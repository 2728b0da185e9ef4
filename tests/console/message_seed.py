"""Messages delivered through the real pipeline (the real dispatcher and retry worker, real
receivers on loopback): one message whose delivery is delivered to one subscription,
retrying at another (it asked for `Retry-After: 3600`) and dead at a third (it failed every
attempt of the tests' short schedule). What the events pages' tests and screenshots show."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from relay.core.events import event_from_message
from relay.core.models import Event, Message, Subscription
from relay.settings import Settings
from relay.store import Store
from relay.store.connection import async_redis
from tests.support import Receiver, wait_until
from workers.dispatcher import open_dispatcher
from workers.retry_worker import run_retry_worker

ORDER_TEXT = "<b>Order</b> #1234 shipped & on its way\nReply STOP to opt out"
OTHER_TEXT = "Your code is 493021"
SOURCE_ID = "src_shop"  # the story's subscriptions take only this source's messages
SENDER, RECIPIENT = "61455123456", "61480000111"
OTHER_SENDER, OTHER_RECIPIENT = "61499888777", "61480000222"


@dataclass(frozen=True)
class Story:
    """The seeded message (`event`), another one (`other`), the three subscriptions and the
    receiver behind the one that delivers."""

    event: Event
    other: Event
    delivered: Subscription
    retrying: Subscription
    dead: Subscription
    receiver: Receiver


def sms(document_id: str, text: str, *, sender: str, recipient: str, timestamp: int) -> Message:
    return Message(
        kind="incoming",
        document_id=document_id,
        timestamp=timestamp,
        text=text,
        sender=sender,
        recipient=recipient,
    )


async def _subscribe(store: Store, url: str, description: str) -> Subscription:
    return await store.subscriptions.create(
        url=url,
        event_types=None,
        source_ids=(SOURCE_ID,),
        description=description,
        headers={},
        enabled=True,
        now=time.time(),
    )


async def tell_a_story(
    store: Store, settings: Settings, serve_app: Callable[..., str], *, when: int | None = None
) -> Story:
    """Deliver two messages to three subscriptions until the first is delivered at one,
    retrying at the next and dead at the third (the second message ends the same way)."""
    ok = Receiver()
    slow = Receiver(default=503, headers={"Retry-After": "3600"})
    broken = Receiver(default=500)
    delivered = await _subscribe(store, serve_app(ok.app()) + "/", "CRM sync")
    retrying = await _subscribe(store, serve_app(slow.app()) + "/", "Order bot")
    dead = await _subscribe(store, serve_app(broken.app()) + "/", "Legacy archive")
    stamp = int(time.time()) - 120 if when is None else when
    now_ms = int(time.time() * 1000)
    first = sms("doc-7731", ORDER_TEXT, sender=SENDER, recipient=RECIPIENT, timestamp=stamp)
    second = sms("doc-9902", OTHER_TEXT, sender=OTHER_SENDER, recipient=OTHER_RECIPIENT,
                 timestamp=stamp + 60)  # fmt: skip
    event = event_from_message(first, source_id=SOURCE_ID, created_at_ms=now_ms)
    other = event_from_message(second, source_id=SOURCE_ID, created_at_ms=now_ms + 1)
    await store.events.add([event, other], retention_s=settings.event_retention_s)
    async with open_dispatcher(settings) as dispatcher:
        await dispatcher.run_until_idle()

    async def all_dead() -> bool:
        await asyncio.to_thread(run_retry_worker, settings, burst=True)
        found = await store.dead_letters.page(limit=100, cursor=None)
        return sum(d.subscription_id == dead.id for d in found.items) == 2

    await wait_until(all_dead, what="both messages dead at the broken subscription")
    return Story(event, other, delivered, retrying, dead, ok)


async def tell_a_story_alone(
    settings: Settings, serve_app: Callable[..., str], *, when: int | None = None
) -> Story:
    """`tell_a_story` with its own Redis client (for browser tests and screenshots)."""
    client = async_redis(settings.require_redis_url())
    try:
        return await tell_a_story(Store.create(client, settings), settings, serve_app, when=when)
    finally:
        await client.aclose()
