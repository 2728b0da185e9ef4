"""Quantiles and rates from recorded times."""

from __future__ import annotations

import math
from collections.abc import Sequence


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of already sorted values (q in [0, 1])."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize_latency(values_s: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max in milliseconds, and the count."""
    ordered = sorted(values_s)
    return {
        "count": len(ordered),
        "p50_ms": quantile(ordered, 0.50) * 1000,
        "p90_ms": quantile(ordered, 0.90) * 1000,
        "p99_ms": quantile(ordered, 0.99) * 1000,
        "max_ms": (ordered[-1] if ordered else math.nan) * 1000,
    }


def drain_rate(arrivals: Sequence[float]) -> dict[str, float]:
    """Deliveries per second between the first and the last arrival."""
    if len(arrivals) < 2:
        return {"count": len(arrivals), "span_s": 0.0, "rate": 0.0}
    first, last = min(arrivals), max(arrivals)
    span = max(last - first, 1e-6)
    return {"count": len(arrivals), "span_s": span, "rate": (len(arrivals) - 1) / span}
