"""`POST /v1/subscriptions/{id}/recover`: what was not delivered goes again, and only that,
as a real receiver sees it (a stepped dispatcher and real RQ worker bursts)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from relay.core.models import Event
from relay.delivery.dispatcher import Dispatcher
from relay.settings import Settings
from relay.store import Store
from tests.api.conftest import message
from tests.support import Receiver, run_due_retries
from workers.dispatcher import open_dispatcher

T = 1_700_000_000


@pytest.fixture
def api_settings(api_settings: Settings) -> Settings:
    """One retry, an hour away: a failure stays scheduled until the test makes it due."""
    return api_settings.replace(retry_schedule_s=(3600.0,))


@pytest.fixture
async def dispatcher(api_settings: Settings) -> AsyncIterator[Dispatcher]:
    async with open_dispatcher(api_settings) as stepped:
        yield stepped


async def test_recover_redelivers_only_the_dead_dropped_and_never_delivered(
    client: httpx.AsyncClient,
    store: Store,
    api_settings: Settings,
    redis_url: str,
    dispatcher: Dispatcher,
    serve_app: Callable[..., str],
    add_events: Callable[..., object],
) -> None:
    async def add(document_id: str, offset_s: int) -> Event:
        (event,) = await add_events(message(document_id, timestamp=T + offset_s))  # type: ignore[misc]
        return event  # type: ignore[no-any-return]

    async def set_enabled(enabled: bool) -> None:
        changed = await client.patch(f"/v1/subscriptions/{sub}", json={"enabled": enabled})
        assert changed.status_code == 200

    receiver = Receiver(default=200)
    older = await add("older", 0)  # recorded before the subscription: replay's, not recover's
    created = await client.post("/v1/subscriptions", json={"url": serve_app(receiver.app()) + "/"})
    sub = created.json()["id"]

    delivered = await add("delivered", 1)
    await dispatcher.run_until_idle()
    receiver.default = 500
    dead = await add("dead", 2)
    await dispatcher.run_until_idle()
    await run_due_retries(api_settings, redis_url, sub)  # the one retry fails: dead letter
    dropped = await add("dropped", 3)
    await dispatcher.run_until_idle()
    await set_enabled(False)
    await run_due_retries(api_settings, redis_url, sub)  # its retry finds it disabled
    never = await add("never", 4)  # recorded while disabled: never routed to it
    await dispatcher.run_until_idle()
    await set_enabled(True)
    retrying = await add("retrying", 5)
    await dispatcher.run_until_idle()  # fails; its retry waits an hour

    states = {}
    for event in (older, delivered, dead, dropped, never, retrying):
        rows = (await client.get(f"/v1/events/{event.id}/deliveries")).json()["data"]
        states[event.id] = [row["state"] for row in rows if row["subscription_id"] == sub]
    assert states == {
        older.id: [], delivered.id: ["delivered"], dead.id: ["dead"],
        dropped.id: ["dropped"], never.id: ["pending"], retrying.id: ["retrying"],
    }  # fmt: skip
    (dead_letter,) = (await client.get("/v1/dead-letters")).json()["data"]

    receiver.default = 200
    before = len(receiver.received)
    recovered = await client.post(
        f"/v1/subscriptions/{sub}/recover", json={"since": T, "until": T + 10}
    )
    assert recovered.status_code == 202 and recovered.json() == {"queued": 3}
    await dispatcher.run_until_idle()

    arrived = [r.webhook_id for r in receiver.received[before:]]
    assert sorted(arrived) == sorted([dead.id, dropped.id, never.id])
    assert (await client.get(f"/v1/dead-letters/{dead_letter['id']}")).status_code == 404
    assert (await client.get("/v1/dead-letters")).json()["data"] == []
    for event in (dead, dropped, never):
        (row,) = [
            r
            for r in (await client.get(f"/v1/events/{event.id}/deliveries")).json()["data"]
            if r["subscription_id"] == sub
        ]
        assert row["state"] == "delivered"
    again = await client.post(f"/v1/subscriptions/{sub}/recover", json={"since": T})
    assert again.json() == {"queued": 0}  # the retrying one stays with its own retry
    audit = (await client.get("/v1/audit-log")).json()["data"]
    assert [e["action"] for e in audit[:2]] == ["subscription.recover"] * 2


async def test_recover_refuses_a_disabled_subscription_and_bad_windows(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post(
        "/v1/subscriptions", json={"url": "https://example.com/hook", "enabled": False}
    )
    sub = created.json()["id"]
    disabled = await client.post(f"/v1/subscriptions/{sub}/recover", json={"since": 0})
    assert disabled.status_code == 409
    assert disabled.headers["content-type"] == "application/problem+json"
    missing = await client.post(f"/v1/subscriptions/{sub}/recover", json={})
    assert missing.status_code == 422 and missing.json()["field"] == "since"
    unknown = await client.post("/v1/subscriptions/sub_nope/recover", json={"since": 0})
    assert unknown.status_code == 404
