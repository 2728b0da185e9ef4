"""The capped collection: past `capacity` the oldest messages silently disappear."""

from __future__ import annotations

from collections.abc import Callable

from relay.simulator.app import SimulatorConfig
from tests.simulator.conftest import START, Sim


def test_oldest_messages_disappear_past_the_capacity(start_simulator: Callable[..., Sim]) -> None:
    sim = start_simulator(SimulatorConfig(capacity=10))
    ids = sim.add_bulk(15, timestamp=START, per_second=1)

    page = sim.poll(0)

    assert [m["documentId"] for m in page["incomingMessages"]] == ids[5:]
    assert sim.stats()["messages"] == 10


def test_capacity_is_per_account(start_simulator: Callable[..., Sim]) -> None:
    sim = start_simulator(SimulatorConfig(capacity=3, accounts={"a@r": "a", "b@r": "b"}))
    sim.add_bulk(5, username="a@r")
    sim.add_bulk(2, username="b@r")

    assert len(sim.poll(0, username="a@r", password="a")["incomingMessages"]) == 3
    assert len(sim.poll(0, username="b@r", password="b")["incomingMessages"]) == 2


def test_lowering_capacity_drops_the_oldest_at_once(sim: Sim) -> None:
    ids = sim.add_bulk(8, timestamp=START, per_second=1)

    sim.configure(capacity=3)

    listed = sim.http.get("/_sim/messages").json()["messages"]
    assert [m["documentId"] for m in listed] == ids[5:]


def test_a_reply_to_a_dropped_message_keeps_its_origin_id(
    start_simulator: Callable[..., Sim],
) -> None:
    sim = start_simulator(SimulatorConfig(capacity=1))
    (outgoing,) = sim.add({"kind": "outgoing", "timestamp": START})
    sim.add({"kind": "incoming", "timestamp": START + 1, "originDocumentId": outgoing})

    (reply,) = sim.poll(0)["incomingMessages"]

    assert reply["originDocumentId"] == outgoing
    assert sim.poll(0)["outgoingMessages"] == []
