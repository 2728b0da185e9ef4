"""How long a failing source waits before its next poll.

| kind      | cause                                    | delay after n failures (±20 %)  |
|-----------|------------------------------------------|---------------------------------|
| "backoff" | transport failure, MC5 status 9999       | 1 s doubling, at most 120 s     |
| "slow"    | MC5 status 1, 2 (configuration), 3 (auth) | 300 s doubling, at most 3600 s  |
| "stop"    | MC5 status 4, 200, 220                   | never: wait until the source is changed |

Authentication failures are slow on purpose: hammering a wrong password can lock the account.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from relay.core.mc5 import RetryKind

JITTER = 0.2


@dataclass(frozen=True, slots=True)
class Backoff:
    first_s: float
    max_s: float


BACKOFFS: dict[RetryKind, Backoff] = {
    "backoff": Backoff(first_s=1.0, max_s=120.0),
    "slow": Backoff(first_s=300.0, max_s=3600.0),
}


def retry_delay_s(kind: RetryKind, *, failures: int, rng: random.Random) -> float | None:
    """Seconds to wait after `failures` consecutive failures (1 for the first); None: stop."""
    backoff = BACKOFFS.get(kind)
    if backoff is None:
        return None
    exponent = min(max(failures, 1) - 1, 32)  # capped: 2**32 s is past any max already
    base = min(backoff.first_s * 2.0**exponent, backoff.max_s)
    return base * rng.uniform(1 - JITTER, 1 + JITTER)
