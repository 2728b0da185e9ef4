"""Each quirk switch, and the content the upstream keeps exactly (ids, numbers, texts)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from relay.simulator.app import SimulatorConfig
from tests.simulator.conftest import START, Sim


def test_document_ids_are_objectids_starting_with_the_message_second(sim: Sim) -> None:
    sim.add({"kind": "incoming", "timestamp": START}, {"kind": "outgoing", "timestamp": START + 7})

    page = sim.poll(0)

    for message in page["incomingMessages"] + page["outgoingMessages"]:
        document_id = message["documentId"]
        assert len(document_id) == 24
        assert int(document_id, 16) >= 0
        assert int(document_id[:8], 16) == message["timestamp"]


def test_messages_added_without_timestamp_are_stamped_by_the_clock(sim: Sim) -> None:
    sim.clock.now = START + 42.9
    (document_id,) = sim.add({"kind": "incoming"})

    (message,) = sim.poll(0)["incomingMessages"]

    assert message["timestamp"] == START + 42
    assert document_id.startswith(f"{START + 42:08x}")


def test_text_is_returned_exactly_with_leading_spaces(sim: Sim) -> None:
    texts = [" ggghhh", "  two spaces", "tab\tand\nnewline ", "Café 👍", ""]
    sim.add(*({"kind": "incoming", "text": text, "timestamp": START} for text in texts))

    page = sim.poll(0)

    assert [m["text"] for m in page["incomingMessages"]] == texts


def test_reply_carries_origin_document_id_of_the_outgoing_message(sim: Sim) -> None:
    (outgoing,) = sim.add({"kind": "outgoing", "timestamp": START, "recipient": "61555879987"})
    sim.add(
        {"kind": "incoming", "timestamp": START + 1, "from": "61555879987"},
        {"kind": "incoming", "timestamp": START + 2, "originDocumentId": outgoing},
    )

    plain, reply = sim.poll(0)["incomingMessages"]

    assert "originDocumentId" not in plain
    assert reply["originDocumentId"] == outgoing


def test_numbers_are_digit_strings_by_default(sim: Sim) -> None:
    sim.add(
        {"kind": "incoming", "from": "61555879987", "recipient": "61500079987"},
        {"kind": "outgoing", "recipient": "61255588885"},
    )

    page = sim.poll(0)

    assert page["incomingMessages"][0]["from"] == "61555879987"
    assert page["incomingMessages"][0]["recipient"] == "61500079987"
    assert page["outgoingMessages"][0]["recipient"] == "61255588885"
    assert set(page["outgoingMessages"][0]) == {"documentId", "text", "timestamp", "recipient"}


def test_integer_ids_switch_gives_increasing_bare_integers(sim: Sim) -> None:
    (outgoing,) = sim.add({"kind": "outgoing", "timestamp": START})
    sim.add({"kind": "incoming", "timestamp": START + 1, "originDocumentId": outgoing})
    sim.configure(integer_ids=True)

    page = sim.poll(0)

    out_id = page["outgoingMessages"][0]["documentId"]
    reply = page["incomingMessages"][0]
    assert isinstance(out_id, int)
    assert isinstance(reply["documentId"], int)
    assert reply["documentId"] > out_id
    assert reply["originDocumentId"] == out_id


def test_integer_ids_switch_also_applies_to_the_control_routes_as_strings(sim: Sim) -> None:
    sim.configure(integer_ids=True)
    (document_id,) = sim.add({"kind": "incoming", "timestamp": START})

    listed = sim.http.get("/_sim/messages").json()["messages"]

    assert document_id.isdigit()
    assert listed[0]["documentId"] == document_id
    assert sim.poll(0)["incomingMessages"][0]["documentId"] == int(document_id)


def test_integer_numbers_switch_gives_bare_json_numbers(sim: Sim) -> None:
    sim.configure(integer_numbers=True)
    sim.add(
        {"kind": "incoming", "from": "61555879987", "recipient": "61500079987"},
        {"kind": "outgoing", "recipient": "61255588885"},
    )

    page = sim.poll(0)

    assert page["incomingMessages"][0]["from"] == 61555879987
    assert page["incomingMessages"][0]["recipient"] == 61500079987
    assert page["outgoingMessages"][0]["recipient"] == 61255588885


def test_recpipent_switch_misspells_the_outgoing_recipient_only(sim: Sim) -> None:
    sim.configure(recpipent=True)
    sim.add({"kind": "incoming"}, {"kind": "outgoing", "recipient": "61255588885"})

    page = sim.poll(0)

    assert page["outgoingMessages"][0]["recpipent"] == "61255588885"
    assert "recipient" not in page["outgoingMessages"][0]
    assert "recipient" in page["incomingMessages"][0]


def test_omit_has_more_switch_leaves_the_field_out(start_simulator: Callable[..., Sim]) -> None:
    sim = start_simulator(SimulatorConfig(omit_has_more=True, page_size=1))
    sim.add({"kind": "incoming"}, {"kind": "incoming"})

    assert "hasMoreMessages" not in sim.poll(0)
    assert "hasMoreMessages" not in sim.poll(START + 10)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("zero", {"newestMessageTimestamp": 0}),
        ("since", {"newestMessageTimestamp": START}),
        ("missing", {}),
    ],
)
def test_empty_page_newest_timestamp_follows_the_switch(
    sim: Sim, mode: str, expected: dict[str, int]
) -> None:
    sim.configure(empty_newest=mode)

    body = sim.poll(START)

    assert {k: v for k, v in body.items() if k == "newestMessageTimestamp"} == expected
    assert body["incomingMessages"] == []


def test_switches_set_at_creation_are_reported(start_simulator: Callable[..., Sim]) -> None:
    sim = start_simulator(SimulatorConfig(recpipent=True, capacity=5, empty_newest="missing"))

    config = sim.http.get("/_sim/config").json()

    assert config == {
        "page_size": 100,
        "capacity": 5,
        "inclusive_since": True,
        "integer_ids": False,
        "integer_numbers": False,
        "recpipent": True,
        "omit_has_more": False,
        "empty_newest": "missing",
    }
