"""Injected faults: each kind, how many calls it hits, and clearing them."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.simulator.conftest import ALL_MESSAGES, Sim

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
