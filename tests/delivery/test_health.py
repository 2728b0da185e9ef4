"""Subscription health end to end: real Redis, the real dispatcher, real RQ workers, and an
operator receiver that verifies every operator event with the `standardwebhooks` library."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio
from standardwebhooks import Webhook

from relay.core.health import OPERATOR_SUBSCRIPTION_ID
from relay.core.signing import new_secret
from relay.delivery.dispatcher import Dispatcher
from relay.settings import Settings
from relay.store import Store
from tests.delivery.test_dispatcher import add_events, retries_until, subscribe
from tests.support import Receiver, wait_until
from workers.dispatcher import open_dispatcher

OPERATOR_SECRET = new_secret()


@pytest.fixture
def operator() -> Receiver:
    return Receiver(secret=OPERATOR_SECRET)


@pytest.fixture
def health_settings(
    settings: Settings, operator: Receiver, serve_app: Callable[..., str]
) -> Settings:
    """A 1 s disable window, six fast retries, and operator events to `operator`."""
    return settings.replace(
        disable_after_s=1,
        retry_schedule_s=(0.4,) * 6,
        operator_webhook_url=serve_app(operator.app()) + "/",
        operator_webhook_secret=OPERATOR_SECRET,
    )


@pytest.fixture
def store(aredis: redis.asyncio.Redis, health_settings: Settings) -> Store:
    return Store.create(aredis, health_settings)


@pytest.fixture
async def dispatcher(health_settings: Settings) -> AsyncIterator[Dispatcher]:
    async with contextlib.AsyncExitStack() as stack:
        yield await stack.enter_async_context(open_dispatcher(health_settings))


def operator_events(operator: Receiver) -> list[dict[str, Any]]:
    """The bodies the operator receiver got, each verified with `standardwebhooks`."""
    bodies = []
    for received in operator.snapshot():
        Webhook(OPERATOR_SECRET).verify(received.body, received.headers)
        bodies.append(json.loads(received.body))
    return bodies


def types_of(operator: Receiver) -> list[str]:
    return [body["type"] for body in operator_events(operator)]


async def until_operator_gets(
    dispatcher: Dispatcher, operator: Receiver, event_type: str, *, timeout_s: float = 20
) -> dict[str, Any]:
    """Step the dispatcher (operator events go through the stream) until `event_type` came."""

    async def arrived() -> bool:
        await dispatcher.run_until_idle()
        return event_type in types_of(operator)

    await wait_until(arrived, what=event_type, timeout_s=timeout_s)
    return next(b for b in operator_events(operator) if b["type"] == event_type)


async def test_a_subscription_failing_for_the_disable_window_is_disabled_and_reported(
    health_settings: Settings,
    store: Store,
    serve_app: Callable[..., str],
    dispatcher: Dispatcher,
    operator: Receiver,
) -> None:
    receiver = Receiver(default=500)
    subscription = await subscribe(store, serve_app(receiver.app()), receiver)
    await add_events(store, 1)
    await dispatcher.run_until_idle()

    async def disabled() -> bool:
        return not (await store.subscriptions.get(subscription.id)).enabled

    await retries_until(health_settings, disabled, what="the subscription disabled")
    body = await until_operator_gets(dispatcher, operator, "relay.subscription.disabled")

    reason = (await store.subscriptions.get(subscription.id)).disabled_reason
    assert reason is not None and "RELAY_DISABLE_AFTER" in reason
    assert body["data"]["subscription_id"] == subscription.id
    assert body["data"]["disabled_reason"] == reason
    assert body["data"]["last_error"] == "HTTP 500"
    assert all(r.verified for r in operator.snapshot())
    assert types_of(operator).count("relay.subscription.failing") == 1
    assert types_of(operator).count("relay.subscription.disabled") == 1
    # The window (1 s) ended before the schedule (7 attempts) did: disabled, not dead.
    assert 2 <= len(receiver.snapshot()) < 7
    assert not (await store.dead_letters.page(limit=10, cursor=None)).items


async def test_failing_then_recovered_is_told_once_each_not_per_attempt(
    health_settings: Settings,
    aredis: redis.asyncio.Redis,
    serve_app: Callable[..., str],
    operator: Receiver,
) -> None:
    settings = health_settings.replace(disable_after_s=3600)
    store = Store.create(aredis, settings)
    receiver = Receiver(statuses=[500, 500, 500, 500])
    subscription = await subscribe(store, serve_app(receiver.app()), receiver)
    await add_events(store, 2)
    async with open_dispatcher(settings) as dispatcher:
        await dispatcher.run_until_idle()  # two failures: one "failing"

        async def delivered_both() -> bool:
            return len(receiver.delivered()) == 2

        await retries_until(settings, delivered_both, what="both events delivered")
        await until_operator_gets(dispatcher, operator, "relay.subscription.recovered")

    assert types_of(operator) == ["relay.subscription.failing", "relay.subscription.recovered"]
    (record,), _ = await store.health.read_many([subscription.id], now=0)
    assert record.failing_since is None and record.last_success_at is not None
    assert record.last_error == "HTTP 500"
    assert (await store.subscriptions.get(subscription.id)).enabled


async def test_a_dead_letter_is_reported_and_failing_operator_deliveries_never_loop(
    health_settings: Settings,
    aredis: redis.asyncio.Redis,
    serve_app: Callable[..., str],
    operator: Receiver,
) -> None:
    settings = health_settings.replace(disable_after_s=3600, retry_schedule_s=(0.2, 0.2))
    store = Store.create(aredis, settings)
    operator.default = 500  # the operator's endpoint fails every delivery too
    receiver = Receiver(default=500)
    subscription = await subscribe(store, serve_app(receiver.app()), receiver)
    await add_events(store, 1)
    async with open_dispatcher(settings) as dispatcher:
        await dispatcher.run_until_idle()

        async def settled() -> bool:
            await dispatcher.run_until_idle()
            page = await store.dead_letters.page(limit=10, cursor=None)
            return len(page.items) == 3  # the delivery and both operator events

        await retries_until(settings, settled, what="three dead letters")
        for _ in range(3):  # nothing more comes: no event about the operator's own failures
            await retries_until(settings, lambda: True, what="a quiet round")
            await dispatcher.run_until_idle()

    bodies = operator_events(operator)
    assert sorted({b["type"] for b in bodies}) == [
        "relay.delivery.dead_lettered",
        "relay.subscription.failing",
    ]
    assert len(bodies) == 2 * 3  # each of the two events: first attempt + two retries
    assert {b["data"]["subscription_id"] for b in bodies} == {subscription.id}
    dead = await store.dead_letters.page(limit=10, cursor=None)
    assert {d.subscription_id for d in dead.items} == {subscription.id, OPERATOR_SUBSCRIPTION_ID}
