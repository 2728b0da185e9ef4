"""The /_sim control routes: adding, listing and clearing messages, accounts, config, errors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.simulator.conftest import START, Sim


def test_added_messages_are_listed_with_every_field(sim: Sim) -> None:
    (outgoing,) = sim.add(
        {"kind": "outgoing", "text": "Hello mommy", "recipient": "61255588885", "timestamp": START}
    )
    (incoming,) = sim.add(
        {
            "kind": "incoming",
            "text": " ggghhh",
            "from": "61255588885",
            "recipient": "61500079987",
            "timestamp": START + 3,
            "originDocumentId": outgoing,
        }
    )

    listed = sim.http.get("/_sim/messages", params={"username": "demo@reseller"}).json()

    assert listed == {
        "username": "demo@reseller",
        "messages": [
            {
                "kind": "outgoing",
                "documentId": outgoing,
                "text": "Hello mommy",
                "timestamp": START,
                "recipient": "61255588885",
            },
            {
                "kind": "incoming",
                "documentId": incoming,
                "text": " ggghhh",
                "timestamp": START + 3,
                "from": "61255588885",
                "recipient": "61500079987",
                "originDocumentId": outgoing,
            },
        ],
    }


def test_unset_fields_are_filled_with_realistic_values(sim: Sim) -> None:
    sim.add({"kind": "incoming"}, {"kind": "outgoing"})

    incoming, outgoing = sim.http.get("/_sim/messages").json()["messages"]

    for number in (incoming["from"], incoming["recipient"], outgoing["recipient"]):
        assert number.isdigit()
        assert len(number) == 11
        assert number.startswith("61")
    assert incoming["text"]
    assert incoming["timestamp"] == START


def test_bulk_add_puts_every_message_in_the_given_second(sim: Sim) -> None:
    ids = sim.add_bulk(30, timestamp=START + 9)

    listed = sim.http.get("/_sim/messages").json()["messages"]

    assert [m["documentId"] for m in listed] == ids
    assert {m["timestamp"] for m in listed} == {START + 9}
    assert {m["kind"] for m in listed} == {"incoming"}


def test_bulk_add_per_second_spreads_messages_over_seconds(sim: Sim) -> None:
    sim.add_bulk(10, timestamp=START, per_second=4)

    listed = sim.http.get("/_sim/messages").json()["messages"]

    assert [m["timestamp"] - START for m in listed] == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]


def test_bulk_mix_includes_replies_to_earlier_outgoing_messages(sim: Sim) -> None:
    sim.add_bulk(300, kind="mix")

    listed = sim.http.get("/_sim/messages").json()["messages"]

    outgoing = {m["documentId"]: m for m in listed if m["kind"] == "outgoing"}
    replies = [m for m in listed if "originDocumentId" in m]
    assert outgoing
    assert replies
    for reply in replies:
        assert reply["kind"] == "incoming"
        assert reply["from"] == outgoing[reply["originDocumentId"]]["recipient"]


def test_deleting_messages_clears_every_account(sim: Sim) -> None:
    sim.http.post("/_sim/accounts", json={"username": "b@r", "password": "b"})
    sim.add_bulk(3)
    sim.add_bulk(2, username="b@r")

    assert sim.http.delete("/_sim/messages").status_code == 204

    assert sim.stats()["messages"] == 0


def test_deleting_one_accounts_messages_keeps_the_others(sim: Sim) -> None:
    sim.http.post("/_sim/accounts", json={"username": "b@r", "password": "b"})
    sim.add_bulk(3)
    sim.add_bulk(2, username="b@r")

    sim.http.delete("/_sim/messages", params={"username": "b@r"})

    assert sim.stats()["messages"] == 3


def test_config_update_is_partial_and_returns_every_switch(sim: Sim) -> None:
    config = sim.configure(page_size=5, recpipent=True)

    assert config["page_size"] == 5
    assert config["recpipent"] is True
    assert config["capacity"] == 10_000
    assert sim.http.get("/_sim/config").json() == config


def test_in_process_code_can_add_messages_directly(sim: Sim) -> None:
    from relay.simulator.messages import NewMessage

    sim.app.state.simulator.add("demo@reseller", NewMessage(kind="incoming", text=" direct"))

    assert sim.poll(0)["incomingMessages"][0]["text"] == " direct"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/_sim/messages", {"messages": []}, "messages"),
        ("/_sim/messages", {"messages": [{"kind": "sideways"}]}, "kind"),
        ("/_sim/messages", {"messages": [{"text": "no kind"}]}, "kind"),
        ("/_sim/messages", {"messages": [{"kind": "incoming", "recpient": "1"}]}, "recpient"),
        ("/_sim/messages", {"messages": [{"kind": "incoming", "from": "+61 555"}]}, "from"),
        ("/_sim/messages", {"messages": [{"kind": "incoming", "from": 61555}]}, "from"),
        ("/_sim/messages", {"messages": [{"kind": "outgoing", "from": "61555"}]}, "from"),
        ("/_sim/messages", {"messages": [{"kind": "incoming", "timestamp": "now"}]}, "timestamp"),
        ("/_sim/messages", {"messages": [{"kind": "incoming", "timestamp": 2**40}]}, "timestamp"),
        ("/_sim/messages", {"messages": [{"kind": "incoming", "text": 5}]}, "text"),
        (
            "/_sim/messages",
            {"messages": [{"kind": "outgoing", "originDocumentId": "1"}]},
            "originDocumentId",
        ),
        (
            "/_sim/messages",
            {"messages": [{"kind": "incoming", "originDocumentId": "not an id"}]},
            "originDocumentId",
        ),
        ("/_sim/messages", {"messages": ["text"]}, "messages"),
        ("/_sim/messages", {"count": 0}, "count"),
        ("/_sim/messages", {"count": True}, "count"),
        ("/_sim/messages", {"count": 3, "kind": "both"}, "kind"),
        ("/_sim/messages", {"count": 3, "per_second": 0}, "per_second"),
        ("/_sim/config", {"page_size": 0}, "page_size"),
        ("/_sim/config", {"capacity": "big"}, "capacity"),
        ("/_sim/config", {"recpipent": "yes"}, "recpipent"),
        ("/_sim/config", {"empty_newest": "never"}, "empty_newest"),
        ("/_sim/config", {"accounts": {}}, "accounts"),
        ("/_sim/config", {"colour": "blue"}, "colour"),
        ("/_sim/accounts", {"username": "a b", "password": "x"}, "username"),
        ("/_sim/accounts", {"username": "a@r"}, "password"),
        ("/_sim/accounts", {"username": "a@r", "password": "x", "status": 3}, "status"),
        ("/_sim/faults", {"kind": "fire"}, "kind"),
        ("/_sim/faults", {"kind": "http_500", "times": 0}, "times"),
        ("/_sim/faults", {"kind": "status", "status": 0}, "status"),
        ("/_sim/faults", {"kind": "slow", "delay_s": -1}, "delay_s"),
        ("/_sim/faults", {"kind": "slow", "delay_s": "long"}, "delay_s"),
        ("/_sim/traffic", {"rate": -1}, "rate"),
        ("/_sim/traffic", {"rate": "fast"}, "rate"),
        ("/_sim/traffic", {"rate": 1, "usernames": "demo@reseller"}, "usernames"),
    ],
)
def test_invalid_field_is_422_naming_it(
    sim: Sim, path: str, body: dict[str, Any], field: str
) -> None:
    response = sim.http.post(path, json=body)

    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert response.json()["error"]


@pytest.mark.parametrize(
    "path", ["/_sim/messages", "/_sim/config", "/_sim/accounts", "/_sim/faults", "/_sim/traffic"]
)
@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_body_that_is_not_a_json_object_is_400(sim: Sim, path: str, content: bytes) -> None:
    response = sim.http.post(path, content=content, headers={"content-type": "application/json"})

    assert response.status_code == 400
    assert response.json()["error"]


def test_unknown_account_is_404(sim: Sim) -> None:
    added = sim.http.post("/_sim/messages", json={"username": "x@r", "count": 1})
    listed = sim.http.get("/_sim/messages", params={"username": "x@r"})
    traffic = sim.http.post("/_sim/traffic", json={"rate": 1, "usernames": ["x@r"]})

    assert [added.status_code, listed.status_code, traffic.status_code] == [404, 404, 404]
    assert "x@r" in added.json()["error"]


def test_a_rejected_config_change_changes_nothing(sim: Sim) -> None:
    sim.http.post("/_sim/config", json={"page_size": 5, "capacity": 0})

    assert sim.http.get("/_sim/config").json()["page_size"] == 100
