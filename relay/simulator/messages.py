"""NewMessage (what a caller asks to add) and StoredMessage (what the upstream keeps)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from relay.core.errors import InvalidInput

MessageKind = Literal["incoming", "outgoing"]
MESSAGE_KINDS: tuple[MessageKind, ...] = ("incoming", "outgoing")
MAX_TIMESTAMP = (1 << 32) - 1  # an ObjectId keeps the second in 4 bytes
_NUMBER = re.compile(r"[0-9]{1,20}")
_DOCUMENT_ID = re.compile(r"[0-9a-fA-F]{24}|[0-9]{1,20}")


@dataclass(frozen=True)
class NewMessage:
    """A message to add; fields left None are filled in with realistic values.

    Raises InvalidInput on construction when a field cannot be stored faithfully."""

    kind: MessageKind
    text: str | None = None
    sender: str | None = None  # the JSON field `from`; incoming messages only
    recipient: str | None = None
    timestamp: int | None = None  # epoch second; None means now
    origin_document_id: str | None = None  # incoming replies only: the outgoing message answered

    def __post_init__(self) -> None:
        if self.kind not in MESSAGE_KINDS:
            raise InvalidInput("kind must be incoming or outgoing", field="kind")
        if self.kind == "outgoing" and self.sender is not None:
            raise InvalidInput("outgoing messages have no from", field="from")
        if self.kind == "outgoing" and self.origin_document_id is not None:
            raise InvalidInput("only incoming messages reply to another", field="originDocumentId")
        for name, number in (("from", self.sender), ("recipient", self.recipient)):
            if number is not None and not _NUMBER.fullmatch(number):
                raise InvalidInput(f"{name} must be 1 to 20 digits", field=name)
        if self.timestamp is not None and not 0 <= self.timestamp <= MAX_TIMESTAMP:
            raise InvalidInput(f"timestamp must be from 0 to {MAX_TIMESTAMP}", field="timestamp")
        origin = self.origin_document_id
        if origin is not None and not _DOCUMENT_ID.fullmatch(origin):
            raise InvalidInput(
                "originDocumentId must be a 24-hex ObjectId or an integer id",
                field="originDocumentId",
            )


@dataclass(frozen=True)
class StoredMessage:
    """One stored message. It carries its id in both forms so the integer_ids switch can flip
    at any time; `integer_id` also orders messages that share a second (insertion order)."""

    object_id: str
    integer_id: int
    kind: MessageKind
    text: str
    timestamp: int
    sender: str | None
    recipient: str
    origin_object_id: str | None  # the replied-to ObjectId, or the id as given if unknown
    origin_integer_id: int | None

    def document_id(self, *, integer_ids: bool) -> str | int:
        """The id as the upstream shows it under the integer_ids switch."""
        return self.integer_id if integer_ids else self.object_id

    def origin_document_id(self, *, integer_ids: bool) -> str | int | None:
        """The replied-to id as the upstream shows it; None when this is not a reply."""
        if integer_ids and self.origin_integer_id is not None:
            return self.origin_integer_id
        return self.origin_object_id
