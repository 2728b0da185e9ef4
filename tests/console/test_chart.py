"""The per-minute attempt counters behind the overview chart, and the chart's layout."""

from __future__ import annotations

import redis.asyncio

from relay.console.chart import lay_out, minutes_ending, nice_ceiling
from relay.core.models import Attempt, MinuteCounts
from relay.store.attempts import AttemptLog
from relay.store.keys import Keys

MINUTE = 28_333_333  # an epoch minute


def _attempt(n: int, *, at: float, status: int | None, sub: str = "sub_a") -> Attempt:
    return Attempt(
        id=f"att_{n}",
        event_id=f"evt_{n}",
        subscription_id=sub,
        attempt=1,
        at=at,
        status_code=status,
        error=None if status else "timed out",
        response_body=None,
        duration_ms=5,
    )


async def test_attempts_are_counted_per_minute_and_subscription(
    aredis: redis.asyncio.Redis, keys: Keys
) -> None:
    log = AttemptLog(redis=aredis, keys=keys, kept=100)
    start = MINUTE * 60.0
    await log.record_many(
        [
            _attempt(1, at=start + 1, status=200),
            _attempt(2, at=start + 59, status=500),
            _attempt(3, at=start + 61, status=None, sub="sub_b"),
            _attempt(4, at=start + 62, status=204, sub="sub_b"),
        ]
    )
    await log.record_many([_attempt(5, at=start + 3, status=410)])
    counts = await log.minute_counts(
        [MINUTE - 1, MINUTE, MINUTE + 1], subscription_ids=["sub_a", "sub_b"]
    )
    assert counts == [
        MinuteCounts(MINUTE - 1, 0, 0, {"sub_a": (0, 0), "sub_b": (0, 0)}),
        MinuteCounts(MINUTE, 1, 2, {"sub_a": (1, 2), "sub_b": (0, 0)}),
        MinuteCounts(MINUTE + 1, 1, 1, {"sub_a": (0, 0), "sub_b": (1, 1)}),
    ]
    assert 0 < await aredis.ttl(keys.delivery_minute(MINUTE)) <= 7200
    # The attempt log itself is unchanged by the counting.
    page = await log.page("sub_a", limit=10, cursor=None)
    assert [a.id for a in page.items] == ["att_5", "att_2", "att_1"]


def test_nice_ceiling() -> None:
    assert [nice_ceiling(v) for v in (0, 1, 3, 7, 10, 11, 480)] == [1, 1, 5, 10, 10, 20, 500]


def test_minutes_ending_now_are_the_last_hour_oldest_first() -> None:
    minutes = minutes_ending(MINUTE * 60 + 30)
    assert len(minutes) == 60 and minutes[-1] == MINUTE and minutes[0] == MINUTE - 59


def test_bars_stack_failures_on_deliveries_scaled_to_the_busiest_minute() -> None:
    chart = lay_out([MinuteCounts(MINUTE, 6, 4, {}), MinuteCounts(MINUTE + 1, 0, 0, {})])
    assert (chart.y_max, chart.total_ok, chart.total_failed) == (10, 6, 4)
    busy, idle = chart.bars
    plot = chart.baseline - chart.top
    assert busy.ok_height + busy.failed_height == plot
    assert busy.failed_y + busy.failed_height == busy.ok_y
    assert idle.ok_height == idle.failed_height == 0
    assert busy.label.endswith("6 delivered, 4 failed")
