"""What the console shows of an event as a message: its SMS fields read from the stored
body, a one-line excerpt of its text, and its deliveries counted by state.

Nothing here trusts the body's shape: a field that is missing or not a string is None, and
a lone surrogate kept from the upstream becomes U+FFFD (it cannot be written as UTF-8).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from relay.core.errors import InvalidInput
from relay.core.models import Event

EXCERPT_CHARS = 80
# The order states are counted in, worst last (as the eye reads a row).
STATES = ("delivered", "pending", "retrying", "dead", "dropped")
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


@dataclass(frozen=True, slots=True)
class MessageView:
    """One event as a message: None for a field its body does not carry."""

    event: Event
    document_id: str | None
    origin_document_id: str | None
    sender: str | None
    recipient: str | None
    text: str | None

    @property
    def excerpt(self) -> str:
        """The text on one line, at most EXCERPT_CHARS characters (an ellipsis when cut)."""
        return excerpt(self.text or "")


def _clean(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return _SURROGATE.sub("\ufffd", value)


def message_of(event: Event) -> MessageView:
    """The message fields of `event` (all None for a body without `data`, like a ping)."""
    try:
        body = json.loads(event.body)
    except ValueError:
        body = None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        data = {}
    return MessageView(
        event=event,
        document_id=_clean(data.get("documentId")),
        origin_document_id=_clean(data.get("originDocumentId")),
        sender=_clean(data.get("from")),
        recipient=_clean(data.get("recipient")),
        text=_clean(data.get("text")),
    )


def excerpt(text: str, max_chars: int = EXCERPT_CHARS) -> str:
    """`text` with line breaks and control characters as single spaces, cut to `max_chars`."""
    flat = _CONTROL.sub(" ", text).strip()
    if len(flat) <= max_chars:
        return flat
    return flat[: max_chars - 1].rstrip() + "…"


def state_counts(states: Iterable[str]) -> list[tuple[str, int]]:
    """(state, how many) in STATES order, states with none left out (unknown ones last)."""
    counts = Counter(states)
    known = [(state, counts.pop(state)) for state in STATES if state in counts]
    return known + sorted(counts.items())


def epoch_of(raw: str | None, name: str) -> int | None:
    """A form's UTC date and time (`2026-12-03T08:30`, seconds optional) or epoch seconds as
    an epoch second; None when blank. Raises InvalidInput naming `name`."""
    value = (raw or "").strip()
    if not value:
        return None
    if value.isdigit() and len(value) <= 12:
        return int(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{name} must be a date and time like 2026-12-03T08:30 (UTC)", field=name
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def form_time(epoch_s: int | None) -> str:
    """An epoch second as a datetime-local input's value, in UTC ("" for None)."""
    if epoch_s is None:
        return ""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M")
