"""What a delivery attempt's result means and when to try again (the README's "Webhooks your
endpoint receives").

Pure: the caller passes the clock (`now`) and the random source (`rng`).
"""

from __future__ import annotations

import email.utils
import enum
import math
import random
from dataclasses import dataclass

DEFAULT_JITTER = 0.2
MAX_RETRY_AFTER_S = 86400.0


class Outcome(enum.StrEnum):
    """What one attempt's result means for the delivery."""

    DELIVERED = "delivered"  # any 2xx
    GONE = "gone"  # 410: the subscriber asks us to stop
    FAILED = "failed"  # any other status, timeout, connection or TLS error
    DROPPED = "dropped"  # never sent: the subscription was disabled or deleted meanwhile


def classify(status_code: int | None) -> Outcome:
    """The outcome of an attempt that got `status_code` (None: no response at all). The one
    definition of "2xx means delivered"."""
    if status_code is not None and 200 <= status_code < 300:
        return Outcome.DELIVERED
    if status_code == 410:
        return Outcome.GONE
    return Outcome.FAILED


def parse_retry_after(
    value: str | None, *, now: float, cap_s: float = MAX_RETRY_AFTER_S
) -> float | None:
    """Seconds a `Retry-After` header asks us to wait (delta-seconds or HTTP-date), at most
    `cap_s`; None when absent or unparseable. A date in the past means 0."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return cap_s if len(text) > 15 else min(float(int(text)), cap_s)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive result came from "-0000"
        return None
    seconds = when.timestamp() - now
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), cap_s)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries after the first attempt: `schedule_s[i]` seconds (±`jitter`) before attempt i+2."""

    schedule_s: tuple[float, ...]
    jitter: float = DEFAULT_JITTER

    @property
    def max_attempts(self) -> int:
        """The first attempt plus one per schedule entry."""
        return len(self.schedule_s) + 1

    def next_delay_s(
        self, *, attempt: int, rng: random.Random, retry_after_s: float | None = None
    ) -> float | None:
        """Seconds to wait after failed attempt number `attempt` (1-based) before the next,
        never less than `retry_after_s`; None when the schedule is used up."""
        if attempt < 1 or attempt > len(self.schedule_s):
            return None
        base = self.schedule_s[attempt - 1]
        delay = base * rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)
        if retry_after_s is not None and retry_after_s > delay:
            return retry_after_s
        return delay
