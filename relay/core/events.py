"""Building webhook events from upstream messages (README, "Webhooks your endpoint receives")."""

from __future__ import annotations

import json
import time

from relay.core.ids import event_id_for, new_id
from relay.core.models import (
    MESSAGE_RECEIVED,
    MESSAGE_SENT,
    PAYLOAD_FLAT,
    RELAY_PING,
    Event,
    Message,
)


def rfc3339(epoch_s: float) -> str:
    """`epoch_s` as an RFC 3339 UTC timestamp with second precision."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


def event_from_message(message: Message, *, source_id: str, created_at_ms: int) -> Event:
    """The event of one upstream message; its id depends only on (source, documentId)."""
    data: dict[str, object] = {"documentId": message.document_id}
    if message.origin_document_id is not None:
        data["originDocumentId"] = message.origin_document_id
    if message.sender is not None:
        data["from"] = message.sender
    if message.recipient is not None:
        data["recipient"] = message.recipient
    if message.text is not None:
        data["text"] = message.text
    data["timestamp"] = message.timestamp
    data["source_id"] = source_id
    kind = MESSAGE_RECEIVED if message.kind == "incoming" else MESSAGE_SENT
    return Event(
        id=event_id_for(source_id, message.document_id),
        type=kind,
        source_id=source_id,
        timestamp=message.timestamp,
        created_at_ms=created_at_ms,
        body=_body(kind, message.timestamp, data),
    )


def ping_event(*, subscription_id: str, now: float) -> Event:
    """A `relay.ping` test event for one subscription."""
    stamp = int(now)
    data: dict[str, object] = {"subscription_id": subscription_id, "message": "ping from relay"}
    return Event(
        id=new_id("evt"),
        type=RELAY_PING,
        source_id=None,
        timestamp=stamp,
        created_at_ms=int(now * 1000),
        body=_body(RELAY_PING, stamp, data),
    )


def _body(kind: str, timestamp: int, data: dict[str, object]) -> bytes:
    payload = {"type": kind, "timestamp": rfc3339(timestamp), "data": data}
    return _compact_json(payload)


# The standard body's `data` keys renamed in the flat body; other keys keep their names.
_FLAT_NAMES = {"documentId": "document_id", "originDocumentId": "origin_document_id"}


def flat_body(event_id: str, standard_body: bytes) -> bytes:
    """The `flat` payload of an event from its standard body: one level, the webhook id as
    `id`, the message's RFC 3339 time as `occurred_at`, `data`'s fields beside them with
    snake_case names (`document_id`, `origin_document_id`); a field the standard body omits
    is omitted here too."""
    standard = json.loads(standard_body)
    flat: dict[str, object] = {
        "id": event_id,
        "type": standard["type"],
        "occurred_at": standard["timestamp"],
    }
    for name, value in standard["data"].items():
        flat[_FLAT_NAMES.get(name, name)] = value
    return _compact_json(flat)


def body_for(event: Event, payload_format: str) -> bytes:
    """The exact bytes sent (and signed) for `event` to a subscription of `payload_format`."""
    if payload_format == PAYLOAD_FLAT:
        return flat_body(event.id, event.body)
    return event.body


def _compact_json(value: object) -> bytes:
    """Compact UTF-8 JSON; a lone surrogate from the upstream is kept, as a JSON escape."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode()
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode()
