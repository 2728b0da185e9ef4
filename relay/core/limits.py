"""Per-subscription delivery control: the bounds of `rate_limit_per_s`, `timeout_s` and
`concurrency`, and the longest delivery any subscription may make.

Pure values. The shared (Redis) side is relay/store/limits.py; the rate is a GCRA with no
burst: one subscription's deliveries start at least 1 / rate_limit_per_s seconds apart, across
every dispatcher and retry worker, so in any window of w seconds at most w x rate + 1 start.
"""

from __future__ import annotations

MIN_RATE_LIMIT_PER_S = 0.01  # one delivery per 100 s
MAX_RATE_LIMIT_PER_S = 1000.0
MIN_TIMEOUT_S = 0.1
MAX_TIMEOUT_S = 60.0
MIN_CONCURRENCY = 1
MAX_CONCURRENCY = 1000  # the same bound as RELAY_SUBSCRIBER_CONCURRENCY


def longest_timeout_s(default_timeout_s: float) -> float:
    """The longest one webhook POST may take: the global timeout or the longest a
    subscription may set, whichever is longer (reclaim and job timeouts must exceed it)."""
    return max(default_timeout_s, MAX_TIMEOUT_S)
