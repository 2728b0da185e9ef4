"""Parsing MC5 `allMessages` responses, what each status means, and where paging goes next.

Pure: values in, values out. Every quirk of the upstream (docs/MC5-API.md) is handled here:
ids and phone numbers as strings or bare numbers (kept as strings, every digit), `recpipent`
for `recipient`, `text` kept exactly, a missing `hasMoreMessages` (None: "maybe more"),
a 0 or missing `newestMessageTimestamp` (None), and more than a page of messages in one
second (`plan_page` moves past it and reports the possible gap).

The cursor follows the timestamps of the messages actually returned (and so recorded), not
`newestMessageTimestamp`: it can only move past a message that the same commit records.

Poison values never stop an account. A message whose fields cannot be read (a timestamp that
is not an integer second from 1970 to 9999, such as "²", 1.5, true, 1e20; a documentId that
is not a string or number, or that cannot be encoded) is left out of `Page.messages` and
named in `Page.rejected`; the rest of the page is recorded and the poller notes the rejects
on the source. Text that cannot be encoded as UTF-8 (a lone surrogate) is kept as sent: the
event body escapes it (relay.core.events). A message dated in the future is recorded, but
the cursor never moves past `now`, so one bad clock cannot hide the later messages of the
account. No skew is allowed past now: a message arriving within it, dated before a future
one, would be skipped. An upstream clock ahead of ours only costs re-reading (and deduping)
its newest seconds until ours catches up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from relay.core.errors import UpstreamStatusError, UpstreamTransportError
from relay.core.models import Message, MessageKind, Page

PAGE_SIZE = 100
ALL_MESSAGES_PATH = "/services/rest/user/allMessages"

MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second RFC 3339 can write
_DIGITS = re.compile(r"[0-9]{1,20}")
RetryKind = Literal["backoff", "slow", "stop"]
_KIND_ORDER: dict[MessageKind, int] = {"outgoing": 0, "incoming": 1}  # a reply follows its origin


@dataclass(frozen=True, slots=True)
class StatusBehaviour:
    """What a non-zero MC5 `status` means and how the poller retries it."""

    status: int
    description: str
    retry: RetryKind  # backoff: fast exponential; slow: minutes; stop: until the source changes


STATUSES: Mapping[int, StatusBehaviour] = {
    b.status: b
    for b in (
        StatusBehaviour(1, "missing required parameter", "slow"),
        StatusBehaviour(2, "invalid parameter value", "slow"),
        StatusBehaviour(3, "authentication failed", "slow"),
        StatusBehaviour(4, "account blocked", "stop"),
        StatusBehaviour(200, "user does not exist", "stop"),
        StatusBehaviour(220, "user account needs to be activated", "stop"),
        StatusBehaviour(9999, "internal error", "backoff"),
    )
}


def status_behaviour(status: int) -> StatusBehaviour:
    """The behaviour of a non-zero status; an undocumented one is retried slowly."""
    return STATUSES.get(status) or StatusBehaviour(status, "undocumented status", "slow")


def parse_page(payload: object) -> Page:
    """The page of a decoded allMessages response, messages oldest first.

    Raises UpstreamStatusError for a non-zero `status` and UpstreamTransportError when the
    JSON does not have the documented shape."""
    if not isinstance(payload, dict):
        raise _malformed(f"expected a JSON object, got {type(payload).__name__}")
    status = _int(payload.get("status"), "status")
    if status != 0:
        behaviour = status_behaviour(status)
        raise UpstreamStatusError(status, f"MC5 status {status}: {behaviour.description}")
    messages: list[Message] = []
    rejected: list[str] = []
    lists: tuple[tuple[MessageKind, str], ...] = (
        ("incoming", "incomingMessages"),
        ("outgoing", "outgoingMessages"),
    )
    for kind, name in lists:
        for raw in _list(payload, name):
            try:
                messages.append(_message(raw, kind))
            except UpstreamTransportError as exc:
                rejected.append(str(exc).removeprefix(_MALFORMED))
    messages.sort(key=_order)
    has_more = payload.get("hasMoreMessages")
    return Page(
        messages=tuple(messages),
        newest_timestamp=_newest(payload.get("newestMessageTimestamp")),
        has_more=has_more if isinstance(has_more, bool) else None,
        rejected=tuple(rejected),
    )


def rejected_note(rejected: tuple[str, ...]) -> str:
    """The source's `last_error` after a page with messages that could not be read."""
    more = f" (and {len(rejected) - 1} more)" if len(rejected) > 1 else ""
    return f"skipped {len(rejected)} unreadable message(s): {rejected[0]}{more}"


