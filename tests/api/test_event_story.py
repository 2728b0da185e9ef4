"""Finding a message and its story end to end: the real simulator, poller, dispatcher, RQ
retry worker and loopback receivers; the API finds the message by documentId and by number,
and tells each subscription's delivery (delivered, retrying, dead) and every attempt."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from relay.core.retry import DEFAULT_JITTER
from relay.settings import Settings
from relay.simulator.app import SimulatorConfig, create_app
from relay.store import Store
from tests.delivery.test_dispatcher import retries_until
from tests.support import Receiver, run_due_retries, wait_until

ACCOUNT, PASSWORD = "story@r", "pw-story"
T = int(time.time()) - 600
CUSTOMER = "61400000001"
SHORT_CODE = "61500"


@pytest.fixture
def api_settings(api_settings: Settings) -> Settings:
    """An immediate first retry, then one an hour away: a failing delivery stays retrying
    until the test makes that retry due."""
    return api_settings.replace(retry_schedule_s=(0.0, 3600.0))


async def _source(client: httpx.AsyncClient, sim_url: str) -> str:
    source = await client.post(
        "/v1/sources",
        json={
            "username": ACCOUNT, "password": PASSWORD, "base_url": sim_url,
            "poll_interval": 0.1, "start_from": T - 10,
        },
    )  # fmt: skip
    assert source.status_code == 201, source.text
    return str(source.json()["id"])


async def _subscribe(client: httpx.AsyncClient, url: str) -> str:
    created = await client.post("/v1/subscriptions", json={"url": url})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _send_sms(sim_url: str, *messages: dict[str, Any]) -> list[str]:
    async with httpx.AsyncClient(base_url=sim_url) as sim:
        added = await sim.post("/_sim/messages", json={"username": ACCOUNT, "messages": messages})
        assert added.status_code == 201, added.text
        return list(added.json()["documentIds"])


async def test_a_message_is_found_by_document_id_and_number_and_its_deliveries_told(
    app: Starlette,
    client: httpx.AsyncClient,
    serve_app: Callable[..., str],
    api_settings: Settings,
    store: Store,
    redis_url: str,
    roles: None,
) -> None:
    sim_url = serve_app(create_app(SimulatorConfig(accounts={ACCOUNT: PASSWORD})))
    ok, flaky, dead = Receiver(default=200), Receiver(default=503), Receiver(default=500)
    subs = {
        name: await _subscribe(client, serve_app(r.app()) + "/")
        for name, r in (("ok", ok), ("flaky", flaky), ("dead", dead))
    }
    await _source(client, sim_url)
    other_id, wanted_id = await _send_sms(
        sim_url,
        {"kind": "incoming", "from": "61400000002", "recipient": SHORT_CODE,
         "text": " other", "timestamp": T},
        {"kind": "incoming", "from": CUSTOMER, "recipient": SHORT_CODE, "text": " STOP",
         "timestamp": T + 1},
    )  # fmt: skip
    await wait_until(
        lambda: all(len(r.received) == 2 for r in (ok, flaky, dead)), what="first attempts"
    )
    await retries_until(
        api_settings,
        lambda: len(flaky.received) == 4 and len(dead.received) == 4,
        what="the immediate retries",
    )
    await run_due_retries(api_settings, redis_url, subs["dead"])
    await wait_until(lambda: len(dead.received) == 6, what="the dead subscription's last tries")

    # By documentId: exactly the message, with the id its webhooks carried.
    found = (await client.get("/v1/events", params={"document_id": wanted_id})).json()
    (event,) = found["data"]
    assert found["next_cursor"] is None
    assert event["payload"]["data"]["documentId"] == wanted_id
    assert event["payload"]["data"]["from"] == CUSTOMER
    delivered_ids = {r.webhook_id for r in ok.received}
    assert event["id"] in delivered_ids
    # By number, exactly as sent (no prefix matching), from either side.
    by_phone = (await client.get("/v1/events", params={"phone": CUSTOMER})).json()["data"]
    assert [e["id"] for e in by_phone] == [event["id"]]
    by_recipient = (await client.get("/v1/events", params={"recipient": SHORT_CODE})).json()
    assert [e["payload"]["data"]["documentId"] for e in by_recipient["data"]] == [
        wanted_id, other_id,
    ]  # fmt: skip
    assert (await client.get("/v1/events", params={"from": SHORT_CODE})).json()["data"] == []
    unencoded = await client.get(f"/v1/events?phone=+{CUSTOMER}")  # "+" decodes to a space
    assert unencoded.status_code == 422 and "%2B" in unencoded.json()["detail"]
    assert (await client.get("/v1/events", params={"phone": CUSTOMER[:-1]})).json()["data"] == []
    window = await client.get("/v1/events", params={"since": T + 1, "until": T + 1})
    assert [e["id"] for e in window.json()["data"]] == [event["id"]]

    deliveries = (await client.get(f"/v1/events/{event['id']}/deliveries")).json()["data"]
    by_sub = {row["subscription_id"]: row for row in deliveries}
    assert set(by_sub) == set(subs.values())
    assert by_sub[subs["ok"]] | {"last_attempt_at": None} == {
        "subscription_id": subs["ok"], "url": by_sub[subs["ok"]]["url"], "state": "delivered",
        "attempts": 1, "last_status_code": 200, "last_attempt_at": None,
        "next_attempt_at": None,
    }  # fmt: skip
    assert by_sub[subs["ok"]]["last_attempt_at"] is not None
    flaky_row = by_sub[subs["flaky"]]
    assert (flaky_row["state"], flaky_row["attempts"], flaky_row["last_status_code"]) == (
        "retrying", 2, 503,
    )  # fmt: skip
    soonest = time.time() + 3600 * (1 - DEFAULT_JITTER) - 60  # the second retry, jittered
    assert flaky_row["next_attempt_at"] is not None and flaky_row["next_attempt_at"] > (
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(soonest))
    )
    dead_row = by_sub[subs["dead"]]
    assert (dead_row["state"], dead_row["attempts"], dead_row["last_status_code"]) == (
        "dead", 3, 500,
    )  # fmt: skip
    assert dead_row["next_attempt_at"] is None

    attempts = (await client.get(f"/v1/events/{event['id']}/attempts")).json()["data"]
    assert len(attempts) == 6 and {a["event_id"] for a in attempts} == {event["id"]}
    assert [a["at"] for a in attempts] == sorted((a["at"] for a in attempts), reverse=True)
    assert sorted((a["subscription_id"], a["attempt"]) for a in attempts) == sorted(
        [(subs["ok"], 1), (subs["flaky"], 1), (subs["flaky"], 2)]
        + [(subs["dead"], n) for n in (1, 2, 3)]
    )
    assert attempts[0] == {**attempts[0], "subscription_id": subs["dead"], "attempt": 3,
                           "status_code": 500}  # fmt: skip

    # The subscription's own log, filtered by outcome and event.
    failed = await client.get(
        f"/v1/subscriptions/{subs['flaky']}/attempts",
        params={"outcome": "failed", "event_id": event["id"]},
    )
    assert [(a["event_id"], a["attempt"]) for a in failed.json()["data"]] == [
        (event["id"], 2), (event["id"], 1),
    ]  # fmt: skip
    succeeded = await client.get(
        f"/v1/subscriptions/{subs['ok']}/attempts", params={"outcome": "succeeded", "limit": 1}
    )
    page = succeeded.json()
    assert len(page["data"]) == 1 and page["data"][0]["status_code"] == 200
    rest = await client.get(
        f"/v1/subscriptions/{subs['ok']}/attempts",
        params={"outcome": "succeeded", "limit": 1, "cursor": page["next_cursor"]},
    )
    assert len(rest.json()["data"]) == 1 and rest.json()["next_cursor"] is None
    assert {page["data"][0]["event_id"], rest.json()["data"][0]["event_id"]} == delivered_ids
    none = await client.get(
        f"/v1/subscriptions/{subs['ok']}/attempts", params={"outcome": "failed"}
    )
    assert none.json() == {"data": [], "next_cursor": None}
