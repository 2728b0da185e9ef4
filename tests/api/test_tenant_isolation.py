"""Tenant isolation end to end: two tenants, a source of each on the real simulator, the
real poller and dispatcher, a receiver per tenant subscribed with the tenant's own key and
no source filter. Each receiver gets only its tenant's messages; replay and redelivery
with a tenant key stay within the tenant; the operator's unfiltered subscription gets all.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
from starlette.applications import Starlette

from relay.core.access import OPERATOR_ONLY_SCOPES, SCOPES
from relay.simulator.app import SimulatorConfig, create_app
from tests.support import Receiver, wait_until

ACCOUNTS = {"acme@r": "pw-acme", "globex@r": "pw-globex"}
T = int(time.time()) - 3600
TENANT_SCOPES = [s for s in SCOPES if s not in OPERATOR_ONLY_SCOPES]


def _as(app: Starlette, key: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.AsyncClient(transport=transport, base_url="http://relay.test", headers=headers)


def _sources_of(receiver: Receiver) -> set[str]:
    return {json.loads(r.body)["data"]["source_id"] for r in receiver.snapshot()}


async def test_each_tenant_receives_only_its_own_messages_and_replays_stay_inside(
    app: Starlette,
    client: httpx.AsyncClient,
    serve_app: Callable[..., str],
    roles: None,
) -> None:
    sim_url = serve_app(create_app(SimulatorConfig(accounts=dict(ACCOUNTS))))
    receivers = {"acme": Receiver(), "globex": Receiver(), "operator": Receiver()}
    urls = {name: serve_app(r.app()) + "/" for name, r in receivers.items()}
    tenants, sources, keys, subs = {}, {}, {}, {}
    for name in ("acme", "globex"):
        tenants[name] = (await client.post("/v1/tenants", json={"name": name})).json()["id"]
        key = await client.post(
            "/v1/keys", json={"name": name, "scopes": TENANT_SCOPES, "tenant_id": tenants[name]}
        )
        keys[name] = key.json()["key"]
    operator_sub = await client.post("/v1/subscriptions", json={"url": urls["operator"]})
    assert operator_sub.status_code == 201
    for name in ("acme", "globex"):
        async with _as(app, keys[name]) as tenant:
            source = await tenant.post(
                "/v1/sources",
                json={
                    "username": f"{name}@r", "password": ACCOUNTS[f"{name}@r"],
                    "base_url": sim_url, "poll_interval": 0.1, "start_from": T - 10,
                },
            )  # fmt: skip
            assert source.status_code == 201, source.text
            sources[name] = source.json()["id"]
            sub = await tenant.post("/v1/subscriptions", json={"url": urls[name]})
            assert sub.json()["tenant_id"] == tenants[name] and sub.json()["source_ids"] is None
            subs[name] = sub.json()["id"]

    async with httpx.AsyncClient(base_url=sim_url) as sim:
        for name, count in (("acme", 3), ("globex", 4)):
            added = await sim.post(
                "/_sim/messages", json={"username": f"{name}@r", "count": count, "timestamp": T}
            )
            assert added.status_code == 201, added.text

    def delivered(acme: int, globex: int) -> Callable[[], bool]:
        return lambda: (
            len(receivers["acme"].received) >= acme
            and len(receivers["globex"].received) >= globex
            and len(receivers["operator"].received) >= 7
        )

    await wait_until(delivered(3, 4), what="every tenant's messages delivered", timeout_s=30)
    assert len(receivers["acme"].received) == 3 and len(receivers["globex"].received) == 4
    assert _sources_of(receivers["acme"]) == {sources["acme"]}
    assert _sources_of(receivers["globex"]) == {sources["globex"]}
    assert _sources_of(receivers["operator"]) == {sources["acme"], sources["globex"]}

    async with _as(app, keys["acme"]) as acme:
        replay = await acme.post(f"/v1/subscriptions/{subs['acme']}/replay", json={"since": 0})
        assert replay.json() == {"queued": 3}
        foreign = await acme.post(f"/v1/subscriptions/{subs['globex']}/replay", json={"since": 0})
        assert foreign.status_code == 404
        events = (await acme.get("/v1/events")).json()["data"]
        assert {e["source_id"] for e in events} == {sources["acme"]} and len(events) == 3
        redeliver = await acme.post(f"/v1/events/{events[0]['id']}/redeliver", json={})
        assert redeliver.json() == {"queued": 1}  # its own subscription, not the operator's
        globex_events = await client.get("/v1/events", params={"source_id": sources["globex"]})
        globex_event = globex_events.json()["data"][0]["id"]
        stolen = await acme.post(f"/v1/events/{globex_event}/redeliver", json={})
        assert stolen.status_code == 404
        aimed = await acme.post(
            f"/v1/events/{events[0]['id']}/redeliver", json={"subscription_id": subs["globex"]}
        )
        assert aimed.status_code == 404

    await wait_until(delivered(3 + 3 + 1, 4), what="the replay and the redelivery", timeout_s=30)
    assert _sources_of(receivers["acme"]) == {sources["acme"]}
    assert len(receivers["globex"].received) == 4
    assert len(receivers["operator"].received) == 7
