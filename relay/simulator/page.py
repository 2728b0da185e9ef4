"""The JSON the simulator answers with: MC5 pages (quirks applied) and control-route views."""

from __future__ import annotations

from collections.abc import Sequence

from relay.simulator import statuses
from relay.simulator.config import SimulatorConfig
from relay.simulator.messages import StoredMessage


def render_page(
    messages: Sequence[StoredMessage], *, has_more: bool, since: int, config: SimulatorConfig
) -> dict[str, object]:
    """A status-0 response for `messages` (oldest first), shaped by the quirk switches."""
    body: dict[str, object] = {}
    if messages:
        body["newestMessageTimestamp"] = max(message.timestamp for message in messages)
    elif config.empty_newest == "zero":
        body["newestMessageTimestamp"] = 0
    elif config.empty_newest == "since":
        body["newestMessageTimestamp"] = since
    if not config.omit_has_more:
        body["hasMoreMessages"] = has_more
    body["incomingMessages"] = [
        _incoming(message, config) for message in messages if message.kind == "incoming"
    ]
    body["outgoingMessages"] = [
        _outgoing(message, config) for message in messages if message.kind == "outgoing"
    ]
    body["status"] = statuses.OK
    return body


def describe_message(message: StoredMessage, *, integer_ids: bool) -> dict[str, object]:
    """A stored message for the control routes: ids and numbers always strings."""
    view: dict[str, object] = {
        "kind": message.kind,
        "documentId": str(message.document_id(integer_ids=integer_ids)),
        "text": message.text,
        "timestamp": message.timestamp,
    }
    if message.sender is not None:
        view["from"] = message.sender
    view["recipient"] = message.recipient
    origin = message.origin_document_id(integer_ids=integer_ids)
    if origin is not None:
        view["originDocumentId"] = str(origin)
    return view


def _incoming(message: StoredMessage, config: SimulatorConfig) -> dict[str, object]:
    item: dict[str, object] = {
        "documentId": message.document_id(integer_ids=config.integer_ids),
        "text": message.text,
        "timestamp": message.timestamp,
        "from": _number(message.sender or "", config),
        "recipient": _number(message.recipient, config),
    }
    origin = message.origin_document_id(integer_ids=config.integer_ids)
    if origin is not None:
        item["originDocumentId"] = origin
    return item


def _outgoing(message: StoredMessage, config: SimulatorConfig) -> dict[str, object]:
    recipient_field = "recpipent" if config.recpipent else "recipient"
    return {
        "documentId": message.document_id(integer_ids=config.integer_ids),
        "text": message.text,
        "timestamp": message.timestamp,
        recipient_field: _number(message.recipient, config),
    }


def _number(digits: str, config: SimulatorConfig) -> str | int:
    # As a bare JSON number a leading zero is lost: that is the quirk being reproduced.
    return int(digits) if config.integer_numbers else digits
