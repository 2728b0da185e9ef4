"""The traffic generator: roughly the asked rate, a realistic mix, stopping on demand."""

from __future__ import annotations

import time

from tests.simulator.conftest import Sim
from tests.support import wait_until_sync


def _run_traffic(sim: Sim, body: dict[str, object], count: int) -> float:
    """Seconds the generator took to add `count` messages, stopped right after."""
    before = sim.stats()["messages"]
    started = time.monotonic()
    response = sim.http.post("/_sim/traffic", json=body)
    assert response.status_code == 200, response.text
    wait_until_sync(lambda: sim.stats()["messages"] - before >= count, timeout_s=20)
    elapsed = time.monotonic() - started
    sim.http.post("/_sim/traffic", json={"rate": 0})
    return elapsed


def test_traffic_adds_roughly_the_asked_rate(sim: Sim) -> None:
    elapsed = _run_traffic(sim, {"rate": 50}, 50)

    assert 0.6 <= elapsed <= 2.5  # 1 s asked


def test_traffic_keeps_up_with_hundreds_per_second(sim: Sim) -> None:
    elapsed = _run_traffic(sim, {"rate": 400}, 400)

    assert 0.6 <= elapsed <= 2.5


def test_traffic_stops_at_rate_zero(sim: Sim) -> None:
    _run_traffic(sim, {"rate": 200}, 40)
    settled = sim.stats()["messages"]

    time.sleep(0.2)

    assert sim.stats()["messages"] == settled
    assert sim.http.get("/_sim/traffic").json()["rate"] == 0


def test_traffic_mixes_incoming_outgoing_and_replies(sim: Sim) -> None:
    _run_traffic(sim, {"rate": 500}, 300)

    listed = sim.http.get("/_sim/messages").json()["messages"]

    outgoing = {m["documentId"] for m in listed if m["kind"] == "outgoing"}
    replies = [m for m in listed if "originDocumentId" in m]
    assert outgoing
    assert any(m["kind"] == "incoming" and "originDocumentId" not in m for m in listed)
    assert replies
    assert all(reply["originDocumentId"] in outgoing for reply in replies)


def test_traffic_is_spread_over_the_given_accounts(sim: Sim) -> None:
    for name in ("a@r", "b@r"):
        sim.http.post("/_sim/accounts", json={"username": name, "password": "x"})

    _run_traffic(sim, {"rate": 200, "usernames": ["a@r", "b@r"]}, 60)

    counts = {
        name: len(sim.http.get("/_sim/messages", params={"username": name}).json()["messages"])
        for name in ("demo@reseller", "a@r", "b@r")
    }
    assert counts["demo@reseller"] == 0
    assert counts["a@r"] > 0
    assert abs(counts["a@r"] - counts["b@r"]) <= 1
