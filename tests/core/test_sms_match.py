from __future__ import annotations

import pytest

from relay.core.events import event_from_message
from relay.core.models import Message
from relay.core.sms_match import SmsMatch, sms_match_from_dict


def body(
    *,
    sender: str | None = "+447700900001",
    recipient: str | None = "+447700900100",
    text: str | None = "Stop all messages",
) -> bytes:
    message = Message(
        kind="incoming" if sender is not None else "outgoing",
        document_id="d1",
        timestamp=1,
        text=text,
        sender=sender,
        recipient=recipient,
    )
    return event_from_message(message, source_id="src_a", created_at_ms=1).body


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        (SmsMatch(), True),
        (SmsMatch(recipients=("+4477009001",)), True),
        (SmsMatch(recipients=("+4477009002", "+447700900")), True),
        (SmsMatch(recipients=("447700900",)), False),  # as sent: no normalization
        (SmsMatch(senders=("+44770090000",)), True),
        (SmsMatch(senders=("+1",)), False),
        (SmsMatch(keywords=("stop",)), True),
        (SmsMatch(keywords=("all",)), False),  # only the first word
        (SmsMatch(recipients=("+44",), senders=("+44",), keywords=("stop",)), True),
        (SmsMatch(recipients=("+44",), senders=("+1",), keywords=("stop",)), False),
    ],
)
def test_every_given_list_must_match(match: SmsMatch, expected: bool) -> None:
    assert match.matches(body()) is expected


def test_a_message_without_the_field_does_not_match_a_filter_on_it() -> None:
    outgoing = body(sender=None)
    assert not SmsMatch(senders=("+44",)).matches(outgoing)
    assert SmsMatch(recipients=("+44",)).matches(outgoing)
    assert not SmsMatch(keywords=("stop",)).matches(body(text=None))
    assert not SmsMatch(keywords=("stop",)).matches(body(text="   "))


def test_keyword_is_the_first_word_whatever_the_case_and_spacing() -> None:
    assert SmsMatch(keywords=("stop",)).matches(body(text="  STOP\nnow"))
    assert not SmsMatch(keywords=("stop",)).matches(body(text="stopped"))


def test_dict_round_trip_keeps_only_given_lists() -> None:
    match = SmsMatch(recipients=("+44",), keywords=("stop",))
    assert match.as_dict() == {"recipients": ["+44"], "keywords": ["stop"]}
    assert sms_match_from_dict(match.as_dict()) == match
