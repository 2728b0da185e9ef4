"""Parsing allMessages pages (every quirk), statuses, and the paging decision."""

from __future__ import annotations

import json

import pytest

from relay.core.errors import UpstreamStatusError, UpstreamTransportError
from relay.core.events import event_from_message
from relay.core.mc5 import (
    gap_note,
    parse_page,
    plan_page,
    rejected_note,
    status_behaviour,
)
from relay.core.models import Message, Page

NOW = 2_000_000_000

DOCUMENTED = {
    "newestMessageTimestamp": 1366624802,
    "hasMoreMessages": False,
    "incomingMessages": [
        {
            "documentId": "51750a01e4b0d1406c9c5fdb",
            "text": " ggghhh",
            "timestamp": 1366624769,
            "from": "61555879987",
            "recipient": "61500079987",
            "originDocumentId": "517509fee4b0b1be3f128ef5",
        }
    ],
    "outgoingMessages": [
        {
            "documentId": "517509fee4b0b1be3f128ef5",
            "text": "Reply> ggghhh",
            "timestamp": 1366624766,
            "recipient": "61555879987",
        },
        {
            "documentId": "51750a22e4b0b1be3f128ef6",
            "text": "Hello mommy",
            "timestamp": 1366624802,
            "recipient": "61255588885",
        },
    ],
    "status": 0,
}


def _message(document_id: str, timestamp: int, kind: str = "incoming") -> Message:
    return Message(kind=kind, document_id=document_id, timestamp=timestamp)  # type: ignore[arg-type]


def _page(messages: list[Message], *, has_more: bool | None = True) -> Page:
    return Page(messages=tuple(messages), newest_timestamp=None, has_more=has_more)


def test_documented_example_parses_oldest_first_with_text_kept_exactly() -> None:
    page = parse_page(DOCUMENTED)
    assert [m.document_id for m in page.messages] == [
        "517509fee4b0b1be3f128ef5",
        "51750a01e4b0d1406c9c5fdb",
        "51750a22e4b0b1be3f128ef6",
    ]
    incoming = page.messages[1]
    assert incoming == Message(
        kind="incoming",
        document_id="51750a01e4b0d1406c9c5fdb",
        timestamp=1366624769,
        text=" ggghhh",
        sender="61555879987",
        recipient="61500079987",
        origin_document_id="517509fee4b0b1be3f128ef5",
    )
    assert page.messages[0].sender is None
    assert page.newest_timestamp == 1366624802
    assert page.has_more is False


def test_integer_ids_and_numbers_become_strings_with_every_digit() -> None:
    page = parse_page(
        {
            "status": 0,
            "incomingMessages": [
                {
                    "documentId": 10,
                    "timestamp": 5,
                    "from": 61555879987,
                    "recipient": 61500079987,
                    "originDocumentId": 9,
                    "text": "hi",
                },
                {"documentId": 9, "timestamp": 5, "from": 1, "recipient": 2},
            ],
        }
    )
    assert [m.document_id for m in page.messages] == ["9", "10"]  # numeric order, not text
    assert page.messages[1].sender == "61555879987"
    assert page.messages[1].recipient == "61500079987"
    assert page.messages[1].origin_document_id == "9"


def test_recpipent_spelling_is_accepted_for_recipient() -> None:
    page = parse_page(
        {"status": 0, "outgoingMessages": [{"documentId": "a", "timestamp": 1, "recpipent": "612"}]}
    )
    assert page.messages[0].recipient == "612"


def test_missing_has_more_is_none_and_zero_or_missing_newest_is_none() -> None:
    assert parse_page({"status": 0, "newestMessageTimestamp": 0}).has_more is None
    assert parse_page({"status": 0, "newestMessageTimestamp": 0}).newest_timestamp is None
    assert parse_page({"status": 0}).newest_timestamp is None


def test_same_second_sorts_outgoing_before_incoming_then_by_id() -> None:
    page = parse_page(
        {
            "status": 0,
            "incomingMessages": [
                {"documentId": "b", "timestamp": 7},
                {"documentId": "a", "timestamp": 8},
            ],
            "outgoingMessages": [{"documentId": "c", "timestamp": 7}],
        }
    )
    assert [(m.document_id, m.kind) for m in page.messages] == [
        ("c", "outgoing"),
        ("b", "incoming"),
        ("a", "incoming"),
    ]


@pytest.mark.parametrize(
    ("status", "retry", "text"),
    [
        (1, "slow", "MC5 status 1: missing required parameter"),
        (2, "slow", "MC5 status 2: invalid parameter value"),
        (3, "slow", "MC5 status 3: authentication failed"),
        (4, "stop", "MC5 status 4: account blocked"),
        (200, "stop", "MC5 status 200: user does not exist"),
        (220, "stop", "MC5 status 220: user account needs to be activated"),
        (9999, "backoff", "MC5 status 9999: internal error"),
    ],
)
def test_non_zero_status_raises_with_its_behaviour(status: int, retry: str, text: str) -> None:
    with pytest.raises(UpstreamStatusError) as caught:
        parse_page({"status": status})
    assert caught.value.status == status
    assert str(caught.value) == text
    assert status_behaviour(status).retry == retry


