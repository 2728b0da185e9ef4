"""Paging by `since`: 100 per page, oldest first, and the faithful crowded-second stall."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from relay.simulator.app import SimulatorConfig
from tests.simulator.conftest import START, Sim


def _ids(page: dict[str, Any]) -> list[str]:
    return [m["documentId"] for m in page["incomingMessages"] + page["outgoingMessages"]]


def test_a_page_holds_the_oldest_100_across_both_lists(sim: Sim) -> None:
    sim.add_bulk(120, kind="mix", timestamp=START, per_second=1)

    page = sim.poll(0)

    messages = page["incomingMessages"] + page["outgoingMessages"]
    assert len(messages) == 100
    assert page["hasMoreMessages"] is True
    assert sorted(m["timestamp"] for m in messages) == list(range(START, START + 100))
    assert page["newestMessageTimestamp"] == START + 99
    assert page["status"] == 0


def test_paging_from_newest_timestamp_walks_a_backlog_that_fits_the_seconds(sim: Sim) -> None:
    stored = sim.add_bulk(250, kind="mix", timestamp=START, per_second=10)
    seen: set[str] = set()
    since = 0

    for _ in range(10):
        page = sim.poll(since)
        seen.update(_ids(page))
        since = max(since, page["newestMessageTimestamp"])
        if not page["hasMoreMessages"]:
            break

    assert seen == set(stored)
    assert page["hasMoreMessages"] is False


def test_inclusive_since_returns_the_boundary_second_again(sim: Sim) -> None:
    _, boundary, last = sim.add(
        {"kind": "incoming", "timestamp": START},
        {"kind": "incoming", "timestamp": START + 1},
        {"kind": "outgoing", "timestamp": START + 2},
    )

    page = sim.poll(START + 1)

    assert _ids(page) == [boundary, last]


def test_exclusive_since_skips_the_boundary_second(sim: Sim) -> None:
    sim.configure(inclusive_since=False)
    _, _, last = sim.add(
        {"kind": "incoming", "timestamp": START},
        {"kind": "incoming", "timestamp": START + 1},
        {"kind": "outgoing", "timestamp": START + 2},
    )

    assert _ids(sim.poll(START + 1)) == [last]


def test_more_than_100_in_one_second_stalls_paging_at_the_first_100_of_it(sim: Sim) -> None:
    before = sim.add_bulk(50, timestamp=START, per_second=1)
    crowded_second = START + 100
    crowded = sim.add_bulk(150, kind="mix", timestamp=crowded_second)
    after = sim.add_bulk(50, timestamp=crowded_second + 1, per_second=1)
    seen: set[str] = set()
    since = 0
    pages = []

    for _ in range(6):
        page = sim.poll(since)
        pages.append(_ids(page))
        seen.update(_ids(page))
        since = page["newestMessageTimestamp"]

    # Faithful upstream behaviour: the cursor can never leave the crowded second.
    assert since == crowded_second
    assert all(ids == pages[1] for ids in pages[1:])
    assert set(pages[1]) == set(crowded[:100])
    assert seen == set(before) | set(crowded[:100])
    assert sim.poll(crowded_second)["hasMoreMessages"] is True
    # Only a client that steps past the second gets the rest; crowded[100:] stays unreachable.
    assert _ids(sim.poll(crowded_second + 1)) == after


def test_same_second_messages_come_in_insertion_order(sim: Sim) -> None:
    ids = sim.add(
        {"kind": "outgoing", "timestamp": START, "text": "first"},
        {"kind": "incoming", "timestamp": START, "text": "second"},
        {"kind": "outgoing", "timestamp": START, "text": "third"},
    )
    page = sim.poll(START)

    assert [m["documentId"] for m in page["outgoingMessages"]] == [ids[0], ids[2]]
    assert [m["documentId"] for m in page["incomingMessages"]] == [ids[1]]


def test_messages_added_out_of_time_order_are_paged_by_timestamp(sim: Sim) -> None:
    late, early = sim.add(
        {"kind": "incoming", "timestamp": START + 5},
        {"kind": "incoming", "timestamp": START},
    )

    assert _ids(sim.poll(0)) == [early, late]


def test_page_size_switch_changes_the_page_length(start_simulator: Callable[..., Sim]) -> None:
    sim = start_simulator(SimulatorConfig(page_size=7))
    sim.add_bulk(10, timestamp=START, per_second=1)

    page = sim.poll(0)

    assert len(page["incomingMessages"]) == 7
    assert page["hasMoreMessages"] is True


def test_a_20000_message_backlog_pages_through_completely(
    start_simulator: Callable[..., Sim],
) -> None:
    sim = start_simulator(SimulatorConfig(capacity=25_000))
    stored = sim.add_bulk(20_000, kind="mix", timestamp=START, per_second=50)
    seen: set[str] = set()
    since, polls = 0, 0

    while True:
        page = sim.poll(since)
        polls += 1
        seen.update(_ids(page))
        since = page["newestMessageTimestamp"]
        if not page["hasMoreMessages"]:
            break

    assert seen == set(stored)
    # Two seconds per page, the second of them read again next time: one new second a page.
    assert polls == 399


def test_messages_of_other_accounts_are_not_returned(sim: Sim) -> None:
    sim.http.post("/_sim/accounts", json={"username": "other@reseller", "password": "pw"})
    sim.add({"kind": "incoming", "timestamp": START}, username="other@reseller")

    assert _ids(sim.poll(0)) == []
    assert len(_ids(sim.poll(0, username="other@reseller", password="pw"))) == 1
