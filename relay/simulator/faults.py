"""Errors queued for the next allMessages calls, applied first queued, first served."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

from relay.core.errors import InvalidInput
from relay.simulator import statuses

FaultKind = Literal[
    "http_500",
    "html_502",
    "invalid_json",
    "slow",
    "status",
    "reset",
    "oversize",
    "trickle",
    "poison",
    "non_utf8",
    "future",
    "endless",
]
FAULT_KINDS: tuple[FaultKind, ...] = (
    "http_500",
    "html_502",
    "invalid_json",
    "slow",
    "status",
    "reset",
    "oversize",
    "trickle",
    "poison",
    "non_utf8",
    "future",
    "endless",
)
POISON_FIELDS = ("documentId", "timestamp", "text", "from", "recipient")
MAX_DELAY_S = 600.0
MAX_SIZE_BYTES = 2**31
TEN_YEARS_S = 10 * 365 * 86400
MAX_QUEUED = 100_000


@dataclass(frozen=True)
class Fault:
    """One injected failure.

    http_500: HTTP 500, plain text.  html_502: HTTP 502 with an nginx-style HTML page.
    invalid_json: HTTP 200, JSON content type, truncated body.  slow: answer normally after
    `delay_s`.  status: HTTP 200 `{"status": status}`.  reset: close the connection unanswered.
    oversize: HTTP 200, a valid JSON body of about `size_bytes`, streamed without a length.
    trickle: the normal answer, one byte every `delay_s`.  poison: the normal answer plus one
    fresh incoming message whose `field` is the JSON text `raw`, as is ("1e300", "true",
    '"\\ud800"').  non_utf8: the normal answer plus one fresh message whose text holds bytes
    that are not UTF-8.  future: the normal answer plus one fresh message dated `offset_s`
    from now.  endless: one fresh message at `since` with hasMoreMessages true, whatever
    is stored (an upstream that always has more).
    """

    kind: FaultKind
    status: int = statuses.INTERNAL_ERROR
    delay_s: float = 5.0
    size_bytes: int = 8 * 1024 * 1024
    field: str = "timestamp"
    raw: str = "1e300"
    offset_s: int = TEN_YEARS_S

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(FAULT_KINDS)}", field="kind")
        if self.status == statuses.OK:
            raise InvalidInput("a status fault needs a non-zero status", field="status")
        if not 0 <= self.delay_s <= MAX_DELAY_S:
            raise InvalidInput(f"delay_s must be from 0 to {MAX_DELAY_S}", field="delay_s")
        if not 0 <= self.size_bytes <= MAX_SIZE_BYTES:
            raise InvalidInput(f"size_bytes must be from 0 to {MAX_SIZE_BYTES}", field="size_bytes")
        if self.field not in POISON_FIELDS:
            raise InvalidInput(f"field must be one of {', '.join(POISON_FIELDS)}", field="field")


class FaultQueue:
    """Pending faults; each queued use applies to exactly one call."""

    def __init__(self) -> None:
        self._pending: deque[Fault] = deque()

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, fault: Fault, *, times: int = 1) -> None:
        """Apply `fault` to the next `times` calls after those already queued."""
        if not 1 <= times <= MAX_QUEUED - len(self._pending):
            raise InvalidInput(f"times must be from 1 to {MAX_QUEUED} in all", field="times")
        self._pending.extend([fault] * times)

    def peek(self) -> Fault | None:
        """The fault the next call gets, without using it."""
        return self._pending[0] if self._pending else None

    def take(self) -> Fault | None:
        """Use up the fault for this call; None means answer normally."""
        return self._pending.popleft() if self._pending else None

    def clear(self) -> None:
        """Drop every pending fault."""
        self._pending.clear()