def test_undocumented_status_is_retried_slowly() -> None:
    assert status_behaviour(77).retry == "slow"


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"incomingMessages": []},
        {"status": "x"},
        {"status": 0, "incomingMessages": {}},
    ],
)
def test_malformed_shape_is_a_transport_error(payload: object) -> None:
    with pytest.raises(UpstreamTransportError, match="malformed"):
        parse_page(payload)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("x", "an incoming message is not a JSON object"),
        ({"timestamp": 1}, "an incoming message has no documentId"),
        ({"documentId": "a"}, "message a: timestamp is not an integer: None"),
        ({"documentId": "a", "timestamp": 1, "text": {}}, "text is neither a string nor a number"),
        ({"documentId": "a", "timestamp": "²"}, "message a: timestamp is not an integer: '²'"),
        ({"documentId": "a", "timestamp": 1.5}, "message a: timestamp is not an integer: 1.5"),
        ({"documentId": "a", "timestamp": True}, "message a: timestamp is not an integer: True"),
        ({"documentId": "a", "timestamp": 1e20}, "message a: timestamp is not an integer: 1e+20"),
        ({"documentId": "a", "timestamp": 1e300}, "message a: timestamp is not an integer: 1e+300"),
        ({"documentId": "a", "timestamp": -5}, "message a: timestamp is not an integer: -5"),
        (
            {"documentId": "a", "timestamp": 10**17},
            "message a: timestamp 100000000000000000 is past",
        ),
        ({"documentId": "\ud800", "timestamp": 1}, "documentId '\\ud800' cannot be encoded"),
    ],
)
def test_an_unreadable_message_is_skipped_and_named_while_the_rest_is_kept(
    raw: object, reason: str
) -> None:
    good = {"documentId": "ok", "timestamp": 5, "text": "hi"}
    page = parse_page({"status": 0, "incomingMessages": [raw, good]})
    assert [m.document_id for m in page.messages] == ["ok"]
    (rejected,) = page.rejected
    assert rejected.startswith(reason)
    assert rejected_note(page.rejected).startswith("skipped 1 unreadable message(s): ")


def test_text_with_a_lone_surrogate_is_kept_as_sent_in_the_event_body() -> None:
    message_json = '{"documentId": "a", "timestamp": 5, "text": "x\\ud800y"}'
    raw = json.loads(f'{{"status": 0, "incomingMessages": [{message_json}]}}')
    (message,) = parse_page(raw).messages
    assert message.text == "x\ud800y"
    event = event_from_message(message, source_id="src_1", created_at_ms=0)
    assert b'"text":"x\\ud800y"' in event.body
    assert json.loads(event.body)["data"]["text"] == "x\ud800y"


def test_a_message_from_the_future_never_moves_the_cursor_past_now() -> None:
    future = _page([_message("a", NOW - 5), _message("b", NOW + 10 * 365 * 86400)])
    plan = plan_page(now=NOW, cursor=NOW - 10, page=future)
    assert plan.cursor == NOW
    again = plan_page(now=NOW, cursor=plan.cursor, page=_page([_message("b", NOW + 10**8)]))
    assert (again.cursor, again.has_progressed) == (NOW, False)
    assert not again.should_fetch_again(new_count=0)


def test_cursor_moves_to_the_newest_message_second() -> None:
    plan = plan_page(now=NOW, cursor=100, page=_page([_message("a", 100), _message("b", 103)]))
    assert (plan.cursor, plan.has_progressed, plan.stuck_second) == (103, True, None)


def test_cursor_never_moves_backwards() -> None:
    empty = Page(messages=(), newest_timestamp=None, has_more=False)
    assert plan_page(now=NOW, cursor=500, page=empty).cursor == 500
    old = _page([_message("a", 10)], has_more=False)
    assert plan_page(now=NOW, cursor=500, page=old).cursor == 500


def test_fetch_again_only_while_new_messages_and_maybe_more() -> None:
    plan = plan_page(now=NOW, cursor=1, page=_page([_message("a", 1)], has_more=None))
    assert plan.should_fetch_again(new_count=1)
    assert not plan.should_fetch_again(new_count=0)  # nothing new, cursor did not move
    done = plan_page(now=NOW, cursor=1, page=_page([_message("a", 2)], has_more=False))
    assert not done.should_fetch_again(new_count=1)


def test_full_page_in_one_second_is_stuck_and_jumps_past_that_second() -> None:
    messages = [_message(f"{i:03d}", 77) for i in range(100)]
    plan = plan_page(now=NOW, cursor=70, page=_page(messages, has_more=True))
    assert plan.stuck_second == 77
    assert plan.cursor == 78
    assert plan.is_possible_gap
    assert plan.should_fetch_again(new_count=0)


def test_full_page_in_one_second_without_more_moves_on_without_a_gap() -> None:
    messages = [_message(f"{i:03d}", 77) for i in range(100)]
    plan = plan_page(now=NOW, cursor=77, page=_page(messages, has_more=False))
    assert plan.cursor == 78
    assert not plan.is_possible_gap


def test_full_page_over_two_seconds_is_not_stuck() -> None:
    messages = [_message(f"{i:03d}", 77 + i // 99) for i in range(100)]
    plan = plan_page(now=NOW, cursor=77, page=_page(messages))
    assert (plan.cursor, plan.stuck_second) == (78, None)


def test_gap_note_names_the_second_and_the_page_limit() -> None:
    assert gap_note(second=1366624769) == (
        "possible gap: more than 100 messages in second 1366624769; "
        "the upstream returns only the first 100"
    )
