"""The webhook bodies: the flat variant derived from the standard one."""

from __future__ import annotations

import json

from relay.core.events import body_for, event_from_message, flat_body
from relay.core.models import Message


def test_flat_body_is_one_level_with_the_webhook_id() -> None:
    message = Message(
        kind="incoming",
        document_id="51750a01e4b0d1406c9c5fdb",
        origin_document_id="517509fee4b0b1be3f128ef5",
        timestamp=1366624769,
        text=" ggghhh",
        sender="61555879987",
        recipient="61500079987",
    )
    standard = event_from_message(message, source_id="src_1", created_at_ms=0)
    flat = json.loads(body_for(standard, "flat"))
    assert flat == {
        "id": standard.id,
        "type": "message.received",
        "occurred_at": "2013-04-22T09:59:29Z",
        "document_id": "51750a01e4b0d1406c9c5fdb",
        "origin_document_id": "517509fee4b0b1be3f128ef5",
        "from": "61555879987",
        "recipient": "61500079987",
        "text": " ggghhh",
        "timestamp": 1366624769,
        "source_id": "src_1",
    }
    assert body_for(standard, "standard") == standard.body


def test_flat_body_omits_what_the_upstream_omitted() -> None:
    message = Message(kind="outgoing", document_id="d1", timestamp=5, recipient="615")
    standard = event_from_message(message, source_id="src_1", created_at_ms=0)
    flat = json.loads(flat_body(standard.id, standard.body))
    assert flat["type"] == "message.sent"
    assert "from" not in flat and "text" not in flat and "origin_document_id" not in flat
    assert flat["recipient"] == "615"
