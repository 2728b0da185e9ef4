"""Injected faults: each kind, how many calls it hits, and clearing them."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.simulator.conftest import ALL_MESSAGES, START, Sim

FORM = {"username": "demo@reseller", "password": "demo", "since": "0"}


def _fault(sim: Sim, **fields: object) -> None:
    response = sim.http.post("/_sim/faults", json=fields)
    assert response.status_code == 201, response.text


def test_http_500_fault_answers_a_server_error_once(sim: Sim) -> None:
    _fault(sim, kind="http_500")

    response = sim.http.post(ALL_MESSAGES, data=FORM)

    assert response.status_code == 500
    assert sim.http.post(ALL_MESSAGES, data=FORM).json()["status"] == 0


def test_html_502_fault_answers_an_html_page(sim: Sim) -> None:
    _fault(sim, kind="html_502")

    response = sim.http.post(ALL_MESSAGES, data=FORM)

    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "<html>" in response.text


def test_invalid_json_fault_answers_200_with_a_body_that_does_not_parse(sim: Sim) -> None:
    _fault(sim, kind="invalid_json")

    response = sim.http.post(ALL_MESSAGES, data=FORM)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_slow_fault_delays_a_normal_answer(sim: Sim) -> None:
    _fault(sim, kind="slow", delay_s=0.5)

    started = time.monotonic()
    response = sim.http.post(ALL_MESSAGES, data=FORM)

    assert time.monotonic() - started >= 0.4
    assert response.json()["status"] == 0


def test_slow_fault_outlasts_a_short_client_timeout(sim: Sim) -> None:
    _fault(sim, kind="slow", delay_s=1.0)

    with pytest.raises(httpx.ReadTimeout):
        sim.http.post(ALL_MESSAGES, data=FORM, timeout=0.2)


@pytest.mark.parametrize("status", [9999, 3, 4])
def test_status_fault_answers_that_mc5_status(sim: Sim, status: int) -> None:
    _fault(sim, kind="status", status=status)

    response = sim.http.post(ALL_MESSAGES, data=FORM)

    assert response.status_code == 200
    assert response.json() == {"status": status}


def test_reset_fault_closes_the_connection_without_an_answer(sim: Sim) -> None:
    _fault(sim, kind="reset")

    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        sim.http.post(ALL_MESSAGES, data=FORM)

    assert sim.http.post(ALL_MESSAGES, data=FORM).json()["status"] == 0
    assert sim.stats()["requests_by_username"] == {"demo@reseller": 2}


def test_fault_applies_to_the_next_times_calls_then_stops(sim: Sim) -> None:
    _fault(sim, kind="http_500", times=3)

    codes = [sim.http.post(ALL_MESSAGES, data=FORM).status_code for _ in range(4)]

    assert codes == [500, 500, 500, 200]


def test_queued_faults_apply_in_order(sim: Sim) -> None:
    _fault(sim, kind="http_500")
    _fault(sim, kind="reset")
    _fault(sim, kind="status", status=9999)

    assert sim.http.post(ALL_MESSAGES, data=FORM).status_code == 500
    with pytest.raises(httpx.RemoteProtocolError):
        sim.http.post(ALL_MESSAGES, data=FORM)
    assert sim.http.post(ALL_MESSAGES, data=FORM).json() == {"status": 9999}
    assert sim.http.post(ALL_MESSAGES, data=FORM).json()["status"] == 0


def test_faults_do_not_touch_control_routes(sim: Sim) -> None:
    _fault(sim, kind="reset")

    assert sim.stats()["requests"] == 0
    assert sim.http.get("/_sim/config").status_code == 200


def test_deleting_faults_clears_the_queue(sim: Sim) -> None:
    _fault(sim, kind="http_500", times=5)

    assert sim.http.delete("/_sim/faults").status_code == 204

    assert sim.http.post(ALL_MESSAGES, data=FORM).status_code == 200


def test_faulted_calls_are_counted(sim: Sim) -> None:
    _fault(sim, kind="html_502", times=2)
    sim.http.post(ALL_MESSAGES, data=FORM)
    sim.http.get(ALL_MESSAGES, params=FORM)

    assert sim.stats()["requests"] == 2


# A hostile upstream (issue 14): bodies a client must bound or survive.


def test_oversize_fault_streams_a_valid_body_of_the_asked_size(sim: Sim) -> None:
    _fault(sim, kind="oversize", size_bytes=300_000)

    response = sim.http.post(ALL_MESSAGES, data=FORM)

    assert response.status_code == 200 and "content-length" not in response.headers
    assert len(response.content) >= 300_000
    assert json.loads(response.content)["status"] == 0


def test_trickle_fault_sends_the_normal_answer_byte_by_byte(sim: Sim) -> None:
    (document_id,) = sim.add({"kind": "incoming", "text": "t", "timestamp": 5})
    _fault(sim, kind="trickle", delay_s=0)

    with sim.http.stream("POST", ALL_MESSAGES, data=FORM) as response:
        chunks = list(response.iter_raw())

    assert len(chunks) > 10  # many small writes, not one body
    body = json.loads(b"".join(chunks))
    assert [m["documentId"] for m in body["incomingMessages"]] == [document_id]


def test_poison_fault_adds_a_fresh_message_with_the_raw_value(sim: Sim) -> None:
    (stored,) = sim.add({"kind": "incoming", "text": "t", "timestamp": 5})
    _fault(sim, kind="poison", field="timestamp", raw="1e300", times=2)

    first = sim.http.post(ALL_MESSAGES, data=FORM)
    second = sim.poll(0)

    assert b'"timestamp": 1e300' in first.content
    poisoned, kept = first.json()["incomingMessages"]
    assert kept["documentId"] == stored
    assert poisoned["documentId"] != second["incomingMessages"][0]["documentId"]  # fresh


def test_non_utf8_fault_adds_a_message_whose_text_is_not_utf8(sim: Sim) -> None:
    _fault(sim, kind="non_utf8")

    response = sim.http.post(ALL_MESSAGES, data=FORM)

    with pytest.raises(UnicodeDecodeError):
        response.content.decode()
    assert b"caf\xe9" in response.content


def test_future_fault_adds_a_message_dated_offset_s_from_now(sim: Sim) -> None:
    _fault(sim, kind="future", offset_s=3600)

    (message,) = sim.poll(0)["incomingMessages"]

    assert message["timestamp"] == START + 3600


def test_endless_fault_always_has_one_fresh_message_more(sim: Sim) -> None:
    _fault(sim, kind="endless", times=2)

    first, second = sim.poll(40), sim.poll(40)

    assert first["hasMoreMessages"] is True and second["hasMoreMessages"] is True
    ids = {body["incomingMessages"][0]["documentId"] for body in (first, second)}
    assert len(ids) == 2
    assert first["incomingMessages"][0]["timestamp"] == 40


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "poison", "field": "nope"},
        {"kind": "oversize", "size_bytes": -1},
        {"kind": "poison", "raw": 5},
        {"kind": "future", "offset_s": 1.5},
    ],
)
def test_hostile_fault_parameters_are_validated(sim: Sim, fields: dict[str, object]) -> None:
    response = sim.http.post("/_sim/faults", json=fields)

    assert response.status_code == 422, response.text
