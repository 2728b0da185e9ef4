"""Subscriber faults end to end (real dispatcher, real RQ workers, real receivers): what the
single-attempt tests in test_delivery.py cannot show."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest

from relay.delivery.dispatcher import Dispatcher
from relay.settings import Settings
from relay.store import Store
from tests.delivery.test_dispatcher import (  # noqa: F401 (fixtures)
    add_events,
    attempts_of,
    dispatcher,
    retries_until,
    store,
    subscribe,
)
from tests.support import Receiver


@pytest.mark.parametrize("retry_after", ["2", "date"])
async def test_429_retry_after_is_honoured_by_the_retry_queue(
    retry_after: str,
    settings: Settings,
    store: Store,  # noqa: F811
    serve_app: Callable[..., str],
    dispatcher: Callable[..., Awaitable[Dispatcher]],  # noqa: F811
) -> None:
    # The schedule says retry after 0.2 s; the subscriber asks for 2 s.
    value = retry_after
    if retry_after == "date":
        value = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 3))
    receiver = Receiver(statuses=[429], headers={"Retry-After": value})
    subscription = await subscribe(store, serve_app(receiver.app()), receiver)
    (event,) = await add_events(store, 1)
    await (await dispatcher()).run_until_idle()
    await retries_until(
        settings, lambda: len(receiver.received) >= 2, what="the retry", timeout_s=30
    )

    first, second = receiver.received[:2]
    assert second.at - first.at >= 1.9  # not the schedule's 0.2 s
    assert [r.webhook_id for r in receiver.received] == [event.id, event.id]
    assert all(r.verified for r in receiver.received)
    attempts = await attempts_of(store, subscription.id)
    assert [(a.attempt, a.status_code) for a in attempts] == [(1, 429), (2, 204)]
