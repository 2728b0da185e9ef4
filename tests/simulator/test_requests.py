"""How allMessages is called (methods, content types) and every status code it answers."""

from __future__ import annotations

import pytest

from tests.simulator.conftest import ALL_MESSAGES, START, Sim

CREDENTIALS = {"username": "demo@reseller", "password": "demo"}


@pytest.fixture
def one_message(sim: Sim) -> str:
    (document_id,) = sim.add({"kind": "incoming", "timestamp": START, "text": "hi"})
    return document_id


def test_post_with_a_form_body_returns_messages(sim: Sim, one_message: str) -> None:
    response = sim.http.post(ALL_MESSAGES, data={**CREDENTIALS, "since": "0"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["incomingMessages"][0]["documentId"] == one_message


def test_get_with_query_parameters_returns_messages(sim: Sim, one_message: str) -> None:
    body = sim.http.get(ALL_MESSAGES, params={**CREDENTIALS, "since": "0"}).json()

    assert body["incomingMessages"][0]["documentId"] == one_message


def test_post_with_parameters_in_the_query_string_is_accepted(sim: Sim, one_message: str) -> None:
    body = sim.http.post(ALL_MESSAGES, params={**CREDENTIALS, "since": "0"}).json()

    assert body["incomingMessages"][0]["documentId"] == one_message


def test_form_body_with_charset_parameter_is_accepted(sim: Sim, one_message: str) -> None:
    response = sim.http.post(
        ALL_MESSAGES,
        content="username=demo%40reseller&password=demo&since=0",
        headers={"content-type": "application/x-www-form-urlencoded; charset=UTF-8"},
    )

    assert response.json()["incomingMessages"][0]["documentId"] == one_message


def test_json_body_is_not_read_so_parameters_are_missing(sim: Sim) -> None:
    response = sim.http.post(ALL_MESSAGES, json={**CREDENTIALS, "since": 0})

    assert response.status_code == 200
    assert response.json() == {"status": 1}


def test_other_methods_are_not_allowed(sim: Sim) -> None:
    assert sim.http.put(ALL_MESSAGES, data={**CREDENTIALS, "since": "0"}).status_code == 405


@pytest.mark.parametrize(
    "params",
    [
        {"password": "demo", "since": "0"},
        {"username": "demo@reseller", "since": "0"},
        {"username": "demo@reseller", "password": "demo"},
        {"username": "", "password": "demo", "since": "0"},
        {"username": "demo@reseller", "password": "demo", "since": ""},
    ],
    ids=["no-username", "no-password", "no-since", "empty-username", "empty-since"],
)
def test_missing_or_empty_parameter_is_status_1(sim: Sim, params: dict[str, str]) -> None:
    response = sim.http.post(ALL_MESSAGES, data=params)

    assert response.status_code == 200
    assert response.json() == {"status": 1}


@pytest.mark.parametrize(
    ("username", "since"),
    [
        ("demo @reseller", "0"),
        ("demo@reseller", "soon"),
        ("demo@reseller", "1.5"),
        ("demo@reseller", "-1"),
    ],
    ids=["username-with-space", "since-not-a-number", "since-fractional", "since-negative"],
)
def test_invalid_parameter_value_is_status_2(sim: Sim, username: str, since: str) -> None:
    body = sim.poll(since, username=username)

    assert body == {"status": 2}


def test_wrong_password_is_status_3(sim: Sim) -> None:
    assert sim.poll(0, password="wrong") == {"status": 3}


def test_blocked_account_is_status_4(sim: Sim) -> None:
    sim.http.post("/_sim/accounts", json={"username": "b@reseller", "password": "pw", "status": 4})

    assert sim.poll(0, username="b@reseller", password="pw") == {"status": 4}


def test_blocked_account_with_a_wrong_password_is_status_3(sim: Sim) -> None:
    sim.http.post("/_sim/accounts", json={"username": "b@reseller", "password": "pw", "status": 4})

    assert sim.poll(0, username="b@reseller", password="nope") == {"status": 3}


def test_unknown_user_is_status_200(sim: Sim) -> None:
    assert sim.poll(0, username="nobody@reseller") == {"status": 200}


def test_account_needing_activation_is_status_220(sim: Sim) -> None:
    sim.http.post(
        "/_sim/accounts", json={"username": "new@reseller", "password": "pw", "status": 220}
    )

    assert sim.poll(0, username="new@reseller", password="pw") == {"status": 220}


def test_unblocking_an_account_lets_it_read_again(sim: Sim) -> None:
    sim.http.post(
        "/_sim/accounts", json={"username": "demo@reseller", "password": "demo", "status": 4}
    )
    assert sim.poll(0) == {"status": 4}

    sim.http.post("/_sim/accounts", json={"username": "demo@reseller", "password": "demo"})

    assert sim.poll(0)["status"] == 0


def test_internal_error_is_status_9999_through_a_status_fault(sim: Sim) -> None:
    sim.http.post("/_sim/faults", json={"kind": "status", "status": 9999})

    assert sim.poll(0) == {"status": 9999}
    assert sim.poll(0)["status"] == 0


def test_status_0_page_has_every_documented_field(sim: Sim) -> None:
    body = sim.poll(0)

    assert body == {
        "newestMessageTimestamp": 0,
        "hasMoreMessages": False,
        "incomingMessages": [],
        "outgoingMessages": [],
        "status": 0,
    }


def test_every_call_is_counted_by_username(sim: Sim) -> None:
    sim.poll(0)
    sim.poll(0, password="wrong")
    sim.poll(0, username="x@reseller")
    sim.http.post(ALL_MESSAGES, data={"since": "0"})

    stats = sim.stats()

    assert stats["requests"] == 4
    assert stats["requests_by_username"] == {"demo@reseller": 2, "x@reseller": 1}