@dataclass(frozen=True, slots=True)
class PagePlan:
    """Where the cursor goes after a page, and whether the page was stuck in one second."""

    cursor: int  # the next `since`; never below the cursor the page was fetched with
    has_progressed: bool  # the cursor moved forward
    stuck_second: int | None  # a full page all in this second: the cursor jumped past it
    has_more: bool | None

    @property
    def is_possible_gap(self) -> bool:
        """Messages past the page size in the stuck second may exist and cannot be fetched."""
        return self.stuck_second is not None and self.has_more is not False

    def should_fetch_again(self, *, new_count: int) -> bool:
        """Fetch the next page now (draining a backlog) instead of waiting the poll interval.

        Never true for a page that brought nothing new and did not move the cursor, so a
        misbehaving upstream cannot make the poller spin."""
        if self.stuck_second is not None:
            return True
        if new_count == 0 and not self.has_progressed:
            return False
        return self.has_more is not False


def plan_page(*, cursor: int, page: Page, now: float, page_size: int = PAGE_SIZE) -> PagePlan:
    """The cursor after `page` (fetched with `since=cursor`) is recorded.

    A full page whose messages all share one second cannot be paged past with `since`
    (the next call returns the same messages), so the cursor moves to that second + 1.
    The cursor never goes past `now` (nor backwards)."""
    if not page.messages:
        return PagePlan(cursor, False, None, page.has_more)
    limit = max(cursor, int(now))
    seconds = {m.timestamp for m in page.messages}
    newest = max(seconds)
    if len(page.messages) >= page_size and len(seconds) == 1 and cursor <= newest < limit:
        return PagePlan(newest + 1, True, newest, page.has_more)
    moved = min(max(cursor, newest), limit)
    return PagePlan(moved, moved > cursor, None, page.has_more)


def gap_note(*, second: int, page_size: int = PAGE_SIZE) -> str:
    """The source's `last_error` after a stuck page."""
    return (
        f"possible gap: more than {page_size} messages in second {second}; "
        f"the upstream returns only the first {page_size}"
    )


def _message(raw: object, kind: MessageKind) -> Message:
    if not isinstance(raw, dict):
        raise _malformed(f"an {kind} message is not a JSON object")
    document_id = _text(raw.get("documentId"), "documentId")
    if document_id is None:
        raise _malformed(f"an {kind} message has no documentId")
    if not _is_encodable(document_id):
        raise _malformed(f"documentId {document_id!r} cannot be encoded as UTF-8")
    try:
        timestamp = _int(raw.get("timestamp"), "timestamp")
    except UpstreamTransportError as exc:
        raise _malformed(f"message {document_id}: {str(exc).removeprefix(_MALFORMED)}") from None
    if timestamp > MAX_TIMESTAMP:
        raise _malformed(f"message {document_id}: timestamp {timestamp} is past the year 9999")
    recipient = raw.get("recipient", raw.get("recpipent"))
    return Message(
        kind=kind,
        document_id=document_id,
        timestamp=timestamp,
        text=_text(raw.get("text"), "text"),
        sender=_text(raw.get("from"), "from") if kind == "incoming" else None,
        recipient=_text(recipient, "recipient"),
        origin_document_id=_text(raw.get("originDocumentId"), "originDocumentId"),
    )


def _order(message: Message) -> tuple[int, int, int, str]:
    # Length before text sorts integer ids numerically and equal-length ObjectIds as written.
    doc = message.document_id
    return (message.timestamp, _KIND_ORDER[message.kind], len(doc), doc)


def _list(payload: dict[str, object], name: str) -> list[object]:
    value = payload.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _malformed(f"{name} is not a list")
    return value


def _int(value: object, name: str) -> int:
    """A non-negative integer: a JSON integer, an integral float or ASCII digits (not "²",
    not 1e300: floats past 2**53 are not exact seconds)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value)
    if isinstance(value, float) and value.is_integer() and 0 <= value <= 2**53:
        return int(value)
    raise _malformed(f"{name} is not an integer: {_preview(value)}")


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _newest(value: object) -> int | None:
    # Informational only (the cursor follows the messages), so an odd value is not an error.
    try:
        second = _int(value, "newestMessageTimestamp")
    except UpstreamTransportError:
        return None
    return second if second > 0 else None


def _text(value: object, name: str) -> str | None:
    """Strings exactly as sent; bare numbers (old ids, phone numbers) as their digits."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    raise _malformed(f"{name} is neither a string nor a number")


_MALFORMED = "transport: malformed allMessages response: "


def _malformed(detail: str) -> UpstreamTransportError:
    return UpstreamTransportError(_MALFORMED + detail)
