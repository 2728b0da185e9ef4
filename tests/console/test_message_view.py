"""How an event reads as a message on the console: fields from any body, a safe one-line
excerpt, states counted in a fixed order, and the search form's UTC times."""

from __future__ import annotations

import pytest

from relay.console.message_view import epoch_of, excerpt, form_time, message_of, state_counts
from relay.core.errors import InvalidInput
from relay.core.events import event_from_message, ping_event
from relay.core.models import Event, Message


def _event(text: str | None, *, sender: str | None = "61555000001") -> Event:
    sms = Message("incoming", "doc-1", 1366624769, text=text, sender=sender, recipient="6150")
    return event_from_message(sms, source_id="src_t", created_at_ms=0)


def test_a_message_reads_its_fields_from_the_stored_body() -> None:
    view = message_of(_event("hello"))
    assert (view.sender, view.recipient, view.text, view.document_id) == (
        "61555000001",
        "6150",
        "hello",
        "doc-1",
    )
    assert view.origin_document_id is None


def test_a_ping_or_an_unreadable_body_has_no_message_fields() -> None:
    ping = message_of(ping_event(subscription_id="sub_x", now=0))
    assert (ping.sender, ping.text, ping.document_id) == (None, None, None)
    broken = Event("evt_x", "message.received", None, 0, 0, b"not json")
    assert message_of(broken).excerpt == ""


def test_a_lone_surrogate_from_the_upstream_becomes_a_replacement_character() -> None:
    view = message_of(_event("bad \ud800 half"))
    assert view.text == "bad \ufffd half"
    assert view.excerpt.encode()  # writable as UTF-8


def test_the_excerpt_is_one_line_and_cut_with_an_ellipsis() -> None:
    assert excerpt("two\nlines\r\n\tand a tab") == "two lines and a tab"
    long = "x" * 200
    cut = excerpt(long, 10)
    assert cut == "x" * 9 + "…" and len(cut) == 10
    assert excerpt("short", 10) == "short"


def test_states_are_counted_in_a_fixed_order_worst_last() -> None:
    states = ["dead", "delivered", "retrying", "delivered", "odd"]
    assert state_counts(states) == [("delivered", 2), ("retrying", 1), ("dead", 1), ("odd", 1)]
    assert state_counts([]) == []


def test_search_times_are_utc_and_round_trip_through_the_form() -> None:
    assert epoch_of("2026-12-03T08:30", "since") == 1796286600
    assert epoch_of("2026-12-03T08:30:15", "since") == 1796286615
    assert epoch_of("1796286600", "since") == 1796286600
    assert epoch_of("  ", "since") is None and epoch_of(None, "until") is None
    assert form_time(1796286600) == "2026-12-03T08:30" and form_time(None) == ""
    with pytest.raises(InvalidInput) as raised:
        epoch_of("yesterday", "until")
    assert raised.value.field == "until"
